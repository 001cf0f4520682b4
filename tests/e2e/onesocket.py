#!/usr/bin/env python3
"""One-socket end-to-end harness for dnsfo (issue 11), standard library only.

Built on scripts/lib/hermetic.py (namespace, hosts file, silent servers, running a client with and
without LD_PRELOAD, output format); this file adds the os_* C clients (tests/e2e/clients/os_*.c,
compiled into target/e2e-bin with hermetic's compile_c) and runs MANY client runs against one
scenario at once, in parallel, so the whole test file needs a handful of namespaces:

* a run is CLIENT:VARIANT[:TIMEOUT_S]; its output section is `CLIENT.VARIANT` (e.g. `dup.dnsfo`);
* every run gets its own DNSFO_CACHE_DIR: a winner learned by one run never reaches another, so
  every dnsfo run really fails over;
* up servers are hermetic's (`HELLO <ip>\\n`), except that the banner comes 100 ms after the
  accept (see DrainUpServer) and that after it they read until the client closes (os_unwrapped
  sends a byte or two; unread data would turn the close into a RST); each reports how many
  connections it accepted (`harness accepted_<ip> N`, counted after every run ended);
* `harness fortify_syms`: the recv-family symbols os_fortify imports (nm -D), to show its recv
  really is __recv_chk.

CLI (tests/onesocket.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/onesocket.py run --addr silent:127.0.0.2 --addr up:127.0.0.3 \\
        --run dup:dnsfo:8 --run poll:dnsfo:8 [--client dup --variant plain:8] [--env K=V]
    python3 tests/e2e/onesocket.py build-clients
    python3 tests/e2e/onesocket.py clients
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (namespace, servers, run_client, emit)

SRC = HERE / "clients"
BIN = H.BIN_DIR

# binary -> (sources, extra cflags, libs)
B = functools.partial(H.Build, deps=("os_common.h",))
BUILDS: dict[str, H.Build] = {
    "os_copy": B(("os_copy.c",)),
    "os_exec_helper": B(("os_exec_helper.c",)),
    "os_sleeper": B(("os_sleeper.c",)),
    "os_unwrapped": B(("os_unwrapped.c",)),
    # what distributions build with: recv() becomes __recv_chk
    "os_fortify": B(("os_fortify.c",), cflags=("-O2", "-D_FORTIFY_SOURCE=2")),
    "os_mode": B(("os_mode.c",)),
    "os_epoll_reuse": B(("os_epoll_reuse.c",)),
    "os_cancel": B(("os_cancel.c",), cflags=("-pthread",), libs=("-pthread",)),
    "os_reuse_pipe": B(("os_reuse_pipe.c",), cflags=("-pthread",), libs=("-pthread",)),
}

# client id -> (binary, mode, other binaries it needs)
CLIENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {}
for _m in ("dup", "dupfd", "fork-child", "fork-parent", "exec", "scm", "vfork"):
    CLIENTS[_m] = ("os_copy", _m, ("os_exec_helper",) if _m == "exec" else ())
for _m in ("poll", "select", "ppoll"):
    CLIENTS[_m] = ("os_sleeper", _m, ())
for _m in ("fstat", "sendfile", "splice", "sendmmsg", "siocoutq", "fdopen"):
    CLIENTS[_m] = ("os_unwrapped", _m, ())
CLIENTS["fortify-recv"] = ("os_fortify", "recv", ())
for _m in ("clear-nonblock", "fionbio", "connect-again", "shutdown", "unspec"):
    CLIENTS[_m] = ("os_mode", _m, ())
for _m in ("empty", "other"):
    CLIENTS[f"epoll-reuse-{_m}"] = ("os_epoll_reuse", _m, ())
for _m in ("deferred-pending", "deferred-blocked", "async-blocked", "async-timed"):
    CLIENTS[f"cancel-{_m}"] = ("os_cancel", _m, ())
CLIENTS["reuse-pipe"] = ("os_reuse_pipe", "close", ())

# The clients' own hard timeout (s): less than any run's harness timeout.
CLIENT_TIMEOUT = 5


def build(which: list[str] | None = None) -> None:
    """Compile the os_* clients into target/e2e-bin if stale; safe in parallel."""
    H.build(BUILDS, which)


def fortify_syms() -> str:
    """The recv-family dynamic symbols os_fortify imports (nm -D --undefined-only)."""
    r = subprocess.run(["nm", "-D", "--undefined-only", str(BIN / "os_fortify")],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"nm failed: {r.stderr.strip()}"
    names = [line.split()[-1] for line in r.stdout.splitlines() if line.split()]
    return " ".join(sorted(n for n in names if "recv" in n))


class DrainUpServer(H.UpServer):
    """hermetic's up server (`HELLO <ip>\\n`), but each connection is served on its own thread:
    BANNER_DELAY after the accept the banner, shutdown(SHUT_WR), then read until the client closes
    (at most 3 s, 64 reads), so bytes a client sent never turn the close into a RST.

    The delay makes the clients' early calls meet a socket that is connected but has no data yet,
    every time: a loopback connect() completes its handshake before it returns EINPROGRESS, and a
    banner sent at once is often there microseconds later, which would make `recv` right after
    connect, a `shutdown` then (data after SHUT_RD is answered with a RST, data before is read) and
    a sleeper's wake-up depend on the scheduler."""

    BANNER_DELAY = 0.1

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with contextlib.suppress(OSError), conn:
            time.sleep(self.BANNER_DELAY)
            conn.sendall(self.banner)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(64):
                if not conn.recv(4096):
                    break


