"""The servers a scenario needs: up (a banner or an HTTP reply), silent (a verified
blackhole); refused is nothing bound.
"""

from __future__ import annotations


import contextlib
import select
import socket
import threading
import struct
import time

from harness.base import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403

def family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class UpServer:
    """Listener on ip:port; every accepted connection gets `HELLO <ip>\\n` (or an HTTP reply).

    Stops by itself after `lifetime` seconds, or at most `max_conns` connections.
    """

    def __init__(self, ip: str, port: int, lifetime: float = 60.0, http: bool = False,
                 max_conns: int = 500, backlog: int = 64):
        self.ip, self.port, self.http, self.max_conns = ip, port, http, max_conns
        self.banner = self._banner(ip)
        self.deadline = time.monotonic() + lifetime
        self.accepted = 0
        self._stop = threading.Event()
        self.sock = socket.socket(family(ip), socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"up-{ip}")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline \
                and self.accepted < self.max_conns:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            self.accepted += 1
            self._handle(conn)
        with contextlib.suppress(OSError):
            self.sock.close()

    # Subclasses speak other protocols by overriding these two.
    @staticmethod
    def _banner(ip: str) -> bytes:
        return f"HELLO {ip}\n".encode()

    def _handle(self, conn: socket.socket) -> None:
        if self.http:
            threading.Thread(target=self._http, args=(conn,), daemon=True).start()
        else:
            with contextlib.suppress(OSError):
                conn.sendall(self.banner)
            conn.close()

    def _http(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with contextlib.suppress(OSError), conn:
            data = b""
            for _ in range(64):  # bounded: read the request head
                chunk = conn.recv(4096)
                data += chunk
                if not chunk or b"\r\n\r\n" in data or len(data) > 65536:
                    break
            body = self.banner
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(16):  # drain until the client closes, so close() sends no RST
                if not conn.recv(4096):
                    break

    def stop(self) -> None:
        self._stop.set()
        # Wakes a pending accept at once (Linux fails it with EINVAL) instead of letting it
        # run out its 0.1 s: a scenario with 30 servers spent 1.4 s stopping them one by one.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=2)


class SilentServer:
    """A blackhole on ip:port: listen(fd, 0) plus a connect that is never accepted.

    With backlog 0 the accept queue holds one connection; once it is full the kernel drops every
    further SYN (TcpExt:ListenOverflows/ListenDrops count them), just like a dead host. Filler
    connects go one by one until the listener's own TCP_INFO says its queue is full
    (`tcpi_unacked`, the queue's length, above `tcpi_sacked`, its backlog: what the kernel's
    SYN-drop test compares); 1 in practice. No connect is left to be dropped, so no retransmitted
    SYN of ours pollutes the counters, and nothing waits for a drop. The listener closes itself
    after `lifetime` seconds.
    """

    def __init__(self, ip: str, port: int, lifetime: float = 60.0):
        self.ip, self.port = ip, port
        fam = family(ip)
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(0)
        self.fillers: list[socket.socket] = []
        # One filler at a time, each waited for, so no handshake is half-done when the queue
        # fills: the first completes and sits in the accept queue; the next one's SYN is dropped.
        for _ in range(3):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((ip, port))
            # Loopback answers at once; the bound only matters on a machine under heavy load.
            _, ready, _ = select.select([], [s], [], 5.0)
            if not ready or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                s.close()
                self.close()
                raise HarnessError(f"blackhole {ip}:{port}: a filler connect did not complete")
            self.fillers.append(s)  # established, never accepted
            if self._queue_full(deadline=time.monotonic() + 1.0):
                break
        else:
            self.close()
            raise HarnessError(f"blackhole {ip}:{port}: 3 connects completed, queue never full")
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()

    def _queue_full(self, deadline: float) -> bool:
        """The listener's accept queue is over its backlog (the child of a completed handshake
        may reach the queue a moment after the client saw it complete: looked at until
        `deadline`)."""
        while True:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            queued, backlog = struct.unpack_from("II", info, 24)  # tcpi_unacked, tcpi_sacked
            if queued > backlog:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def close(self) -> None:
        for s in [*self.fillers, self.sock]:
            with contextlib.suppress(OSError):
                s.close()

    def stop(self) -> None:
        self._timer.cancel()
        self.close()


def verify_silent(servers: list[SilentServer], wait: float = 0.15) -> str:
    """Probe every blackhole at once: a plain non-blocking connect must stay unanswered for `wait`
    seconds and the namespace's ListenDrops must grow by at least one per server. Raises if not.
    The counter is the proof (the kernel drops a loopback SYN within the probe's own connect
    call); the wait only adds that no answer came later."""
    if not servers:
        return ""
    before = read_counters()
    probes = []
    for srv in servers:
        s = socket.socket(family(srv.ip), socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((srv.ip, srv.port))
        probes.append(s)
    _, ready, _ = select.select([], probes, [], wait)
    after = read_counters()
    for s in probes:  # closed before the first SYN retransmission (1 s), so nothing lingers
        s.close()
    drops = after["TcpExt:ListenDrops"] - before["TcpExt:ListenDrops"]
    if ready or drops < len(servers):
        raise HarnessError(f"blackhole verification failed: {len(ready)} probe(s) answered, "
                           f"ListenDrops +{drops} for {len(servers)} server(s)")
    return f"{len(servers)} blackhole(s) verified: probes unanswered for {wait}s, ListenDrops +{drops}"
