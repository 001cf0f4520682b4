#!/usr/bin/env python3
"""Stale-DNS and shared-cache end-to-end scenarios for dnsfo (issue 7), standard library only.

Built on scripts/lib/hermetic.py (private namespace, /etc/hosts, up/refused/silent servers,
clean client environment, output format); this file adds:

* `DnsServer`: a tiny authoritative DNS server (UDP and TCP) answering A/AAAA from a table the
  scenario changes at run time (or a JSON file re-read on every query, for `serve`); NXDOMAIN for
  unknown names, empty NOERROR (with an SOA) for a type it has no data for; configurable TTL;
  every query is logged (time, protocol, name, type, answer) so a test can prove a re-resolution
  went through DNS. It stops by itself after `lifetime` seconds.
* a DNS namespace: hermetic's namespace plus a resolv.conf (`nameserver 127.0.0.1`,
  `options timeout:1 attempts:1`) and an nsswitch.conf with `hosts: files dns` bind-mounted over
  /etc, and the server on 127.0.0.1:53 (binding 53 is allowed in a private user namespace);
  `getent hosts NAME` is checked to resolve through the server before anything runs;
* interactive clients (tests/e2e/clients/stale_*): resolve once, connect, print READY, wait for a
  line on stdin, connect AGAIN to the address resolved before; the scenario moves the record and
  kills the old server in between;
* shared-cache scenarios: two processes with the same DNSFO_CACHE_DIR, trusted and untrusted
  caches, a cache naming an address the resolver no longer returns, DNSFO_CACHE=0.

CLI (tests/stale_dns.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/dnsstale.py run stale-gai [--variant plain --variant dnsfo --variant log]
    python3 tests/e2e/dnsstale.py run cache-untrusted
    python3 tests/e2e/dnsstale.py scenarios                 # list them
    python3 tests/e2e/dnsstale.py build-clients
    python3 tests/e2e/dnsstale.py serve --table t.json --ip 127.0.0.1 --port 5353 --lifetime 60

Only loopback addresses are used; every server and every client run has a hard lifetime, and a
watchdog bounds each scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (namespace, servers, clean_env, Result, emit)

SRC = HERE / "clients"
BIN = H.BIN_DIR
PORT = H.DEFAULT_PORT
DNS_NAME = "svc.test"  # served by DnsServer only, never in /etc/hosts
HOSTS_NAME = "svc"  # the cache scenarios' name, in /etc/hosts only
DNS_TTL = 1
SILENT_MIN_MS = 200  # a failover past a silent address costs the attempt delay (250 ms)
FOREIGN_ENV = "DNSSTALE_FOREIGN_DIR"  # a cache dir owned by another uid, prepared outside the ns

STALE_C = ("stale_ghbn",)


# --------------------------------------------------------------------------------------------
# A tiny authoritative DNS server
# --------------------------------------------------------------------------------------------

QTYPE_A, QTYPE_NS, QTYPE_SOA, QTYPE_AAAA, QTYPE_OPT, QTYPE_ANY = 1, 2, 6, 28, 41, 255
QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 28: "AAAA", 33: "SRV",
               65: "HTTPS", 255: "ANY"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP"}


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _parse_name(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """Labels of an uncompressed name at pos (queries never compress) and the position after."""
    labels = []
    for _ in range(128):
        n = data[pos]
        pos += 1
        if n == 0:
            return labels, pos
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(data[pos:pos + n])
        pos += n
    raise ValueError("name too long")


class DnsServer:
    """Authoritative server for a table {name: [ip, ...]} on ip:port, UDP and TCP.

    A/AAAA answers list the table's IPv4/IPv6 addresses in table order with `ttl`; a known name
    without data for the type gets NOERROR with no answer (and an SOA, for negative caching);
    unknown names get NXDOMAIN. The table is `set()` at run time, or re-read from `table_file`
    (JSON) on every query. Every query is logged. Stops by itself after `lifetime` seconds.
    """

    def __init__(self, ip: str = "127.0.0.1", port: int = 53, ttl: int = DNS_TTL,
                 lifetime: float = 60.0, table: dict[str, list[str]] | None = None,
                 table_file: Path | None = None):
        if not ipaddress.ip_address(ip).is_loopback:
            raise H.HarnessError(f"DNS server: {ip} is not a loopback address")
        self.ip, self.port, self.ttl, self.table_file = ip, port, ttl, table_file
        self._table: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.log: list[dict] = []
        for name, addrs in (table or {}).items():
            self.set(name, addrs)
        self.deadline = time.monotonic() + lifetime
        self._stop = threading.Event()
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.udp = socket.socket(fam, socket.SOCK_DGRAM)
        self.udp.bind((ip, port))
        self.udp.settimeout(0.1)
        self.tcp = socket.socket(fam, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((ip, port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.1)
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True, name="dns-udp"),
                         threading.Thread(target=self._serve_tcp, daemon=True, name="dns-tcp")]
        for t in self._threads:
            t.start()

    # -- table and log
    def set(self, name: str, addrs: list[str]) -> None:
        for a in addrs:
            if not ipaddress.ip_address(a).is_loopback:
                raise H.HarnessError(f"DNS server: {a} is not a loopback address")
        with self._lock:
            self._table[name.lower().rstrip(".")] = list(addrs)

    def remove(self, name: str) -> None:
        """Forget the name: NXDOMAIN from now on."""
        with self._lock:
            self._table.pop(name.lower().rstrip("."), None)

    def table(self) -> dict[str, list[str]]:
        if self.table_file is not None:
            try:
                raw = json.loads(Path(self.table_file).read_text())
                return {k.lower().rstrip("."): list(v) for k, v in raw.items()}
            except (OSError, ValueError, AttributeError):
                return {}
        with self._lock:
            return dict(self._table)

    def queries(self, name: str | None = None, since: float = 0.0) -> list[dict]:
        with self._lock:
            return [q for q in self.log if q["t"] >= since
                    and (name is None or q["name"] == name.lower().rstrip("."))]

    @staticmethod
    def describe(qs: list[dict]) -> str:
        return "; ".join(f"{q['proto']} {q['name']} {q['type']} -> {q['rcode']} "
                         f"[{' '.join(q['answer'])}]" for q in qs)

    # -- protocol
    def answer(self, data: bytes, proto: str) -> bytes | None:
        if len(data) < 12:
            return None
        qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
        if flags & 0x8000:
            return None  # a response: never answer those
        opcode = (flags >> 11) & 0xF
        rd = flags & 0x0100
        try:
            if qd != 1:
                raise ValueError("not exactly one question")
            labels, pos = _parse_name(data, 12)
            qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
            pos += 4
        except (ValueError, IndexError, struct.error):
            return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 1, 0, 0, 0, 0)
        question = data[12:pos]
        edns = False
        if an == 0 and ns == 0 and ar >= 1:  # an OPT record: answer with one too
            with contextlib.suppress(ValueError, IndexError, struct.error):
                _, p = _parse_name(data, pos)
                edns = struct.unpack("!H", data[p:p + 2])[0] == QTYPE_OPT
        name = b".".join(labels).decode(errors="replace").lower()
        table = self.table()
        answers: list[bytes] = []
        answer_ips: list[str] = []
        authority: list[bytes] = []
        if opcode != 0:
            rcode = 4
        elif name not in table:
            rcode = 3
        else:
            rcode = 0
            if qclass in (1, 255):
                for ip in table[name]:
                    v6 = ":" in ip
                    if (qtype == QTYPE_A and not v6) or (qtype == QTYPE_AAAA and v6) \
                            or qtype == QTYPE_ANY:
                        rdata = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, ip)
                        answers.append(struct.pack("!HHHIH", 0xC00C,
                                                   QTYPE_AAAA if v6 else QTYPE_A, 1, self.ttl,
                                                   len(rdata)) + rdata)
                        answer_ips.append(ip)
        if not answers and opcode == 0:
            zone = name.rsplit(".", 1)[-1] if name else ""
            soa = (_encode_name(f"ns.{zone}") + _encode_name(f"hostmaster.{zone}")
                   + struct.pack("!IIIII", 1, 60, 60, 600, self.ttl))
            authority.append(_encode_name(zone) + struct.pack("!HHIH", QTYPE_SOA, 1, self.ttl,
                                                              len(soa)) + soa)
        opt = struct.pack("!BHHIH", 0, QTYPE_OPT, 1232, 0, 0) if edns else b""
        head = struct.pack("!HHHHHH", qid, 0x8000 | (opcode << 11) | 0x0400 | rd | 0x0080 | rcode,
                           1, len(answers), len(authority), 1 if edns else 0)
        with self._lock:
            self.log.append({"t": time.monotonic(), "proto": proto, "name": name,
                             "type": QTYPE_NAMES.get(qtype, str(qtype)),
                             "rcode": RCODE_NAMES.get(rcode, str(rcode)), "answer": answer_ips})
        return head + question + b"".join(answers) + b"".join(authority) + opt

    # -- transports
    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.deadline

    def _serve_udp(self) -> None:
        while self._alive():
            try:
                data, peer = self.udp.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            reply = self.answer(data, "udp")
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.udp.sendto(reply, peer)
        with contextlib.suppress(OSError):
            self.udp.close()

    def _serve_tcp(self) -> None:
        conns = 0
        while self._alive() and conns < 200:
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            conns += 1
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()
        with contextlib.suppress(OSError):
            self.tcp.close()

    def _tcp_conn(self, conn: socket.socket) -> None:
        conn.settimeout(2)

        def exact(n: int) -> bytes:
            buf = b""
            for _ in range(64):
                if len(buf) >= n:
                    break
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    break
                buf += chunk
            return buf

        with contextlib.suppress(OSError), conn:
            for _ in range(16):  # at most 16 queries per connection
                head = exact(2)
                if len(head) != 2:
                    return
                (n,) = struct.unpack("!H", head)
                msg = exact(n)
                if len(msg) != n:
                    return
                reply = self.answer(msg, "tcp")
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)


# --------------------------------------------------------------------------------------------
# Namespace with DNS
# --------------------------------------------------------------------------------------------

def _mount_over(src: Path, target: str) -> None:
    r = subprocess.run(["mount", "--bind", str(src), target], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        raise H.HarnessError(f"mount --bind {src} {target} failed: {r.stderr.strip()}")


def setup_dns_namespace(workdir: Path, hosts: list[tuple[str, str]]) -> dict[str, str]:
    """hermetic's namespace (lo up, /etc/hosts with `hosts`, /etc/gai.conf) plus our own
    /etc/resolv.conf (nameserver 127.0.0.1) and /etc/nsswitch.conf (`hosts: files dns`)."""
    H.setup_namespace(hosts, workdir)
    resolv = workdir / "resolv.conf"
    resolv.write_text("# dnsfo stale-DNS test\nnameserver 127.0.0.1\n"
                      "options timeout:1 attempts:1\n")
    _mount_over(resolv, "/etc/resolv.conf")
    if not os.path.exists("/etc/nsswitch.conf"):
        raise H.HarnessError("/etc/nsswitch.conf missing: cannot make hosts lookups use DNS")
    lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    lines = [ln for ln in lines if not ln.split("#", 1)[0].strip().startswith("hosts:")]
    nss = workdir / "nsswitch.conf"
    nss.write_text("\n".join(["hosts: files dns", *lines]) + "\n")
    _mount_over(nss, "/etc/nsswitch.conf")
    return {"resolv_conf": resolv.read_text(), "nsswitch_hosts": "files dns"}


def check_getent(dns: DnsServer, name: str, want: list[str]) -> str:
    """`getent hosts NAME` must give want[0] and getaddrinfo(AF_INET) exactly `want`, both through
    the test server. (Not `getent ahosts`: its AI_ADDRCONFIG finds no non-loopback address in the
    namespace and answers nothing without asking DNS.)"""
    t0 = time.monotonic()
    r = subprocess.run(["getent", "hosts", name], capture_output=True, text=True, timeout=10)
    first = r.stdout.split()[0] if r.stdout.split() else ""
    gai = H.gai(name, PORT, socket.AF_INET).split()
    seen = dns.queries(name, since=t0)
    if first != want[0] or gai != want or not seen:
        raise H.HarnessError(f"{name}: `getent hosts` gave {r.stdout.strip()!r} (want {want[0]}), "
                             f"getaddrinfo {gai} (want {want}); DNS server saw {len(seen)} "
                             f"queries: {DnsServer.describe(seen)}")
    return (f"getent hosts: {r.stdout.strip()}; getaddrinfo: {' '.join(gai)}; through the test "
            f"DNS server: {DnsServer.describe(seen)}")


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

def build(which: list[str] | None = None) -> None:
    """Compile the stale_* C clients into target/e2e-bin if stale; safe in parallel."""
    wanted = set(which) if which is not None else set(STALE_C)
    BIN.mkdir(parents=True, exist_ok=True)
    with open(BIN / ".stale-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for c in STALE_C:
            if c not in wanted:
                continue
            H.compile_c(BIN / c, [SRC / f"{c}.c"], deps=[SRC / "common.h"])


STALE_CLIENTS = {
    "python": [sys.executable, str(SRC / "stale_gai.py")],
    "c-ghbn": [str(BIN / "stale_ghbn")],
}
TIMED_CLIENT = [sys.executable, str(SRC / "stale_timed.py")]


@dataclasses.dataclass
class Run(H.Result):
    """hermetic's Result plus scenario facts reported in the run's own section."""
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {**super().fields(), **self.extra}


def _env_for(preload: bool, extra: dict[str, str], log_file: Path | None):
    full = H.clean_env()
    if preload:
        full["LD_PRELOAD"] = str(H.lib_path())
    full.update(extra)
    if log_file is not None:
        full["DNSFO_LOG_FILE"] = str(log_file)
    return full


def run_interactive(label: str, cmd: list[str], variant: str, env: dict[str, str], on_ready,
                    ready_timeout: float, go_timeout: float | None = None,
                    log_file: Path | None = None) -> Run:
    """Run cmd (own process group); when it prints READY call on_ready(), then send it a line
    (and close its stdin). Variant kinds are hermetic's (plain, dnsfo, disable, log); the run is
    reported as section `label`.

    Killed `ready_timeout` s after start; with `go_timeout`, a client that got READY is instead
    killed `go_timeout` s after the line was sent (so the time on_ready() takes counts against
    neither). `log_file`: where a `log` variant's DNSFO_LOG_FILE goes (reported as `log`).
    """
    preload, vextra, want_log = H.VARIANTS[variant]
    extra = {**env, **vextra}
    timeout = ready_timeout + (go_timeout or 0.0)
    res = Run(variant=label, cmd=cmd, preload=preload, env=extra, timeout=timeout)
    if preload and not H.lib_path().exists():
        res.skipped = f"library not found: {H.lib_path()}"
        return res
    log_file = log_file if want_log else None
    full = _env_for(preload, extra, log_file)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full, start_new_session=True)
    H.track_client(p.pid)
    lines: queue.Queue = queue.Queue()
    out_lines: list[str] = []
    err: list[bytes] = []

    def read_out() -> None:
        for raw in p.stdout:  # ends at EOF: when the client exits or is killed
            lines.put(raw.decode(errors="backslashreplace"))
        lines.put(None)

    def read_err() -> None:
        err.append(p.stderr.read())

    readers = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    for t in readers:
        t.start()
    deadline = t0 + ready_timeout
    ready = False
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            out_lines.append(line)
            if line.strip() == "READY" and not ready:
                ready = True
                t_ready = time.monotonic()
                res.extra["ready_ms"] = str(int((t_ready - t0) * 1000))
                res.extra.update(on_ready() or {})
                res.extra["after_ready_t"] = repr(t_ready)
                with contextlib.suppress(OSError):
                    p.stdin.write(b"go\n")
                    p.stdin.close()
                if go_timeout is not None:
                    deadline = time.monotonic() + go_timeout
        try:
            p.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            res.timed_out = True
    finally:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
        H.untrack_client(p.pid)
        for t in readers:
            t.join(timeout=5)
        with contextlib.suppress(OSError):
            p.stdin.close()
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            out_lines.append(line)
    res.elapsed_ms = int((time.monotonic() - t0) * 1000)
    if p.returncode is not None and p.returncode < 0 and not res.timed_out:
        res.signal = -p.returncode
    if not res.timed_out and p.returncode is not None and p.returncode >= 0:
        res.exit = p.returncode
    res.stdout = "".join(out_lines)
    res.stderr = b"".join(err).decode(errors="backslashreplace")
    res.extra["ready"] = "1" if ready else "0"
    if log_file is not None:
        with contextlib.suppress(OSError):
            res.log = log_file.read_text(errors="backslashreplace")
    return res


def run_once(cmd: list[str], *, variant: str, env: dict[str, str], timeout: float,
             workdir: Path, label: str) -> Run:
    """One non-interactive client run (hermetic's run_client), reported as section `label`."""
    preload, vextra, want_log = H.VARIANTS[variant]
    log = workdir / f"dnsfo-{label}.log" if want_log else None
    r = H.run_client(cmd, preload=preload, env={**env, **vextra}, timeout=timeout,
                     variant=label, log_file=log)
    return Run(**dataclasses.asdict(r))


# --------------------------------------------------------------------------------------------
# Stale-DNS scenarios
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Stale:
    """DNS serves `before` (all up) while the client resolves and connects once; then DNS moves
    to `after` (up), every `before` address dies as `dies` says (refused/silent), and the client
    connects again to the address it resolved first. An empty `after` deletes the name
    (NXDOMAIN)."""
    client: str
    before: list[str]
    after: list[str]
    dies: dict[str, str]
    doc: str
    # the DNS server the system resolver (glibc) asks keeps serving `before`; a second server
    # on this ip:port (given to dnsfo as DNSFO_NAMESERVER) serves `after`
    nameserver: str | None = None


STALE = {
    "stale-gai": Stale("python", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                       "python getaddrinfo; record moves .2 -> .3, .2 refuses"),
    "stale-ghbn": Stale("c-ghbn", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                        "C gethostbyname; record moves .2 -> .3, .2 refuses"),
    "stale-multi": Stale("python", ["127.0.0.2", "127.0.0.3"], ["127.0.0.4"],
                         {"127.0.0.2": "refused", "127.0.0.3": "silent"},
                         "two addresses die (.2 refused, .3 silent); DNS moves to .4"),
    "stale-nameserver": Stale("python", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                              "system DNS keeps the stale .2; DNSFO_NAMESERVER=127.0.0.53:5353 "
                              "serves .3", nameserver="127.0.0.53:5353"),
    "stale-gone": Stale("python", ["127.0.0.2"], [], {"127.0.0.2": "refused"},
                        "the name is deleted (NXDOMAIN) and .2 refuses: nowhere to go"),
}


def stale_variant(sc: Stale, variant: str, timeout: float, workdir: Path, lifetime: float) -> Run:
    """One run of a stale scenario with fresh servers and a fresh DNS table."""
    servers: list = []
    dns = DnsServer(lifetime=lifetime, table={DNS_NAME: sc.before})
    alt = None
    env: dict[str, str] = {}
    try:
        if sc.nameserver:
            ip, _, port = sc.nameserver.rpartition(":")
            alt = DnsServer(ip=ip, port=int(port), lifetime=lifetime, table={DNS_NAME: sc.before})
            env["DNSFO_NAMESERVER"] = sc.nameserver
        up_before = {ip: H.UpServer(ip, PORT, lifetime) for ip in sc.before}
        servers += up_before.values()
        for ip in sc.after:
            servers.append(H.UpServer(ip, PORT, lifetime))
        facts: dict[str, str] = {"getent_before": check_getent(dns, DNS_NAME, sc.before)}
        moved_at = [0.0]

        def move() -> dict[str, str]:
            # the service moves: new records, the old servers die
            if sc.after:
                (alt or dns).set(DNS_NAME, sc.after)
            else:
                (alt or dns).remove(DNS_NAME)
            silent = []
            for ip, how in sc.dies.items():
                up_before[ip].stop()
                if how == "silent":
                    s = H.SilentServer(ip, PORT, lifetime)
                    servers.append(s)
                    silent.append(s)
            out = {"blackholes_after_move": H.verify_silent(silent)}
            for ip, how in sc.dies.items():
                if how == "refused":
                    with socket.socket() as probe:
                        probe.settimeout(2)
                        err = probe.connect_ex((ip, PORT))
                    if err != 111:
                        raise H.HarnessError(f"{ip}:{PORT} should refuse now, connect_ex={err}")
            out["getent_after"] = subprocess.run(
                ["getent", "hosts", DNS_NAME], capture_output=True, text=True,
                timeout=10).stdout.strip().replace("\n", " | ")
            moved_at[0] = time.monotonic()
            return out

        cmd = [*STALE_CLIENTS[sc.client], DNS_NAME, str(PORT)]
        r = run_interactive(variant, cmd, variant, env, move, timeout,
                            log_file=workdir / f"dnsfo-{variant}.log")
        r.extra.update(facts)
        if moved_at[0]:
            after = dns.queries(DNS_NAME, since=moved_at[0])
            r.extra["dns_after_move"] = DnsServer.describe(after)
            r.extra["dns_after_move_count"] = str(len(after))
            if alt is not None:
                alt_q = alt.queries(DNS_NAME, since=moved_at[0])
                r.extra["alt_dns_after_move"] = DnsServer.describe(alt_q)
                r.extra["alt_dns_after_move_count"] = str(len(alt_q))
        r.extra["accepted"] = " ".join(f"{s.ip}={s.accepted}" for s in servers
                                       if isinstance(s, H.UpServer))
        r.extra.pop("after_ready_t", None)
        return r
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        dns.stop()
        if alt is not None:
            alt.stop()


def run_stale(name: str, variants: list[tuple[str, float]], info: dict[str, str],
              workdir: Path) -> list[Run]:
    sc = STALE[name]
    info.update(setup_dns_namespace(workdir, []))
    info["scenario"] = sc.doc
    info["dns_name"] = DNS_NAME
    lifetime = sum(t for _, t in variants) + 20
    return [stale_variant(sc, v, t, workdir, lifetime) for v, t in variants]


# --------------------------------------------------------------------------------------------
# Shared-cache scenarios (names from /etc/hosts; no DNS)
# --------------------------------------------------------------------------------------------

def private_dir(parent: Path, name: str) -> Path:
    d = parent / name
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def snapshot(*roots: Path) -> str:
    """Everything about the trees under `roots` (lstat, not following links): names, types, modes,
    owners, sizes, inodes, mtimes, link targets, file content hashes."""
    out = []
    for root in roots:
        paths = [root]
        if root.is_dir() and not root.is_symlink():
            paths += sorted(root.rglob("*"))
        for p in paths:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                out.append(f"{p} missing")
                continue
            desc = f"{p} mode={st.st_mode:o} uid={st.st_uid} ino={st.st_ino} size={st.st_size}" \
                   f" mtime={st.st_mtime_ns}"
            if p.is_symlink():
                desc += f" -> {os.readlink(p)}"
            elif p.is_file():
                with contextlib.suppress(OSError):
                    desc += f" sha={hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"
            out.append(desc)
    return "\n".join(out)


def read_text(p: Path) -> str:
    try:
        return p.read_text()
    except OSError as e:
        return f"<{e.strerror}>"


def winner_line(ip: str, ttl_s: int = 600) -> str:
    return f"{HOSTS_NAME} {PORT} {ip} {int(time.time() * 1000) + ttl_s * 1000}\n"


class CacheScenario:
    """Hosts file: HOSTS_NAME -> [silent .2, up .3] (+ extra servers); timed python client."""

    def __init__(self, workdir: Path, variant: str, timeout: float, lifetime: float):
        self.workdir, self.variant, self.timeout = workdir, variant, timeout
        self.servers: list = []
        self.runs: list[Run] = []
        self.lifetime = lifetime
        self.tmp = Path(tempfile.mkdtemp(prefix="dnsfo-stale-cache-"))
        os.chmod(self.tmp, 0o700)

    def start(self, info: dict[str, str], extra_up: tuple[str, ...] = ()) -> None:
        H.setup_namespace([("127.0.0.2", HOSTS_NAME), ("127.0.0.3", HOSTS_NAME)], self.workdir)
        silent = H.SilentServer("127.0.0.2", PORT, self.lifetime)
        self.servers.append(silent)
        self.up = H.UpServer("127.0.0.3", PORT, self.lifetime)
        self.servers.append(self.up)
        self.extra = {ip: H.UpServer(ip, PORT, self.lifetime) for ip in extra_up}
        self.servers += self.extra.values()
        info["layout"] = f"{HOSTS_NAME}: silent:127.0.0.2 up:127.0.0.3 (/etc/hosts)" + \
            "".join(f"; not in hosts, recording up server {ip}" for ip in extra_up)
        info["blackholes"] = H.verify_silent([silent])
        info["gai_inet"] = H.gai(HOSTS_NAME, PORT, socket.AF_INET)

    def client(self, label: str, cache_dir: Path | str | None, env: dict[str, str] | None = None,
               watch: tuple[Path, ...] = (), pick: str | None = None) -> Run:
        e = dict(env or {})
        if cache_dir is not None:
            e["DNSFO_CACHE_DIR"] = str(cache_dir)
        before = snapshot(*watch) if watch else ""
        r = run_once([*TIMED_CLIENT, HOSTS_NAME, str(PORT), *([pick] if pick else [])],
                     variant=self.variant, env=e,
                     timeout=self.timeout, workdir=self.workdir, label=label)
        if watch:
            after = snapshot(*watch)
            r.extra["watched_before"] = before
            r.extra["watched_after"] = after
            r.extra["watched_unchanged"] = "1" if before == after else "0"
        if cache_dir is not None:
            d = Path(cache_dir)
            r.extra["cache_dir"] = str(d)
            r.extra["cache_listing"] = snapshot(d)
            if d.is_dir():
                r.extra["cache_file"] = read_text(d / "winners")
        self.runs.append(r)
        return r

    def close(self) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def cache_fast(cs: CacheScenario, info: dict[str, str]) -> None:
    """Process one pays the silent-first failover and writes the cache; process two, same dir,
    connects at once (its lookup lists the winner first); process three, same dir, insists on
    the dead first address and still connects at once; a control process with an empty cache
    dir pays again."""
    cs.start(info)
    shared = private_dir(cs.tmp, "shared")
    cs.client("one", shared)
    cs.client("two", shared)
    cs.client("two-dead-address", shared, pick="127.0.0.2")
    cs.client("control", private_dir(cs.tmp, "empty"))


def _seed(cs: CacheScenario) -> str:
    """A trusted cache written by a real process one; returns its winners file text."""
    seed = private_dir(cs.tmp, "seed")
    r = cs.client("seed", seed)
    text = read_text(seed / "winners")
    if not (seed / "winners").is_file():
        r.extra["note"] = "process one wrote no winners file; untrusted copies use a synthetic one"
        text = winner_line("127.0.0.3")
    return text


def _cache_with(parent: Path, text: str, dir_mode: int = 0o700, file_mode: int = 0o600) -> Path:
    parent.mkdir(mode=0o700)
    f = parent / "winners"
    f.write_text(text)
    os.chmod(f, file_mode)
    os.chmod(parent, dir_mode)
    return parent


def cache_untrusted(cs: CacheScenario, info: dict[str, str]) -> None:
    """The same winners text, trusted (control: fast) and in untrusted places (each must pay the
    failover again and leave everything as it was)."""
    cs.start(info)
    text = _seed(cs)
    info["seed_text"] = text
    t = cs.tmp
    ok = _cache_with(t / "ok", text)
    cs.client("trusted", ok)
    gw = _cache_with(t / "file-gw", text, file_mode=0o620)
    cs.client("file-group-writable", gw, watch=(gw,))
    ww = _cache_with(t / "file-ww", text, file_mode=0o602)
    cs.client("file-world-writable", ww, watch=(ww,))
    dgw = _cache_with(t / "dir-gw", text, dir_mode=0o770)
    cs.client("dir-group-writable", dgw, watch=(dgw,))
    real = _cache_with(t / "real", text)
    link = t / "link"
    link.symlink_to(real)
    cs.client("dir-symlink", link, watch=(link, real))
    preal = t / "preal"
    preal.mkdir(mode=0o700)
    _cache_with(preal / "cache", text)
    plink = t / "plink"
    plink.symlink_to(preal)
    cs.client("parent-symlink", plink / "cache", watch=(plink, preal))
    fl = t / "file-link"
    fl.mkdir(mode=0o700)
    target = _cache_with(t / "target", text)
    (fl / "winners").symlink_to(target / "winners")
    cs.client("file-symlink", fl, watch=(fl, target))
    foreign = os.environ.get(FOREIGN_ENV, "")
    if foreign:
        cs.client("foreign-owner", Path(foreign), watch=(Path(foreign),))
        info["foreign_owner"] = f"{foreign} (uid {os.lstat(foreign).st_uid} in the namespace)"
    else:
        info["foreign_owner"] = "skipped: needs root outside the namespace to chown a directory"


def cache_stale_addr(cs: CacheScenario, info: dict[str, str]) -> None:
    """The cache names 127.0.0.9 (a recording up server) for the name, but /etc/hosts does not:
    the client must never contact .9 and still reach .3 (paying the failover)."""
    cs.start(info, extra_up=("127.0.0.9",))
    d = _cache_with(cs.tmp / "stale", winner_line("127.0.0.9"))
    info["cache_text"] = read_text(d / "winners")
    r = cs.client("stale", d)
    r.extra["accepted_127.0.0.9"] = str(cs.extra["127.0.0.9"].accepted)
    r.extra["accepted_127.0.0.3"] = str(cs.up.accepted)
    # the stale .9 line first, then a good .3 line: .3 is used at once, .9 still never contacted
    both = _cache_with(cs.tmp / "stale-first", winner_line("127.0.0.9") + winner_line("127.0.0.3"))
    r2 = cs.client("stale-and-good", both)
    r2.extra["cache_text_before"] = winner_line("127.0.0.9") + winner_line("127.0.0.3")
    r2.extra["accepted_127.0.0.9"] = str(cs.extra["127.0.0.9"].accepted)


def cache_off(cs: CacheScenario, info: dict[str, str]) -> None:
    """DNSFO_CACHE=0: nothing written into an empty cache dir, a valid cache not read (the client
    pays the failover) and left untouched; control: cache on writes the file."""
    cs.start(info)
    on = private_dir(cs.tmp, "on")
    cs.client("on", on)
    empty = private_dir(cs.tmp, "off-empty")
    cs.client("off-empty", empty, env={"DNSFO_CACHE": "0"}, watch=(empty,))
    valid = _cache_with(cs.tmp / "off-valid", winner_line("127.0.0.3"))
    cs.client("off-valid", valid, env={"DNSFO_CACHE": "0"}, watch=(valid,))


CACHE = {
    "cache-fast": cache_fast,
    "cache-untrusted": cache_untrusted,
    "cache-stale-addr": cache_stale_addr,
    "cache-off": cache_off,
}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("dnsstale: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def prepare_foreign() -> Path | None:
    """Outside the namespace, as real root only: a cache dir (0755, file 0644, a valid winner)
    owned by uid 65534, so inside the namespace it belongs to somebody else."""
    if os.geteuid() != 0:
        return None
    d = Path(tempfile.mkdtemp(prefix="dnsfo-stale-foreign-"))
    (d / "winners").write_text(winner_line("127.0.0.3"))
    os.chmod(d / "winners", 0o644)
    os.chmod(d, 0o755)
    try:
        os.chown(d / "winners", 65534, 65534)
        os.chown(d, 65534, 65534)
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
        return None
    return d


def outer(argv: list[str], scenario: str, budget: float) -> int:
    """Run this script inside `unshare -rmn` as a child (so we can clean up after it)."""
    if scenario in STALE and STALE[scenario].client == "c-ghbn":
        build()
    env = dict(os.environ)
    env[H.NS_MARK] = H.ns_ids()
    foreign = prepare_foreign() if scenario == "cache-untrusted" else None
    if foreign is not None:
        env[FOREIGN_ENV] = str(foreign)
    sys.stdout.flush()
    try:
        p = subprocess.Popen(["unshare", "-rmn", "--", sys.executable,
                              str(Path(__file__).resolve()), *argv], env=env,
                             start_new_session=True)
        try:
            return p.wait(timeout=budget + 15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            print("dnsstale: error: scenario did not finish in time", file=sys.stderr)
            return 2
    finally:
        if foreign is not None:
            shutil.rmtree(foreign, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="dnsstale.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", choices=[*STALE, *CACHE])
    run.add_argument("--variant", action="append", default=[],
                     help="stale-*: plain|dnsfo|disable|log[:TIMEOUT_S] (default plain, dnsfo); "
                          "cache-*: the one variant every process runs as (default dnsfo)")
    run.add_argument("--timeout", type=float, default=8.0, help="per client run, s")
    sub.add_parser("scenarios")
    sub.add_parser("build-clients")
    srv = sub.add_parser("serve", help="run the DNS server alone (loopback only)")
    srv.add_argument("--table", type=Path, required=True, help='JSON {"name": ["ip", ...]}')
    srv.add_argument("--ip", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=5353)
    srv.add_argument("--ttl", type=int, default=DNS_TTL)
    srv.add_argument("--lifetime", type=float, default=60.0)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "scenarios":
            for k, v in STALE.items():
                print(f"{k:18} {v.doc}")
            for k, f in CACHE.items():
                print(f"{k:18} {(f.__doc__ or '').split(chr(10))[0]}")
            return 0
        if args.cmd == "build-clients":
            build()
            print(f"stale clients built in {BIN}")
            return 0
        if args.cmd == "serve":
            dns = DnsServer(args.ip, args.port, args.ttl, args.lifetime, table_file=args.table)
            print(f"serving {args.table} on {args.ip}:{args.port} for {args.lifetime:.0f}s",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(args.lifetime)
            dns.stop()
            return 0
        stale = args.scenario in STALE
        default = ["plain", "dnsfo"] if stale else ["dnsfo"]
        variants = [H.parse_variant(v, args.timeout) for v in (args.variant or default)]
        if not stale and len(variants) != 1:
            ap.error("cache scenarios take one --variant")
        per_run = 12 if not stale else 1  # cache scenarios run up to ~11 processes
        budget = sum(t for _, t in variants) * per_run + 20
        if not H.in_namespace():
            return outer(argv, args.scenario, budget)
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        workdir = Path(tempfile.mkdtemp(prefix="dnsfo-stale-"))
        info = {**H.lib_facts(), "scenario_name": args.scenario}
        try:
            if stale:
                runs = run_stale(args.scenario, variants, info, workdir)
            else:
                (kind, timeout), = variants
                cs = CacheScenario(workdir, kind, timeout, budget)
                try:
                    CACHE[args.scenario](cs, info)
                finally:
                    cs.close()
                runs = cs.runs
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.alarm(0)
        H.emit(info, runs, False)
        return 0
    except H.HarnessError as e:
        print(f"dnsstale: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
