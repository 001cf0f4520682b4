#!/usr/bin/env python3
"""Stale-DNS and shared-cache end-to-end scenarios for dnsfo (issue 7), standard library only.

Built on scripts/lib/hermetic.py (private namespace, /etc/hosts, up/refused/silent servers,
clean client environment, output format) and its DNS part (scripts/lib/harness/dns.py:
`DnsServer`, a tiny authoritative DNS server on 127.0.0.1:53 whose table a scenario changes at
run time, logging every query so a test can prove a re-resolution went through DNS; the
namespace's resolv.conf and `hosts: files dns`, checked with `getent hosts` before anything
runs); this file adds:

* interactive clients (tests/e2e/clients/stale_*): resolve once, connect, print READY, wait for a
  line on stdin, connect AGAIN to the address resolved before; the scenario moves the record and
  kills the old server in between;
* shared-cache scenarios: two processes with the same DNSFO_CACHE_DIR, trusted and untrusted
  caches, a cache naming an address the resolver no longer returns, DNSFO_CACHE=0.

CLI (tests/stale_dns.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/dnsstale.py run stale-gai [--variant plain --variant dnsfo --variant log]
    python3 tests/e2e/dnsstale.py run cache-untrusted
    python3 tests/e2e/dnsstale.py scenarios                 # list them
    python3 tests/e2e/dnsstale.py build-clients
    python3 tests/e2e/dnsstale.py serve --table t.json --ip 127.0.0.1 --port 5353 --lifetime 60

Only loopback addresses are used; every server and every client run has a hard lifetime, and a
watchdog bounds each scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (namespace, servers, clean_env, Result, emit)
from hermetic import (DNS_TTL, DnsServer, Run, check_getent, run_interactive,  # noqa: E402
                      run_once, setup_dns_namespace)

SRC = HERE / "clients"
BIN = H.BIN_DIR
PORT = H.DEFAULT_PORT
DNS_NAME = "svc.test"  # served by DnsServer only, never in /etc/hosts
HOSTS_NAME = "svc"  # the cache scenarios' name, in /etc/hosts only
SILENT_MIN_MS = 200  # a failover past a silent address costs the attempt delay (250 ms)
FOREIGN_ENV = "DNSSTALE_FOREIGN_DIR"  # a cache dir owned by another uid, prepared outside the ns

STALE_C = ("stale_ghbn",)


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

def build(which: list[str] | None = None) -> None:
    """Compile the stale_* C clients into target/e2e-bin if stale; safe in parallel."""
    H.build({c: H.Build((f"{c}.c",)) for c in STALE_C}, which)


STALE_CLIENTS = {
    "python": [sys.executable, str(SRC / "stale_gai.py")],
    "c-ghbn": [str(BIN / "stale_ghbn")],
}
TIMED_CLIENT = [sys.executable, str(SRC / "stale_timed.py")]


# --------------------------------------------------------------------------------------------
# Stale-DNS scenarios
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Stale:
    """DNS serves `before` (all up) while the client resolves and connects once; then DNS moves
    to `after` (up), every `before` address dies as `dies` says (refused/silent), and the client
    connects again to the address it resolved first. An empty `after` deletes the name
    (NXDOMAIN)."""
    client: str
    before: list[str]
    after: list[str]
    dies: dict[str, str]
    doc: str
    # the DNS server the system resolver (glibc) asks keeps serving `before`; a second server
    # on this ip:port (given to dnsfo as DNSFO_NAMESERVER) serves `after`
    nameserver: str | None = None


STALE = {
    "stale-gai": Stale("python", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                       "python getaddrinfo; record moves .2 -> .3, .2 refuses"),
    "stale-ghbn": Stale("c-ghbn", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                        "C gethostbyname; record moves .2 -> .3, .2 refuses"),
    "stale-multi": Stale("python", ["127.0.0.2", "127.0.0.3"], ["127.0.0.4"],
                         {"127.0.0.2": "refused", "127.0.0.3": "silent"},
                         "two addresses die (.2 refused, .3 silent); DNS moves to .4"),
    "stale-nameserver": Stale("python", ["127.0.0.2"], ["127.0.0.3"], {"127.0.0.2": "refused"},
                              "system DNS keeps the stale .2; DNSFO_NAMESERVER=127.0.0.53:5353 "
                              "serves .3", nameserver="127.0.0.53:5353"),
    "stale-gone": Stale("python", ["127.0.0.2"], [], {"127.0.0.2": "refused"},
                        "the name is deleted (NXDOMAIN) and .2 refuses: nowhere to go"),
}


def stale_variant(sc: Stale, variant: str, timeout: float, workdir: Path, lifetime: float) -> Run:
    """One run of a stale scenario with fresh servers and a fresh DNS table."""
    servers: list = []
    dns = DnsServer(lifetime=lifetime, table={DNS_NAME: sc.before})
    alt = None
    env: dict[str, str] = {}
    try:
        if sc.nameserver:
            ip, _, port = sc.nameserver.rpartition(":")
            alt = DnsServer(ip=ip, port=int(port), lifetime=lifetime, table={DNS_NAME: sc.before})
            env["DNSFO_NAMESERVER"] = sc.nameserver
        up_before = {ip: H.UpServer(ip, PORT, lifetime) for ip in sc.before}
        servers += up_before.values()
        for ip in sc.after:
            servers.append(H.UpServer(ip, PORT, lifetime))
        facts: dict[str, str] = {"getent_before": check_getent(dns, DNS_NAME, sc.before)}
        moved_at = [0.0]

        def move() -> dict[str, str]:
            # the service moves: new records, the old servers die
            if sc.after:
                (alt or dns).set(DNS_NAME, sc.after)
            else:
                (alt or dns).remove(DNS_NAME)
            silent = []
            for ip, how in sc.dies.items():
                up_before[ip].stop()
                if how == "silent":
                    s = H.SilentServer(ip, PORT, lifetime)
                    servers.append(s)
                    silent.append(s)
            out = {"blackholes_after_move": H.verify_silent(silent)}
            for ip, how in sc.dies.items():
                if how == "refused":
                    with socket.socket() as probe:
                        probe.settimeout(2)
                        err = probe.connect_ex((ip, PORT))
                    if err != 111:
                        raise H.HarnessError(f"{ip}:{PORT} should refuse now, connect_ex={err}")
            out["getent_after"] = subprocess.run(
                ["getent", "hosts", DNS_NAME], capture_output=True, text=True,
                timeout=10).stdout.strip().replace("\n", " | ")
            moved_at[0] = time.monotonic()
            return out

        cmd = [*STALE_CLIENTS[sc.client], DNS_NAME, str(PORT)]
        r = run_interactive(variant, cmd, variant, env, move, timeout,
                            log_file=workdir / f"dnsfo-{variant}.log")
        r.extra.update(facts)
        if moved_at[0]:
            after = dns.queries(DNS_NAME, since=moved_at[0])
            r.extra["dns_after_move"] = DnsServer.describe(after)
            r.extra["dns_after_move_count"] = str(len(after))
            if alt is not None:
                alt_q = alt.queries(DNS_NAME, since=moved_at[0])
                r.extra["alt_dns_after_move"] = DnsServer.describe(alt_q)
                r.extra["alt_dns_after_move_count"] = str(len(alt_q))
        r.extra["accepted"] = " ".join(f"{s.ip}={s.accepted}" for s in servers
                                       if isinstance(s, H.UpServer))
        r.extra.pop("after_ready_t", None)
        return r
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        dns.stop()
        if alt is not None:
            alt.stop()


def run_stale(name: str, variants: list[tuple[str, float]], info: dict[str, str],
              workdir: Path) -> list[Run]:
    sc = STALE[name]
    info.update(setup_dns_namespace(workdir, []))
    info["scenario"] = sc.doc
    info["dns_name"] = DNS_NAME
    lifetime = sum(t for _, t in variants) + 20
    return [stale_variant(sc, v, t, workdir, lifetime) for v, t in variants]


# --------------------------------------------------------------------------------------------
# Shared-cache scenarios (names from /etc/hosts; no DNS)
# --------------------------------------------------------------------------------------------

def private_dir(parent: Path, name: str) -> Path:
    d = parent / name
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def snapshot(*roots: Path) -> str:
    """Everything about the trees under `roots` (lstat, not following links): names, types, modes,
    owners, sizes, inodes, mtimes, link targets, file content hashes."""
    out = []
    for root in roots:
        paths = [root]
        if root.is_dir() and not root.is_symlink():
            paths += sorted(root.rglob("*"))
        for p in paths:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                out.append(f"{p} missing")
                continue
            desc = f"{p} mode={st.st_mode:o} uid={st.st_uid} ino={st.st_ino} size={st.st_size}" \
                   f" mtime={st.st_mtime_ns}"
            if p.is_symlink():
                desc += f" -> {os.readlink(p)}"
            elif p.is_file():
                with contextlib.suppress(OSError):
                    desc += f" sha={hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"
            out.append(desc)
    return "\n".join(out)


def read_text(p: Path) -> str:
    try:
        return p.read_text()
    except OSError as e:
        return f"<{e.strerror}>"


def winner_line(ip: str, ttl_s: int = 600) -> str:
    return f"{HOSTS_NAME} {PORT} {ip} {int(time.time() * 1000) + ttl_s * 1000}\n"


class CacheScenario:
    """Hosts file: HOSTS_NAME -> [silent .2, up .3] (+ extra servers); timed python client."""

    def __init__(self, workdir: Path, variant: str, timeout: float, lifetime: float):
        self.workdir, self.variant, self.timeout = workdir, variant, timeout
        self.servers: list = []
        self.runs: list[Run] = []
        self.lifetime = lifetime
        self.tmp = Path(tempfile.mkdtemp(prefix="dnsfo-stale-cache-"))
        os.chmod(self.tmp, 0o700)

    def start(self, info: dict[str, str], extra_up: tuple[str, ...] = ()) -> None:
        H.setup_namespace([("127.0.0.2", HOSTS_NAME), ("127.0.0.3", HOSTS_NAME)], self.workdir)
        silent = H.SilentServer("127.0.0.2", PORT, self.lifetime)
        self.servers.append(silent)
        self.up = H.UpServer("127.0.0.3", PORT, self.lifetime)
        self.servers.append(self.up)
        self.extra = {ip: H.UpServer(ip, PORT, self.lifetime) for ip in extra_up}
        self.servers += self.extra.values()
        info["layout"] = f"{HOSTS_NAME}: silent:127.0.0.2 up:127.0.0.3 (/etc/hosts)" + \
            "".join(f"; not in hosts, recording up server {ip}" for ip in extra_up)
        info["blackholes"] = H.verify_silent([silent])
        info["gai_inet"] = H.gai(HOSTS_NAME, PORT, socket.AF_INET)

    def client(self, label: str, cache_dir: Path | str | None, env: dict[str, str] | None = None,
               watch: tuple[Path, ...] = (), pick: str | None = None) -> Run:
        e = dict(env or {})
        if cache_dir is not None:
            e["DNSFO_CACHE_DIR"] = str(cache_dir)
        before = snapshot(*watch) if watch else ""
        r = run_once([*TIMED_CLIENT, HOSTS_NAME, str(PORT), *([pick] if pick else [])],
                     variant=self.variant, env=e,
                     timeout=self.timeout, workdir=self.workdir, label=label)
        if watch:
            after = snapshot(*watch)
            r.extra["watched_before"] = before
            r.extra["watched_after"] = after
            r.extra["watched_unchanged"] = "1" if before == after else "0"
        if cache_dir is not None:
            d = Path(cache_dir)
            r.extra["cache_dir"] = str(d)
            r.extra["cache_listing"] = snapshot(d)
            if d.is_dir():
                r.extra["cache_file"] = read_text(d / "winners")
        self.runs.append(r)
        return r

    def close(self) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def cache_fast(cs: CacheScenario, info: dict[str, str]) -> None:
    """Process one pays the silent-first failover and writes the cache; process two, same dir,
    connects at once (its lookup lists the winner first); process three, same dir, insists on
    the dead first address and still connects at once; a control process with an empty cache
    dir pays again."""
    cs.start(info)
    shared = private_dir(cs.tmp, "shared")
    cs.client("one", shared)
    cs.client("two", shared)
    cs.client("two-dead-address", shared, pick="127.0.0.2")
    cs.client("control", private_dir(cs.tmp, "empty"))


def _seed(cs: CacheScenario) -> str:
    """A trusted cache written by a real process one; returns its winners file text."""
    seed = private_dir(cs.tmp, "seed")
    r = cs.client("seed", seed)
    text = read_text(seed / "winners")
    if not (seed / "winners").is_file():
        r.extra["note"] = "process one wrote no winners file; untrusted copies use a synthetic one"
        text = winner_line("127.0.0.3")
    return text


def _cache_with(parent: Path, text: str, dir_mode: int = 0o700, file_mode: int = 0o600) -> Path:
    parent.mkdir(mode=0o700)
    f = parent / "winners"
    f.write_text(text)
    os.chmod(f, file_mode)
    os.chmod(parent, dir_mode)
    return parent


def cache_untrusted(cs: CacheScenario, info: dict[str, str]) -> None:
    """The same winners text, trusted (control: fast) and in untrusted places (each must pay the
    failover again and leave everything as it was)."""
    cs.start(info)
    text = _seed(cs)
    info["seed_text"] = text
    t = cs.tmp
    ok = _cache_with(t / "ok", text)
    cs.client("trusted", ok)
    gw = _cache_with(t / "file-gw", text, file_mode=0o620)
    cs.client("file-group-writable", gw, watch=(gw,))
    ww = _cache_with(t / "file-ww", text, file_mode=0o602)
    cs.client("file-world-writable", ww, watch=(ww,))
    dgw = _cache_with(t / "dir-gw", text, dir_mode=0o770)
    cs.client("dir-group-writable", dgw, watch=(dgw,))
    real = _cache_with(t / "real", text)
    link = t / "link"
    link.symlink_to(real)
    cs.client("dir-symlink", link, watch=(link, real))
    preal = t / "preal"
    preal.mkdir(mode=0o700)
    _cache_with(preal / "cache", text)
    plink = t / "plink"
    plink.symlink_to(preal)
    cs.client("parent-symlink", plink / "cache", watch=(plink, preal))
    fl = t / "file-link"
    fl.mkdir(mode=0o700)
    target = _cache_with(t / "target", text)
    (fl / "winners").symlink_to(target / "winners")
    cs.client("file-symlink", fl, watch=(fl, target))
    foreign = os.environ.get(FOREIGN_ENV, "")
    if foreign:
        cs.client("foreign-owner", Path(foreign), watch=(Path(foreign),))
        info["foreign_owner"] = f"{foreign} (uid {os.lstat(foreign).st_uid} in the namespace)"
    else:
        info["foreign_owner"] = "skipped: needs root outside the namespace to chown a directory"


def cache_stale_addr(cs: CacheScenario, info: dict[str, str]) -> None:
    """The cache names 127.0.0.9 (a recording up server) for the name, but /etc/hosts does not:
    the client must never contact .9 and still reach .3 (paying the failover)."""
    cs.start(info, extra_up=("127.0.0.9",))
    d = _cache_with(cs.tmp / "stale", winner_line("127.0.0.9"))
    info["cache_text"] = read_text(d / "winners")
    r = cs.client("stale", d)
    r.extra["accepted_127.0.0.9"] = str(cs.extra["127.0.0.9"].accepted)
    r.extra["accepted_127.0.0.3"] = str(cs.up.accepted)
    # the stale .9 line first, then a good .3 line: .3 is used at once, .9 still never contacted
    both = _cache_with(cs.tmp / "stale-first", winner_line("127.0.0.9") + winner_line("127.0.0.3"))
    r2 = cs.client("stale-and-good", both)
    r2.extra["cache_text_before"] = winner_line("127.0.0.9") + winner_line("127.0.0.3")
    r2.extra["accepted_127.0.0.9"] = str(cs.extra["127.0.0.9"].accepted)


def cache_off(cs: CacheScenario, info: dict[str, str]) -> None:
    """DNSFO_CACHE=0: nothing written into an empty cache dir, a valid cache not read (the client
    pays the failover) and left untouched; control: cache on writes the file."""
    cs.start(info)
    on = private_dir(cs.tmp, "on")
    cs.client("on", on)
    empty = private_dir(cs.tmp, "off-empty")
    cs.client("off-empty", empty, env={"DNSFO_CACHE": "0"}, watch=(empty,))
    valid = _cache_with(cs.tmp / "off-valid", winner_line("127.0.0.3"))
    cs.client("off-valid", valid, env={"DNSFO_CACHE": "0"}, watch=(valid,))


CACHE = {
    "cache-fast": cache_fast,
    "cache-untrusted": cache_untrusted,
    "cache-stale-addr": cache_stale_addr,
    "cache-off": cache_off,
}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("dnsstale: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def prepare_foreign() -> Path | None:
    """Outside the namespace, as real root only: a cache dir (0755, file 0644, a valid winner)
    owned by uid 65534, so inside the namespace it belongs to somebody else."""
    if os.geteuid() != 0:
        return None
    d = Path(tempfile.mkdtemp(prefix="dnsfo-stale-foreign-"))
    (d / "winners").write_text(winner_line("127.0.0.3"))
    os.chmod(d / "winners", 0o644)
    os.chmod(d, 0o755)
    try:
        os.chown(d / "winners", 65534, 65534)
        os.chown(d, 65534, 65534)
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
        return None
    return d


def outer(argv: list[str], scenario: str, budget: float) -> int:
    """Run this script inside `unshare -rmn` as a child (so we can clean up after it)."""
    if scenario in STALE and STALE[scenario].client == "c-ghbn":
        build()
    env = dict(os.environ)
    env[H.NS_MARK] = H.ns_ids()
    foreign = prepare_foreign() if scenario == "cache-untrusted" else None
    if foreign is not None:
        env[FOREIGN_ENV] = str(foreign)
    sys.stdout.flush()
    try:
        p = subprocess.Popen(["unshare", "-rmn", "--", sys.executable,
                              str(Path(__file__).resolve()), *argv], env=env,
                             start_new_session=True)
        try:
            return p.wait(timeout=budget + 15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            print("dnsstale: error: scenario did not finish in time", file=sys.stderr)
            return 2
    finally:
        if foreign is not None:
            shutil.rmtree(foreign, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="dnsstale.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", choices=[*STALE, *CACHE])
    run.add_argument("--variant", action="append", default=[],
                     help="stale-*: plain|dnsfo|disable|log[:TIMEOUT_S] (default plain, dnsfo); "
                          "cache-*: the one variant every process runs as (default dnsfo)")
    run.add_argument("--timeout", type=float, default=8.0, help="per client run, s")
    sub.add_parser("scenarios")
    sub.add_parser("build-clients")
    srv = sub.add_parser("serve", help="run the DNS server alone (loopback only)")
    srv.add_argument("--table", type=Path, required=True, help='JSON {"name": ["ip", ...]}')
    srv.add_argument("--ip", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=5353)
    srv.add_argument("--ttl", type=int, default=DNS_TTL)
    srv.add_argument("--lifetime", type=float, default=60.0)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "scenarios":
            for k, v in STALE.items():
                print(f"{k:18} {v.doc}")
            for k, f in CACHE.items():
                print(f"{k:18} {(f.__doc__ or '').split(chr(10))[0]}")
            return 0
        if args.cmd == "build-clients":
            build()
            print(f"stale clients built in {BIN}")
            return 0
        if args.cmd == "serve":
            dns = DnsServer(args.ip, args.port, args.ttl, args.lifetime, table_file=args.table)
            print(f"serving {args.table} on {args.ip}:{args.port} for {args.lifetime:.0f}s",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(args.lifetime)
            dns.stop()
            return 0
        stale = args.scenario in STALE
        default = ["plain", "dnsfo"] if stale else ["dnsfo"]
        variants = [H.parse_variant(v, args.timeout) for v in (args.variant or default)]
        if not stale and len(variants) != 1:
            ap.error("cache scenarios take one --variant")
        per_run = 12 if not stale else 1  # cache scenarios run up to ~11 processes
        budget = sum(t for _, t in variants) * per_run + 20
        if not H.in_namespace():
            return outer(argv, args.scenario, budget)
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        workdir = Path(tempfile.mkdtemp(prefix="dnsfo-stale-"))
        info = {**H.lib_facts(), "scenario_name": args.scenario}
        try:
            if stale:
                runs = run_stale(args.scenario, variants, info, workdir)
            else:
                (kind, timeout), = variants
                cs = CacheScenario(workdir, kind, timeout, budget)
                try:
                    CACHE[args.scenario](cs, info)
                finally:
                    cs.close()
                runs = cs.runs
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.alarm(0)
        H.emit(info, runs, False)
        return 0
    except H.HarnessError as e:
        print(f"dnsstale: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
