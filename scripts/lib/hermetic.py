#!/usr/bin/env python3
"""Hermetic end-to-end harness for dnsfo (Python 3.11, standard library only).

Everything happens on this machine, inside a private user + mount + network namespace
(`unshare -rmn`) that the harness creates for itself:

* names: a hosts file written to a temp dir is bind-mounted over /etc/hosts (and a fixed
  /etc/gai.conf over /etc/gai.conf), so the real glibc resolver returns every address we list;
* addresses: 127.0.0.x (all of 127/8 routes to lo) and ::1; other IPv6 loopback-style
  addresses (e.g. ::2) are added to lo inside the namespace;
* servers (threads of this process, each with a hard lifetime):
    up       accepts and writes `HELLO <ip>\\n` (or a tiny HTTP reply), then closes;
    refused  nothing bound: the kernel answers SYN with RST;
    silent   a "blackhole": listen(fd, 0) with its accept queue filled by one connect that is never
             accepted, so every further SYN is dropped exactly as a dead host would (verified at
             start-up: a probe connect stays unanswered and TcpExt:ListenDrops moves);
* clients run with and without LD_PRELOAD=libdnsfo.so, each with a timeout, in their own
  process group; stdout, stderr, exit code, elapsed time and the namespace's TCP counters
  (/proc/net/snmp, /proc/net/netstat: only this test's traffic, the namespace is private) are
  recorded per run.

CLI (the Rust tests in tests/blocking.rs use it):

    python3 scripts/lib/hermetic.py run --client c-gai --addr refused:127.0.0.2 --addr up:127.0.0.3 \\
        --variant dnsfo --variant plain:3 [--variant disable:3] [--variant log] [--serial] [--json]
    python3 scripts/lib/hermetic.py run --addr silent:127.0.0.2 --addr up:127.0.0.3 -- \\
        curl -s http://{name}:{port}/        # any command; {name} {port} {bin} {repo} expand
    python3 scripts/lib/hermetic.py build-clients      # compile the C/Java clients (cached)
    python3 scripts/lib/hermetic.py clients            # list the built-in clients

Variants: `plain` (no LD_PRELOAD), `dnsfo` (LD_PRELOAD), `disable` (LD_PRELOAD + DNSFO_DISABLE=1),
`log` (LD_PRELOAD + DNSFO_LOG=debug + DNSFO_LOG_FILE=<temp file>, whose content is reported);
`KIND:SECONDS` sets that run's timeout (default --timeout). The library is $DNSFO_LIB, else
target/release/libdnsfo.so. Output: lines `<section> <key> <escaped value>` (section `harness` or a
variant name; value escaped with \\\\ \\n \\t \\r \\xNN), or JSON with --json. Exit status 0 when the
harness worked (whatever the clients did), 2 on a harness error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import struct
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT_SRC = REPO / "tests" / "e2e" / "clients"
BIN_DIR = REPO / "target" / "e2e-bin"
NS_MARK = "DNSFO_HERMETIC_NS"  # set on re-exec: "<outer net ns>|<outer mnt ns>"
DEFAULT_PORT = 7000
DEFAULT_NAME = "svc"

# TCP counters worth reporting. In a private namespace they count exactly the test's own traffic.
COUNTERS = (
    "Tcp:ActiveOpens",
    "Tcp:AttemptFails",
    "Tcp:OutRsts",
    "Tcp:RetransSegs",
    "TcpExt:ListenOverflows",
    "TcpExt:ListenDrops",
)


class HarnessError(Exception):
    """The harness itself could not set a scenario up (not a client failure)."""


def lib_path() -> Path:
    """The library under test: $DNSFO_LIB, else target/release/libdnsfo.so of this checkout."""
    env = os.environ.get("DNSFO_LIB")
    return Path(env).resolve() if env else REPO / "target" / "release" / "libdnsfo.so"


def lib_facts() -> dict[str, str]:
    """The `harness` facts every scenario reports about the library under test."""
    return {"lib": str(lib_path()), "lib_present": "1" if lib_path().exists() else "0",
            "lib_stale": "1" if lib_stale() else "0"}


def lib_stale() -> bool:
    """True when the default library is older than a Rust source of it or Cargo.toml (a hint only)."""
    lib = lib_path()
    if os.environ.get("DNSFO_LIB") or not lib.exists():
        return False
    built = lib.stat().st_mtime
    sources = [REPO / "Cargo.toml", *(REPO / "src").rglob("*.rs"), *(REPO / "crates").rglob("*.rs")]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


# --------------------------------------------------------------------------------------------
# Clients: built-in table and (cached) compilation
# --------------------------------------------------------------------------------------------

C_CLIENTS = ("c_gethostbyname", "c_getaddrinfo", "c_sockopt", "c_sndtimeo", "c_sigalrm", "c_twice",
             "c_order")

JAVA_OPTS = [
    # keep the system's getaddrinfo order (Java's default puts IPv4 first on its own)
    "-Djava.net.preferIPv6Addresses=system",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
]

# name -> (command template, what it needs built)
CLIENTS: dict[str, tuple[list[str], str | None]] = {
    "python": ([sys.executable, "{src}/client.py", "{name}", "{port}", "inet"], None),
    "python-unspec": ([sys.executable, "{src}/client.py", "{name}", "{port}", "unspec"], None),
    "perl": (["perl", "{src}/client.pl", "{name}", "{port}"], None),
    "java": (["java", *JAVA_OPTS, "-cp", "{bin}", "SocketClient", "{name}", "{port}"], "java"),
    "c-ghbn": (["{bin}/c_gethostbyname", "{name}", "{port}"], "c_gethostbyname"),
    "c-gai": (["{bin}/c_getaddrinfo", "{name}", "{port}"], "c_getaddrinfo"),
    "c-sockopt": (["{bin}/c_sockopt", "{name}", "{port}", "127.0.0.1"], "c_sockopt"),
    "c-sndtimeo": (["{bin}/c_sndtimeo", "{name}", "{port}", "300"], "c_sndtimeo"),
    "c-sigalrm": (["{bin}/c_sigalrm", "{name}", "{port}", "300"], "c_sigalrm"),
    "c-twice": (["{bin}/c_twice", "{name}", "{port}"], "c_twice"),
    "c-order": (["{bin}/c_order", "{name}", "{port}"], "c_order"),
}


def fresh(target: Path, *sources: Path) -> bool:
    """Is `target` newer than every source that exists?"""
    try:
        t = target.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(s.stat().st_mtime <= t for s in sources if s.exists())


def compile_c(out: Path, srcs: list[Path], deps: list[Path] | None = None,
              cflags: list[str] | None = None, libs: list[str] | None = None,
              shared: bool = False) -> None:
    """Compile a C program (or shared object) unless `out` is fresh; the output appears
    atomically (temporary file + rename). Callers serialise with their build lock."""
    if fresh(out, *srcs, *(deps or [])):
        return
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    cc = os.environ.get("CC") or shutil.which("cc") or "gcc"
    cmd = [cc, "-O1", "-Wall", "-Werror", "-std=gnu11", *(cflags or []),
           *(["-shared", "-fPIC"] if shared else []), "-o", str(tmp), *map(str, srcs), *(libs or [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise HarnessError(f"compiling {out.name} failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    os.replace(tmp, out)


def build_clients(which: list[str] | None = None) -> None:
    """Compile the C clients (cc) and the Java client (javac) into target/e2e-bin, if stale.

    Safe to call from parallel tests: a file lock serialises builders, outputs appear atomically.
    """
    wanted = set(which) if which is not None else {*C_CLIENTS, "java"}
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with open(BIN_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        common = CLIENT_SRC / "common.h"
        for c in C_CLIENTS:
            if c not in wanted:
                continue
            compile_c(BIN_DIR / c, [CLIENT_SRC / f"{c}.c"], deps=[common])
        if "java" in wanted:
            src, out = CLIENT_SRC / "SocketClient.java", BIN_DIR / "SocketClient.class"
            if not fresh(out, src):
                tmpdir = Path(tempfile.mkdtemp(prefix=".javac", dir=BIN_DIR))
                try:
                    cmd = ["javac", "-d", str(tmpdir), str(src)]
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
                    if r.returncode != 0:
                        raise HarnessError(f"javac {src} failed:\n{r.stdout}{r.stderr}")
                    os.replace(tmpdir / "SocketClient.class", out)
                finally:
                    shutil.rmtree(tmpdir, ignore_errors=True)


def client_command(client: str, extra: list[str] | None = None) -> tuple[list[str], str | None]:
    """Command template of a built-in client (placeholders unexpanded) and its build target."""
    if client not in CLIENTS:
        raise HarnessError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    tmpl, build = CLIENTS[client]
    return [*tmpl, *(extra or [])], build


def expand(template: list[str], name: str, port: int) -> list[str]:
    subst = {"name": name, "port": str(port), "bin": str(BIN_DIR), "repo": str(REPO),
             "src": str(CLIENT_SRC), "python": sys.executable}
    return [t.format(**subst) for t in template]


# --------------------------------------------------------------------------------------------
# Namespace
# --------------------------------------------------------------------------------------------

def ns_ids() -> str:
    return f"{os.readlink('/proc/self/ns/net')}|{os.readlink('/proc/self/ns/mnt')}"


def in_namespace() -> bool:
    """True in a process that enter_namespace() re-executed into a private net + mount namespace."""
    mark = os.environ.get(NS_MARK)
    if not mark:
        return False
    outer_net, _, outer_mnt = mark.partition("|")
    net, _, mnt = ns_ids().partition("|")
    return net != outer_net and mnt != outer_mnt


def enter_namespace(argv: list[str] | None = None) -> None:
    """Re-exec this program (sys.executable + argv, default sys.argv) under `unshare -rmn`.

    Returns only when already inside such a namespace.
    """
    if in_namespace():
        return
    if os.environ.get(NS_MARK):
        raise HarnessError("namespace marker set but the namespaces are not private; refusing")
    if not shutil.which("unshare"):
        raise HarnessError("unshare(1) not found")
    env = dict(os.environ)
    env[NS_MARK] = ns_ids()
    args = argv if argv is not None else sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "-rmn", "--", sys.executable, *args], env)


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


def setup_namespace(hosts: list[tuple[str, str]], workdir: Path) -> None:
    """Inside the private namespace: lo up, extra IPv6 addresses, /etc/hosts and /etc/gai.conf.

    hosts: (ip, name) lines in order. Never touches the real /etc: refuses outside a namespace.
    """
    if not in_namespace():
        raise HarnessError("setup_namespace() outside a private namespace; refusing to touch /etc")
    _run(["ip", "link", "set", "lo", "up"])
    for ip in sorted({ip for ip, _ in hosts if ":" in ip and ip != "::1"}):
        _run(["ip", "-6", "addr", "add", f"{ip}/128", "dev", "lo", "nodad"])
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             f"127.0.0.1 {socket.gethostname()}"]
    lines += [f"{ip} {name}" for ip, name in hosts]
    hosts_file = workdir / "hosts"
    hosts_file.write_text("\n".join(lines) + "\n")
    _run(["mount", "--bind", str(hosts_file), "/etc/hosts"])
    # glibc's RFC 3484 defaults, written out so the host's gai.conf cannot reorder our names.
    gai = workdir / "gai.conf"
    gai.write_text("# dnsfo hermetic test: glibc defaults (RFC 3484)\n")
    if os.path.exists("/etc/gai.conf"):
        _run(["mount", "--bind", str(gai), "/etc/gai.conf"])


def read_counters() -> dict[str, int]:
    """TCP counters of the current network namespace (/proc/net/snmp and /proc/net/netstat)."""
    out: dict[str, int] = {}
    for f in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = Path(f).read_text().splitlines()
        for head, vals in zip(lines[0::2], lines[1::2]):
            keys, nums = head.split(), vals.split()
            for k, v in zip(keys[1:], nums[1:]):
                with contextlib.suppress(ValueError):
                    out[keys[0] + k] = int(v)
    return out


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

def family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class UpServer:
    """Listener on ip:port; every accepted connection gets `HELLO <ip>\\n` (or an HTTP reply).

    Stops by itself after `lifetime` seconds, or at most `max_conns` connections.
    """

    def __init__(self, ip: str, port: int, lifetime: float = 60.0, http: bool = False,
                 max_conns: int = 500):
        self.ip, self.port, self.http, self.max_conns = ip, port, http, max_conns
        self.banner = self._banner(ip)
        self.deadline = time.monotonic() + lifetime
        self.accepted = 0
        self._stop = threading.Event()
        self.sock = socket.socket(family(ip), socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"up-{ip}")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline \
                and self.accepted < self.max_conns:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            self.accepted += 1
            self._handle(conn)
        with contextlib.suppress(OSError):
            self.sock.close()

    # Subclasses speak other protocols by overriding these two.
    @staticmethod
    def _banner(ip: str) -> bytes:
        return f"HELLO {ip}\n".encode()

    def _handle(self, conn: socket.socket) -> None:
        if self.http:
            threading.Thread(target=self._http, args=(conn,), daemon=True).start()
        else:
            with contextlib.suppress(OSError):
                conn.sendall(self.banner)
            conn.close()

    def _http(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with contextlib.suppress(OSError), conn:
            data = b""
            for _ in range(64):  # bounded: read the request head
                chunk = conn.recv(4096)
                data += chunk
                if not chunk or b"\r\n\r\n" in data or len(data) > 65536:
                    break
            body = self.banner
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(16):  # drain until the client closes, so close() sends no RST
                if not conn.recv(4096):
                    break

    def stop(self) -> None:
        self._stop.set()
        # Wakes a pending accept at once (Linux fails it with EINVAL) instead of letting it
        # run out its 0.1 s: a scenario with 30 servers spent 1.4 s stopping them one by one.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=2)


class SilentServer:
    """A blackhole on ip:port: listen(fd, 0) plus a connect that is never accepted.

    With backlog 0 the accept queue holds one connection; once it is full the kernel drops every
    further SYN (TcpExt:ListenOverflows/ListenDrops count them), just like a dead host. Filler
    connects go one by one until the listener's own TCP_INFO says its queue is full
    (`tcpi_unacked`, the queue's length, above `tcpi_sacked`, its backlog: what the kernel's
    SYN-drop test compares); 1 in practice. No connect is left to be dropped, so no retransmitted
    SYN of ours pollutes the counters, and nothing waits for a drop. The listener closes itself
    after `lifetime` seconds.
    """

    def __init__(self, ip: str, port: int, lifetime: float = 60.0):
        self.ip, self.port = ip, port
        fam = family(ip)
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(0)
        self.fillers: list[socket.socket] = []
        # One filler at a time, each waited for, so no handshake is half-done when the queue
        # fills: the first completes and sits in the accept queue; the next one's SYN is dropped.
        for _ in range(3):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((ip, port))
            # Loopback answers at once; the bound only matters on a machine under heavy load.
            _, ready, _ = select.select([], [s], [], 5.0)
            if not ready or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                s.close()
                self.close()
                raise HarnessError(f"blackhole {ip}:{port}: a filler connect did not complete")
            self.fillers.append(s)  # established, never accepted
            if self._queue_full(deadline=time.monotonic() + 1.0):
                break
        else:
            self.close()
            raise HarnessError(f"blackhole {ip}:{port}: 3 connects completed, queue never full")
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()

    def _queue_full(self, deadline: float) -> bool:
        """The listener's accept queue is over its backlog (the child of a completed handshake
        may reach the queue a moment after the client saw it complete: looked at until
        `deadline`)."""
        while True:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            queued, backlog = struct.unpack_from("II", info, 24)  # tcpi_unacked, tcpi_sacked
            if queued > backlog:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def close(self) -> None:
        for s in [*self.fillers, self.sock]:
            with contextlib.suppress(OSError):
                s.close()

    def stop(self) -> None:
        self._timer.cancel()
        self.close()


def verify_silent(servers: list[SilentServer], wait: float = 0.15) -> str:
    """Probe every blackhole at once: a plain non-blocking connect must stay unanswered for `wait`
    seconds and the namespace's ListenDrops must grow by at least one per server. Raises if not.
    The counter is the proof (the kernel drops a loopback SYN within the probe's own connect
    call); the wait only adds that no answer came later."""
    if not servers:
        return ""
    before = read_counters()
    probes = []
    for srv in servers:
        s = socket.socket(family(srv.ip), socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((srv.ip, srv.port))
        probes.append(s)
    _, ready, _ = select.select([], probes, [], wait)
    after = read_counters()
    for s in probes:  # closed before the first SYN retransmission (1 s), so nothing lingers
        s.close()
    drops = after["TcpExt:ListenDrops"] - before["TcpExt:ListenDrops"]
    if ready or drops < len(servers):
        raise HarnessError(f"blackhole verification failed: {len(ready)} probe(s) answered, "
                           f"ListenDrops +{drops} for {len(servers)} server(s)")
    return f"{len(servers)} blackhole(s) verified: probes unanswered for {wait}s, ListenDrops +{drops}"


# --------------------------------------------------------------------------------------------
# Running clients
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    variant: str
    cmd: list[str]
    preload: bool
    env: dict[str, str]
    timeout: float
    exit: int | None = None  # None when killed on timeout
    signal: int | None = None
    timed_out: bool = False
    elapsed_ms: int = 0
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "cmd": " ".join(self.cmd),
            "preload": "1" if self.preload else "0",
            "env": " ".join(f"{k}={v}" for k, v in sorted(self.env.items())),
            "timeout_ms": str(int(self.timeout * 1000)),
            "exit": "" if self.exit is None else str(self.exit),
            "signal": "" if self.signal is None else str(self.signal),
            "timed_out": "1" if self.timed_out else "0",
            "elapsed_ms": str(self.elapsed_ms),
            "stdout": self.stdout,
            "stderr": self.stderr,
            "log": self.log,
            "counters": " ".join(f"{k.split(':')[1]}={v}" for k, v in self.counters.items()),
            "skipped": self.skipped,
        }


_live_pgids: set[int] = set()
_live_lock = threading.Lock()


def track_client(pgid: int) -> None:
    """A client started in its own process group outside run_client: killed with the others
    when a watchdog fires."""
    with _live_lock:
        _live_pgids.add(pgid)


def untrack_client(pgid: int) -> None:
    with _live_lock:
        _live_pgids.discard(pgid)


def kill_all_clients() -> None:
    with _live_lock:
        for pg in list(_live_pgids):
            with contextlib.suppress(OSError):
                os.killpg(pg, signal.SIGKILL)


_cache_dir: str | None = None


def cache_dir() -> str:
    """A private DNSFO_CACHE_DIR for this harness process: runs never share winners with other
    tests or with the user's real cache (a test that wants sharing sets its own)."""
    global _cache_dir
    if _cache_dir is None:
        import atexit
        import shutil
        _cache_dir = tempfile.mkdtemp(prefix="dnsfo-cache-")
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def clean_env() -> dict[str, str]:
    """The caller's environment without LD_PRELOAD, DNSFO_* and the harness's own marker, with a
    private winner cache."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("DNSFO_")}
    env["DNSFO_CACHE_DIR"] = cache_dir()
    return env


def run_client(cmd: list[str], *, preload: bool, env: dict[str, str] | None = None,
               timeout: float = 10.0, variant: str = "run", log_file: Path | None = None) -> Result:
    """Run cmd (own process group) with or without LD_PRELOAD of the library; kill on timeout."""
    extra = dict(env or {})
    res = Result(variant=variant, cmd=cmd, preload=preload, env=extra, timeout=timeout)
    full = clean_env()
    if preload:
        lib = lib_path()
        if not lib.exists():
            res.skipped = f"library not found: {lib}"
            return res
        full["LD_PRELOAD"] = str(lib)
    full.update(extra)
    if log_file is not None:
        full["DNSFO_LOG_FILE"] = str(log_file)
    before = read_counters() if in_namespace() else {}
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full, start_new_session=True)
    with _live_lock:
        _live_pgids.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        res.timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
    finally:
        with _live_lock:
            _live_pgids.discard(p.pid)
        with contextlib.suppress(OSError):  # leftovers of the client's process group
            os.killpg(p.pid, signal.SIGKILL)
    res.elapsed_ms = int((time.monotonic() - t0) * 1000)
    if p.returncode is not None and p.returncode < 0:
        res.signal = -p.returncode
    if not res.timed_out and p.returncode is not None and p.returncode >= 0:
        res.exit = p.returncode
    res.stdout = out.decode(errors="backslashreplace")
    res.stderr = err.decode(errors="backslashreplace")
    if before:
        res.counters = counter_delta(before, read_counters())
    if log_file is not None:
        with contextlib.suppress(OSError):
            res.log = log_file.read_text(errors="backslashreplace")
    return res


VARIANTS = {
    # kind: (preload, extra env, log file)
    "plain": (False, {}, False),
    "dnsfo": (True, {}, False),
    "disable": (True, {"DNSFO_DISABLE": "1"}, False),
    "log": (True, {"DNSFO_LOG": "debug"}, True),
}


def parse_variant(spec: str, default_timeout: float) -> tuple[str, float]:
    kind, _, t = spec.partition(":")
    if kind not in VARIANTS:
        raise HarnessError(f"unknown variant {kind!r}; known: {', '.join(VARIANTS)}")
    return kind, float(t) if t else default_timeout


# --------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Scenario:
    """A name with an ordered list of (kind, ip) addresses, kind in up/refused/silent."""
    addrs: list[tuple[str, str]]
    name: str = DEFAULT_NAME
    port: int = DEFAULT_PORT
    http: bool = False
    lifetime: float = 60.0

    def __post_init__(self):
        self.servers: list = []
        self.info: dict[str, str] = {}
        self.workdir: Path | None = None

    def __enter__(self) -> "Scenario":
        for kind, ip in self.addrs:
            if kind not in ("up", "refused", "silent"):
                raise HarnessError(f"unknown address kind {kind!r} (up, refused, silent)")
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise HarnessError(f"{ip!r} is not an IP address") from None
            # 127/8, ::1, or an IPv6 address that setup_namespace() adds to lo of this namespace
            if not (addr.is_loopback or (addr.version == 6 and addr.ipv4_mapped is None
                                         and not addr.is_multicast and not addr.is_unspecified)):
                raise HarnessError(f"{ip}: only loopback addresses (127/8, ::1) or IPv6 "
                                   "addresses added to lo inside the namespace are allowed")
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-hermetic-"))
        setup_namespace([(ip, self.name) for _, ip in self.addrs], self.workdir)
        silent = []
        for kind, ip in self.addrs:
            if kind == "up":
                self.servers.append(UpServer(ip, self.port, self.lifetime, http=self.http))
            elif kind == "silent":
                srv = SilentServer(ip, self.port, self.lifetime)
                self.servers.append(srv)
                silent.append(srv)
        self.info["blackholes"] = verify_silent(silent)
        self.info["layout"] = " ".join(f"{k}:{ip}" for k, ip in self.addrs)
        self.info["getent"] = _getent(self.name)
        # the order first-address clients see: getaddrinfo(AF_UNSPEC) and (AF_INET)
        self.info["gai"] = gai(self.name, self.port, socket.AF_UNSPEC)
        self.info["gai_inet"] = gai(self.name, self.port, socket.AF_INET)
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run_variants(self, cmd_template: list[str], variants: list[tuple[str, float]],
                     env: dict[str, str] | None = None, serial: bool = False) -> list[Result]:
        """Run the client once per variant; in parallel unless serial (counters need serial)."""
        cmd = expand(cmd_template, self.name, self.port)
        results: list[Result | None] = [None] * len(variants)

        def one(i: int, kind: str, timeout: float) -> None:
            preload, extra, want_log = VARIANTS[kind]
            log = (self.workdir / f"dnsfo-{i}-{kind}.log") if want_log else None
            results[i] = run_client(cmd, preload=preload, env={**(env or {}), **extra},
                                    timeout=timeout, variant=kind, log_file=log)

        if serial:
            for i, (kind, t) in enumerate(variants):
                one(i, kind, t)
        else:
            threads = [threading.Thread(target=one, args=(i, k, t)) for i, (k, t) in
                       enumerate(variants)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return [r for r in results if r is not None]


def gai(name: str, port: int, family: int) -> str:
    try:
        return " ".join(a[4][0] for a in socket.getaddrinfo(name, port, family, socket.SOCK_STREAM))
    except OSError as e:
        return f"error: {e}"


def _getent(name: str) -> str:
    r = subprocess.run(["getent", "ahosts", name], capture_output=True, text=True, timeout=10)
    return r.stdout


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def escape(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def emit(info: dict[str, str], results: list[Result], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"harness": info, "variants": {r.variant: r.fields() for r in results}},
                         indent=2))
        return
    for k, v in info.items():
        print(f"harness {k} {escape(v)}")
    for r in results:
        for k, v in r.fields().items():
            print(f"{r.variant} {k} {escape(v)}")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def parse_addr(spec: str) -> tuple[str, str]:
    kind, sep, ip = spec.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected KIND:IP (up/refused/silent)")
    return kind, ip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="hermetic.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a client in a scenario, with/without the library")
    run.add_argument("--name", default=DEFAULT_NAME)
    run.add_argument("--port", type=int, default=DEFAULT_PORT)
    run.add_argument("--addr", action="append", type=parse_addr, required=True,
                     help="KIND:IP in resolver order; KIND is up, refused or silent")
    run.add_argument("--client", help=f"built-in client: {', '.join(CLIENTS)}")
    run.add_argument("--variant", action="append", default=[],
                     help="plain|dnsfo|disable|log[:TIMEOUT_S] (default: dnsfo and plain)")
    run.add_argument("--timeout", type=float, default=10.0, help="default client timeout, s")
    run.add_argument("--env", action="append", default=[], help="K=V for every run")
    run.add_argument("--serial", action="store_true", help="run variants one after another")
    run.add_argument("--http", action="store_true", help="up servers speak HTTP/1.0")
    run.add_argument("--json", action="store_true")
    run.add_argument("command", nargs="*", help="client command (after --), or extra "
                     "arguments for --client; {name} {port} {bin} {repo} {src} {python} expand")
    sub.add_parser("build-clients", help="compile the C and Java clients into target/e2e-bin")
    sub.add_parser("clients", help="list the built-in clients")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "build-clients":
            build_clients()
            print(f"clients built in {BIN_DIR}")
            return 0
        if args.cmd == "clients":
            for k, (tmpl, _) in CLIENTS.items():
                print(f"{k:14} {' '.join(tmpl)}")
            return 0
        if args.client:
            template, build = client_command(args.client, args.command)
        elif args.command:
            template, build = list(args.command), None
        else:
            ap.error("give --client or a command after --")
        variants = [parse_variant(v, args.timeout) for v in (args.variant or ["dnsfo", "plain"])]
        env = dict(kv.split("=", 1) for kv in args.env)
        if not in_namespace():
            if build:
                build_clients([build])
            enter_namespace([str(Path(__file__).resolve()), *argv])
        # inside the namespace from here on: a watchdog bounds the whole run
        budget = (sum if args.serial else max)(t for _, t in variants) + 30
        signal.signal(signal.SIGALRM, watchdog)
        signal.alarm(int(budget))
        with Scenario(addrs=args.addr, name=args.name, port=args.port, http=args.http,
                      lifetime=budget) as sc:
            info = {**lib_facts(), **sc.info}
            results = sc.run_variants(template, variants, env=env, serial=args.serial)
        signal.alarm(0)
        emit(info, results, args.json)
        return 0
    except HarnessError as e:
        print(f"hermetic: error: {e}", file=sys.stderr)
        return 2


def watchdog(signum, frame) -> None:
    kill_all_clients()
    print("hermetic: error: watchdog expired, aborting", file=sys.stderr)
    sys.stderr.flush()
    os._exit(2)


if __name__ == "__main__":
    sys.exit(main())
