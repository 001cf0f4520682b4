"""Processes: fork with busy threads, spawn and exec chains, fds in children (issue 5, item 5)."""

from __future__ import annotations

import sys

from common import PORT, REFUSED_FIRST, SILENT_FIRST, H, World, b, both, build, run


def case_fork_busy() -> None:
    """Item 5a: fork() with 4 busy threads (resolve/setsockopt/connect/close loops); 40 children
    each resolve and fail over; then the same with daemon-style children that close every
    inherited fd first. Runs: fork.keep, fork.closeall (their FORK lines)."""
    build(["hard_fork"])
    H.enter_namespace()
    up = lambda ip, port: H.UpServer(ip, port, 90, max_conns=10**6)  # noqa: E731
    with World({"svc": REFUSED_FIRST}, up_factory=up):
        for mode in ("keep", "closeall"):
            run(f"fork.{mode}", [b("hard_fork"), "fork", "svc", str(PORT), "40", "4", mode],
                timeout=60)


def case_spawn() -> None:
    """Item 5b: posix_spawn and system() children of a busy threaded program (curl), a Python
    subprocess child, and bash -> python -> exec curl, silent first. Runs: spawn.dnsfo,
    spawn.python.dnsfo, spawn.chain.dnsfo and spawn.chain.plain (4 s)."""
    build(["hard_fork"])
    H.enter_namespace()
    py = sys.executable
    with World({"svc": SILENT_FIRST}, http=True):
        url = f"http://svc:{PORT}/"
        curl = ["curl", "-sS", "--max-time", "8", url]
        run("spawn.dnsfo", [b("hard_fork"), "spawn", "svc", str(PORT), "2", *curl], timeout=40)
        code = ("import subprocess,sys; r=subprocess.run(sys.argv[1:], capture_output=True, "
                "text=True, timeout=9); print(r.returncode, r.stdout.strip())")
        run("spawn.python.dnsfo", [py, "-c", code, *curl], timeout=20)
        chain = f"exec {py} -c 'import os,sys; os.execvp(\"curl\", sys.argv[1:])' {' '.join(curl)}"
        run("spawn.chain.dnsfo", ["bash", "-c", chain], timeout=20)
        run("spawn.chain.plain", ["bash", "-c", chain], preload=False, timeout=4)


def case_fd_leak() -> None:
    """Item 5c: the fds an exec'd child (during a background race and after it) and a fork()ed
    child see (hard_fork fds: DURING, AFTER, FORKED lines), silent first. Runs: fds.dnsfo,
    fds.plain."""
    build(["hard_fork"])
    H.enter_namespace()
    with World({"svc": SILENT_FIRST}):
        both("fds", [b("hard_fork"), "fds", "svc", str(PORT), b("hard_fork")], timeout=10)


def case_fork_stale_fds() -> None:
    """Item 5d: a forked child that closed every inherited fd (daemon style) and reopened files
    under the same numbers, then starts its own background connect. Run: stale.dnsfo (its
    STALE line)."""
    build(["hard_fork"])
    H.enter_namespace()
    with World({"svc": SILENT_FIRST, "svc2": ["silent:127.0.0.4", "up:127.0.0.5"]}):
        run("stale.dnsfo", [b("hard_fork"), "stale", "svc", "svc2", str(PORT)], timeout=15)


CASES = {"fork_busy": case_fork_busy, "spawn": case_spawn, "fd_leak": case_fd_leak,
         "fork_stale_fds": case_fork_stale_fds}
