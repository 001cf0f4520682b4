#!/usr/bin/env python3
"""The shared winner cache file under hostile conditions (issue 12, item 7), standard library only.

Built on scripts/lib/hermetic.py (private user + mount + network namespace, /etc/hosts, up /
refused / silent servers on loopback, clean client environment, output format); this file adds:

* `cache_client`, a tiny C client (its source is below, compiled on first use into --bin-dir):
  getaddrinfo(NAME, AF_INET), one blocking connect to the first address, read the banner; it
  prints `RESOLVED ip...`, `CONNECT_MS n`, `PEER ip`, `GOT <banner>` (or `ERR ...`). With the
  argument `die-at-rename` it first installs a seccomp filter that turns its first rename(2)
  (rename, renameat, renameat2) into SIGKILL: a process killed exactly between creating the
  cache's temporary file and renaming it, deterministically;
* three scenarios, each reporting every client run as a section plus facts in `harness`:

    fifo       a FIFO (and, as controls, a socket, a symlink to a FIFO, /dev/zero bound over the
               file) in place of `winners`: the dnsfo'd client resolves, fails over and connects
               as usual; the thing in place is left as it was
    full       `winners` full of long-lived entries (MAX_ENTRIES lines expiring in 12 h): a
               failover must still be recorded (and the next process use it at once); control:
               a cache with room
    tmpfiles   many short-lived processes that each fail over once (so each writes the cache),
               some of them at once, some killed with SIGKILL right after start, some killed at
               their rename, some in a fresh pid namespace (pid 1, as in a container); then,
               after every process ended and a grace period, a few more ordinary ones: the cache
               directory's listing (no `.tmp` may be left) and the recorded names are reported

CLI (tests/cache_robust.rs uses it):

    python3 tests/e2e/cachefile.py run fifo|full|tmpfiles [--bin-dir DIR] [--timeout S]
    python3 tests/e2e/cachefile.py build-clients [--bin-dir DIR]

The library is $DNSFO_LIB, else target/release/libdnsfo.so. Only loopback addresses are used;
every client run has a timeout, every loop is bounded, a watchdog bounds each scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (namespace, servers, clean_env, Result, emit)

PORT = H.DEFAULT_PORT
REFUSED, SILENT, UP = "127.0.0.2", "127.0.0.2", "127.0.0.3"
MAX_ENTRIES = 256  # crates/dnsfo-core/src/cache.rs
LONG_TTL_MS = 12 * 3600 * 1000
N_SERIAL = 50  # short-lived processes, one after another
N_PARALLEL = 10  # ... at once
N_KILLED = 20  # ... killed with SIGKILL 0-3.8 ms after start (a run takes a few ms)
N_RENAME = 5  # ... killed at their rename
N_PIDNS = 3  # pairs: killed at rename as pid 1, then an ordinary pid 1
N_AFTER = 3  # ordinary ones after the grace period

CLIENT = "cache_client"
CLIENT_C = r"""
/* cache_client NAME PORT [die-at-rename]: see tests/e2e/cachefile.py */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

static void on_sigsys(int sig) {
    (void)sig;
    syscall(SYS_kill, getpid(), SIGKILL);
    _exit(99);
}

/* The first rename(2) of the process traps; the handler kills the process with SIGKILL. */
static int arm(void) {
#ifdef ARCH
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigsys;
    sigaction(SIGSYS, &sa, NULL);
    int nrs[] = {
#ifdef __NR_rename
        __NR_rename,
#endif
        __NR_renameat,
#ifdef __NR_renameat2
        __NR_renameat2,
#endif
    };
    enum { N = sizeof nrs / sizeof nrs[0] };
    struct sock_filter f[4 + N + 2];
    int i = 0;
#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
    f[i++] = (struct sock_filter)LOAD(arch);
    f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[i++] = (struct sock_filter)LOAD(nr);
    for (int k = 0; k < (int)N; k++)
        f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[k], (N - k), 0);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
    struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return -1;
    return 0;
