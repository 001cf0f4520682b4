"""What bypasses libc, so dnsfo cannot see it: io_uring connects and Go (static and cgo builds).
They need liburing-dev (hard_uring.c, -luring) and golang-go (hard_go.go, built static and cgo
into target/e2e-bin, GOCACHE under target/); when one is missing the case reports the fact
`missing` and runs nothing."""

from __future__ import annotations

from pathlib import Path

from common import PORT, REFUSED_FIRST, H, World, b, both, build, fact, run

LIBURING_H = Path("/usr/include/liburing.h")


def case_io_uring() -> None:
    """io_uring connects, which dnsfo cannot see, and a libc connect after them.
    hard_uring resolves a name with getaddrinfo, connects to its first address with
    IORING_OP_CONNECT and reads with IORING_OP_RECV, then (same process) does a plain libc
    connect to that address (its FIRST, URING, LIBC lines; `URING SETUP ...` when io_uring is
    unavailable). Runs: uring.rf.dnsfo/.plain (refused first), uring.upup.dnsfo/.plain (two up
    addresses), uring.known (refused first again, the winner known from the shared cache),
    uring.log (DNSFO_LOG=debug and a fresh cache)."""
    if not LIBURING_H.exists():
        fact("missing", f"{LIBURING_H} missing: install Debian liburing-dev (.ci/run does) to "
             "build hard_uring")
        return
    build(["hard_uring"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST, "up2": ["up:127.0.0.4", "up:127.0.0.5"]}) as w:
        cmd = [b("hard_uring"), "svc", str(PORT)]
        both("uring.rf", cmd, timeout=15)
        both("uring.upup", [b("hard_uring"), "up2", str(PORT)], timeout=15)
        run("uring.known", cmd, timeout=15)
        fresh = w.workdir / "cache-log"
        fresh.mkdir()
        run("uring.log", cmd, env={"DNSFO_LOG": "debug", "DNSFO_CACHE_DIR": str(fresh)},
            timeout=15)


def build_go() -> dict[str, Path]:
    """tests/e2e/clients/hard_go.go built twice: "static" (CGO_ENABLED=0, pure Go resolver) and
    "cgo" (CGO_ENABLED=1 -tags netcgo: dynamic, libc's getaddrinfo)."""
    return {"static": H.build_go("hard_go_static", "hard_go.go", tags=("netgo",)),
            "cgo": H.build_go("hard_go_cgo", "hard_go.go", cgo=True, tags=("netcgo",))}


GO_NAMES = {"rf": REFUSED_FIRST, "dead": ["refused:127.0.0.4", "refused:127.0.0.5"],
            "ups": ["up:127.0.0.6", "up:127.0.0.7"]}


def case_go() -> None:
    """Go, static (no dnsfo inside) and cgo (dnsfo inside, connect a raw system call).
    tests/e2e/clients/hard_go.go (net.Dial with a 3 s timeout, read the banner; it prints
    `MAPS libdnsfo=true|false` on stderr from /proc/self/maps) built static (CGO_ENABLED=0:
    LD_PRELOAD ignored) and dynamic (CGO_ENABLED=1 -tags netcgo: libc's getaddrinfo, dnsfo
    loaded, but connect is a raw system call). Facts go_interp_static, go_interp_cgo (PT_INTERP,
    empty for none). Runs go.KIND.NAME.dnsfo/.plain for KIND static, cgo and the names rf
    (refused first), dead (all refused), ups (up only); go.cgo.log (DNSFO_LOG=debug,
    GODEBUG=netdns=cgo+1, name rf)."""
    if not H.go_tool():
        fact("missing", "the go toolchain is missing: install Debian golang-go (.ci/run does) to "
             "build hard_go")
        return
    outs = build_go()
    H.enter_namespace()
    for kind, exe in outs.items():
        fact(f"go_interp_{kind}", H.elf_interp(exe) or "")
    with World(GO_NAMES):
        for kind, exe in outs.items():
            for name in GO_NAMES:
                both(f"go.{kind}.{name}", [str(exe), name, str(PORT)], timeout=10)
        env = {"DNSFO_LOG": "debug", "GODEBUG": "netdns=cgo+1"}
        run("go.cgo.log", [str(outs["cgo"]), "rf", str(PORT)], env=env, timeout=10)


CASES = {"io_uring": case_io_uring, "go": case_go}
