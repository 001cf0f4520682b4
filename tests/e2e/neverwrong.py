#!/usr/bin/env python3
""""Never wrong" end-to-end scenarios for dnsfo (issue 12, items 3 and 4), standard library only.

Built on scripts/lib/hermetic.py (private user + mount + network namespace, /etc/hosts, servers,
clean client environment, output format) and its DNS part (scripts/lib/harness/dns.py: the
in-namespace DNS server on 127.0.0.1:53 with its query log, resolv.conf and `hosts: files dns` in nsswitch.conf).

* `shared` (item 4, wrong peer): a.test = [127.0.0.9 dead, 127.0.0.2 up], b.test = [127.0.0.9
  dead, 127.0.0.3 up], both from /etc/hosts. A client resolves a.test, then b.test, and connects
  to 127.0.0.9 as a.test's answer gave it: with the `ai_addr` pointer of a.test's (still
  allocated) answer, with a copy of its bytes, after freeing b.test's answer, from Python (which
  frees every answer at once), and, as the counterpart, with the pointer of b.test's answer.
  dnsfo may fail over only when the name is certain; b.test's server must never be reached
  from a.test's address.
* `hosts-pin` (item 3, /etc/hosts bypassed): /etc/hosts pins ads.test to 0.0.0.0 and pin.test /
  pin2.test to dead addresses, while DNS names a live server (127.0.0.3) for all three. A
  blocking Python client resolves the name and connects to its first address: it must get the
  refusal it gets without dnsfo, and the DNS server must see no query for the name.

CLI (tests/never_wrong.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/neverwrong.py run shared
    python3 tests/e2e/neverwrong.py run hosts-pin
    python3 tests/e2e/neverwrong.py scenarios

The library is $DNSFO_LIB, else target/release/libdnsfo.so. Only loopback addresses are used;
every client run has a timeout, every server a lifetime, and a watchdog bounds each scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
sys.path.insert(0, str(HERE))
import hermetic as H  # noqa: E402

PORT = H.DEFAULT_PORT
CLIENT_TIMEOUT = 10.0
SHARED_DEAD = "127.0.0.9"
A_LIVE, B_LIVE, DNS_LIVE = "127.0.0.2", "127.0.0.3", "127.0.0.3"
# Every run with its own (no) winner cache: runs must not teach each other.
BASE_ENV = {"DNSFO_CACHE": "0"}

# Resolves a.test, then b.test (answers kept, AF_INET, SOCK_STREAM), then connects a blocking
# socket to the shared address as MODE says; prints `GOT <banner>` or `ERR <errno name>`.
SHARED_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct addrinfo *resolve(const char *name, const char *port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(name, port, &hints, &res);
    if (r != 0) {
        printf("ERR getaddrinfo %s: %s\n", name, gai_strerror(r));
        return NULL;
    }
    return res;
}

static struct addrinfo *find(struct addrinfo *l, const char *ip) {
    for (int i = 0; l && i < 64; l = l->ai_next, i++) {
        char buf[64];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)l->ai_addr;
        if (l->ai_family == AF_INET && inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)
            && strcmp(buf, ip) == 0)
            return l;
    }
    return NULL;
}

static const char *errname(int e) {
    switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    default: return strerror(e);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s a-ptr|a-copy|a-ptr-b-freed|b-ptr PORT SHARED_IP\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *port = argv[2], *x = argv[3];
    setvbuf(stdout, NULL, _IONBF, 0);
    struct addrinfo *a = resolve("a.test", port);
    struct addrinfo *b = resolve("b.test", port);
    if (!a || !b)
        return 3;
    struct addrinfo *na = find(a, x), *nb = find(b, x);
    if (!na || !nb) {
        printf("ERR %s is not in both answers\n", x);
        return 3;
    }
    struct sockaddr_storage copy;
    const struct sockaddr *sa = na->ai_addr;
    socklen_t len = na->ai_addrlen;
    if (strcmp(mode, "a-copy") == 0) {
        memcpy(&copy, na->ai_addr, na->ai_addrlen);
        sa = (const struct sockaddr *)&copy;
    } else if (strcmp(mode, "a-ptr-b-freed") == 0) {
        freeaddrinfo(b);
        b = NULL;
    } else if (strcmp(mode, "b-ptr") == 0) {
        sa = nb->ai_addr;
        len = nb->ai_addrlen;
    } else if (strcmp(mode, "a-ptr") != 0) {
        printf("ERR unknown mode %s\n", mode);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("ERR socket %s\n", errname(errno));
        return 3;
    }
    if (connect(fd, sa, len) != 0) {
        printf("ERR %s\n", errname(errno));
        return 1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("GOT %s", n > 0 ? buf : "nothing\n");
    close(fd);
    freeaddrinfo(a);
    if (b)
        freeaddrinfo(b);
    return 0;
}
"""

