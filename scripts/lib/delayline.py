#!/usr/bin/env python3
"""A delay line for scripts/bench: two network namespaces joined by two TUN devices and a userspace
relay that holds every IP packet for RTT/2 each way (this kernel has no netem).

Standard library only (ctypes for unshare(2), setns(2) and prctl(2): Python 3.11 has no
os.unshare/os.setns). Runs inside the bench's private user + net namespace (`unshare -rmn`): the
relay process creates two more network namespaces of its own, so every address below exists only
in namespaces this module created.

    client namespace                 relay (this module)                  server namespace
    lo, dlc0: 10.77.0.1/24  <-TUN->  heap of (due, seq, packet)  <-TUN->  lo, dls0: 10.77.0.2..9
                                     RTT/2 each way; drops the            listeners (accept, count,
                                     silent addresses' packets            close on the client's EOF)

* delay: a packet read from one TUN device at t is written to the other at t + RTT/2 (a timer
  heap keyed by (due, sequence number): the delay is the same for every packet of a direction, so
  order is preserved); the heap is bounded (--queue, default 4096 packets; beyond it packets are
  dropped and counted, as a full router queue would);
* silent addresses (--silent IP): every packet to or from them is dropped, so a SYN gets no answer
  at all (a dead host); other server addresses answer (a listener, --serve IP:PORT) or refuse
  (nothing listening: RST);
* counts: SYNs (SYN without ACK) from the client side per destination address (and the times of
  the last 256, ms since the first: `syn_log`, which shows an attempt delay on the wire), accepted
  connections per listener address, packets forwarded/dropped, the relay's worst lateness;
* lifetime: the relay exits after --lifetime seconds, at EOF on its stdin (its parent closed the
  pipe or died) and, via PR_SET_PDEATHSIG, when its parent dies;
* control: one command per line on stdin, one JSON line back on stdout: `stats`, `reset`.

Module use (inside a private namespace, as root of it):

    with DelayLine(rtt_ms=40, silent=["10.77.0.2"], serve=["10.77.0.3:7000"]) as dl:
        with dl.client():            # this thread (and what it spawns) in the client namespace
            subprocess.run([...])
        dl.stats(); dl.reset()
        dl.client_cmd(["prog"])       # ["nsenter", "--net=...", "--", "prog"]

CLI:

    scripts/lib/delayline.py check [--rtt-ms 40] [--n 20]     # builds one and verifies its RTT
    scripts/lib/delayline.py run [--rtt-ms 40] [--silent IP] [--serve IP:PORT] -- CMD...
    scripts/lib/delayline.py relay ...                          # the relay process itself

`check` and `run` enter a private user + mount + net namespace themselves (scripts/lib/hermetic.py)
when not already in one. `check` exits 0 when the kernel's own tcpi_rtt and the connect time are
within 20 % of the RTT, the silent address stays unanswered and the SYN and accept counts match
the connects; 1 otherwise; 2 on a harness error.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import fcntl
import heapq
import ipaddress
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TCP_INFO_RTT = 68  # byte offset of tcpi_rtt in struct tcp_info (linux/tcp.h); tcpi_rttvar at 72

CLIENT_IP = "10.77.0.1"
SERVER_IPS = [f"10.77.0.{i}" for i in range(2, 10)]
PREFIX = 24
CLIENT_DEV, SERVER_DEV = "dlc0", "dls0"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2) of the calling thread (processes it spawns afterwards inherit the namespace)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def tcp_rtt(sock: socket.socket) -> tuple[int, int]:
    """The kernel's (tcpi_rtt, tcpi_rttvar) of a connected TCP socket, µs."""
    buf = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("=II", buf, TCP_INFO_RTT)


# --------------------------------------------------------------------------------------------
# The relay process
# --------------------------------------------------------------------------------------------

def _ip(cmd: list[str]) -> None:
    r = subprocess.run(["ip", *cmd], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise OSError(f"ip {' '.join(cmd)}: {r.stderr.strip()}")


def _open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def _new_netns(dev: str, addrs: list[str]) -> tuple[int, int]:
    """unshare(CLONE_NEWNET) of this process, a TUN device `dev` with `addrs` in it, lo up.
    Returns (namespace fd, TUN fd). The calling thread stays in the new namespace."""
    unshare(CLONE_NEWNET)
    nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)  # keeps it alive, names it
    tun = _open_tun(dev)
    _ip(["link", "set", "lo", "up"])
    # no IPv6 on the TUN device: no router solicitations or DAD packets through the relay
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6").write_text("1")
    for a in addrs:
        _ip(["addr", "add", f"{a}/{PREFIX}", "dev", dev])
    _ip(["link", "set", dev, "up"])
    return nsfd, tun


