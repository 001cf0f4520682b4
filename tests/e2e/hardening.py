#!/usr/bin/env python3
"""Hardening end-to-end cases for dnsfo (issue 5), standard library only.

Built on scripts/lib/hermetic.py (private user + mount + network namespace, /etc/hosts, up /
refused / silent servers, running a client with and without LD_PRELOAD). This file adds what the
hardening cases need: the hard_* C clients (tests/e2e/clients/hard_*.c, compiled into
target/e2e-bin, cached, flock'ed), several names per scenario, a fast accept-and-close server,
flapping servers, and one function per case that runs real programs and checks the outcome.
The io_uring and Go cases (what dnsfo cannot see) also need liburing-dev (hard_uring.c, -luring)
and golang-go (hard_go.go, built static and cgo into target/e2e-bin, GOCACHE under target/).

    python3 tests/e2e/hardening.py CASE        # CASE: see `python3 tests/e2e/hardening.py list`

Output, one per line: `check <id> ok|FAIL <escaped detail>` and `info <key> <escaped value>`
(hermetic's escaping). Exit 0 when the case ran (whatever the checks say), 2 on a harness error.
tests/hardening.rs runs every case and fails on any FAIL line or a missing check.
"""

from __future__ import annotations

import contextlib
import errno as E
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
sys.dont_write_bytecode = True
import hermetic as H  # noqa: E402

REPO = H.REPO
SRC = HERE / "clients"
BIN = H.BIN_DIR
PORT = 7000

# --------------------------------------------------------------------------------------------
# Building the hard_* clients
# --------------------------------------------------------------------------------------------

HARD_C = ("hard_reentry", "hard_threads", "hard_fork", "hard_limits", "hard_gai", "hard_reconnect",
          "hard_tfo", "hard_quiet", "hard_flap", "hard_oom")


def _cc(out: Path, srcs: list[Path], extra: list[str], shared: bool = False) -> None:
    H.compile_c(out, srcs, deps=[SRC / "hard_common.h", SRC / "common.h"],
                cflags=["-g", "-pthread"], libs=extra, shared=shared)


