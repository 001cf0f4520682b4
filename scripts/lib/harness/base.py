"""The harness's ground: where the repository, the library and the compiled clients are, and
the error it raises when it cannot set a scenario up.
"""

from __future__ import annotations


import os
from pathlib import Path


REPO = Path(__file__).resolve().parents[3]
CLIENT_SRC = REPO / "tests" / "e2e" / "clients"
BIN_DIR = REPO / "target" / "e2e-bin"
NS_MARK = "DNSFO_HERMETIC_NS"  # set on re-exec: "<outer net ns>|<outer mnt ns>"
DEFAULT_PORT = 7000
DEFAULT_NAME = "svc"

# TCP counters worth reporting. In a private namespace they count exactly the test's own traffic.
COUNTERS = (
    "Tcp:ActiveOpens",
    "Tcp:AttemptFails",
    "Tcp:OutRsts",
    "Tcp:RetransSegs",
    "TcpExt:ListenOverflows",
    "TcpExt:ListenDrops",
)


class HarnessError(Exception):
    """The harness itself could not set a scenario up (not a client failure)."""


def lib_path() -> Path:
    """The library under test: $DNSFO_LIB, else target/release/libdnsfo.so of this checkout."""
    env = os.environ.get("DNSFO_LIB")
    return Path(env).resolve() if env else REPO / "target" / "release" / "libdnsfo.so"


def lib_facts() -> dict[str, str]:
    """The `harness` facts every scenario reports about the library under test."""
    return {"lib": str(lib_path()), "lib_present": "1" if lib_path().exists() else "0",
            "lib_stale": "1" if lib_stale() else "0"}


def lib_stale() -> bool:
    """True when the default library is older than a Rust source of it or Cargo.toml (a hint only)."""
    lib = lib_path()
    if os.environ.get("DNSFO_LIB") or not lib.exists():
        return False
    built = lib.stat().st_mtime
    sources = [REPO / "Cargo.toml", *(REPO / "src").rglob("*.rs"), *(REPO / "crates").rglob("*.rs")]
    return any(p.stat().st_mtime > built for p in sources if p.exists())
