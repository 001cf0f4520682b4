"""The in-namespace DNS: a tiny authoritative server (UDP and TCP) answering A/AAAA from a
table a scenario changes at run time (or a JSON file re-read on every query), and the namespace
set-up that sends the system resolver to it (resolv.conf, nsswitch.conf bind-mounted over /etc).

Loopback addresses only; the server logs every query and stops by itself after `lifetime` s.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from harness.base import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403
from harness.scenario import gai  # noqa: F401

DNS_TTL = 1  # seconds: short, so a moved record is seen again at once

QTYPE_A, QTYPE_NS, QTYPE_SOA, QTYPE_AAAA, QTYPE_OPT, QTYPE_ANY = 1, 2, 6, 28, 41, 255
QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 28: "AAAA", 33: "SRV",
               65: "HTTPS", 255: "ANY"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP"}


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_name(data: bytes, pos: int) -> tuple[list[bytes], int]:
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
            raise HarnessError(f"DNS server: {ip} is not a loopback address")
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
                raise HarnessError(f"DNS server: {a} is not a loopback address")
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
            labels, pos = parse_name(data, 12)
            qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
            pos += 4
        except (ValueError, IndexError, struct.error):
            return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 1, 0, 0, 0, 0)
        question = data[12:pos]
        edns = False
        if an == 0 and ns == 0 and ar >= 1:  # an OPT record: answer with one too
            with contextlib.suppress(ValueError, IndexError, struct.error):
                _, p = parse_name(data, pos)
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
            soa = (encode_name(f"ns.{zone}") + encode_name(f"hostmaster.{zone}")
                   + struct.pack("!IIIII", 1, 60, 60, 600, self.ttl))
            authority.append(encode_name(zone) + struct.pack("!HHIH", QTYPE_SOA, 1, self.ttl,
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




def mount_over(src: Path, target: str) -> None:
    r = subprocess.run(["mount", "--bind", str(src), target], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        raise HarnessError(f"mount --bind {src} {target} failed: {r.stderr.strip()}")


def setup_dns_namespace(workdir: Path, hosts: list[tuple[str, str]]) -> dict[str, str]:
    """hermetic's namespace (lo up, /etc/hosts with `hosts`, /etc/gai.conf) plus our own
    /etc/resolv.conf (nameserver 127.0.0.1) and /etc/nsswitch.conf (`hosts: files dns`)."""
    setup_namespace(hosts, workdir)
    resolv = workdir / "resolv.conf"
    resolv.write_text("# dnsfo stale-DNS test\nnameserver 127.0.0.1\n"
                      "options timeout:1 attempts:1\n")
    mount_over(resolv, "/etc/resolv.conf")
    if not os.path.exists("/etc/nsswitch.conf"):
        raise HarnessError("/etc/nsswitch.conf missing: cannot make hosts lookups use DNS")
    lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    lines = [ln for ln in lines if not ln.split("#", 1)[0].strip().startswith("hosts:")]
    nss = workdir / "nsswitch.conf"
    nss.write_text("\n".join(["hosts: files dns", *lines]) + "\n")
    mount_over(nss, "/etc/nsswitch.conf")
    return {"resolv_conf": resolv.read_text(), "nsswitch_hosts": "files dns"}


def check_getent(dns: DnsServer, name: str, want: list[str]) -> str:
    """`getent hosts NAME` must give want[0] and getaddrinfo(AF_INET) exactly `want`, both through
    the test server. (Not `getent ahosts`: its AI_ADDRCONFIG finds no non-loopback address in the
    namespace and answers nothing without asking DNS.)"""
    t0 = time.monotonic()
    r = subprocess.run(["getent", "hosts", name], capture_output=True, text=True, timeout=10)
    first = r.stdout.split()[0] if r.stdout.split() else ""
    got = gai(name, DEFAULT_PORT, socket.AF_INET).split()
    seen = dns.queries(name, since=t0)
    if first != want[0] or got != want or not seen:
        raise HarnessError(f"{name}: `getent hosts` gave {r.stdout.strip()!r} (want {want[0]}), "
                           f"getaddrinfo {got} (want {want}); DNS server saw {len(seen)} "
                           f"queries: {DnsServer.describe(seen)}")
    return (f"getent hosts: {r.stdout.strip()}; getaddrinfo: {' '.join(got)}; through the test "
            f"DNS server: {DnsServer.describe(seen)}")