class Relay:
    def __init__(self, args):
        self.half = args.rtt_ms / 2000.0
        self.deadline = time.monotonic() + args.lifetime
        self.maxq = args.queue
        self.silent = {socket.inet_aton(ip) for ip in args.silent}
        self.heap: list = []
        self.seq = 0
        self.listeners: dict[int, tuple[socket.socket, str]] = {}
        self.conns: dict[int, socket.socket] = {}
        self.reset()
        self.cns, self.ctun = _new_netns(CLIENT_DEV, [CLIENT_IP])
        self.sns, self.stun = _new_netns(SERVER_DEV, SERVER_IPS)
        for spec in args.serve:  # this thread is in the server namespace now
            ip, _, port = spec.rpartition(":")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, int(port)))
            s.listen(4096)
            s.setblocking(False)
            self.listeners[s.fileno()] = (s, ip)

    def reset(self) -> None:
        self.syn: dict[str, int] = {}
        self.syn_log: collections.deque = collections.deque(maxlen=256)  # (time, destination)
        self.accepts: dict[str, int] = {}
        self.forwarded = self.dropped_silent = self.dropped_full = self.dropped_other = 0
        self.late_max = 0.0
        self.late_sum = 0.0

    def stats(self) -> dict:
        t0 = self.syn_log[0][0] if self.syn_log else 0.0
        return {"syn": self.syn, "accepts": self.accepts, "forwarded": self.forwarded,
                "syn_log": [[round((t - t0) * 1000, 3), ip] for t, ip in self.syn_log],
                "dropped_silent": self.dropped_silent, "dropped_full": self.dropped_full,
                "dropped_other": self.dropped_other, "queued": len(self.heap),
                "late_max_us": round(self.late_max * 1e6, 1),
                "late_mean_us": round(self.late_sum / self.forwarded * 1e6, 1)
                if self.forwarded else 0.0, "rtt_ms": self.half * 2000}

    def _ingress(self, fd: int, out: int, outbound: bool, now: float) -> None:
        for _ in range(256):  # bounded per wake-up
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                return
            if len(pkt) < 20 or pkt[0] >> 4 != 4:
                self.dropped_other += 1  # IPv4 only
                continue
            src, dst = pkt[12:16], pkt[16:20]
            if outbound and pkt[9] == 6:  # TCP: count SYNs (no ACK), silent addresses' too
                off = (pkt[0] & 0x0F) * 4 + 13
                if len(pkt) > off and pkt[off] & 0x12 == 0x02:
                    k = socket.inet_ntoa(dst)
                    self.syn[k] = self.syn.get(k, 0) + 1
                    self.syn_log.append((now, k))
            if (dst if outbound else src) in self.silent:
                self.dropped_silent += 1
                continue
            if len(self.heap) >= self.maxq:
                self.dropped_full += 1
                continue
            self.seq += 1
            heapq.heappush(self.heap, (now + self.half, self.seq, out, pkt))

    def _egress(self) -> None:
        now = time.monotonic()
        while self.heap and self.heap[0][0] <= now:
            due, _, out, pkt = heapq.heappop(self.heap)
            try:
                os.write(out, pkt)
                self.forwarded += 1
            except OSError:
                self.dropped_other += 1
                continue
            late = now - due
            self.late_sum += late
            self.late_max = max(self.late_max, late)

    def _control(self, line: bytes) -> bool:
        cmd = line.strip().decode(errors="replace")
        if cmd == "stats":
            reply = self.stats()
        elif cmd == "reset":
            self.reset()
            reply = {"ok": True}
        elif cmd == "quit":
            return False
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        os.write(1, (json.dumps(reply) + "\n").encode())
        return True

    def loop(self) -> None:
        pid = os.getpid()
        os.write(1, f"READY /proc/{pid}/fd/{self.cns} /proc/{pid}/fd/{self.sns}\n".encode())
        # epoll for readiness, select() on the epoll fd for the wait: select's timeout is a
        # timeval (µs), where poll/epoll_wait round up to whole milliseconds
        poll = select.epoll()
        for fd in (0, self.ctun, self.stun, *self.listeners):
            poll.register(fd, select.EPOLLIN)
        buf = b""
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                return
            timeout = self.deadline - now
            if self.heap:
                timeout = min(timeout, max(0.0, self.heap[0][0] - now))
            select.select([poll.fileno()], [], [], timeout)
            events = poll.poll(0)
            now = time.monotonic()
            for fd, ev in events:
                if fd == self.ctun:
                    self._ingress(self.ctun, self.stun, True, now)
                elif fd == self.stun:
                    self._ingress(self.stun, self.ctun, False, now)
                elif fd == 0:
                    chunk = os.read(0, 4096)
                    if not chunk:
                        return  # the parent is gone
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if not self._control(line):
                            return
                elif fd in self.listeners:
                    s, ip = self.listeners[fd]
                    for _ in range(64):
                        try:
                            c, _ = s.accept()
                        except BlockingIOError:
                            break
                        self.accepts[ip] = self.accepts.get(ip, 0) + 1
                        if len(self.conns) >= 4096:
                            c.close()
                            continue
                        c.setblocking(False)
                        self.conns[c.fileno()] = c
                        poll.register(c.fileno(), select.EPOLLIN)
                elif fd in self.conns:
                    # EOF, data or error from the client: done with it; no TIME_WAIT here
                    c = self.conns.pop(fd)
                    poll.unregister(fd)
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
            self._egress()


