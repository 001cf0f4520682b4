"""The private namespace: entering it (`unshare -rmn`, re-executing the caller), its hosts
file and loopback addresses, and its TCP counters.
"""

from __future__ import annotations


import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from harness.base import *  # noqa: F401,F403

def ns_ids() -> str:
    return f"{os.readlink('/proc/self/ns/net')}|{os.readlink('/proc/self/ns/mnt')}"


def in_namespace() -> bool:
    """True in a process that enter_namespace() re-executed into a private net + mount namespace."""
    mark = os.environ.get(NS_MARK)
    if not mark:
        return False
    outer_net, _, outer_mnt = mark.partition("|")
    net, _, mnt = ns_ids().partition("|")
    return net != outer_net and mnt != outer_mnt


def enter_namespace(argv: list[str] | None = None) -> None:
    """Re-exec this program (sys.executable + argv, default sys.argv) under `unshare -rmn`.

    Returns only when already inside such a namespace.
    """
    if in_namespace():
        return
    if os.environ.get(NS_MARK):
        raise HarnessError("namespace marker set but the namespaces are not private; refusing")
    if not shutil.which("unshare"):
        raise HarnessError("unshare(1) not found")
    env = dict(os.environ)
    env[NS_MARK] = ns_ids()
    args = argv if argv is not None else sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "-rmn", "--", sys.executable, *args], env)


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


def setup_namespace(hosts: list[tuple[str, str]], workdir: Path) -> None:
    """Inside the private namespace: lo up, extra IPv6 addresses, /etc/hosts and /etc/gai.conf.

    hosts: (ip, name) lines in order. Never touches the real /etc: refuses outside a namespace.
    """
    if not in_namespace():
        raise HarnessError("setup_namespace() outside a private namespace; refusing to touch /etc")
    _run(["ip", "link", "set", "lo", "up"])
    for ip in sorted({ip for ip, _ in hosts if ":" in ip and ip != "::1"}):
        _run(["ip", "-6", "addr", "add", f"{ip}/128", "dev", "lo", "nodad"])
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             f"127.0.0.1 {socket.gethostname()}"]
    lines += [f"{ip} {name}" for ip, name in hosts]
    hosts_file = workdir / "hosts"
    hosts_file.write_text("\n".join(lines) + "\n")
    _run(["mount", "--bind", str(hosts_file), "/etc/hosts"])
    # glibc's RFC 3484 defaults, written out so the host's gai.conf cannot reorder our names.
    gai = workdir / "gai.conf"
    gai.write_text("# dnsfo hermetic test: glibc defaults (RFC 3484)\n")
    if os.path.exists("/etc/gai.conf"):
        _run(["mount", "--bind", str(gai), "/etc/gai.conf"])


def read_counters() -> dict[str, int]:
    """TCP counters of the current network namespace (/proc/net/snmp and /proc/net/netstat)."""
    out: dict[str, int] = {}
    for f in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = Path(f).read_text().splitlines()
        for head, vals in zip(lines[0::2], lines[1::2]):
            keys, nums = head.split(), vals.split()
            for k, v in zip(keys[1:], nums[1:]):
                with contextlib.suppress(ValueError):
                    out[keys[0] + k] = int(v)
    return out


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}
