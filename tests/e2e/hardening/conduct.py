"""How dnsfo behaves in someone else's process: bad values of its variables, quiet by default,
its exported symbols and LD_BIND_NOW (issue 5, items 10b-12; issue 15)."""

from __future__ import annotations

import subprocess
import sys

from common import (BIN, PORT, REFUSED_FIRST, SILENT_FIRST, SRC, H, World, b, both, build, fact,
                    parallel, run)

BAD_VALUES = ["abc", "-5", "99999999999999999999999", ""]
NUMERIC_VARS = ["DNSFO_ATTEMPT_DELAY_MS", "DNSFO_DEAD_TTL_MS", "DNSFO_CONNECT_TIMEOUT_MS"]
BOOL_VARS = ["DNSFO_DISABLE", "DNSFO_STATS", "DNSFO_CACHE"]


def case_bad_values() -> None:
    """Item 10b: c_getaddrinfo against a refused-first name with every DNSFO_* variable set to
    text, a negative number, an overflowing number and the empty string; DNSFO_LOG and
    DNSFO_LOG_FILE (free text) to odd text; DNSFO_CACHE_DIR, DNSFO_NAMESERVER to odd values; a
    misspelt DNSFO_ATEMPT_DELAY_MS (issue 15). Runs: bad.NN (8 at a time), each with the facts
    `var` and `val` (the variable and its value)."""
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
        # a misspelt setting
        jobs += [("DNSFO_ATEMPT_DELAY_MS", "5", {"DNSFO_ATEMPT_DELAY_MS": "5"})]

        def one(job: tuple[int, tuple[str, str, dict[str, str]]]) -> None:
            i, (var, val, env) = job
            run(f"bad.{i:02d}", cmd, env=env, timeout=10, var=var, val=val)

        parallel(list(enumerate(jobs)), one)


def case_quiet() -> None:
    """Item 11: hard_quiet, whose fd 2 is a TCP socket, through every path (failover blocking and
    non-blocking, all refused, unknown name, gethostbyname: its R and STDERR_BYTES lines; runs
    quiet.dnsfo, quiet.plain), then c_getaddrinfo on a refused-first (quiet.svc), a
    silent-first (quiet.sil) and an all-refused name (quiet.dead, and quiet.dead.plain: without
    dnsfo only that one ends by itself)."""
    build(["hard_quiet"])
    H.build_clients(["c_getaddrinfo"])
    H.enter_namespace()
    names = {"svc": REFUSED_FIRST, "sil": ["silent:127.0.0.4", "up:127.0.0.5"],
             "dead": ["refused:127.0.0.6", "refused:127.0.0.7"]}
    with World(names):
        both("quiet", [b("hard_quiet"), "svc", "sil", "dead", str(PORT)], timeout=20)
        for nm in ("svc", "sil", "dead"):
            run(f"quiet.{nm}", [str(BIN / "c_getaddrinfo"), nm, str(PORT)], timeout=10)
            if nm == "dead":
                run("quiet.dead.plain", [str(BIN / "c_getaddrinfo"), nm, str(PORT)],
                    preload=False, timeout=2)


def case_symbols() -> None:
    """Item 12: what `nm -D --defined-only` lists of the library (facts nm_exit, nm_symbols,
    nm_stderr); LD_BIND_NOW=1 with a silent-first name: a C client (run bindnow.c), python
    (bindnow.python), curl (bindnow.curl)."""
    H.build_clients(["c_getaddrinfo"])
    lib = H.lib_path()
    r = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                       timeout=30)
    fact("nm_exit", r.returncode)
    fact("nm_symbols", " ".join(sorted(l.split()[-1] for l in r.stdout.splitlines() if l.strip())))
    fact("nm_stderr", r.stderr)
    H.enter_namespace()
    with World({"svc": SILENT_FIRST, "web": ["silent:127.0.0.4", "up:127.0.0.5"]},
               up_factory=lambda ip, port: H.UpServer(ip, port, 60, http=ip == "127.0.0.5")):
        env = {"LD_BIND_NOW": "1"}
        run("bindnow.c", [str(BIN / "c_getaddrinfo"), "svc", str(PORT)], env=env, timeout=10)
        run("bindnow.python", [sys.executable, str(SRC / "client.py"), "svc", str(PORT), "inet"],
            env=env, timeout=15)
        run("bindnow.curl", ["curl", "-sS", "--max-time", "8", f"http://web:{PORT}/"], env=env,
            timeout=15)


CASES = {"bad_values": case_bad_values, "quiet": case_quiet, "symbols": case_symbols}
