#!/usr/bin/env python3
"""Supervisor end-to-end scenarios for dnsfo (issue 16: `dnsfo run --supervise`, the seccomp
user-notification supervisor for programs LD_PRELOAD cannot reach), standard library only.

Built on scripts/lib/hermetic.py (private user + mount + network namespace, /etc/hosts,
up/refused/silent servers, clean client environment, output protocol) and its DNS server
(scripts/lib/harness/dns.py). This file only RUNS things and reports what happened; the
assertions are in tests/supervise.rs.

Clients (built into target/e2e-bin, cached): tests/e2e/clients/sv_client.c (`cc -static`,
glibc's getaddrinfo, one blocking connect to the FIRST address) and tests/e2e/clients/sv_dial.go
(CGO_ENABLED=0: static, pure Go resolver; net.Dial, http.Get, LookupHost, goroutines; every
dial counts the connect attempts Go itself made, see its header). `harness c_linking` and
`harness go_linking` say what their ELF headers say (`static`: no PT_INTERP).

Scenarios (each one namespace; its runs all at once, in parallel, each with a hard timeout):

* `connect`: names with several addresses from /etc/hosts (one name per layout: rf.test refused
  first, sf.test silent first, mx.test refused/silent/refused/silent/up, v6.test refused ::2 then
  up 127.0.0.11, v6g.test refused 2001:db8::2 then up 127.0.0.16, ar.test all refused; the IPv6
  addresses are added to lo of the private namespace). glibc lists both IPv6 addresses first; Go
  sorts /etc/hosts answers by RFC 6724 itself and puts ::2 (an IPv4-compatible address,
  precedence 1) last, so v6g.test is the layout whose dead IPv6 address Go tries first. Up
  servers give `HELLO <ip>\\n` on PORT and an HTTP reply on HTTP_PORT, silent ones are
  blackholes on both. Runs `<client>.<layout>.<sv|plain>` for the clients c (sv_client first),
  go (sv_dial dial), http (sv_dial http); supervised with DNSFO_ATTEMPT_DELAY_MS=1000
  (`c.sf.sv-delay1000`); a shell that runs the client and then execs it (`sh-exec.sv`); 20
  goroutines at once (`threads.sv`); exit statuses (`exit7.*`, `sigterm.*`); plain `dnsfo run`
  on a static C, a Go and a dynamic C client, with and without -q (`auto.<c|go|dyn>.<run|run-q>`).
* `dns`: names only the in-namespace DNS server knows (answers [127.0.0.2 silent, 127.0.0.3
  up]), one name per run so that each run's queries are its own: `go.<sv|plain>` (sv_dial
  lookup-dial) and `c.<sv|plain>` (sv_client first); each run reports `dns_queries` and
  `dns_query_count` for its name.
* `kill`: the supervisor killed with SIGKILL while the program runs (this harness process is a
  child subreaper, so it reaps the orphaned program and reports ITS exit status; net.ipv4.
  tcp_syn_retries=1 in the namespace, `harness syn_retries`, so a plain connect to a silent
  address ends with ETIMEDOUT after ~3 s): `c-steps`/`go-steps` (connects to rf.test and ok.test,
  READY, supervisor killed, then three more steps), `c-held`/`go-held` (silent first, killed
  100 ms after the program said it is connecting). `.sv` runs are killed, `.plain` runs are the
  same client without dnsfo. Extra keys: `keepers_before`, `supervisor_status`,
  `program_alive_after_kill`, `after_kill_ms`, `keepers_left`, `stdout_eof`.

Commands (overridable, e.g. to develop against a prototype): the supervisor
`--sv-cmd`/$DNSFO_SUPERVISE_CMD (default `<repo>/target/release/dnsfo run --supervise --`),
plain dnsfo run `--run-cmd`/$DNSFO_RUN_CMD (default `<repo>/target/release/dnsfo run`; `-q` and
`--` are added), the keeper's comm `--keeper`/$DNSFO_SUPERVISE_KEEPER (default dnsfo-keeper);
`--log`/$DNSFO_SUPERVISE_LOG=1 adds DNSFO_LOG=debug to every dnsfo run (its lines land in the
run's stderr). Every dnsfo run has its own empty DNSFO_CACHE_DIR.

CLI (tests/supervise.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/supervise.py run connect|dns|kill [--sv-cmd CMD] [--log] [--only REGEX]
    python3 tests/e2e/supervise.py build-clients
    python3 tests/e2e/supervise.py scenarios
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402
from harness import golang  # noqa: E402

PORT = H.DEFAULT_PORT  # banner servers
HTTP_PORT = PORT + 1  # HTTP servers (same addresses)
BIN = H.BIN_DIR
C_BIN = BIN / "sv_client"
GO_BIN = BIN / "sv_dial"
DYN_BIN = BIN / "c_getaddrinfo"  # the harness's dynamic C client (for `dnsfo run`'s choice)

SV_TIMEOUT = 8.0  # a supervised run (the slowest should take ~1 s)
HANG_TIMEOUT = 3.0  # a plain run that hangs on a silent address
KILL_TIMEOUT = 15.0

# key -> (name, [(kind, ip)] in /etc/hosts order)
LAYOUTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "rf": ("rf.test", [("refused", "127.0.0.2"), ("up", "127.0.0.3")]),
    "sf": ("sf.test", [("silent", "127.0.0.4"), ("up", "127.0.0.5")]),
    "mx": ("mx.test", [("refused", "127.0.0.6"), ("silent", "127.0.0.7"), ("refused", "127.0.0.8"),
                       ("silent", "127.0.0.9"), ("up", "127.0.0.10")]),
    "v6": ("v6.test", [("refused", "::2"), ("up", "127.0.0.11")]),
    "v6g": ("v6g.test", [("refused", "2001:db8::2"), ("up", "127.0.0.16")]),
    "ar": ("ar.test", [("refused", "127.0.0.12"), ("refused", "127.0.0.13")]),
    "ok": ("ok.test", [("up", "127.0.0.14"), ("up", "127.0.0.15")]),
}
DNS_ADDRS = [("silent", "127.0.0.2"), ("up", "127.0.0.3")]


# --------------------------------------------------------------------------------------------
# Commands and builds
# --------------------------------------------------------------------------------------------

class Cmds:
    """The commands under test (see the module doc) and the extra environment of dnsfo runs."""

    def __init__(self, args):
        dnsfo = H.REPO / "target" / "release" / "dnsfo"
        sv = args.sv_cmd or os.environ.get("DNSFO_SUPERVISE_CMD") or f"{dnsfo} run --supervise --"
        run = args.run_cmd or os.environ.get("DNSFO_RUN_CMD") or f"{dnsfo} run"
        self.sv = shlex.split(sv)
        self.run = shlex.split(run)
        self.keeper = args.keeper or os.environ.get("DNSFO_SUPERVISE_KEEPER") or "dnsfo-keeper"
        log = args.log or os.environ.get("DNSFO_SUPERVISE_LOG") == "1"
        self.dnsfo_env = {"DNSFO_LOG": "debug"} if log else {}

    def facts(self) -> dict[str, str]:
        exe = Path(self.sv[0])
        return {"sv_cmd": shlex.join(self.sv), "run_cmd": shlex.join(self.run),
                "sv_present": "1" if exe.is_file() or shutil.which(self.sv[0]) else "0",
                "keeper_comm": self.keeper,
                "dnsfo_env": " ".join(f"{k}={v}" for k, v in self.dnsfo_env.items())}


def build() -> None:
    """The static C client, the Go client and the harness's dynamic C client (if stale)."""
    H.build({"sv_client": H.Build(("sv_client.c",), cflags=("-static",))})
    H.build_clients(["c_getaddrinfo"])
    golang.build_go("sv_dial", "sv_dial.go")