# python3 -c PY TARGET PORT NAME...: resolves every NAME in order (AF_INET), then connects a
# blocking socket to TARGET (an address, or `first`: the first address of the first NAME).
PY_CLIENT = r"""
import errno, socket, sys
target, port, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
first = None
for n in names:
    ips = [a[4][0] for a in socket.getaddrinfo(n, port, socket.AF_INET, socket.SOCK_STREAM)]
    print("RESOLVED", n, " ".join(ips), flush=True)
    first = first or ips[0]
ip = first if target == "first" else target
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect((ip, port))
except OSError as e:
    print("ERR", errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    sys.exit(1)
s.settimeout(5)
print("GOT", s.recv(128).decode(errors="replace").strip(), flush=True)
"""


def run(label: str, cmd: list[str], variant: str, dns: H.DnsServer, names: list[str],
        env: dict[str, str] | None = None) -> H.Run:
    """One client run as section `label`, with the DNS queries for `names` made meanwhile."""
    preload, vextra, _ = H.VARIANTS[variant]
    t0 = time.monotonic()
    r = H.run_client(cmd, preload=preload, env={**BASE_ENV, **(env or {}), **vextra},
                     timeout=CLIENT_TIMEOUT, variant=label)
    out = H.Run(**{k: getattr(r, k) for k in r.__dataclass_fields__})
    time.sleep(0.05)  # a query still in flight when the client ended is logged too
    qs = [q for n in names for q in dns.queries(n, since=t0)]
    out.extra["dns_queries"] = H.DnsServer.describe(qs)
    out.extra["dns_query_count"] = str(len(qs))
    return out


def scenario_shared(workdir: Path, info: dict[str, str]) -> list[H.Run]:
    hosts = [(SHARED_DEAD, "a.test"), (A_LIVE, "a.test"), (SHARED_DEAD, "b.test"),
             (B_LIVE, "b.test")]
    info.update(H.setup_dns_namespace(workdir, hosts))
    exe = workdir / "nw_shared"
    src = workdir / "nw_shared.c"
    src.write_text(SHARED_C)
    H.compile_c(exe, [src])
    lifetime = 120.0
    dns = H.DnsServer(lifetime=lifetime, table={})
    servers = [H.UpServer(A_LIVE, PORT, lifetime), H.UpServer(B_LIVE, PORT, lifetime)]
    runs: list[H.Run] = []
    try:
        info["gai_a"] = H.gai("a.test", PORT, socket.AF_INET)
        info["gai_b"] = H.gai("b.test", PORT, socket.AF_INET)
        info["layout"] = (f"a.test: {SHARED_DEAD} refused, {A_LIVE} up; "
                          f"b.test: {SHARED_DEAD} refused, {B_LIVE} up")
        for mode in ("a-ptr", "a-copy", "a-ptr-b-freed", "b-ptr"):
            for v in ("plain", "dnsfo"):
                runs.append(run(f"{mode}.{v}", [str(exe), mode, str(PORT), SHARED_DEAD], v,
                                dns, ["a.test", "b.test"]))
        for v in ("plain", "dnsfo"):
            cmd = [sys.executable, "-c", PY_CLIENT, SHARED_DEAD, str(PORT), "a.test", "b.test"]
            runs.append(run(f"python.{v}", cmd, v, dns, ["a.test", "b.test"]))
        info["accepted"] = " ".join(f"{s.ip}={s.accepted}" for s in servers)
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        dns.stop()
    return runs


