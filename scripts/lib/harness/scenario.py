"""One scenario: a namespace with a name of several addresses and its servers, and the
clients run in it.
"""

from __future__ import annotations


import dataclasses
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from harness.base import *  # noqa: F401,F403
from harness.clients import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403
from harness.servers import *  # noqa: F401,F403
from harness.runs import *  # noqa: F401,F403

@dataclasses.dataclass
class Scenario:
    """A name with an ordered list of (kind, ip) addresses, kind in up/refused/silent."""
    addrs: list[tuple[str, str]]
    name: str = DEFAULT_NAME
    port: int = DEFAULT_PORT
    http: bool = False
    lifetime: float = 60.0

    def __post_init__(self):
        self.servers: list = []
        self.info: dict[str, str] = {}
        self.workdir: Path | None = None

    def __enter__(self) -> "Scenario":
        for kind, ip in self.addrs:
            if kind not in ("up", "refused", "silent"):
                raise HarnessError(f"unknown address kind {kind!r} (up, refused, silent)")
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise HarnessError(f"{ip!r} is not an IP address") from None
            # 127/8, ::1, or an IPv6 address that setup_namespace() adds to lo of this namespace
            if not (addr.is_loopback or (addr.version == 6 and addr.ipv4_mapped is None
                                         and not addr.is_multicast and not addr.is_unspecified)):
                raise HarnessError(f"{ip}: only loopback addresses (127/8, ::1) or IPv6 "
                                   "addresses added to lo inside the namespace are allowed")
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-hermetic-"))
        setup_namespace([(ip, self.name) for _, ip in self.addrs], self.workdir)
        silent = []
        for kind, ip in self.addrs:
            if kind == "up":
                self.servers.append(UpServer(ip, self.port, self.lifetime, http=self.http))
            elif kind == "silent":
                srv = SilentServer(ip, self.port, self.lifetime)
                self.servers.append(srv)
                silent.append(srv)
        self.info["blackholes"] = verify_silent(silent)
        self.info["layout"] = " ".join(f"{k}:{ip}" for k, ip in self.addrs)
        self.info["getent"] = _getent(self.name)
        # the order first-address clients see: getaddrinfo(AF_UNSPEC) and (AF_INET)
        self.info["gai"] = gai(self.name, self.port, socket.AF_UNSPEC)
        self.info["gai_inet"] = gai(self.name, self.port, socket.AF_INET)
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run_variants(self, cmd_template: list[str], variants: list[tuple[str, float]],
                     env: dict[str, str] | None = None, serial: bool = False) -> list[Result]:
        """Run the client once per variant; in parallel unless serial (counters need serial)."""
        cmd = expand(cmd_template, self.name, self.port)
        results: list[Result | None] = [None] * len(variants)

        def one(i: int, kind: str, timeout: float) -> None:
            preload, extra, want_log = VARIANTS[kind]
            log = (self.workdir / f"dnsfo-{i}-{kind}.log") if want_log else None
            results[i] = run_client(cmd, preload=preload, env={**(env or {}), **extra},
                                    timeout=timeout, variant=kind, log_file=log)

        if serial:
            for i, (kind, t) in enumerate(variants):
                one(i, kind, t)
        else:
            threads = [threading.Thread(target=one, args=(i, k, t)) for i, (k, t) in
                       enumerate(variants)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return [r for r in results if r is not None]


def gai(name: str, port: int, family: int) -> str:
    try:
        return " ".join(a[4][0] for a in socket.getaddrinfo(name, port, family, socket.SOCK_STREAM))
    except OSError as e:
        return f"error: {e}"


def _getent(name: str) -> str:
    r = subprocess.run(["getent", "ahosts", name], capture_output=True, text=True, timeout=10)
    return r.stdout
