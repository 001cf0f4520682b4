#!/usr/bin/env python3
"""Hardening end-to-end cases for dnsfo (issue 5), standard library only: each case runs real
programs (mostly the hard_* C clients, tests/e2e/clients/hard_*.c, compiled into target/e2e-bin)
in a private namespace and reports what happened; tests/hardening/ asserts.

    python3 tests/e2e/hardening run CASE     # one case; `list` lists them

One module per area (threads, processes, limits, lookup, secure, conduct, bypass), the shared
part in common.py (its docstring describes the output). Exit 0 when the case ran (whatever the
programs did), 2 on a harness error (on stderr).
"""

from __future__ import annotations

import signal
import sys

import common  # noqa: F401  (first: sets the paths and stops bytecode files)
import bypass
import conduct
import limits
import lookup
import processes
import secure
import threads
from common import H, fact

CASES = {**threads.CASES, **processes.CASES, **limits.CASES, **lookup.CASES, **secure.CASES,
         **conduct.CASES, **bypass.CASES}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "run":
        if argv not in ([], ["list"]):
            print("usage: python3 tests/e2e/hardening run CASE | list", file=sys.stderr)
            return 2
        for k, f in CASES.items():
            print(f"{k:16} {(f.__doc__ or '').splitlines()[0]}")
        return 0
    case = argv[1]
    if case not in CASES:
        print(f"hardening: unknown case {case!r}", file=sys.stderr)
        return 2
    try:
        if H.in_namespace():
            signal.signal(signal.SIGALRM, H.watchdog)
            signal.alarm(170)
        CASES[case]()
        for k, v in H.lib_facts().items():
            fact(k, v)
        return 0
    except H.HarnessError as e:
        print(f"hardening: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
