"""Re-entrancy, allocation failure, threads and flapping servers (issue 5, items 1-4, 13)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from common import (PORT, REFUSED_FIRST, AcceptServer, H, World, b, both, build, fact, run)


def case_reentry() -> None:
    """Items 1-2: malloc calling the socket API and getaddrinfo; hooks from a library
    constructor, the program's constructor, atexit, a pthread key destructor and a
    thread_local (__cxa_thread_atexit_impl) destructor; refused first, timeout 5 s.
    Runs: reentry.dnsfo, reentry.plain."""
    build(["hard_reentry"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        env = {"HARD_NAME": "svc", "HARD_PORT": str(PORT)}
        both("reentry", [b("hard_reentry"), "svc", str(PORT)], env=env, timeout=5)


def case_oom() -> None:
    """Item 3: allocation failure inside a hook (hard_oom). Runs: oom.dnsfo, oom.plain."""
    build(["hard_oom"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}):
        both("oom", [b("hard_oom"), "svc", str(PORT)], timeout=20)


def case_threads_hammer() -> None:
    """Item 4a: 16 threads x 500 connects to the dead first address of a refused-first name.
    Run: hammer.dnsfo (its RESULT line)."""
    build(["hard_threads"])
    H.enter_namespace()
    with World({"svc": REFUSED_FIRST}, up_factory=lambda ip, port: AcceptServer(ip, port)):
        run("hammer.dnsfo", [b("hard_threads"), "hammer", "svc", str(PORT), "16", "500",
                             "127.0.0.3"], timeout=60)


RACE_ROUNDS = 6


def case_threads_race() -> None:
    """Item 4b: 8 threads racing a 5-address name (refused, silent, refused, refused, up), a fresh
    port per round (nothing remembered), half blocking, half non-blocking, RACE_ROUNDS rounds
    (tests/hardening/threads.rs expects 8 x RACE_ROUNDS connects). Run: race.dnsfo."""
    build(["hard_threads"])
    H.enter_namespace()
    ports = [PORT + i for i in range(RACE_ROUNDS)]
    names = {"race5": ["refused:127.0.0.2", "silent:127.0.0.4", "refused:127.0.0.5",
                       "refused:127.0.0.6", "up:127.0.0.7"]}

    class Multi:
        def __init__(self, ip, _port):
            self.s = [AcceptServer(ip, p) for p in ports]

        def stop(self):
            for s in self.s:
                s.stop()

    with World(names, silent_ports=ports, up_factory=Multi):
        run("race.dnsfo", [b("hard_threads"), "race", "race5", str(PORT), "8", str(RACE_ROUNDS),
                           "127.0.0.7"], timeout=40)


class FlapServer:
    """Up for `period` s (accepting, banner, close), then down (listener closed: refused) for
    `period` s, and so on, starting after `offset` s; stops by itself after `lifetime` s."""

    def __init__(self, ip: str, port: int, period: float = 0.05, offset: float = 0.0,
                 lifetime: float = 10.0):
        self.ip, self.port, self.period, self.offset = ip, port, period, offset
        self.deadline = time.monotonic() + lifetime
        self.cycles = 0
        self.accepted = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        time.sleep(self.offset)
        banner = f"HELLO {self.ip}\n".encode()
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            s = socket.socket(H.family(self.ip), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.ip, self.port))
                s.listen(64)
            except OSError:
                s.close()
                time.sleep(self.period)
                continue
            s.settimeout(0.01)
            up_until = time.monotonic() + self.period
            while time.monotonic() < up_until:
                try:
                    c, _ = s.accept()
                except (TimeoutError, socket.timeout):
                    continue
                except OSError:
                    break
                self.accepted += 1
                with contextlib.suppress(OSError):
                    c.sendall(banner)
                c.close()
            s.close()
            self.cycles += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)


def case_flap() -> None:
    """Item 13: three servers flapping up/down every 50 ms (phases offset) while 8 threads connect
    for 5 s (half blocking, half non-blocking). Run: flap.dnsfo (its FLAP and FDS lines); fact
    flap_cycles (each server's up/down cycles, taken when the run ended)."""
    build(["hard_flap"])
    H.enter_namespace()
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    servers = iter(range(3))

    def flapper(ip, port):
        return FlapServer(ip, port, period=0.05, offset=0.033 * next(servers), lifetime=12)

    with World({"flap": [f"up:{ip}" for ip in ips]}, up_factory=flapper) as w:
        run("flap.dnsfo", [b("hard_flap"), "flap", str(PORT), "8", "5"], timeout=20)
        fact("flap_cycles", " ".join(str(s.cycles) for s in w.servers))


CASES = {"reentry": case_reentry, "oom": case_oom, "threads_hammer": case_threads_hammer,
         "threads_race": case_threads_race, "flap": case_flap}