def relay_main(args) -> int:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    if os.getppid() != args.parent:  # the parent died before PDEATHSIG was armed
        return 1
    try:
        relay = Relay(args)
    except OSError as e:
        os.write(1, f"ERROR {e}\n".encode())
        return 2
    relay.loop()
    return 0


# --------------------------------------------------------------------------------------------
# The parent's side
# --------------------------------------------------------------------------------------------

class DelayLine:
    """Starts the relay (a child process) and gives access to its two namespaces."""

    def __init__(self, rtt_ms: float = 40.0, silent: list[str] | None = None,
                 serve: list[str] | None = None, lifetime: float = 600.0, queue: int = 4096,
                 cpu: int | None = None):
        for spec in [*(silent or []), *(s.rpartition(":")[0] for s in serve or [])]:
            if spec not in SERVER_IPS:
                raise ValueError(f"{spec}: server addresses are {SERVER_IPS[0]}..{SERVER_IPS[-1]}")
        self.rtt_ms = rtt_ms
        cmd = [sys.executable, str(Path(__file__).resolve()), "relay", "--rtt-ms", str(rtt_ms),
               "--lifetime", str(lifetime), "--queue", str(queue), "--parent", str(os.getpid())]
        for ip in silent or []:
            cmd += ["--silent", ip]
        for s in serve or []:
            cmd += ["--serve", s]

        def pin():
            if cpu is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, {cpu})

        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     preexec_fn=pin)
        line = self._line(10.0)
        if not line.startswith("READY "):
            self.stop()
            raise OSError(f"delay line did not start: {line or 'no answer'}")
        _, self.client_ns, self.server_ns = line.split()

    def _line(self, timeout: float) -> str:
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode().strip() if r else ""

    def _ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        line = self._line(5.0)
        if not line:
            raise OSError(f"delay line: no answer to {cmd!r}")
        return json.loads(line)

    def stats(self) -> dict:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    @contextlib.contextmanager
    def _enter(self, path: str):
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(path, os.O_RDONLY)
        try:
            setns(target)
            yield
        finally:
            setns(own)
            os.close(target)
            os.close(own)

    def client(self):
        """Context manager: the calling thread (and what it spawns meanwhile) in the client
        namespace."""
        return self._enter(self.client_ns)

    def server(self):
        """The same for the server namespace."""
        return self._enter(self.server_ns)

    def client_cmd(self, cmd: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.client_ns}", "--", *cmd]

    def server_cmd(self, cmd: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.server_ns}", "--", *cmd]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()  # EOF: it exits
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "DelayLine":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

