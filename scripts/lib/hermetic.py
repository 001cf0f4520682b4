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
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import *  # noqa: E402,F401,F403  (the harness, for `import hermetic as H`)

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
