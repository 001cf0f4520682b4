"""Resources under `ulimit -n 64` (issue 5, item 6)."""

from __future__ import annotations

from common import PORT, H, World, b, both, build, run

FILLERS = ("0", "20", "40")


def _limit_names(n: int) -> dict[str, list[str]]:
    return {f"h{i:02d}": [("refused" if i % 2 else "silent") + f":127.0.1.{i}", f"up:127.0.2.{i}"]
            for i in range(1, n + 1)}


def case_limits() -> None:
    """Item 6: hard_limits (which sets `ulimit -n 64` itself and prints its fds BEFORE and AFTER):
    30 names x failover (blocking and non-blocking) one after the other (run limits.seq30), then
    12 simultaneous non-blocking failovers (6 refused-first, 6 silent-first) while the program
    holds 0, 20 or 40 extra fds (runs limits.race12_fillersN.dnsfo and .plain, each with a
    private, empty winner cache)."""
    build(["hard_limits"])
    H.enter_namespace()
    with World(_limit_names(30)) as w:
        # A short attempt delay: this loop is about fds under a tight limit, not about timing
        # (15 silent-first names at the default 250 ms spent 4 s waiting).
        run("limits.seq30", [b("hard_limits"), "seq", "h", "30", str(PORT)], timeout=30,
            env={"DNSFO_ATTEMPT_DELAY_MS": "50"})
        # 64 fds allowed; the program needs 3 + extras + 12, dnsfo some more per race in flight.
        for fillers in FILLERS:
            fresh = w.workdir / f"cache-race{fillers}"
            fresh.mkdir()
            env = {"DNSFO_CACHE_DIR": str(fresh)}
            # Up to 2 s for the race (a failover takes 0.25 s): under fd pressure some connects
            # stay with the kernel's silent wait.
            cmd = [b("hard_limits"), "race", "h", "12", str(PORT), fillers, "2000"]
            # Without dnsfo only its lookups are compared: it need not wait out its silent
            # connects (4 s each round, the bulk of this case's time before).
            both(f"limits.race12_fillers{fillers}", cmd, env=env, timeout=30,
                 plain_cmd=cmd[:-1] + ["0"])


CASES = {"limits": case_limits}