def scenario_hosts_pin(workdir: Path, info: dict[str, str]) -> list[H.Run]:
    hosts = [("0.0.0.0", "ads.test"), (SHARED_DEAD, "pin.test"), (SHARED_DEAD, "pin2.test"),
             ("127.0.0.10", "pin2.test")]
    info.update(H.setup_dns_namespace(workdir, hosts))
    lifetime = 120.0
    table = {n: [DNS_LIVE] for n in ("ads.test", "pin.test", "pin2.test", "dns.test")}
    dns = H.DnsServer(lifetime=lifetime, table=table)
    servers = [H.UpServer(DNS_LIVE, PORT, lifetime)]
    runs: list[H.Run] = []
    try:
        # The harness works: DNS answers through the test server, and the system itself
        # (getaddrinfo, AF_UNSPEC and AF_INET) never asks DNS about a name /etc/hosts answers.
        # (`getent hosts` would: its AF_INET6 lookup finds no IPv6 line and goes on to DNS.)
        info["getent_dns"] = H.check_getent(dns, "dns.test", [DNS_LIVE])
        t0 = time.monotonic()
        want = {"ads.test": "0.0.0.0", "pin.test": SHARED_DEAD,
                "pin2.test": f"{SHARED_DEAD} 127.0.0.10"}
        for n, ips in want.items():
            for fam, tag in ((socket.AF_UNSPEC, "unspec"), (socket.AF_INET, "inet")):
                got = H.gai(n, PORT, fam)
                info[f"gai_{tag}_{n}"] = got
                if got != ips:
                    raise H.HarnessError(f"getaddrinfo({n}, {tag}) gave {got!r}, not /etc/hosts' "
                                         f"{ips!r}")
        time.sleep(0.05)
        seen = dns.queries(since=t0)
        if seen:
            raise H.HarnessError(f"the system resolver asked DNS about pinned names: "
                                 f"{H.DnsServer.describe(seen)}")
        info["layout"] = (f"/etc/hosts: ads.test 0.0.0.0, pin.test {SHARED_DEAD}, pin2.test "
                          f"{SHARED_DEAD} 127.0.0.10 (nothing listens); DNS: all three -> "
                          f"{DNS_LIVE} (up)")
        for label, name, env in (("ads", "ads.test", {}), ("pin", "pin.test", {}),
                                 ("pin2", "pin2.test", {}),
                                 ("pin_ns", "pin.test", {"DNSFO_NAMESERVER": "127.0.0.1:53"})):
            for v in ("plain", "dnsfo"):
                cmd = [sys.executable, "-c", PY_CLIENT, "first", str(PORT), name]
                runs.append(run(f"{label}.{v}", cmd, v, dns, [name], env))
        info["accepted"] = " ".join(f"{s.ip}={s.accepted}" for s in servers)
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        dns.stop()
    return runs


SCENARIOS = {
    "shared": (scenario_shared, "item 4: an address shared by a.test and b.test"),
    "hosts-pin": (scenario_hosts_pin, "item 3: /etc/hosts pins while DNS names a live server"),
}
BUDGET_S = 150


def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("neverwrong: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    sys.stdout.flush()
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="neverwrong.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", choices=list(SCENARIOS))
    sub.add_parser("scenarios")
    args = ap.parse_args(argv)
    if args.cmd == "scenarios":
        for k, (_, doc) in SCENARIOS.items():
            print(f"{k:10} {doc}")
        return 0
    try:
        H.enter_namespace([str(Path(__file__).resolve()), *argv])  # returns only inside
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(BUDGET_S)
        workdir = Path(tempfile.mkdtemp(prefix="dnsfo-neverwrong-"))
        info = {**H.lib_facts(), "scenario_name": args.scenario}
        try:
            runs = SCENARIOS[args.scenario][0](workdir, info)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.alarm(0)
        H.emit(info, runs, False)
        return 0
    except H.HarnessError as e:
        print(f"neverwrong: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