def linking_facts() -> dict[str, str]:
    return {"c_linking": golang.elf_linking(C_BIN), "go_linking": golang.elf_linking(GO_BIN),
            "dyn_linking": golang.elf_linking(DYN_BIN)}


# --------------------------------------------------------------------------------------------
# The namespace's names and servers
# --------------------------------------------------------------------------------------------

class World:
    """The layouts' names in /etc/hosts (and ::2 on lo), a banner server on PORT and an HTTP one
    on HTTP_PORT for every up address, blackholes on both ports for every silent one."""

    def __init__(self, keys: list[str], lifetime: float, dns: bool = False):
        """dns: the resolver also asks the in-namespace DNS server (harness/dns.py's set-up)."""
        self.keys, self.lifetime, self.dns = keys, lifetime, dns
        self.servers: list = []
        self.info: dict[str, str] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-supervise-"))

    def __enter__(self) -> "World":
        hosts = [(ip, LAYOUTS[k][0]) for k in self.keys for _, ip in LAYOUTS[k][1]]
        if self.dns:
            self.info.update(H.setup_dns_namespace(self.workdir, hosts))
        else:
            H.setup_namespace(hosts, self.workdir)
        self.serve([a for k in self.keys for a in LAYOUTS[k][1]])
        for k in self.keys:
            name, addrs = LAYOUTS[k]
            self.info[f"layout_{k}"] = f"{name}: " + " ".join(f"{kd}:{ip}" for kd, ip in addrs)
            self.info[f"gai_{k}"] = H.gai(name, PORT, socket.AF_UNSPEC)
        return self

    def serve(self, addrs: list[tuple[str, str]]) -> None:
        silent = []
        for kind, ip in addrs:
            for port in (PORT, HTTP_PORT):
                if kind == "up":
                    self.servers.append(H.UpServer(ip, port, self.lifetime, http=port == HTTP_PORT))
                elif kind == "silent":
                    srv = H.SilentServer(ip, port, self.lifetime)
                    self.servers.append(srv)
                    silent.append(srv)
        self.info["blackholes"] = H.verify_silent(silent)

    def cache(self) -> str:
        """An empty winner cache of its own for one run."""
        return tempfile.mkdtemp(prefix="cache-", dir=self.workdir)

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def live(key: str) -> str:
    return next(ip for kind, ip in LAYOUTS[key][1] if kind == "up")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

