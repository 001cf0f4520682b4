"""What every hardening case shares: paths, building the hard_* C clients, the output (facts
only), the servers beyond hermetic's and the World (names, servers, a private winner cache).

Output, one per line, hermetic's protocol (`<section> <key> <escaped value>`): section `harness`
for a fact of the case (`fact`), or a run's name (`reentry.dnsfo`, `spawn.chain.plain`...) for
its Result (`report`: exit, signal, timed_out, elapsed_ms, stdout, stderr, ...) and any fact
measured about that run alone. Nothing here judges: tests/hardening/ asserts.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parents[2] / "scripts" / "lib"))
import hermetic as H  # noqa: E402

REPO = H.REPO
SRC = HERE.parent / "clients"
BIN = H.BIN_DIR
PORT = 7000

REFUSED_FIRST = ["refused:127.0.0.2", "up:127.0.0.3"]
SILENT_FIRST = ["silent:127.0.0.2", "up:127.0.0.3"]

# --------------------------------------------------------------------------------------------
# Building the hard_* clients
# --------------------------------------------------------------------------------------------


HARD = functools.partial(H.Build, deps=("hard_common.h", "common.h"), cflags=("-g", "-pthread"))
HARD_C = ("hard_flap", "hard_fork", "hard_gai", "hard_limits", "hard_oom", "hard_quiet",
          "hard_reconnect", "hard_tfo", "hard_threads")
BUILDS = {
    **{c: HARD((f"{c}.c",)) for c in HARD_C},
    "libhard_ctorlib.so": HARD(("hard_ctorlib.c",), shared=True),
    "hard_reentry": HARD(("hard_reentry.c",), libs=(f"-L{BIN}", "-Wl,--no-as-needed",
                                                    "-lhard_ctorlib", f"-Wl,-rpath,{BIN}")),
    # linked against the library itself (DT_NEEDED by absolute path): LD_PRELOAD is ignored for
    # setuid programs, a DT_NEEDED entry is not. (Rebuilt when that library changes.)
    "hard_secure": HARD(("hard_secure.c",), deps=("hard_common.h", "common.h", str(H.lib_path())),
                        libs=(str(H.lib_path()),)),
    "hard_uring": HARD(("hard_uring.c",), libs=("-luring",)),
}


def build(which: list[str]) -> None:
    """Compile these hard_* clients (and what they link) into target/e2e-bin if stale."""
    need = ["libhard_ctorlib.so", *which] if "hard_reentry" in which else which
    H.build(BUILDS, need)


def b(name: str) -> str:
    return str(BIN / name)


# --------------------------------------------------------------------------------------------
# Output: facts only
# --------------------------------------------------------------------------------------------

_out = threading.Lock()


def _write(section: str, items: dict[str, object]) -> None:
    text = "".join(f"{section} {k} {H.escape(str(v))}\n" for k, v in items.items())
    with _out:
        sys.stdout.write(text)
        sys.stdout.flush()


def fact(key: str, value: object) -> None:
    """A fact of the case (section `harness`)."""
    _write("harness", {key: value})


def report(r: H.Result, **extra: object) -> H.Result:
    """A run's Result under its variant name, with `extra` facts about that run."""
    _write(r.variant, {**r.fields(), **extra})
    return r


def note(variant: str, **facts: object) -> None:
    """Facts about run `variant` measured after it was reported (more keys of its section)."""
    _write(variant, facts)


def flag(b: bool) -> str:
    return "1" if b else "0"


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


class World:
    """Names (several per scenario) and their servers inside the private namespace; every run
    of the World gets its private winner-cache directory (`run`)."""

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
        fact("blackholes", H.verify_silent(silent))
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_CACHE: list[Path] = []  # the current World's private winner-cache directory


def run(variant: str, cmd: list[str], preload: bool = True, env: dict[str, str] | None = None,
        timeout: float = 10.0, **extra: object) -> H.Result:
    """One client run, reported as `variant` (with `extra` facts). dnsfo's shared winner cache
    (DNSFO_CACHE_DIR, default under $HOME) is pointed into the scenario's temp dir, so no run
    ever sees winners of another test."""
    full = dict(env or {})
    if _CACHE and "DNSFO_CACHE_DIR" not in full:
        full["DNSFO_CACHE_DIR"] = str(_CACHE[-1])
    r = H.run_client(cmd, preload=preload, env=full, timeout=timeout, variant=variant)
    return report(r, **extra)


def both(name: str, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 10.0,
         plain_cmd: list[str] | None = None) -> tuple[H.Result, H.Result]:
    """The same command with and without the library (`plain_cmd` without, when given), in
    parallel: runs `NAME.dnsfo` and `NAME.plain`."""
    out: dict[bool, H.Result] = {}

    def one(p: bool) -> None:
        out[p] = run(f"{name}.{'dnsfo' if p else 'plain'}",
                     cmd if p or plain_cmd is None else plain_cmd, preload=p, env=env,
                     timeout=timeout)

    ts = [threading.Thread(target=one, args=(p,)) for p in (True, False)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out[True], out[False]


def parallel(jobs: list, one, width: int = 8) -> None:
    """`one(job)` for every job, `width` at a time, each on its own thread."""
    for start in range(0, len(jobs), width):
        ts = [threading.Thread(target=one, args=(j,)) for j in jobs[start:start + width]]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