def measure(dl: DelayLine, ip: str, port: int, n: int) -> dict:
    """n blocking connects from the client namespace to ip:port: connect times, tcpi_rtt."""
    times, rtts, vars_ = [], [], []
    with dl.client():
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            t0 = time.monotonic()
            s.connect((ip, port))
            times.append((time.monotonic() - t0) * 1000)
            rtt, var = tcp_rtt(s)
            rtts.append(rtt / 1000)
            vars_.append(var / 1000)
            s.close()
    return {"connect_ms": times, "tcpi_rtt_ms": rtts, "tcpi_rttvar_ms": vars_}


def silent_probe(dl: DelayLine, ip: str, port: int, wait: float) -> bool:
    """True when a connect to ip:port from the client namespace stays unanswered for `wait` s."""
    with dl.client():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((ip, port))
        _, w, _ = select.select([], [s], [], wait)
        s.close()
    return not w


def check(rtt_ms: float, n: int, port: int = 7000) -> int:
    up, silent = SERVER_IPS[1], SERVER_IPS[0]
    with DelayLine(rtt_ms, silent=[silent], serve=[f"{up}:{port}"], lifetime=120) as dl:
        m = measure(dl, up, port, n)
        quiet = silent_probe(dl, silent, port, 2.5 * rtt_ms / 1000 + 0.1)
        st = dl.stats()
    ct, rt = statistics.median(m["connect_ms"]), statistics.median(m["tcpi_rtt_ms"])
    print(f"delay line: RTT {rtt_ms:g} ms, {n} connects from {CLIENT_IP} to {up}:{port}")
    print(f"  connect time   median {ct:.2f} ms  min {min(m['connect_ms']):.2f}  "
          f"max {max(m['connect_ms']):.2f}")
    print(f"  kernel tcpi_rtt median {rt:.2f} ms  min {min(m['tcpi_rtt_ms']):.2f}  "
          f"max {max(m['tcpi_rtt_ms']):.2f}  (tcpi_rttvar median "
          f"{statistics.median(m['tcpi_rttvar_ms']):.2f} ms)")
    print(f"  silent {silent}: {'unanswered' if quiet else 'ANSWERED'}; relay: SYNs {st['syn']}, "
          f"accepts {st['accepts']}, forwarded {st['forwarded']}, dropped silent "
          f"{st['dropped_silent']}, full {st['dropped_full']}, lateness mean "
          f"{st['late_mean_us']} µs max {st['late_max_us']} µs")
    ok = (abs(ct - rtt_ms) <= 0.2 * rtt_ms and abs(rt - rtt_ms) <= 0.2 * rtt_ms and quiet
          and st["syn"].get(up) == n and st["accepts"].get(up) == n and st["syn"].get(silent, 0) >= 1)
    print("  ok" if ok else "  FAILED")
    return 0 if ok else 1


def _hermetic():
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import hermetic
    return hermetic


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="delayline.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay", help="the relay process (started by DelayLine)")
    r.add_argument("--rtt-ms", type=float, default=40.0)
    r.add_argument("--lifetime", type=float, default=600.0)
    r.add_argument("--queue", type=int, default=4096)
    r.add_argument("--silent", action="append", default=[])
    r.add_argument("--serve", action="append", default=[])
    r.add_argument("--parent", type=int, required=True)
    c = sub.add_parser("check", help="build a delay line and verify its RTT")
    c.add_argument("--rtt-ms", type=float, default=40.0)
    c.add_argument("--n", type=int, default=20)
    u = sub.add_parser("run", help="run CMD in the client namespace of a delay line")
    u.add_argument("--rtt-ms", type=float, default=40.0)
    u.add_argument("--silent", action="append", default=[])
    u.add_argument("--serve", action="append", default=[])
    u.add_argument("command", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "relay":
        return relay_main(args)
    hermetic = _hermetic()
    try:
        if not hermetic.in_namespace():
            hermetic.enter_namespace([str(Path(__file__).resolve()), *argv])
        if args.cmd == "check":
            return check(args.rtt_ms, max(1, min(1000, args.n)))
        with DelayLine(args.rtt_ms, silent=args.silent, serve=args.serve, lifetime=3600) as dl:
            return subprocess.run(dl.client_cmd(args.command)).returncode
    except (OSError, ValueError, hermetic.HarnessError) as e:
        print(f"delayline: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
