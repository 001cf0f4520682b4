"""The libc contract: lookups (getaddrinfo, gethostbyname_r, valgrind) and repeated or odd
connects, TCP Fast Open (issue 5, items 7-9)."""

from __future__ import annotations

import shutil

from common import PORT, REFUSED_FIRST, H, World, b, both, build, fact, run

GAI_NAMES = {"svc": ["refused:127.0.0.2", "up:127.0.0.3", "refused:127.0.0.4", "refused:::1"]}


def case_gai_contract() -> None:
    """Item 7a: hard_gai contract (after a failover, so dnsfo knows a winner: one `Q <query>`
    line per getaddrinfo query with its return code and nodes, `FIRST <query> <address>`).
    Runs: gai.dnsfo, gai.plain."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        both("gai", [b("hard_gai"), "contract", "svc", str(PORT)], timeout=10)


def case_ghbn_r() -> None:
    """Item 7b: gethostbyname_r / gethostbyname2_r with every buffer length 1..4096 (one `H` line
    each: return code, *h_errnop, answer, canary), after a failover (so dnsfo permutes every
    answer, winner first). Runs: ghbnr.dnsfo, ghbnr.plain."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        both("ghbnr", [b("hard_gai"), "ghbnr", "svc", str(PORT)], timeout=30)


VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--child-silent-after-fork=yes", "--trace-children=no"]


def case_lookup_valgrind() -> None:
    """Item 7c: lookup/free rounds with dnsfo preloaded: 10,000 natively (run lookups.native: its
    LOOP line with heap figures), and 4,000 under valgrind memcheck (run lookups.valgrind;
    valgrind is ~50x slower). Fact `missing` when valgrind is not installed."""
    build(["hard_gai"])
    H.enter_namespace()
    with World(GAI_NAMES):
        run("lookups.native", [b("hard_gai"), "loop", "svc", str(PORT), "10000"], timeout=60)
        if not shutil.which("valgrind"):
            fact("missing", "valgrind not installed")
            return
        env = {"VALGRIND_LIB_PRELOAD_SHIM": "1"}
        run("lookups.valgrind", [*VALGRIND, b("hard_gai"), "loop", "svc", str(PORT), "4000"],
            env=env, timeout=100)


def case_reconnect() -> None:
    """Item 8: repeated connects (EALREADY after EINPROGRESS, EISCONN after success, retries
    after refusal), UDP, AF_UNIX, AF_UNSPEC, short/NULL/zero-length addresses, family
    mismatches and non-sockets: hard_reconnect's `C <case> <step>=<rc>/<errno> ...` lines.
    Runs: reconnect.dnsfo, reconnect.plain."""
    build(["hard_reconnect"])
    H.enter_namespace()
    names = {"up2": ["up:127.0.0.3", "up:127.0.0.5"],
             "dead2": ["refused:127.0.0.2", "refused:127.0.0.4"]}
    with World(names):
        both("reconnect", [b("hard_reconnect"), "up2", "dead2", str(PORT)], timeout=15)


def case_tfo() -> None:
    """Item 9: TCP Fast Open (sendto MSG_FASTOPEN, TCP_FASTOPEN_CONNECT) to the dead address of a
    name whose live winner dnsfo already knows (hard_tfo: ORDER0, SENDTO, TFOC, TFOC_NB, ORDER1,
    AFTER lines). Runs: tfo.dnsfo, tfo.plain."""
    build(["hard_tfo"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        both("tfo", [b("hard_tfo"), "svc", str(PORT)], timeout=15)


CASES = {"gai_contract": case_gai_contract, "ghbn_r": case_ghbn_r,
         "lookup_valgrind": case_lookup_valgrind, "reconnect": case_reconnect, "tfo": case_tfo}
