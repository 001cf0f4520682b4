"""Runs with scenario facts: a Result with extra keys (`Run`), an interactive client that is
told to go on once it printed READY (`run_interactive`), and one plain run reported under a
label (`run_once`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from harness.base import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403
from harness.runs import *  # noqa: F401,F403


@dataclasses.dataclass
class Run(Result):
    """hermetic's Result plus scenario facts reported in the run's own section."""
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {**super().fields(), **self.extra}


def _env_for(preload: bool, extra: dict[str, str], log_file: Path | None):
    full = clean_env()
    if preload:
        full["LD_PRELOAD"] = str(lib_path())
    full.update(extra)
    if log_file is not None:
        full["DNSFO_LOG_FILE"] = str(log_file)
    return full


def run_interactive(label: str, cmd: list[str], variant: str, env: dict[str, str], on_ready,
                    ready_timeout: float, go_timeout: float | None = None,
                    log_file: Path | None = None) -> Run:
    """Run cmd (own process group); when it prints READY call on_ready(), then send it a line
    (and close its stdin). Variant kinds are hermetic's (plain, dnsfo, disable, log); the run is
    reported as section `label`.

    Killed `ready_timeout` s after start; with `go_timeout`, a client that got READY is instead
    killed `go_timeout` s after the line was sent (so the time on_ready() takes counts against
    neither). `log_file`: where a `log` variant's DNSFO_LOG_FILE goes (reported as `log`).
    """
    preload, vextra, want_log = VARIANTS[variant]
    extra = {**env, **vextra}
    timeout = ready_timeout + (go_timeout or 0.0)
    res = Run(variant=label, cmd=cmd, preload=preload, env=extra, timeout=timeout)
    if preload and not lib_path().exists():
        res.skipped = f"library not found: {lib_path()}"
        return res
    log_file = log_file if want_log else None
    full = _env_for(preload, extra, log_file)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full, start_new_session=True)
    track_client(p.pid)
    lines: queue.Queue = queue.Queue()
    out_lines: list[str] = []
    err: list[bytes] = []

    def read_out() -> None:
        for raw in p.stdout:  # ends at EOF: when the client exits or is killed
            lines.put(raw.decode(errors="backslashreplace"))
        lines.put(None)

    def read_err() -> None:
        err.append(p.stderr.read())

    readers = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    for t in readers:
        t.start()
    deadline = t0 + ready_timeout
    ready = False
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            out_lines.append(line)
            if line.strip() == "READY" and not ready:
                ready = True
                t_ready = time.monotonic()
                res.extra["ready_ms"] = str(int((t_ready - t0) * 1000))
                res.extra.update(on_ready() or {})
                res.extra["after_ready_t"] = repr(t_ready)
                with contextlib.suppress(OSError):
                    p.stdin.write(b"go\n")
                    p.stdin.close()
                if go_timeout is not None:
                    deadline = time.monotonic() + go_timeout
        try:
            p.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            res.timed_out = True
    finally:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
        untrack_client(p.pid)
        for t in readers:
            t.join(timeout=5)
        with contextlib.suppress(OSError):
            p.stdin.close()
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            out_lines.append(line)
    res.elapsed_ms = int((time.monotonic() - t0) * 1000)
    if p.returncode is not None and p.returncode < 0 and not res.timed_out:
        res.signal = -p.returncode
    if not res.timed_out and p.returncode is not None and p.returncode >= 0:
        res.exit = p.returncode
    res.stdout = "".join(out_lines)
    res.stderr = b"".join(err).decode(errors="backslashreplace")
    res.extra["ready"] = "1" if ready else "0"
    if log_file is not None:
        with contextlib.suppress(OSError):
            res.log = log_file.read_text(errors="backslashreplace")
    return res


def run_once(cmd: list[str], *, variant: str, env: dict[str, str], timeout: float,
             workdir: Path, label: str) -> Run:
    """One non-interactive client run (hermetic's run_client), reported as section `label`."""
    preload, vextra, want_log = VARIANTS[variant]
    log = workdir / f"dnsfo-{label}.log" if want_log else None
    r = run_client(cmd, preload=preload, env={**env, **vextra}, timeout=timeout,
                     variant=label, log_file=log)
    return Run(**dataclasses.asdict(r))