class Job:
    """One run: section label, command, extra environment, timeout."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str] | None = None,
                 timeout: float = SV_TIMEOUT, **kw):
        self.label, self.cmd, self.env, self.timeout, self.kw = label, cmd, env or {}, timeout, kw


def run_job(job: Job) -> H.Run:
    r = H.run_client(job.cmd, preload=False, env=job.env, timeout=job.timeout, variant=job.label)
    return H.Run(**{k: getattr(r, k) for k in r.__dataclass_fields__})


def run_parallel(jobs: list[Job], runner=run_job) -> list[H.Run]:
    labels = [j.label for j in jobs]
    if len(set(labels)) != len(labels):
        raise H.HarnessError("two runs with the same label")
    results: list[H.Run | None] = [None] * len(jobs)

    def one(i: int) -> None:
        results[i] = runner(jobs[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def sv_job(cmds: Cmds, w: World, label: str, prog: list[str], env: dict[str, str] | None = None,
           timeout: float = SV_TIMEOUT, prefix: list[str] | None = None, **kw) -> Job:
    """A dnsfo run of prog (under `prefix`, default the supervisor command)."""
    e = {"DNSFO_CACHE_DIR": w.cache(), **cmds.dnsfo_env, **(env or {})}
    return Job(label, [*(cmds.sv if prefix is None else prefix), *prog], e, timeout, **kw)


def plain_job(label: str, prog: list[str], timeout: float, **kw) -> Job:
    return Job(label, prog, {}, timeout, **kw)


# --------------------------------------------------------------------------------------------
# Scenario: connect (items 1, 2, 5, 6 and dnsfo run's own choice)
# --------------------------------------------------------------------------------------------

CONNECT_KEYS = ["rf", "sf", "mx", "v6", "v6g", "ar"]
HANGS = {"sf", "mx"}  # a plain run may hang on a silent address: short timeout


def client_prog(client: str, key: str) -> list[str]:
    name = LAYOUTS[key][0]
    if client == "c":
        return [str(C_BIN), "first", name, str(PORT)]
    if client == "go":
        return [str(GO_BIN), "dial", f"{name}:{PORT}"]
    return [str(GO_BIN), "http", f"{name}:{HTTP_PORT}"]


def scenario_connect(cmds: Cmds, info: dict[str, str], only: str | None) -> list[H.Run]:
    lifetime = 60.0
    with World(CONNECT_KEYS, lifetime) as w:
        info.update(w.info)
        jobs: list[Job] = []
        for client in ("c", "go", "http"):
            for key in CONNECT_KEYS:
                prog = client_prog(client, key)
                jobs.append(sv_job(cmds, w, f"{client}.{key}.sv", prog))
                jobs.append(plain_job(f"{client}.{key}.plain", prog,
                                      HANG_TIMEOUT if key in HANGS else SV_TIMEOUT))
        jobs.append(sv_job(cmds, w, "c.sf.sv-delay1000", client_prog("c", "sf"),
                           env={"DNSFO_ATTEMPT_DELAY_MS": "1000"}))
        # a child process, then the exec'd shell itself
        sh = f'"$0" first {LAYOUTS["sf"][0]} {PORT}; exec "$0" first {LAYOUTS["sf"][0]} {PORT}'
        jobs.append(sv_job(cmds, w, "sh-exec.sv", ["/bin/sh", "-c", sh, str(C_BIN)]))
        jobs.append(sv_job(cmds, w, "threads.sv",
                           [str(GO_BIN), "threads", "20", f"{LAYOUTS['sf'][0]}:{PORT}"]))
        for label, prog in (("exit7", [str(C_BIN), "exit", "7"]),
                            ("sigterm", [str(C_BIN), "signal", str(int(signal.SIGTERM))])):
            jobs.append(sv_job(cmds, w, f"{label}.sv", prog))
            jobs.append(plain_job(f"{label}.plain", prog, SV_TIMEOUT))
        # plain `dnsfo run`: its own choice of the supervisor (static C, Go) or the library
        for label, prog in (("c", client_prog("c", "sf")), ("go", client_prog("go", "sf")),
                            ("dyn", [str(DYN_BIN), LAYOUTS["sf"][0], str(PORT)])):
            jobs.append(sv_job(cmds, w, f"auto.{label}.run", prog, prefix=[*cmds.run, "--"]))
            jobs.append(sv_job(cmds, w, f"auto.{label}.run-q", prog,
                               prefix=[*cmds.run, "-q", "--"]))
        if only:
            jobs = [j for j in jobs if re.search(only, j.label)]
        return run_parallel(jobs)


# --------------------------------------------------------------------------------------------
# Scenario: dns (item 3)
# --------------------------------------------------------------------------------------------

def scenario_dns(cmds: Cmds, info: dict[str, str], only: str | None) -> list[H.Run]:
    lifetime = 60.0
    with World([], lifetime, dns=True) as w:
        w.serve(DNS_ADDRS)
        info.update(w.info)
        ips = [ip for _, ip in DNS_ADDRS]
        labels = ["go.sv", "go.plain", "c.sv", "c.plain"]
        if only:
            labels = [lb for lb in labels if re.search(only, lb)]
        names = {lb: f"{lb.replace('.', '-')}.dns.test" for lb in labels}
        dns = H.DnsServer(lifetime=lifetime, table={**{n: ips for n in names.values()},
                                                    "probe.dns.test": ips})
        try:
            info["getent_dns"] = H.check_getent(dns, "probe.dns.test", ips)
            info["layout"] = "DNS only: " + " ".join(f"{k}:{ip}" for k, ip in DNS_ADDRS)
            jobs = []
            for lb in labels:
                client, variant = lb.split(".")
                n = names[lb]
                prog = ([str(GO_BIN), "lookup-dial", f"{n}:{PORT}"] if client == "go"
                        else [str(C_BIN), "first", n, str(PORT)])
                jobs.append(sv_job(cmds, w, lb, prog) if variant == "sv"
                            else plain_job(lb, prog, HANG_TIMEOUT))
            runs = run_parallel(jobs)
            time.sleep(0.05)  # a query still in flight when a client ended is logged too
            for r in runs:
                qs = dns.queries(names[r.variant])
                r.extra["dns_name"] = names[r.variant]
                r.extra["dns_queries"] = H.DnsServer.describe(qs)
                r.extra["dns_query_count"] = str(len(qs))
            return runs
        finally:
            dns.stop()


# --------------------------------------------------------------------------------------------
# Scenario: kill (item 4)
# --------------------------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> str:
    """Orphans of our children (the program, once its supervisor is killed) become ours."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise H.HarnessError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    return "1"


