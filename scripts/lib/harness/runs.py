"""Running one client: its environment (with or without the library), a hard timeout on
its own process group, what it printed and the TCP counters it moved; the variants.
"""

from __future__ import annotations

import atexit

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.base import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403

@dataclasses.dataclass
class Result:
    variant: str
    cmd: list[str]
    preload: bool
    env: dict[str, str]
    timeout: float
    exit: int | None = None  # None when killed on timeout
    signal: int | None = None
    timed_out: bool = False
    elapsed_ms: int = 0
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "cmd": " ".join(self.cmd),
            "preload": "1" if self.preload else "0",
            "env": " ".join(f"{k}={v}" for k, v in sorted(self.env.items())),
            "timeout_ms": str(int(self.timeout * 1000)),
            "exit": "" if self.exit is None else str(self.exit),
            "signal": "" if self.signal is None else str(self.signal),
            "timed_out": "1" if self.timed_out else "0",
            "elapsed_ms": str(self.elapsed_ms),
            "stdout": self.stdout,
            "stderr": self.stderr,
            "log": self.log,
            "counters": " ".join(f"{k.split(':')[1]}={v}" for k, v in self.counters.items()),
            "skipped": self.skipped,
        }


_live_pgids: set[int] = set()
_live_lock = threading.Lock()


def track_client(pgid: int) -> None:
    """A client started in its own process group outside run_client: killed with the others
    when a watchdog fires."""
    with _live_lock:
        _live_pgids.add(pgid)


def untrack_client(pgid: int) -> None:
    with _live_lock:
        _live_pgids.discard(pgid)


def kill_all_clients() -> None:
    with _live_lock:
        for pg in list(_live_pgids):
            with contextlib.suppress(OSError):
                os.killpg(pg, signal.SIGKILL)


_cache_dir: str | None = None


def cache_dir() -> str:
    """A private DNSFO_CACHE_DIR for this harness process: runs never share winners with other
    tests or with the user's real cache (a test that wants sharing sets its own)."""
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = tempfile.mkdtemp(prefix="dnsfo-cache-")
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def clean_env() -> dict[str, str]:
    """The caller's environment without LD_PRELOAD, DNSFO_* and the harness's own marker, with a
    private winner cache."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("DNSFO_")}
    env["DNSFO_CACHE_DIR"] = cache_dir()
    return env


def run_client(cmd: list[str], *, preload: bool, env: dict[str, str] | None = None,
               timeout: float = 10.0, variant: str = "run", log_file: Path | None = None) -> Result:
    """Run cmd (own process group) with or without LD_PRELOAD of the library; kill on timeout."""
    extra = dict(env or {})
    res = Result(variant=variant, cmd=cmd, preload=preload, env=extra, timeout=timeout)
    full = clean_env()
    if preload:
        lib = lib_path()
        if not lib.exists():
            res.skipped = f"library not found: {lib}"
            return res
        full["LD_PRELOAD"] = str(lib)
    full.update(extra)
    if log_file is not None:
        full["DNSFO_LOG_FILE"] = str(log_file)
    before = read_counters() if in_namespace() else {}
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full, start_new_session=True)
    with _live_lock:
        _live_pgids.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        res.timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
    finally:
        with _live_lock:
            _live_pgids.discard(p.pid)
        with contextlib.suppress(OSError):  # leftovers of the client's process group
            os.killpg(p.pid, signal.SIGKILL)
    res.elapsed_ms = int((time.monotonic() - t0) * 1000)
    if p.returncode is not None and p.returncode < 0:
        res.signal = -p.returncode
    if not res.timed_out and p.returncode is not None and p.returncode >= 0:
        res.exit = p.returncode
    res.stdout = out.decode(errors="backslashreplace")
    res.stderr = err.decode(errors="backslashreplace")
    if before:
        res.counters = counter_delta(before, read_counters())
    if log_file is not None:
        with contextlib.suppress(OSError):
            res.log = log_file.read_text(errors="backslashreplace")
    return res


VARIANTS = {
    # kind: (preload, extra env, log file)
    "plain": (False, {}, False),
    "dnsfo": (True, {}, False),
    "disable": (True, {"DNSFO_DISABLE": "1"}, False),
    "log": (True, {"DNSFO_LOG": "debug"}, True),
}


def parse_variant(spec: str, default_timeout: float) -> tuple[str, float]:
    kind, _, t = spec.partition(":")
    if kind not in VARIANTS:
        raise HarnessError(f"unknown variant {kind!r}; known: {', '.join(VARIANTS)}")
    return kind, float(t) if t else default_timeout