def build(which: list[str]) -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    with open(BIN / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for c in which:
            if c == "hard_reentry":
                lib = BIN / "libhard_ctorlib.so"
                _cc(lib, [SRC / "hard_ctorlib.c"], [], shared=True)
                _cc(BIN / c, [SRC / f"{c}.c"], [f"-L{BIN}", "-Wl,--no-as-needed", "-lhard_ctorlib", f"-Wl,-rpath,{BIN}"])
            elif c == "hard_secure":
                # linked against the library itself (DT_NEEDED by absolute path): LD_PRELOAD is
                # ignored for setuid programs, a DT_NEEDED entry is not.
                _cc(BIN / c, [SRC / "hard_secure.c"], [str(H.lib_path())])
            elif c == "hard_uring":
                _cc(BIN / c, [SRC / "hard_uring.c"], ["-luring"])
            else:
                _cc(BIN / c, [SRC / f"{c}.c"], [])


LIBURING_H = Path("/usr/include/liburing.h")
GO_DIR = REPO / "target" / "e2e-go"  # GOCACHE and GOPATH: nothing written to $HOME


def go_tool() -> str | None:
    return shutil.which("go") or next((g for g in ("/usr/lib/go/bin/go", "/usr/lib/go-1.19/bin/go")
                                       if os.access(g, os.X_OK)), None)


def build_go(go: str) -> dict[str, Path]:
    """tests/e2e/clients/hard_go.go built twice (cached by mtime, flock'ed): "static"
    (CGO_ENABLED=0, pure Go resolver) and "cgo" (CGO_ENABLED=1 -tags netcgo: dynamic, libc's
    getaddrinfo). Offline (GOPROXY=off); GOCACHE/GOPATH under target/."""
    src = SRC / "hard_go.go"
    outs = {"static": BIN / "hard_go_static", "cgo": BIN / "hard_go_cgo"}
    BIN.mkdir(parents=True, exist_ok=True)
    with open(BIN / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for kind, out in outs.items():
            if H.fresh(out, src):
                continue
            env = {k: v for k, v in os.environ.items() if not k.startswith("GO") and k != "LD_PRELOAD"}
            env.update(GOCACHE=str(GO_DIR / "cache"), GOPATH=str(GO_DIR / "path"), GOENV="off",
                       GOPROXY="off", GOFLAGS="", GO111MODULE="on",
                       CGO_ENABLED="1" if kind == "cgo" else "0")
            tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
            tags = "netcgo" if kind == "cgo" else "netgo"
            cmd = [go, "build", "-trimpath", "-tags", tags, "-o", str(tmp), str(src)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=BIN)
            if r.returncode != 0:
                raise H.HarnessError(f"building {out.name} failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
            os.replace(tmp, out)
    return outs


def elf_interp(path: Path) -> str | None:
    """The ELF program interpreter (PT_INTERP) of a 64-bit little-endian executable: None for a
    static one (which ignores LD_PRELOAD)."""
    import struct
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise H.HarnessError(f"{path}: not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", data, off)
        if p_type == 3:  # PT_INTERP
            o, = struct.unpack_from("<Q", data, off + 8)
            sz, = struct.unpack_from("<Q", data, off + 32)
            return data[o:o + sz].rstrip(b"\0").decode()
    return None


def b(name: str) -> str:
    return str(BIN / name)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

_checks: list[tuple[str, bool, str]] = []


def check(cid: str, ok: bool, detail: str = "") -> bool:
    _checks.append((cid, bool(ok), detail))
    print(f"check {cid} {'ok' if ok else 'FAIL'} {H.escape(detail) if not ok else ''}", flush=True)
    return bool(ok)


def info(key: str, value: str) -> None:
    print(f"info {key} {H.escape(str(value))}", flush=True)


def show(r: H.Result) -> str:
    sig = f" signal={r.signal}" if r.signal else ""
    return (f"[{r.variant}] exit={r.exit}{sig} timed_out={int(r.timed_out)} {r.elapsed_ms} ms\n"
            f"stdout: {r.stdout[-3000:]!r}\nstderr: {r.stderr[-3000:]!r}")


# --------------------------------------------------------------------------------------------
# Servers beyond hermetic's
# --------------------------------------------------------------------------------------------

class AcceptServer(H.UpServer):
    """Accepts and closes as fast as it can (no banner, no limit but its lifetime): for the
    thousands of connects of the thread tests. Backlog 4096 (the namespace's somaxconn)."""

    def __init__(self, ip: str, port: int, lifetime: float = 60.0):
        super().__init__(ip, port, lifetime, max_conns=sys.maxsize, backlog=4096)

    def _handle(self, conn: socket.socket) -> None:
        conn.close()


class FlapServer:
    """Up for `period` s (accepting, banner, close), then down (listener closed: refused) for
    `period` s, and so on, starting after `offset` s; stops by itself after `lifetime` s."""

    def __init__(self, ip: str, port: int, period: float = 0.05, offset: float = 0.0,
                 lifetime: float = 10.0):
        self.ip, self.port, self.period, self.offset = ip, port, period, offset
        self.deadline = time.monotonic() + lifetime
        self.cycles = 0
        self.accepted = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        time.sleep(self.offset)
        banner = f"HELLO {self.ip}\n".encode()
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            s = socket.socket(H.family(self.ip), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.ip, self.port))
                s.listen(64)
            except OSError:
                s.close()
                time.sleep(self.period)
                continue
            s.settimeout(0.01)
            up_until = time.monotonic() + self.period
            while time.monotonic() < up_until:
                try:
                    c, _ = s.accept()
                except (TimeoutError, socket.timeout):
                    continue
                except OSError:
                    break
                self.accepted += 1
                with contextlib.suppress(OSError):
                    c.sendall(banner)
                c.close()
            s.close()
            self.cycles += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)


class World:
    """Names (several per scenario) and their servers inside the private namespace."""

    def __init__(self, names: dict[str, list[str]], port: int = PORT, lifetime: float = 90.0,
                 http: bool = False, silent_ports: list[int] | None = None,
                 up_factory=None, extra_hosts: list[tuple[str, str]] | None = None):
        self.names, self.port, self.lifetime, self.http = names, port, lifetime, http
        self.silent_ports = silent_ports or [port]
        self.up_factory = up_factory
        self.extra_hosts = extra_hosts or []
        self.servers: list = []
        self.workdir: Path | None = None

    def __enter__(self) -> "World":
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-hard-"))
        cache = self.workdir / "cache"
        cache.mkdir()
        _CACHE.append(cache)
        hosts = []
        for name, addrs in self.names.items():
            for spec in addrs:
                kind, _, ip = spec.partition(":")
                hosts.append((ip, name))
        H.setup_namespace(hosts + self.extra_hosts, self.workdir)
        seen = set()
        silent = []
        for addrs in self.names.values():
            for spec in addrs:
                kind, _, ip = spec.partition(":")
                if (kind, ip) in seen:
                    continue
                seen.add((kind, ip))
                if kind == "up":
                    if self.up_factory:
                        self.servers.append(self.up_factory(ip, self.port))
                    else:
                        self.servers.append(H.UpServer(ip, self.port, self.lifetime, http=self.http,
                                                       max_conns=100000))
                elif kind == "silent":
                    for p in self.silent_ports:
                        srv = H.SilentServer(ip, p, self.lifetime)
                        self.servers.append(srv)
                        silent.append(srv)
                elif kind not in ("refused", "none"):
                    raise H.HarnessError(f"unknown kind {kind}")
        info("blackholes", H.verify_silent(silent))
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_CACHE: list[Path] = []  # the current World's private winner-cache directory


def run(cmd: list[str], preload: bool = True, env: dict[str, str] | None = None,
        timeout: float = 10.0, variant: str | None = None) -> H.Result:
    """One client run. dnsfo's shared winner cache (DNSFO_CACHE_DIR, default under $HOME) is
    pointed into the scenario's temp dir, so no run ever sees winners of another test."""
    full = dict(env or {})
    if _CACHE and "DNSFO_CACHE_DIR" not in full:
        full["DNSFO_CACHE_DIR"] = str(_CACHE[-1])
    return H.run_client(cmd, preload=preload, env=full, timeout=timeout,
                        variant=variant or ("dnsfo" if preload else "plain"))


def both(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 10.0,
         plain_cmd: list[str] | None = None):
    """The same command with and without the library (`plain_cmd` without, when given), in
    parallel."""
    out: dict[bool, H.Result] = {}

    def one(p: bool) -> None:
        out[p] = run(cmd if p or plain_cmd is None else plain_cmd, preload=p, env=env,
                     timeout=timeout)

    ts = [threading.Thread(target=one, args=(p,)) for p in (True, False)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out[True], out[False]


def fields(line: str) -> dict[str, str]:
    return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)


def line_of(r: H.Result, tag: str) -> str:
    for l in r.stdout.splitlines():
        if l.startswith(tag + " ") or l == tag:
            return l
    return ""


def healthy(r: H.Result) -> bool:
    return r.exit is not None and not r.timed_out and r.signal is None


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

REFUSED_FIRST = ["refused:127.0.0.2", "up:127.0.0.3"]
SILENT_FIRST = ["silent:127.0.0.2", "up:127.0.0.3"]


def case_reentry() -> None:
    """Items 1-2: malloc calling the socket API and getaddrinfo; hooks from a library
    constructor, the program's constructor, atexit, a pthread key destructor and a
    thread_local (__cxa_thread_atexit_impl) destructor. timeout 5, exit 0, every stage fails over."""
    build(["hard_reentry"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        env = {"HARD_NAME": "svc", "HARD_PORT": str(PORT)}
        d, p = both([b("hard_reentry"), "svc", str(PORT)], env=env, timeout=5)
        stages = ["LIBCTOR", "EXECTOR", "MAIN", "THREAD", "KEYDTOR", "TLSDTOR", "THREAD2", "ATEXIT"]
        check("reentry.exit0", d.exit == 0, show(d))
        for st in stages:
            l = line_of(d, st)
            check(f"reentry.{st.lower()}.failover", l == f"{st} OK HELLO 127.0.0.3", f"{l!r}\n{show(d)}")
        check("reentry.malloc_hook_ran", "MALLOCHOOK calls=" in d.stdout and "calls=0" not in d.stdout,
              show(d))
        check("reentry.plain_refused", line_of(p, "MAIN").startswith("MAIN ECONNREFUSED"), show(p))
        check("reentry.stderr_quiet", d.stderr == "", show(d))


def case_threads_hammer() -> None:
    """Item 4a: 16 threads x 500 connects to the dead first address of a refused-first name."""
    build(["hard_threads"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}, up_factory=lambda ip, port: AcceptServer(ip, port)):
        d = run([b("hard_threads"), "hammer", "svc", str(PORT), "16", "500", "127.0.0.3"], timeout=60)
        l = line_of(d, "RESULT")
        f = fields(l)
        check("threads.hammer.exit0", d.exit == 0, show(d))
        check("threads.hammer.all_ok", f.get("ok") == "8000" and f.get("fail") == "0"
              and f.get("wrongpeer") == "0", show(d))
        info("hammer", l)


def case_threads_race() -> None:
    """Item 4b: 8 threads racing a 5-address name (refused, silent, refused, refused, up), a fresh
    port per round (nothing remembered), half blocking, half non-blocking."""
    build(["hard_threads"])
    H.enter_namespace()
    rounds = 6
    ports = [PORT + i for i in range(rounds)]
    names = {"race5": ["refused:127.0.0.2", "silent:127.0.0.4", "refused:127.0.0.5",
                       "refused:127.0.0.6", "up:127.0.0.7"]}

    class Multi:
        def __init__(self, ip, _port):
            self.s = [AcceptServer(ip, p) for p in ports]

        def stop(self):
            for s in self.s:
                s.stop()

    with World(names, silent_ports=ports, up_factory=Multi):
        d = run([b("hard_threads"), "race", "race5", str(PORT), "8", str(rounds), "127.0.0.7"],
                timeout=40)
        l = line_of(d, "RESULT")
        f = fields(l)
        check("threads.race.exit0", d.exit == 0, show(d))
        check("threads.race.all_ok", f.get("ok") == str(8 * rounds) and f.get("wrongpeer") == "0",
              show(d))
        check("threads.race.quick", int(f.get("maxms", "99999")) < 3000, show(d))
        info("race", l)


def case_fork_busy() -> None:
    """Item 5a: fork() with 4 busy threads (resolve/setsockopt/connect/close loops); 40 children
    each resolve and fail over within 5 s; then the same with daemon-style children that close
    every inherited fd first."""
    build(["hard_fork"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}, up_factory=lambda ip, port: H.UpServer(ip, port, 90, max_conns=10**6)):
        for mode in ("keep", "closeall"):
            d = run([b("hard_fork"), "fork", "svc", str(PORT), "40", "4", mode], timeout=60)
            l = line_of(d, "FORK")
            f = fields(l)
            check(f"fork.{mode}.all_children_ok", d.exit == 0 and f.get("ok") == "40", show(d))
            check(f"fork.{mode}.each_within_5s", int(f.get("maxms", "99999")) < 5000, show(d))
            info(f"fork.{mode}", l)


def case_spawn() -> None:
    """Item 5b: posix_spawn and system() children of a busy threaded program, a Python
    subprocess child, and bash -> python -> exec curl: each keeps failover."""
    build(["hard_fork"])
    H.enter_namespace()
    py = sys.executable
    with World({"svc": SILENT_FIRST}, http=True):
        url = f"http://svc:{PORT}/"
        curl = ["curl", "-sS", "--max-time", "8", url]
        d = run([b("hard_fork"), "spawn", "svc", str(PORT), "2", *curl], timeout=40)
        check("spawn.posix_spawn_and_system", d.exit == 0 and "SPAWN posix=0 system=0" in d.stdout
              and d.stdout.count("HELLO 127.0.0.3") == 2, show(d))
        code = ("import subprocess,sys; r=subprocess.run(sys.argv[1:], capture_output=True, "
                "text=True, timeout=9); print(r.returncode, r.stdout.strip())")
        d = run([py, "-c", code, *curl], timeout=20)
        check("spawn.python_subprocess", d.stdout.strip() == "0 HELLO 127.0.0.3", show(d))
        chain = f"exec {py} -c 'import os,sys; os.execvp(\"curl\", sys.argv[1:])' {' '.join(curl)}"
        d = run(["bash", "-c", chain], timeout=20)
        check("spawn.bash_python_exec_curl", d.exit == 0 and d.stdout.strip() == "HELLO 127.0.0.3",
              show(d))
        p = run(["bash", "-c", chain], preload=False, timeout=4)
        check("spawn.plain_chain_hangs", p.timed_out or p.exit != 0, show(p))


def _fdnums(line: str) -> list[str]:
    return [w.split(":", 1)[0] for w in line.split()[1:]]


def case_fd_leak() -> None:
    """Item 5c: no dnsfo fd reaches a child: an exec'd child (during a background race and
    after it) and a fork()ed child see the same fd numbers as without the library."""
    build(["hard_fork"])
    H.enter_namespace()
    with World({"svc": SILENT_FIRST}):
        cmd = [b("hard_fork"), "fds", "svc", str(PORT), b("hard_fork")]
        d, p = both(cmd, timeout=10)
        for tag in ("DURING", "AFTER", "FORKED"):
            dl, pl = line_of(d, tag), line_of(p, tag)
            check(f"fds.{tag.lower()}.same_numbers", dl != "" and _fdnums(dl) == _fdnums(pl),
                  f"dnsfo: {dl}\nplain: {pl}\n{show(d)}")


def case_fork_stale_fds() -> None:
    """Item 5d: a forked child that closed every inherited fd (daemon style) and reopened files
    under the same numbers must not lose them when it starts its own background connect."""
    build(["hard_fork"])
    H.enter_namespace()
    with World({"svc": SILENT_FIRST, "svc2": ["silent:127.0.0.4", "up:127.0.0.5"]}):
        d = run([b("hard_fork"), "stale", "svc", "svc2", str(PORT)], timeout=15)
        l = line_of(d, "STALE")
        check("fork.child_fds_survive_reactor_restart", d.exit == 0 and "lost=0" in l, show(d))
        check("fork.child_connect_ok", "child_connect=OK HELLO 127.0.0.5" in l, show(d))
        info("stale", d.stdout)



def _limit_names(n: int) -> dict[str, list[str]]:
    return {f"h{i:02d}": [("refused" if i % 2 else "silent") + f":127.0.1.{i}", f"up:127.0.2.{i}"]
            for i in range(1, n + 1)}


def _new_fds(r: H.Result) -> list[str]:
    before = line_of(r, "BEFORE").split()[2:]
    after = line_of(r, "AFTER").split()[2:]
    return [w for w in after if w not in before]


def case_limits() -> None:
    """Item 6: under `ulimit -n 64`, 30 names x failover (blocking and non-blocking) one after
    the other, then 12 simultaneous non-blocking failovers with only a few fds to spare: no fd
    leaked (only the reactor's epoll + eventfd may stay), no live address remembered as dead."""
    build(["hard_limits"])
    H.enter_namespace()
    with World(_limit_names(30)) as w:
        # A short attempt delay: this loop is about fds under a tight limit, not about timing
        # (15 silent-first names at the default 250 ms spent 4 s waiting).
        d = run([b("hard_limits"), "seq", "h", "30", str(PORT)], timeout=30,
                env={"DNSFO_ATTEMPT_DELAY_MS": "50"})
        f = fields(line_of(d, "SEQ"))
        check("limits.seq30.all_ok", d.exit == 0 and f.get("ok") == "30", show(d))
        extra = _new_fds(d)
        check("limits.seq30.no_fd_leak",
              all("anon_inode" in w for w in extra) and len(extra) <= 6,
              f"new fds after 30 failovers: {extra}\n{show(d)}")
        # 12 simultaneous non-blocking connects (6 refused-first, 6 silent-first), each process
        # with a private, empty winner cache, while the program itself holds 0, 20 or 40 extra fds
        # (64 allowed; the program needs 3 + extras + 12, dnsfo some more per race in flight).
        for fillers in ("0", "20", "40"):
            fresh = w.workdir / f"cache-race{fillers}"
            fresh.mkdir()
            env = {"DNSFO_CACHE_DIR": str(fresh)}
            # Up to 2 s for the race (a failover takes 0.25 s): under fd pressure some connects
            # stay with the kernel's silent wait, and only how many is of interest (info).
            cmd = [b("hard_limits"), "race", "h", "12", str(PORT), fillers, "2000"]
            # Without dnsfo only its lookups are compared: it need not wait out its silent
            # connects (4 s each round, the bulk of this case's time before).
            d, p = both(cmd, env=env, timeout=30, plain_cmd=cmd[:-1] + ["0"])
            tag = f"limits.race12_fillers{fillers}"
            info(tag, d.stdout)
            info(tag + "_plain", p.stdout)
            check(f"{tag}.ran", healthy(d) and line_of(d, "ORDER") != "", show(d))
            extra = _new_fds(d)
            check(f"{tag}.no_fd_leak", all("anon_inode" in w for w in extra) and len(extra) <= 6,
                  f"new fds after the race: {extra}\n{show(d)}")
            rf, pf = fields(line_of(d, "RACE")), fields(line_of(p, "RACE"))
            # dnsfo's own fds must never starve the program: its lookups fail no more than without
            check(f"{tag}.program_lookups_not_starved",
                  line_of(d, "RACE").count("ENOENT") <= line_of(p, "RACE").count("ENOENT"),
                  f"dnsfo: {line_of(d, 'RACE')}\nplain: {line_of(p, 'RACE')}")
            if fillers == "0":  # with fd pressure the outcome depends on timing: info only
                check(f"{tag}.all_failed_over", rf.get("ok") == "12", show(d))
                check(f"{tag}.live_address_first_after",
                      fields(line_of(d, "ORDER")).get("bad") == "0", show(d))


GAI_NAMES = {"svc": ["refused:127.0.0.2", "up:127.0.0.3", "refused:127.0.0.4", "refused:::1"]}


def case_gai_contract() -> None:
    """Item 7a: getaddrinfo with and without the library, after dnsfo learned a winner: same
    return codes, same node sets (family/socktype/protocol/address/port/addrlen), the canonical
    name on the head node only, and the winner first under dnsfo."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        d, p = both([b("hard_gai"), "contract", "svc", str(PORT)], timeout=10)
        check("gai.ran", d.exit == 0 and p.exit == 0, show(d) + "\n" + show(p))
        check("gai.failover_happened", "FAILOVER OK HELLO 127.0.0.3" in d.stdout, show(d))
        dq = {l.split()[1]: l for l in d.stdout.splitlines() if l.startswith("Q ")}
        pq = {l.split()[1]: l for l in p.stdout.splitlines() if l.startswith("Q ")}
        check("gai.same_queries", sorted(dq) == sorted(pq) and len(dq) >= 20, f"{sorted(dq)} {sorted(pq)}")
        for k in pq:
            check(f"gai.{k}", dq.get(k) == pq[k], f"dnsfo: {dq.get(k)}\nplain: {pq[k]}")
        firsts = {l.split()[1]: l.split()[2] for l in d.stdout.splitlines() if l.startswith("FIRST ")}
        info("dnsfo_first", " ".join(f"{k}={v}" for k, v in firsts.items()))
        check("gai.winner_first", firsts.get("name_inet") == "127.0.0.3", str(firsts))


def case_ghbn_r() -> None:
    """Item 7b: gethostbyname_r / gethostbyname2_r with every buffer length 1..4096: same return
    code (ERANGE until it fits), same *h_errnop, same answer, no write past the buffer."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        # the client fails over once first, so dnsfo permutes every answer (winner first)
        d, p = both([b("hard_gai"), "ghbnr", "svc", str(PORT)], timeout=30)
        check("ghbnr.failover_happened", "FAILOVER OK HELLO 127.0.0.3" in d.stdout, show(d)[:2000])
        dl = [l for l in d.stdout.splitlines() if l.startswith("H ")]
        pl = [l for l in p.stdout.splitlines() if l.startswith("H ")]
        check("ghbnr.ran", d.exit == 0 and len(dl) == 3 * 4096 + 1, show(d)[:2000])
        diff = [(x, y) for x, y in zip(dl, pl) if x != y]
        check("ghbnr.identical_to_libc", not diff and len(dl) == len(pl),
              "\n".join(f"dnsfo: {x}\nplain: {y}" for x, y in diff[:10]))
        check("ghbnr.canary_intact", all("canary=1" in l for l in dl if "canary" in l),
              "\n".join(l for l in dl if "canary=0" in l)[:2000])
        erange = sum(1 for l in pl if f" rc={E.ERANGE} " in l)
        info("erange_lengths_plain", str(erange))
        check("ghbnr.erange_seen", erange > 0, "no ERANGE at all: the sweep tests nothing")


def case_lookup_valgrind() -> None:
    """Item 7c: lookup/free rounds with dnsfo preloaded: 10,000 natively with bounded heap
    growth, and 4,000 under valgrind memcheck (valgrind is ~50x slower) with no error and no
    definite leak."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        d = run([b("hard_gai"), "loop", "svc", str(PORT), "10000"], timeout=60)
        f = fields(line_of(d, "LOOP"))
        check("lookups.native_10000", d.exit == 0 and f.get("rounds") == "10000", show(d))
        grow = int(f.get("heap_end", "0")) - int(f.get("heap_at100", "0"))
        check("lookups.heap_bounded", grow < 256 * 1024, f"heap grew {grow} bytes over 9,900 rounds\n{show(d)}")
        info("heap", line_of(d, "LOOP"))
        if not shutil.which("valgrind"):
            check("lookups.valgrind", False, "valgrind not installed")
            return
        vg = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
              "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
              "--child-silent-after-fork=yes", "--trace-children=no"]
        env = {"VALGRIND_LIB_PRELOAD_SHIM": "1"}
        d = run([*vg, b("hard_gai"), "loop", "svc", str(PORT), "4000"], env=env, timeout=100)
        check("lookups.valgrind_clean", d.exit == 0 and "LOOP rounds=4000" in d.stdout, show(d))
        info("valgrind_ms", str(d.elapsed_ms))



def case_reconnect() -> None:
    """Item 8: repeated connects (EALREADY after EINPROGRESS, EISCONN after success, retries
    after refusal), UDP, AF_UNIX, AF_UNSPEC, short/NULL/zero-length addresses, family
    mismatches and non-sockets: the same return values and errnos with and without dnsfo."""
    build(["hard_reconnect"])
    H.enter_namespace()
    names = {"up2": ["up:127.0.0.3", "up:127.0.0.5"],
             "dead2": ["refused:127.0.0.2", "refused:127.0.0.4"]}
    with World(names):
        d, p = both([b("hard_reconnect"), "up2", "dead2", str(PORT)], timeout=15)
        check("reconnect.ran", d.exit == 0 and p.exit == 0, show(d) + "\n" + show(p))
        dc = {l.split()[1]: l for l in d.stdout.splitlines() if l.startswith("C ")}
        pc = {l.split()[1]: l for l in p.stdout.splitlines() if l.startswith("C ")}
        for k in pc:
            check(f"reconnect.{k}", dc.get(k) == pc[k], f"dnsfo: {dc.get(k)}\nplain: {pc[k]}")
        check("reconnect.all_cases", len(pc) >= 10 and sorted(dc) == sorted(pc), f"{sorted(pc)}")



def case_tfo() -> None:
    """Item 9: TCP Fast Open (sendto MSG_FASTOPEN, TCP_FASTOPEN_CONNECT) to the dead address of a
    name whose live winner dnsfo already knows: either failed over or passed through (then the
    same result as libc), and the dead address is never remembered as the winner."""
    build(["hard_tfo"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        d, p = both([b("hard_tfo"), "svc", str(PORT)], timeout=15)
        check("tfo.ran", d.exit == 0 and p.exit == 0, show(d) + "\n" + show(p))
        check("tfo.winner_known", line_of(d, "ORDER0") == "ORDER0 127.0.0.3", show(d))
        for tag in ("SENDTO", "TFOC", "TFOC_NB"):
            dl, pl = line_of(d, tag), line_of(p, tag)
            failed_over = "so_error=-" in dl and "connect=0" in dl and "write=1" in dl
            check(f"tfo.{tag.lower()}.passthrough_or_failover", dl != "" and dl == pl or failed_over or dl == "SENDTO 1/-",
                  f"dnsfo: {dl}\nplain: {pl}")
        check("tfo.dead_never_winner", line_of(d, "ORDER1") == "ORDER1 127.0.0.3", show(d))
        check("tfo.later_connect_fails_over", line_of(d, "AFTER") == "AFTER OK HELLO 127.0.0.3", show(d))



def case_oom() -> None:
    """Item 3: allocation failure inside a hook: dnsfo must fall back to libc (the program sees
    libc's result), never abort the program."""
    build(["hard_oom"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        d, p = both([b("hard_oom"), "svc", str(PORT)], timeout=20)
        check("oom.plain_survives", "SURVIVED" in p.stdout, show(p))
        check("oom.dnsfo_survives", d.exit == 0 and "SURVIVED" in d.stdout and d.signal is None,
              show(d))
        check("oom.dnsfo_result_plausible", line_of(d, "CONNECT") in ("CONNECT OK", "CONNECT ECONNREFUSED"),
              show(d))


def _secure_possible() -> str:
    if os.geteuid() != 0:
        return "needs root (a setuid-root binary run by uid 65534)"
    if not shutil.which("setpriv"):
        return "setpriv(1) not found"
    uid_map = Path("/proc/self/uid_map").read_text().split()
    if uid_map[:3] != ["0", "0", "4294967295"]:
        return f"not in the initial user namespace (uid_map {uid_map[:3]})"
    return ""


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def _as_real_root(case: str) -> bool:
    """Runs `case` again as real root in a mount + network namespace without a user namespace
    (so that uid 65534 and the setuid bit mean what they mean on the host); `False` (after
    reporting the skip) when that is impossible here. Returns only inside it."""
    why = _secure_possible()
    if why and not H.in_namespace():
        info("skipped", why)
        check(f"{case}.skipped", True)
        return False
    build(["hard_secure"])
    if not H.in_namespace():
        env = dict(os.environ)
        env[H.NS_MARK] = H.ns_ids()
        os.execvpe("unshare", ["unshare", "-mn", "--", sys.executable, str(Path(__file__).resolve()),
                               case], env)
    return True


def _secure_bins(w: "World", tmp_mode: int) -> tuple[Path, Path, Path]:
    """A directory for the case (`tmp_mode`), a setuid-root copy of hard_secure and a plain one."""
    tmp = w.workdir / "secure"
    tmp.mkdir()
    os.chmod(w.workdir, 0o755)
    os.chmod(tmp, tmp_mode)
    suid, plain_bin = tmp / "hard_secure_suid", tmp / "hard_secure_nosuid"
    shutil.copy(b("hard_secure"), suid)
    shutil.copy(b("hard_secure"), plain_bin)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    os.chmod(plain_bin, 0o755)
    return tmp, suid, plain_bin


def case_secure() -> None:
    """Item 10a: AT_SECURE. A setuid-root copy of a client linked against the library, run by
    uid 65534 (setpriv), with DNSFO_DISABLE=1, DNSFO_LOG=debug, DNSFO_LOG_FILE, DNSFO_STATS=1 and
    a bad DNSFO_ATTEMPT_DELAY_MS: every variable ignored (it fails over, writes no file, prints
    nothing). Controls: the same binary without the setuid bit honours the variables."""
    if not _as_real_root("secure"):
        return
    with World({"svc": REFUSED_FIRST}) as w:
        tmp, suid, plain_bin = _secure_bins(w, 0o1777)
        as_nobody = AS_NOBODY
        log = tmp / "secure.log"
        hostile = {"DNSFO_DISABLE": "1", "DNSFO_LOG": "debug", "DNSFO_LOG_FILE": str(log),
                   "DNSFO_STATS": "1", "DNSFO_ATTEMPT_DELAY_MS": "abc",
                   "DNSFO_CACHE_DIR": str(tmp / "cache"), "DNSFO_NAMESERVER": "127.0.0.9"}
        r = run([*as_nobody, str(suid), "svc", str(PORT)], preload=False, env=hostile, timeout=10,
                variant="secure")
        check("secure.is_secure", r.stdout.startswith("AT_SECURE 1 uid=65534 euid=0"), show(r))
        check("secure.disable_ignored", line_of(r, "RESULT") == "RESULT OK HELLO 127.0.0.3", show(r))
        check("secure.nothing_on_stderr", r.stderr == "", show(r))
        check("secure.no_log_file", not log.exists(), f"{log} was created\n{show(r)}")
        check("secure.no_cache_dir", not (tmp / "cache").exists(), f"{tmp / 'cache'} was created")
        c = run([*as_nobody, str(plain_bin), "svc", str(PORT)], preload=False,
                env={"DNSFO_DISABLE": "1"}, timeout=10, variant="control-disable")
        check("secure.control_not_secure", c.stdout.startswith("AT_SECURE 0"), show(c))
        check("secure.control_disable_honoured", line_of(c, "RESULT").startswith("RESULT ECONNREFUSED"),
              show(c))
        env = {k: v for k, v in hostile.items() if k != "DNSFO_DISABLE"}
        c = run([*as_nobody, str(plain_bin), "svc", str(PORT)], preload=False, env=env, timeout=10,
                variant="control-log")
        check("secure.control_log_and_warning",
              line_of(c, "RESULT") == "RESULT OK HELLO 127.0.0.3" and "DNSFO_ATTEMPT_DELAY_MS" in c.stderr
              and log.exists(), show(c))


def case_secure_conf() -> None:
    """Issue 15: config files under AT_SECURE. The setuid-root client run by uid 65534 reads a
    root-owned, not world-writable /etc/dnsfo.conf (`disable = yes`: it does not fail over), and
    ignores that file once it is world-writable or another user's, and always ignores the user's
    file and DNSFO_CONFIG (both saying `disable = yes`); it prints nothing. Control: without the
    setuid bit the user's own file is honoured."""
    if not _as_real_root("secure_conf"):
        return
    with World({"svc": REFUSED_FIRST}) as w:
        tmp, suid, plain_bin = _secure_bins(w, 0o755)
        # The user's files, owned by the user (uid 65534), each saying disable = yes.
        xdg = tmp / "xdg"
        (xdg / "dnsfo").mkdir(parents=True)
        for f in (xdg / "dnsfo" / "config", tmp / "extra.conf"):
            f.write_text("disable = yes\n")
            os.chown(f, 65534, 65534)
            os.chmod(f, 0o600)
        for d in (xdg, xdg / "dnsfo"):
            os.chown(d, 65534, 65534)
        user_env = {"XDG_CONFIG_HOME": str(xdg), "DNSFO_CONFIG": str(tmp / "extra.conf")}
        # A copy of /etc (with the scenario's hosts file) with a dnsfo.conf, over /etc.
        etc = tmp / "etc"
        subprocess.run(["cp", "-a", "/etc/.", str(etc)], check=True, capture_output=True)
        conf = etc / "dnsfo.conf"
        conf.write_text("# the host's dnsfo settings\ndisable = yes\n")
        os.chown(conf, 0, 0)
        os.chmod(conf, 0o644)
        subprocess.run(["mount", "--bind", str(etc), "/etc"], check=True)
        as_nobody = AS_NOBODY

        def suid_run(variant: str, env: dict[str, str]) -> H.Result:
            return run([*as_nobody, str(suid), "svc", str(PORT)], preload=False, env=env,
                       timeout=10, variant=variant)

        r = suid_run("etc-honoured", {})
        check("secure_conf.is_secure", r.stdout.startswith("AT_SECURE 1"), show(r))
        check("secure_conf.root_owned_etc_honoured",
              line_of(r, "RESULT").startswith("RESULT ECONNREFUSED"), show(r))
        os.chmod(conf, 0o666)
        r = suid_run("etc-world-writable", user_env)
        check("secure_conf.world_writable_etc_and_user_files_ignored",
              line_of(r, "RESULT") == "RESULT OK HELLO 127.0.0.3" and r.stderr == "", show(r))
        os.chmod(conf, 0o644)
        os.chown(conf, 65534, 65534)
        r = suid_run("etc-not-root", user_env)
        check("secure_conf.etc_of_another_owner_ignored",
              line_of(r, "RESULT") == "RESULT OK HELLO 127.0.0.3" and r.stderr == "", show(r))
        c = run([*as_nobody, str(plain_bin), "svc", str(PORT)], preload=False,
                env={"XDG_CONFIG_HOME": str(xdg)}, timeout=10, variant="control-user-file")
        check("secure_conf.control_not_secure", c.stdout.startswith("AT_SECURE 0"), show(c))
        check("secure_conf.control_user_file_honoured",
              line_of(c, "RESULT").startswith("RESULT ECONNREFUSED"), show(c))
        check("secure_conf.control_refused_etc_warned",
              "/etc/dnsfo.conf: belongs to uid 65534, not to root; ignored" in c.stderr, show(c))


BAD_VALUES = ["abc", "-5", "99999999999999999999999", ""]
NUMERIC_VARS = ["DNSFO_ATTEMPT_DELAY_MS", "DNSFO_DEAD_TTL_MS", "DNSFO_CONNECT_TIMEOUT_MS"]
BOOL_VARS = ["DNSFO_DISABLE", "DNSFO_STATS", "DNSFO_CACHE"]


def case_bad_values() -> None:
    """Item 10b: every DNSFO_* variable set to text, a negative number, an overflowing number and
    the empty string: exactly one warning line on stderr naming the variable, and the program is
    served (it fails over as with the defaults); a misspelt variable gets one line naming it and
    the setting meant (issue 15). DNSFO_LOG / DNSFO_LOG_FILE take free text: the
    program is served and at most one line is printed."""
    H.build_clients(["c_getaddrinfo"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        cmd = [str(BIN / "c_getaddrinfo"), "svc", str(PORT)]
        jobs = [(v, val, {v: val}) for v in NUMERIC_VARS + BOOL_VARS for val in BAD_VALUES]
        jobs += [("DNSFO_LOG", val, {"DNSFO_LOG": val}) for val in ["abc", "-5", "=,=", ""]]
        jobs += [("DNSFO_LOG_FILE", val, {"DNSFO_LOG_FILE": val, "DNSFO_LOG": "error"})
                 for val in ["/nonexistent-dir/x.log", ""]]
        # free-text variables with a syntax: text, negative, overflow, empty
        jobs += [("DNSFO_CACHE_DIR", val, {"DNSFO_CACHE_DIR": val}) for val in ["abc", "-5"]]
        jobs += [("DNSFO_NAMESERVER", val, {"DNSFO_NAMESERVER": val}) for val in BAD_VALUES]
        # a misspelt setting: one line naming it and the setting meant
        jobs += [("DNSFO_ATEMPT_DELAY_MS", "5", {"DNSFO_ATEMPT_DELAY_MS": "5"})]
        results: dict[int, H.Result] = {}

        def one(i: int) -> None:
            results[i] = run(cmd, env=jobs[i][2], timeout=10)

        for start in range(0, len(jobs), 8):
            ts = [threading.Thread(target=one, args=(i,)) for i in range(start, min(start + 8, len(jobs)))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        for i, (var, val, _env) in enumerate(jobs):
            r = results[i]
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            served = r.exit == 0 and r.stdout == "GOT HELLO 127.0.0.3\n"
            label = f"bad.{var}={val!r}"
            if var == "DNSFO_NAMESERVER" and val == "":
                check(label, served and len(lines) <= 1, show(r))  # empty = the system's
            elif var in ("DNSFO_LOG", "DNSFO_LOG_FILE"):
                want = len(lines) <= 1 and (val != "/nonexistent-dir/x.log" or len(lines) == 1)
                check(label, served and want, show(r))
            elif var == "DNSFO_ATEMPT_DELAY_MS":
                check(label, served and len(lines) == 1 and var in lines[0]
                      and "DNSFO_ATTEMPT_DELAY_MS" in lines[0], show(r))
            else:
                check(label, served and len(lines) == 1 and var in lines[0], show(r))


def case_quiet() -> None:
    """Item 11: nothing on the program's stdout/stderr by default; a program whose fd 2 is a TCP
    socket receives zero bytes from dnsfo through every path (failover blocking/non-blocking,
    all refused, unknown name, gethostbyname)."""
    build(["hard_quiet"])
    H.build_clients(["c_getaddrinfo"])
    H.enter_namespace()
    names = {"svc": REFUSED_FIRST, "sil": ["silent:127.0.0.4", "up:127.0.0.5"],
             "dead": ["refused:127.0.0.6", "refused:127.0.0.7"]}
    with World(names):
        d, p = both([b("hard_quiet"), "svc", "sil", "dead", str(PORT)], timeout=20)
        check("quiet.ran", d.exit == 0, show(d))
        check("quiet.socket_on_fd2_gets_nothing", line_of(d, "STDERR_BYTES") == "STDERR_BYTES 0", show(d))
        check("quiet.served", "R refused_first OK HELLO 127.0.0.3" in d.stdout
              and "R silent_first OK HELLO 127.0.0.5" in d.stdout, show(d))
        check("quiet.errors_as_libc", line_of(d, "R all_refused") == line_of(p, "R all_refused")
              and line_of(d, "R all_refused_nb") == line_of(p, "R all_refused_nb"), show(d) + "\n" + show(p))
        for nm in ("svc", "sil", "dead"):
            r = run([str(BIN / "c_getaddrinfo"), nm, str(PORT)], timeout=10)
            # Without dnsfo only the all-refused name ends by itself (with the program's own
            # error line); the silent one would just be cut off at the timeout.
            plain = ""
            if nm == "dead":
                plain = run([str(BIN / "c_getaddrinfo"), nm, str(PORT)], preload=False,
                            timeout=2).stdout
            only_program = r.stdout in ("GOT HELLO 127.0.0.3\n", "GOT HELLO 127.0.0.5\n") or (
                nm == "dead" and r.stdout == plain)
            check(f"quiet.{nm}.stdout_is_the_programs", only_program and r.stdout.count("\n") == 1, show(r))
            check(f"quiet.{nm}.stderr_empty", r.stderr == "", show(r))


HOOKS = sorted("""socket setsockopt bind close dup2 dup3 connect getaddrinfo gethostbyname gethostbyname2
gethostbyname_r gethostbyname2_r freeaddrinfo getsockopt shutdown fcntl fcntl64 ioctl epoll_ctl
epoll_wait epoll_pwait epoll_pwait2 poll ppoll __poll_chk __ppoll_chk select pselect
execve execv execvp execvpe fexecve
dnsfo_pass_through""".split())  # the last: dnsfo's own switch for `dnsfo check` (hooks/control.rs)


def case_symbols() -> None:
    """Item 12: `nm -D --defined-only` lists exactly the hooks; LD_BIND_NOW=1 works (C client,
    python, curl)."""
    H.build_clients(["c_getaddrinfo"])
    lib = H.lib_path()
    r = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, timeout=30)
    syms = sorted(l.split()[-1] for l in r.stdout.splitlines() if l.strip())
    extra, missing = sorted(set(syms) - set(HOOKS)), sorted(set(HOOKS) - set(syms))
    check("symbols.exactly_the_hooks", r.returncode == 0 and not extra and not missing,
          f"extra: {extra}\nmissing: {missing}\n{r.stderr}")
    H.enter_namespace()
    with World({"svc": SILENT_FIRST, "web": ["silent:127.0.0.4", "up:127.0.0.5"]},
               up_factory=lambda ip, port: H.UpServer(ip, port, 60, http=ip == "127.0.0.5")):
        env = {"LD_BIND_NOW": "1"}
        r = run([str(BIN / "c_getaddrinfo"), "svc", str(PORT)], env=env, timeout=10)
        check("bindnow.c_client", r.exit == 0 and "HELLO 127.0.0.3" in r.stdout, show(r))
        r = run([sys.executable, str(SRC / "client.py"), "svc", str(PORT), "inet"], env=env, timeout=15)
        check("bindnow.python", r.exit == 0 and "HELLO 127.0.0.3" in r.stdout, show(r))
        r = run(["curl", "-sS", "--max-time", "8", f"http://web:{PORT}/"], env=env, timeout=15)
        check("bindnow.curl", r.exit == 0 and "HELLO 127.0.0.5" in r.stdout, show(r))


def case_flap() -> None:
    """Item 13: three servers flapping up/down every 50 ms (phases offset) while 8 threads connect
    for 5 s (half blocking, half non-blocking): no crash, no hang, every connect ends in success
    (on an address of the name) or ECONNREFUSED/ECONNRESET/ECONNABORTED/ETIMEDOUT; no fd leak."""
    build(["hard_flap"])
    H.enter_namespace()
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    servers = iter(range(3))

    def flapper(ip, port):
        return FlapServer(ip, port, period=0.05, offset=0.033 * next(servers), lifetime=12)

    with World({"flap": [f"up:{ip}" for ip in ips]}, up_factory=flapper) as w:
        d = run([b("hard_flap"), "flap", str(PORT), "8", "5"], timeout=20)
        f = fields(line_of(d, "FLAP"))
        info("flap", line_of(d, "FLAP"))
        info("flap_cycles", " ".join(str(s.cycles) for s in w.servers))
        check("flap.no_crash_no_hang", d.exit == 0 and not d.timed_out and d.elapsed_ms < 15000, show(d))
        check("flap.every_connect_plausible", f.get("bad") == "0" and f.get("hung") == "0"
              and f.get("wrongpeer") == "0", show(d))
        check("flap.some_success", int(f.get("ok", "0")) > 0, show(d))
        check("flap.servers_flapped", all(s.cycles >= 20 for s in w.servers),
              " ".join(str(s.cycles) for s in w.servers))
        fds = line_of(d, "FDS").split()[3:]
        leaked = [w for w in fds if w.split(":", 1)[0] not in ("0", "1", "2")
                  and "anon_inode" not in w]
        service = [w for w in fds if "anon_inode" in w]
        info("flap_dnsfo_service_fds", " ".join(service))
        check("flap.no_socket_or_pipe_leak", d.exit == 0 and not leaked, line_of(d, "FDS"))
        check("flap.service_fds_bounded", len(service) <= 6, line_of(d, "FDS"))


def case_io_uring() -> None:
    """Issue 5 (what bypasses libc): io_uring. A C client resolves a name with getaddrinfo, connects
    to its first address with IORING_OP_CONNECT and reads with IORING_OP_RECV, then (same process)
    does a plain libc connect to that address. dnsfo cannot see the io_uring connect and must do no
    harm: the io_uring result is exactly as without dnsfo (refused stays refused, up stays up), and
    the libc connect after it still fails over (dnsfo's state is not confused by the ring's socket)."""
    if not LIBURING_H.exists():
        check("uring.prerequisites", False,
              f"{LIBURING_H} missing: install Debian liburing-dev (.ci/run does) to build hard_uring")
        return
    build(["hard_uring"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST, "up2": ["up:127.0.0.4", "up:127.0.0.5"]}) as w:
        cmd = [b("hard_uring"), "svc", str(PORT)]
        d, p = both(cmd, timeout=15)
        setup = line_of(p, "URING SETUP")
        check("uring.available", not setup, f"io_uring unavailable here: {setup}\n{show(p)}")
        check("uring.ran", d.exit == 0 and p.exit == 0, show(d) + "\n" + show(p))
        check("uring.refused_first.first_is_dead", line_of(d, "FIRST") == line_of(p, "FIRST")
              == "FIRST 127.0.0.2", show(d) + "\n" + show(p))
        check("uring.refused_first.plain_refused", line_of(p, "URING") == "URING ERR ECONNREFUSED"
              and line_of(p, "LIBC") == "LIBC ERR ECONNREFUSED", show(p))
        check("uring.refused_first.uring_as_without", line_of(d, "URING") == line_of(p, "URING")
              == "URING ERR ECONNREFUSED", show(d) + "\n" + show(p))
        check("uring.refused_first.libc_fails_over", line_of(d, "LIBC") == "LIBC GOT HELLO 127.0.0.3",
              show(d))
        check("uring.refused_first.stderr_quiet", d.stderr == "" and p.stderr == "", show(d))

        d, p = both([b("hard_uring"), "up2", str(PORT)], timeout=15)
        check("uring.up_up.ran", d.exit == 0 and p.exit == 0, show(d) + "\n" + show(p))
        check("uring.up_up.uring_as_without", line_of(d, "URING") == line_of(p, "URING")
              == "URING GOT HELLO 127.0.0.4", show(d) + "\n" + show(p))
        check("uring.up_up.stdout_as_without", d.stdout == p.stdout
              and line_of(d, "LIBC") == "LIBC GOT HELLO 127.0.0.4", show(d) + "\n" + show(p))

        # once the winner is known (shared cache of the first run), getaddrinfo lists it first:
        # then even the io_uring connect, which dnsfo never sees, reaches the live address
        r = run(cmd, timeout=15)
        check("uring.known_winner.listed_first", r.exit == 0 and line_of(r, "FIRST") == "FIRST 127.0.0.3"
              and line_of(r, "URING") == "URING GOT HELLO 127.0.0.3", show(r))

        # the library really is in the process and saw the libc half (and only that half);
        # a fresh cache, so the first address is the dead one again
        fresh = w.workdir / "cache-log"
        fresh.mkdir()
        r = run(cmd, env={"DNSFO_LOG": "debug", "DNSFO_CACHE_DIR": str(fresh)}, timeout=15)
        check("uring.log.loaded_and_failed_over", r.exit == 0 and "initialised" in r.stderr
              and "127.0.0.2" in r.stderr and line_of(r, "LIBC") == "LIBC GOT HELLO 127.0.0.3"
              and line_of(r, "URING") == "URING ERR ECONNREFUSED", show(r))


def case_go() -> None:
    """Issue 5 (what bypasses libc): Go. tests/e2e/clients/hard_go.go (net.Dial with a 3 s timeout,
    read the banner) built static (CGO_ENABLED=0: LD_PRELOAD ignored) and dynamic (CGO_ENABLED=1
    -tags netcgo: libc's getaddrinfo, dnsfo loaded, but connect is a raw system call). For
    refused-first, all-refused and up-only names: stdout and exit code identical with and without
    dnsfo (Go fails over by itself). The ELF headers and /proc/self/maps show which build really
    had the library inside; with DNSFO_LOG=debug it logs its initialisation and stays harmless."""
    go = go_tool()
    if not go:
        check("go.prerequisites", False,
              "the go toolchain is missing: install Debian golang-go (.ci/run does) to build hard_go")
        return
    outs = build_go(go)
    H.enter_namespace()
    interp = {k: elf_interp(v) for k, v in outs.items()}
    info("go_interp", f"static={interp['static']} cgo={interp['cgo']}")
    check("go.static.is_static", interp["static"] is None, f"PT_INTERP {interp['static']}")
    check("go.cgo.is_dynamic", bool(interp["cgo"]), "no PT_INTERP: the cgo build is static")
    layouts = {"rf": (REFUSED_FIRST, "GOT HELLO 127.0.0.3\n", 0),
               "dead": (["refused:127.0.0.4", "refused:127.0.0.5"], "ERR ECONNREFUSED\n", 1),
               "ups": (["up:127.0.0.6", "up:127.0.0.7"], "GOT HELLO 127.0.0.6\n", 0)}
    with World({n: v[0] for n, v in layouts.items()}):
        for kind, exe in outs.items():
            for name, (_, want, code) in layouts.items():
                d, p = both([str(exe), name, str(PORT)], timeout=10)
                both_shown = show(d) + "\n" + show(p)
                check(f"go.{kind}.{name}.as_without", healthy(d) and healthy(p) and d.exit == p.exit
                      and d.stdout == p.stdout, both_shown)
                check(f"go.{kind}.{name}.expected", p.stdout == want and p.exit == code, both_shown)
                loaded = "MAPS libdnsfo=true\n" if kind == "cgo" else "MAPS libdnsfo=false\n"
                check(f"go.{kind}.{name}.maps_and_quiet", d.stderr == loaded
                      and p.stderr == "MAPS libdnsfo=false\n", both_shown)
        # cgo build: libc's resolver is used (GODEBUG says so) and dnsfo initialised in the process
        env = {"DNSFO_LOG": "debug", "GODEBUG": "netdns=cgo+1"}
        r = run([str(outs["cgo"]), "rf", str(PORT)], env=env, timeout=10)
        check("go.cgo.log.loaded_and_harmless", r.exit == 0 and r.stdout == "GOT HELLO 127.0.0.3\n"
              and "initialised" in r.stderr and "MAPS libdnsfo=true" in r.stderr
              and "using cgo DNS resolver" in r.stderr, show(r))


CASES = {k[5:]: v for k, v in dict(globals()).items() if k.startswith("case_")}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "list"):
        for k, f in CASES.items():
            print(f"{k:24} {(f.__doc__ or '').splitlines()[0]}")
        return 0
    case = argv[0]
    if case not in CASES:
        print(f"hardening: unknown case {case!r}", file=sys.stderr)
        return 2
    try:
        if H.in_namespace():
            signal.signal(signal.SIGALRM, H.watchdog)
            signal.alarm(170)
        CASES[case]()
        info("lib", str(H.lib_path()))
        info("lib_stale", "1" if H.lib_stale() else "0")
        info("checks", str(len(_checks)))
        return 0
    except H.HarnessError as e:
        print(f"hardening: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