#else
    return -1;
#endif
}

static long ms_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cache_client NAME PORT [die-at-rename]\n");
        return 2;
    }
    alarm(15); /* bounded even if nobody kills it */
    if (argc > 3 && strcmp(argv[3], "die-at-rename") == 0) {
        if (arm() != 0) {
            printf("ERR SECCOMP %s\n", strerror(errno));
            return 3;
        }
        printf("ARMED\n");
        fflush(stdout);
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (rc != 0) {
        printf("ERR GAI %s\n", gai_strerror(rc));
        return 1;
    }
    char ip[INET_ADDRSTRLEN];
    printf("RESOLVED");
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof ip);
        printf(" %s", ip);
    }
    printf("\n");
    fflush(stdout);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    printf("CONNECT_MS %ld\n", ms_since(&t0));
    if (rc != 0) {
        printf("ERR %s\n", strerrorname_np(err) ? strerrorname_np(err) : "?");
        return 1;
    }
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    getpeername(fd, (struct sockaddr *)&peer, &len);
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    printf("PEER %s\n", ip);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0) {
        printf("ERR EOF\n");
        return 1;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    printf("GOT %s\n", buf);
    freeaddrinfo(res);
    return 0;
}
"""


def build(bin_dir: Path) -> Path:
    """Compile the client into bin_dir (once; a lock serialises parallel tests)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    src, out = bin_dir / f"{CLIENT}.c", bin_dir / CLIENT
    with open(bin_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not src.exists() or src.read_text() != CLIENT_C:
            tmp = src.with_name(f".{src.name}.{os.getpid()}")
            tmp.write_text(CLIENT_C)
            os.replace(tmp, src)
        H.compile_c(out, [src])
    return out


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run(H.Result):
    """hermetic's Result plus scenario facts reported in the run's own section."""
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {**super().fields(), **self.extra}


class Ctx:
    def __init__(self, client: Path, timeout: float, workdir: Path):
        self.client, self.timeout, self.workdir = client, timeout, workdir
        self.runs: list[Run] = []
        self.info: dict[str, str] = {}
        self.servers: list = []
        self.unkept_failures = 0

    def run(self, label: str, name: str, cache: Path, *, mode: str | None = None,
            prefix: list[str] | None = None, env: dict[str, str] | None = None,
            keep: bool = True) -> Run:
        cmd = [*(prefix or []), str(self.client), name, str(PORT), *([mode] if mode else [])]
        r = H.run_client(cmd, preload=True, env={"DNSFO_CACHE_DIR": str(cache), **(env or {})},
                         timeout=self.timeout, variant=label)
        run = Run(**dataclasses.asdict(r))
        # every kept run, and the first few that did not end normally (for the diagnosis)
        if keep or (mode is None and run.exit != 0 and self.unkept_failures < 5):
            self.unkept_failures += 0 if keep else 1
            self.runs.append(run)
        return run

    def close(self) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()


def private_dir(parent: Path, name: str) -> Path:
    d = parent / name
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def listing(d: Path) -> str:
    """`name type mode` per entry, sorted (lstat: links not followed)."""
    out = []
    for p in sorted(d.iterdir()):
        st = os.lstat(p)
        kind = ("fifo" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
                else "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode)
                else "chr" if stat.S_ISCHR(st.st_mode) else "file")
        out.append(f"{p.name} {kind} {stat.S_IMODE(st.st_mode):o}")
    return "\n".join(out)


def tmp_names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def winners(d: Path) -> str:
    p = d / "winners"
    try:
        if not stat.S_ISREG(os.lstat(p).st_mode):
            return "<not a regular file>"
        return p.read_text()
    except OSError as e:
        return f"<{e.strerror}>"


def recorded(d: Path) -> set[str]:
    """Names with a live line in the winners file."""
    now = int(time.time() * 1000)
    out = set()
    for line in winners(d).splitlines():
        f = line.split()
        if len(f) == 4 and f[3].isdigit() and int(f[3]) > now:
            out.add(f[0])
    return out


def start(ctx: Ctx, hosts: list[tuple[str, str]], silent: bool) -> None:
    H.setup_namespace(hosts, ctx.workdir)
    if silent:
        s = H.SilentServer(SILENT, PORT, 120)
        ctx.servers.append(s)
        ctx.info["blackholes"] = H.verify_silent([s])
    ctx.servers.append(H.UpServer(UP, PORT, 120, max_conns=2000))
    ctx.info["gai_inet"] = H.gai(hosts[0][1], PORT, socket.AF_INET)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

def scenario_fifo(ctx: Ctx) -> None:
    """Something that is not a regular file in place of `winners`: the client resolves, fails
    over (refused .2 -> up .3) and connects as usual; the thing is left as it was."""
    start(ctx, [(REFUSED, "svc"), (UP, "svc")], silent=False)
    base = Path(tempfile.mkdtemp(prefix="dnsfo-cachefile-"))
    os.chmod(base, 0o700)
    elsewhere = private_dir(base, "elsewhere")
    os.mkfifo(elsewhere / "fifo", 0o600)
    cases = {}
    d = private_dir(base, "fifo")
    os.mkfifo(d / "winners", 0o600)
    cases["fifo"] = d
    d = private_dir(base, "socket")
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.bind(str(d / "winners"))
    us.listen(1)
    cases["socket"] = d
    d = private_dir(base, "fifo-symlink")
    (d / "winners").symlink_to(elsewhere / "fifo")
    cases["fifo-symlink"] = d
    d = private_dir(base, "device")
    (d / "winners").write_text("")
    os.chmod(d / "winners", 0o600)
    try:
        subprocess.run(["mount", "--bind", "/dev/zero", str(d / "winners")], check=True,
                       capture_output=True, timeout=10)
        cases["device"] = d
    except (subprocess.SubprocessError, OSError) as e:
        ctx.info["device"] = f"skipped: {e}"
    try:
        for label, d in cases.items():
            before = listing(d)
            r = ctx.run(label, "svc", d)
            after = listing(d)
            r.extra["listing_before"] = before
            r.extra["listing_after"] = after
            r.extra["unchanged"] = "1" if before == after else "0"
        d = private_dir(base, "control")
        r = ctx.run("control", "svc", d)
        r.extra["recorded"] = " ".join(sorted(recorded(d)))
    finally:
        us.close()
        if "device" in cases:
            subprocess.run(["umount", str(cases["device"] / "winners")], capture_output=True,
                           timeout=10)
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def long_lived(n: int) -> str:
    now = int(time.time() * 1000)
    return "".join(f"long{i}.test {PORT} 127.0.0.9 {now + LONG_TTL_MS + i * 1000}\n"
                   for i in range(n))


def scenario_full(ctx: Ctx) -> None:
    """A cache full of long-lived entries: process one (silent .2 first) pays the failover and
    must record its winner; process two must then connect at once. Control: a cache with
    room."""
    start(ctx, [(SILENT, "svc"), (UP, "svc")], silent=True)
    base = Path(tempfile.mkdtemp(prefix="dnsfo-cachefile-"))
    os.chmod(base, 0o700)
    try:
        for label, n in (("full", MAX_ENTRIES), ("room", 10)):
            d = private_dir(base, label)
            (d / "winners").write_text(long_lived(n))
            os.chmod(d / "winners", 0o600)
            one = ctx.run(f"{label}-one", "svc", d)
            text = winners(d)
            one.extra["lines"] = str(len(text.splitlines()))
            svc = [l for l in text.splitlines() if l.startswith("svc ")]
            one.extra["svc_line"] = "\n".join(l for l in svc
                                              if not l.endswith(" dead") and " rtt " not in l)
            one.extra["svc_rtt"] = "\n".join(l for l in svc if " rtt " in l)
            one.extra["svc_dead"] = "\n".join(l for l in svc if l.endswith(" dead"))
            one.extra["long0_kept"] = "1" if "long0.test" in recorded(d) else "0"
            one.extra["longs_kept"] = str(sum(1 for x in recorded(d) if x.startswith("long")))
            one.extra["tmp_left"] = " ".join(tmp_names(d))
            ctx.run(f"{label}-two", "svc", d)
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def scenario_tmpfiles(ctx: Ctx, grace: float) -> None:
    """Many short-lived processes in one cache dir, each failing over once (so each writes),
    some at once, some killed; after all ended and `grace` seconds, a few ordinary ones; no
    `.tmp` may be left."""
    names = [f"n{i:02}" for i in range(N_SERIAL)]
    par = [f"q{i}" for i in range(N_PARALLEL)]
    killed = [f"k{i}" for i in range(N_KILLED)]
    ren = [f"r{i}" for i in range(N_RENAME)]
    pidns = [f"p{i}" for i in range(N_PIDNS)]
    pidns_die = [f"pd{i}" for i in range(N_PIDNS)]
    after = [f"m{i}" for i in range(N_AFTER)]
    hosts = [(ip, n) for n in [*names, *par, *killed, *ren, *pidns, *pidns_die, *after]
             for ip in (REFUSED, UP)]
    start(ctx, hosts, silent=False)
    base = Path(tempfile.mkdtemp(prefix="dnsfo-cachefile-"))
    os.chmod(base, 0o700)
    d = private_dir(base, "shared")
    info = ctx.info
    t0 = time.monotonic()
    try:
        # 1. one after another: every one fails over and writes
        ok = 0
        for n in names:
            r = ctx.run(f"serial-{n}", n, d, keep=n == names[0])
            ok += r.exit == 0 and "GOT HELLO 127.0.0.3" in r.stdout
            if n == names[0]:
                r.extra["winners_after"] = winners(d)
        info["serial_ok"] = f"{ok}/{len(names)}"
        info["serial_recorded"] = str(len(recorded(d) & set(names)))
        info["tmp_after_serial"] = " ".join(tmp_names(d))

        # 2. at once
        env = H.clean_env()
        env["LD_PRELOAD"] = str(H.lib_path())
        env["DNSFO_CACHE_DIR"] = str(d)
        procs = [subprocess.Popen([str(ctx.client), n, str(PORT)], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
                 for n in par]
        ok = 0
        for p in procs:
            try:
                out, _ = p.communicate(timeout=ctx.timeout)
                ok += p.returncode == 0 and b"GOT HELLO 127.0.0.3" in out
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.communicate(timeout=10)
        info["parallel_ok"] = f"{ok}/{len(par)}"

        # 3. SIGKILL right after start, 0.2 ms apart: some before the lookup, some in it, some
        #    in the connect or the write
        ended = {}
        for i, n in enumerate(killed):
            p = subprocess.Popen([str(ctx.client), n, str(PORT)], env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(i * 0.0002)
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            key = "killed" if p.returncode == -signal.SIGKILL else f"exit {p.returncode}"
            ended[key] = ended.get(key, 0) + 1
        info["sigkill_runs"] = " ".join(f"{k}={v}" for k, v in sorted(ended.items()))

        # 4. killed exactly at the rename that would have placed the file
        died = 0
        for n in ren:
            r = ctx.run(f"rename-{n}", n, d, mode="die-at-rename", keep=n == ren[0])
            died += r.signal == signal.SIGKILL and "ARMED" in r.stdout
        info["killed_at_rename"] = f"{died}/{len(ren)}"

        # 5. a fresh pid namespace per process (pid 1, as in a container): killed at rename,
        #    then an ordinary one, which must still write
        pid_ok = 0
        for die, n in zip(pidns_die, pidns):
            ctx.run(f"pidns-{die}", die, d, mode="die-at-rename", prefix=["unshare", "-pf", "--"],
                    keep=False)
            r = ctx.run(f"pidns-{n}", n, d, prefix=["unshare", "-pf", "--"], keep=n == pidns[0])
            pid_ok += r.exit == 0 and n in recorded(d)
        info["pidns_recorded"] = f"{pid_ok}/{len(pidns)}"
        info["tmp_after_kills"] = " ".join(tmp_names(d))
        info["all_ended_after_ms"] = str(int((time.monotonic() - t0) * 1000))

        # 6. every process has ended; after the grace period, a few ordinary ones
        time.sleep(grace)
        info["tmp_after_grace"] = " ".join(tmp_names(d))
        ok = 0
        for n in after:
            r = ctx.run(f"after-{n}", n, d, keep=n == after[-1])
            ok += r.exit == 0 and "GOT HELLO 127.0.0.3" in r.stdout
        info["after_ok"] = f"{ok}/{len(after)}"
        info["after_recorded"] = str(len(recorded(d) & set(after)))
        info["tmp_final"] = " ".join(tmp_names(d))
        info["listing_final"] = listing(d)
        info["recorded_final"] = str(len(recorded(d)))
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def scenario_rtt_scope(ctx: Ctx) -> None:
    """RTT history in the cache is used only for addresses the resolver returned: a process
    whose name is [silent .2, up .3] with a cache holding a 1 ms RTT for the name at .9 (an
    address its resolver does not return) pays the configured attempt delay; with the same RTT
    line for .3 it fails over after the adaptive delay (10 ms)."""
    start(ctx, [(SILENT, "svc"), (UP, "svc")], silent=True)
    base = Path(tempfile.mkdtemp(prefix="dnsfo-cachefile-"))
    os.chmod(base, 0o700)
    exp = int(time.time() * 1000) + LONG_TTL_MS
    try:
        for label, ip in (("foreign", "127.0.0.9"), ("returned", UP)):
            d = private_dir(base, label)
            (d / "winners").write_text(f"svc {PORT} {ip} {exp} rtt 1000 200\n")
            os.chmod(d / "winners", 0o600)
            ctx.run(label, "svc", d)
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


SCENARIOS = ("fifo", "full", "tmpfiles", "rtt-scope")


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("cachefile: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="cachefile.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", choices=SCENARIOS)
    run.add_argument("--bin-dir", type=Path, default=H.BIN_DIR)
    run.add_argument("--timeout", type=float, default=6.0, help="per client run, s")
    run.add_argument("--grace", type=float, default=4.0,
                     help="tmpfiles: wait after every process ended, s (> the library's 3 s)")
    b = sub.add_parser("build-clients")
    b.add_argument("--bin-dir", type=Path, default=H.BIN_DIR)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build-clients":
            print(f"built {build(args.bin_dir.resolve())}")
            return 0
        bin_dir = args.bin_dir.resolve()
        if not H.in_namespace():
            build(bin_dir)
            H.enter_namespace([str(Path(__file__).resolve()), *argv])
        budget = {"fifo": 8 * args.timeout, "full": 5 * args.timeout, "rtt-scope": 3 * args.timeout,
                  "tmpfiles": 60 + 4 * args.timeout + args.grace}[args.scenario] + 20
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        workdir = Path(tempfile.mkdtemp(prefix="dnsfo-cachefile-work-"))
        os.chdir(workdir)  # any file a client might leave (core) stays out of the checkout
        ctx = Ctx(bin_dir / CLIENT, args.timeout, workdir)
        info = {**H.lib_facts(), "scenario_name": args.scenario}
        t0 = time.monotonic()
        try:
            if args.scenario == "fifo":
                scenario_fifo(ctx)
            elif args.scenario == "full":
                scenario_full(ctx)
            elif args.scenario == "rtt-scope":
                scenario_rtt_scope(ctx)
            else:
                scenario_tmpfiles(ctx, args.grace)
        finally:
            ctx.close()
            os.chdir("/")
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        signal.alarm(0)
        info.update(ctx.info)
        info["scenario_ms"] = str(int((time.monotonic() - t0) * 1000))
        H.emit(info, ctx.runs, False)
        return 0
    except H.HarnessError as e:
        print(f"cachefile: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