class OsScenario:
    """hermetic's namespace set-up, DrainUpServers and blackholes for one address layout."""

    def __init__(self, addrs: list[tuple[str, str]], name: str, port: int, lifetime: float):
        self.addrs, self.name, self.port, self.lifetime = addrs, name, port, lifetime
        self.servers: list = []
        self.up: list[DrainUpServer] = []
        self.info: dict[str, str] = {}
        self.workdir: Path | None = None

    def __enter__(self) -> "OsScenario":
        for kind, ip in self.addrs:
            if kind not in ("up", "refused", "silent"):
                raise H.HarnessError(f"unknown address kind {kind!r} (up, refused, silent)")
            socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
            if not (ip.startswith("127.") or ip == "::1"):
                raise H.HarnessError(f"{ip}: only loopback addresses (127/8, ::1) are allowed")
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-onesock-"))
        H.setup_namespace([(ip, self.name) for _, ip in self.addrs], self.workdir)
        silent = []
        for kind, ip in self.addrs:
            if kind == "up":
                srv = DrainUpServer(ip, self.port, self.lifetime)
                self.servers.append(srv)
                self.up.append(srv)
            elif kind == "silent":
                srv = H.SilentServer(ip, self.port, self.lifetime)
                self.servers.append(srv)
                silent.append(srv)
        self.info["blackholes"] = H.verify_silent(silent)
        self.info["layout"] = " ".join(f"{k}:{ip}" for k, ip in self.addrs)
        self.info["gai"] = " ".join(
            a[4][0] for a in socket.getaddrinfo(self.name, self.port, 0, socket.SOCK_STREAM))
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run_all(self, runs: list[tuple[str, str, float]], env: dict[str, str]) -> list[H.Result]:
        """Every (client, variant kind, timeout) at once, each on its own thread."""
        results: list[H.Result | None] = [None] * len(runs)

        def one(i: int, client: str, kind: str, timeout: float) -> None:
            binary, mode, _ = CLIENTS[client]
            cmd = [str(BIN / binary), self.name, str(self.port), mode, str(CLIENT_TIMEOUT)]
            # `dnsfo#2`: a second run of the same variant (its own name in the output).
            preload, extra, want_log = H.VARIANTS[kind.partition("#")[0]]
            cache = tempfile.mkdtemp(prefix=f"cache-{i}-", dir=self.workdir)
            log = (self.workdir / f"dnsfo-{i}-{kind}.log") if want_log else None
            r = H.run_client(cmd, preload=preload,
                             env={**env, "DNSFO_CACHE_DIR": cache, **extra}, timeout=timeout,
                             variant=f"{client}.{kind}", log_file=log)
            results[i] = r

        threads = [threading.Thread(target=one, args=(i, *run)) for i, run in enumerate(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for srv in self.up:
            self.info[f"accepted_{srv.ip}"] = str(srv.accepted)
        return [r for r in results if r is not None]


def _parse_addr(spec: str) -> tuple[str, str]:
    kind, sep, ip = spec.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected KIND:IP (up/refused/silent)")
    return kind, ip


def _parse_run(spec: str, default_timeout: float) -> tuple[str, str, float]:
    client, _, rest = spec.partition(":")
    if client not in CLIENTS:
        raise H.HarnessError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    spec_kind, _, t = (rest or "dnsfo").partition(":")
    base, hash_, n = spec_kind.partition("#")
    kind, timeout = H.parse_variant(f"{base}:{t}" if t else base, default_timeout)
    return client, f"{kind}#{n}" if hash_ else kind, timeout


def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("onesocket: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="onesocket.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run os_* clients in one scenario, all at once")
    run.add_argument("--name", default=H.DEFAULT_NAME)
    run.add_argument("--port", type=int, default=H.DEFAULT_PORT)
    run.add_argument("--addr", action="append", type=_parse_addr, required=True)
    run.add_argument("--run", action="append", default=[], metavar="CLIENT[:VARIANT[:T]]",
                     help="one run (VARIANT plain|dnsfo|disable|log, default dnsfo)")
    run.add_argument("--client", action="append", default=[],
                     help="with --variant: every client x every variant")
    run.add_argument("--variant", action="append", default=[])
    run.add_argument("--timeout", type=float, default=8.0, help="default run timeout, s")
    run.add_argument("--env", action="append", default=[], help="K=V for every run")
    sub.add_parser("build-clients")
    sub.add_parser("clients")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build-clients":
            build()
            print(f"os clients built in {BIN}")
            return 0
        if args.cmd == "clients":
            for k, (binary, mode, _) in CLIENTS.items():
                print(f"{k:18} {binary} NAME PORT {mode}")
            return 0
        runs = [_parse_run(r, args.timeout) for r in args.run]
        for c in args.client:
            for v in args.variant or ["dnsfo", "plain"]:
                runs.append(_parse_run(f"{c}:{v}", args.timeout))
        if not runs:
            ap.error("give --run or --client")
        names = [f"{c}.{k}" for c, k, _ in runs]
        if len(set(names)) != len(names):
            raise H.HarnessError("the same client and variant twice")
        env = dict(kv.split("=", 1) for kv in args.env)
        if not H.in_namespace():
            need = {CLIENTS[c][0] for c, _, _ in runs}
            need |= {d for c, _, _ in runs for d in CLIENTS[c][2]}
            build(sorted(need))
            H.enter_namespace([str(Path(__file__).resolve()), *argv])
        budget = max(t for _, _, t in runs) + 30
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        with OsScenario(args.addr, args.name, args.port, budget) as sc:
            info = {**H.lib_facts(), **sc.info}
            results = sc.run_all(runs, env)
            info.update({k: v for k, v in sc.info.items() if k.startswith("accepted_")})
        if any(c == "fortify-recv" for c, _, _ in runs):
            info["fortify_syms"] = fortify_syms()
        signal.alarm(0)
        H.emit(info, results, False)
        return 0
    except H.HarnessError as e:
        print(f"onesocket: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