def set_syn_retries(n: int) -> str:
    """net.ipv4.tcp_syn_retries of this (private) network namespace; its value after."""
    p = Path("/proc/sys/net/ipv4/tcp_syn_retries")
    with contextlib.suppress(OSError):
        p.write_text(f"{n}\n")
    return p.read_text().strip()


def proc_stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, session) of a process, None when it is gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return comm, f[0], int(f[1]), int(f[3])


def keepers(comm: str, supervisor: int) -> list[int]:
    """Live processes named `comm` that are the supervisor's children or of its session."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[0] == comm and st[1] != "Z" and supervisor in (st[2], st[3]):
            out.append(int(d))
    return out


def alive(pid: int | None) -> bool:
    st = proc_stat(pid) if pid else None
    return st is not None and st[1] != "Z"


def run_steered(job: Job, cmds: Cmds) -> H.Run:
    """Run job.cmd (own session); kw: trigger (first word of a line), kill (SIGKILL the process
    we started, the supervisor, job.kw['delay'] s after the trigger), go (send a line on stdin
    after the trigger, and after the kill). Reports the PROGRAM's exit status: a killed
    supervisor's orphan is reaped here (we are a child subreaper)."""
    trigger, kill = job.kw.get("trigger"), job.kw.get("kill", False)
    delay, go = job.kw.get("delay", 0.0), job.kw.get("go", False)
    res = H.Run(variant=job.label, cmd=job.cmd, preload=False, env=job.env, timeout=job.timeout)
    full = H.clean_env()
    full.update(job.env)
    t0 = time.monotonic()
    deadline = t0 + job.timeout
    p = subprocess.Popen(job.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=full, start_new_session=True)
    H.track_client(p.pid)
    lines: queue.Queue = queue.Queue()
    out: list[str] = []
    err: list[bytes] = []

    def read_out() -> None:
        for raw in p.stdout:
            lines.put(raw.decode(errors="backslashreplace"))
        lines.put(None)

    readers = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)]
    for t in readers:
        t.start()
    prog: int | None = None
    kept: list[int] = []
    fired = False
    eof = False
    t_kill: float | None = None
    status: int | None = None  # the program's wait status
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.02)
            except queue.Empty:
                line = ""
            if line is None:
                eof = True
            elif line:
                out.append(line)
                words = line.split()
                if words[:1] == ["PID"] and prog is None and len(words) == 2:
                    prog = int(words[1])
                if trigger and not fired and words[:1] == [trigger]:
                    fired = True
                    if kill:
                        time.sleep(delay)
                        kept = keepers(cmds.keeper, p.pid)
                        res.extra["keepers_before"] = str(len(kept))
                        t_kill = time.monotonic()
                        os.kill(p.pid, signal.SIGKILL)
                        p.wait(timeout=5)
                        res.extra["killed_at_ms"] = str(int((t_kill - t0) * 1000))
                        res.extra["supervisor_status"] = str(p.returncode)
                        res.extra["program_alive_after_kill"] = "1" if alive(prog) else "0"
                    if go:
                        with contextlib.suppress(OSError):
                            p.stdin.write(b"go\n")
                            p.stdin.flush()
                    with contextlib.suppress(OSError):
                        p.stdin.close()
            # has the program ended?
            if status is None:
                if t_kill is not None and prog:
                    with contextlib.suppress(ChildProcessError):
                        pid, st = os.waitpid(prog, os.WNOHANG)
                        if pid == prog:
                            status = st
                elif t_kill is None and p.poll() is not None:
                    status = -1
            if status is not None and (eof or time.monotonic() > deadline - 0.01):
                break
            if status is not None and not eof:
                # the program is gone; stdout stays open only while something else holds it
                deadline = min(deadline, time.monotonic() + 2.0)
        else:
            res.timed_out = status is None
    finally:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        if prog and alive(prog):
            res.extra["program_killed_at_timeout"] = "1"
            with contextlib.suppress(OSError):
                os.kill(prog, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
        H.untrack_client(p.pid)
    t_end = time.monotonic()
    res.elapsed_ms = int((t_end - t0) * 1000)
    if t_kill is not None:
        if status is not None and status != -1:
            if os.WIFEXITED(status):
                res.exit = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                res.signal = os.WTERMSIG(status)
        res.extra["after_kill_ms"] = str(int((t_end - t_kill) * 1000))
        # the keeper (found before the kill; an orphan of ours since) should go with the tree
        left: list[int] = []
        for _ in range(50):
            left = [k for k in kept if alive(k)]
            if not left:
                break
            time.sleep(0.02)
        res.extra["keepers_left"] = str(len(left))
        for k in left:
            with contextlib.suppress(OSError):
                os.kill(k, signal.SIGKILL)
    elif not res.timed_out and p.returncode is not None:
        if p.returncode < 0:
            res.signal = -p.returncode
        else:
            res.exit = p.returncode
    for t in readers:
        t.join(timeout=2)
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is None:
            eof = True
        else:
            out.append(line)
    res.extra["stdout_eof"] = "1" if eof else "0"
    res.extra["program_pid"] = str(prog or "")
    res.stdout = "".join(out)
    res.stderr = b"".join(err).decode(errors="backslashreplace")
    return res


def scenario_kill(cmds: Cmds, info: dict[str, str], only: str | None) -> list[H.Run]:
    lifetime = 60.0
    info["subreaper"] = become_subreaper()
    with World(["rf", "ok", "sf"], lifetime) as w:
        info.update(w.info)
        info["syn_retries"] = set_syn_retries(1)
        rf, ok, sf = (LAYOUTS[k][0] for k in ("rf", "ok", "sf"))
        steps = {"c": [str(C_BIN), "steps", str(PORT), "4", rf, ok],
                 "go": [str(GO_BIN), "steps", "4", str(PORT), rf, ok]}
        held = {"c": ([str(C_BIN), "first", sf, str(PORT)], "CONNECTING"),
                "go": ([str(GO_BIN), "dial", f"{sf}:{PORT}"], "DIALING")}
        jobs = []
        for client in ("c", "go"):
            jobs.append(sv_job(cmds, w, f"{client}-steps.sv", steps[client], timeout=KILL_TIMEOUT,
                               trigger="READY", kill=True, go=True))
            jobs.append(plain_job(f"{client}-steps.plain", steps[client], KILL_TIMEOUT,
                                  trigger="READY", go=True))
            prog, trig = held[client]
            jobs.append(sv_job(cmds, w, f"{client}-held.sv", prog, timeout=KILL_TIMEOUT,
                               trigger=trig, kill=True, delay=0.1))
            jobs.append(plain_job(f"{client}-held.plain", prog, KILL_TIMEOUT))
        if only:
            jobs = [j for j in jobs if re.search(only, j.label)]
        runs = run_parallel(jobs, lambda j: run_steered(j, cmds))
    # every orphan left (zombies of keepers, say) is ours: reap them (no Popen is waiting now)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    return runs


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

SCENARIOS = {
    "connect": (scenario_connect, "items 1, 2, 5, 6: layouts x clients, children/exec, threads, "
                                  "exit status, dnsfo run's own choice"),
    "dns": (scenario_dns, "item 3: names from the in-namespace DNS server"),
    "kill": (scenario_kill, "item 4: the supervisor killed between connects and during one"),
}
BUDGET_S = 90


def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("supervise: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="supervise.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", choices=list(SCENARIOS))
    r.add_argument("--sv-cmd", help="the supervisor command (words; the program follows)")
    r.add_argument("--run-cmd", help="plain `dnsfo run` (words; -q and -- are added)")
    r.add_argument("--keeper", help="the keeper's comm")
    r.add_argument("--log", action="store_true", help="DNSFO_LOG=debug in every dnsfo run")
    r.add_argument("--only", metavar="REGEX", help="only the runs whose label matches")
    sub.add_parser("build-clients")
    sub.add_parser("scenarios")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "scenarios":
            for k, (_, doc) in SCENARIOS.items():
                print(f"{k:8} {doc}")
            return 0
        if args.cmd == "build-clients":
            build()
            print(f"supervisor clients built in {BIN}: {linking_facts()}")
            return 0
        if not H.in_namespace():
            build()
            H.enter_namespace([str(Path(__file__).resolve()), *argv])  # returns only inside
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(BUDGET_S)
        cmds = Cmds(args)
        info = {**H.lib_facts(), **cmds.facts(), **linking_facts(), "scenario_name": args.scenario}
        runs = SCENARIOS[args.scenario][0](cmds, info, args.only)
        signal.alarm(0)
        H.emit(info, runs, False)
        return 0
    except H.HarnessError as e:
        print(f"supervise: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
