#!/usr/bin/env python3
"""Event-loop end-to-end harness for dnsfo (issue 4: non-blocking connects), standard library only.

Built on scripts/lib/hermetic.py (namespace, hosts file, up/refused/silent servers, running a client
with and without LD_PRELOAD, output format); this file only adds what the event-loop clients need:

* the ev_* clients (tests/e2e/clients/ev_*): C clients compiled into target/e2e-bin (cached, file
  lock, atomic), the Java NIO client (javac), node, python asyncio, curl and psql;
* server flavours per client: `banner` (hermetic's UpServer: `HELLO <ip>\\n`), `http` (hermetic's
  UpServer in HTTP mode, for curl) and `pg` (a tiny fake PostgreSQL server, below, for psql);
* an `other` up server (127.0.0.100, port+1) for the close-mid-race client.

CLI (tests/eventloop.rs uses it; output: hermetic's `<section> <key> <escaped value>` lines):

    python3 tests/e2e/evloop.py run --client ev-epoll-et --addr silent:127.0.0.2 --addr up:127.0.0.3 \\
        --variant dnsfo:10 --variant plain:3 [--env K=V] [--serial]
    python3 tests/e2e/evloop.py run --server pg --addr refused:127.0.0.2 --addr up:127.0.0.3 -- \\
        strace -f -o /tmp/psql.strace psql -XtA -c 'select 1' 'host={name} port={port} user=x'
    python3 tests/e2e/evloop.py build-clients
    python3 tests/e2e/evloop.py clients
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parents[1] / "scripts" / "lib"))
import hermetic as H  # noqa: E402  (helper-1's harness: namespace, servers, run_client, emit)

REPO = H.REPO
SRC = HERE / "clients"
BIN = H.BIN_DIR
OTHER_IP = "127.0.0.100"  # the close-mid-race client's unrelated server (port + 1)

EV_C = ("ev_epoll_et", "ev_epoll_mod", "ev_epoll_oneshot", "ev_poll_strict", "ev_select",
        "ev_close_race")

PSQL_CONNINFO = "host={name} port={port} user=evtest dbname=evtest connect_timeout=10"

# name -> (command template, server flavour, build target or None)
# Placeholders: {name} {port} {bin} {src} {python} {other_ip} {other_port}
CLIENTS: dict[str, tuple[list[str], str, str | None]] = {
    "ev-epoll-et": (["{bin}/ev_epoll_et", "{name}", "{port}"], "banner", "ev_epoll_et"),
    "ev-epoll-mod": (["{bin}/ev_epoll_mod", "{name}", "{port}"], "banner", "ev_epoll_mod"),
    "ev-epoll-oneshot": (["{bin}/ev_epoll_oneshot", "{name}", "{port}"], "banner",
                         "ev_epoll_oneshot"),
    "ev-poll-strict": (["{bin}/ev_poll_strict", "{name}", "{port}"], "banner", "ev_poll_strict"),
    "ev-select": (["{bin}/ev_select", "{name}", "{port}"], "banner", "ev_select"),
    "node-noafs": (["node", "{src}/ev_node.js", "{name}", "{port}", "noafs"], "banner", None),
    "node-afs": (["node", "{src}/ev_node.js", "{name}", "{port}", "afs"], "banner", None),
    "asyncio-first": (["{python}", "{src}/ev_asyncio.py", "{name}", "{port}", "first"], "banner",
                      None),
    "asyncio-open": (["{python}", "{src}/ev_asyncio.py", "{name}", "{port}", "open"], "banner",
                     None),
    "java-nio": (["java", *H.JAVA_OPTS, "-cp", "{bin}", "ev_nio", "{name}", "{port}"], "banner",
                 "ev_nio"),
    "curl": (["curl", "-sS", "--max-time", "10", "http://{name}:{port}/"], "http", None),
    "psql": (["psql", "-X", "-tA", "-c", "select banner", PSQL_CONNINFO], "pg", None),
}
# ev-close-race-<tcp|pair>-<close|sysclose|dup2>: see ev_close_race.c
for _new in ("tcp", "pair"):
    for _how in ("close", "sysclose", "dup2"):
        CLIENTS[f"ev-close-race-{_new}-{_how}"] = (
            ["{bin}/ev_close_race", "{name}", "{port}", "{other_ip}", "{other_port}", _new, _how],
            "banner", "ev_close_race")


# --------------------------------------------------------------------------------------------
# Building the C and Java clients (cached in target/e2e-bin)
# --------------------------------------------------------------------------------------------

EV_BUILDS = {**{c: H.Build((f"{c}.c",), ("ev_common.h",)) for c in EV_C},
             "ev_nio": H.Build(("ev_nio.java",))}


def build(which: list[str] | None = None) -> None:
    """Compile the ev_* C clients (cc) and ev_nio.java (javac) if stale; safe in parallel."""
    H.build(EV_BUILDS, which)


# --------------------------------------------------------------------------------------------
# A fake PostgreSQL server (enough of protocol 3.0 for `psql -c`)
# --------------------------------------------------------------------------------------------

class PgServer(H.UpServer):
    """Listener on ip:port speaking just enough of the PostgreSQL wire protocol for psql/libpq:
    SSLRequest/GSSENCRequest -> 'N'; StartupMessage -> AuthenticationOk, a few ParameterStatus,
    BackendKeyData, ReadyForQuery; any Query -> one text column `banner` = `HELLO <ip>`;
    Terminate -> close. A real libpq client thus prints `HELLO <ip>` for `psql -tA -c ...`.
    Stops by itself after `lifetime` seconds or `max_conns` connections."""

    SSL_REQUEST, GSS_REQUEST, PROTO_3 = 80877103, 80877104, 196608

    def __init__(self, ip: str, port: int, lifetime: float = 60.0, max_conns: int = 200):
        super().__init__(ip, port, lifetime, max_conns=max_conns)

    @staticmethod
    def _banner(ip: str) -> bytes:
        return f"HELLO {ip}".encode()

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv_exact(conn: socket.socket, n: int) -> bytes:
        data = b""
        for _ in range(64):
            if len(data) >= n:
                break
            chunk = conn.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) != n:
            raise ConnectionError("short read")
        return data

    @staticmethod
    def _msg(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("!I", len(body) + 4) + body

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError, ConnectionError, struct.error), conn:
            for _ in range(4):  # SSLRequest / GSSENCRequest, then the StartupMessage
                length, code = struct.unpack("!II", self._recv_exact(conn, 8))
                if length < 8 or length > 10000:
                    return
                self._recv_exact(conn, length - 8)
                if code in (self.SSL_REQUEST, self.GSS_REQUEST):
                    conn.sendall(b"N")
                    continue
                if code != self.PROTO_3:
                    return
                break
            else:
                return
            out = self._msg(b"R", struct.pack("!I", 0))
            for k, v in (("server_version", "15.0"), ("server_encoding", "UTF8"),
                         ("client_encoding", "UTF8"), ("standard_conforming_strings", "on"),
                         ("DateStyle", "ISO, MDY"), ("integer_datetimes", "on")):
                out += self._msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
            out += self._msg(b"K", struct.pack("!II", 4242, 1))
            out += self._msg(b"Z", b"I")
            conn.sendall(out)
            for _ in range(16):
                kind = self._recv_exact(conn, 1)
                (length,) = struct.unpack("!I", self._recv_exact(conn, 4))
                if length < 4 or length > 100000:
                    return
                self._recv_exact(conn, length - 4)
                if kind == b"X":
                    return
                if kind == b"Q":
                    field = b"banner\0" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
                    out = self._msg(b"T", struct.pack("!h", 1) + field)
                    out += self._msg(b"D", struct.pack("!hI", 1, len(self.banner)) + self.banner)
                    out += self._msg(b"C", b"SELECT 1\0")
                    out += self._msg(b"Z", b"I")
                    conn.sendall(out)
                else:  # anything else: an error, then ready again
                    err = b"SFATAL\0C0A000\0Munsupported by the dnsfo test server\0\0"
                    conn.sendall(self._msg(b"E", err) + self._msg(b"Z", b"I"))


# --------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------

class EvScenario:
    """hermetic's namespace set-up and servers, with a per-client server flavour."""

    def __init__(self, addrs: list[tuple[str, str]], flavour: str, name: str, port: int,
                 lifetime: float, other: bool):
        self.addrs, self.flavour, self.name, self.port = addrs, flavour, name, port
        self.lifetime, self.other = lifetime, other
        self.servers: list = []
        self.info: dict[str, str] = {}
        self.workdir: Path | None = None

    def _up(self, ip: str, port: int):
        if self.flavour == "pg":
            return PgServer(ip, port, self.lifetime)
        return H.UpServer(ip, port, self.lifetime, http=self.flavour == "http")

    def __enter__(self) -> "EvScenario":
        for kind, ip in self.addrs:
            if kind not in ("up", "refused", "silent"):
                raise H.HarnessError(f"unknown address kind {kind!r} (up, refused, silent)")
            socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
            if not (ip.startswith("127.") or ip.startswith("::")):
                raise H.HarnessError(f"{ip}: only loopback-style addresses are allowed here")
        self.workdir = Path(tempfile.mkdtemp(prefix="dnsfo-evloop-"))
        H.setup_namespace([(ip, self.name) for _, ip in self.addrs], self.workdir)
        silent = []
        for kind, ip in self.addrs:
            if kind == "up":
                self.servers.append(self._up(ip, self.port))
            elif kind == "silent":
                srv = H.SilentServer(ip, self.port, self.lifetime)
                self.servers.append(srv)
                silent.append(srv)
        if self.other:
            self.servers.append(self._up(OTHER_IP, self.port + 1))
        self.info["blackholes"] = H.verify_silent(silent)
        self.info["layout"] = " ".join(f"{k}:{ip}" for k, ip in self.addrs)
        self.info["server"] = self.flavour
        self.info["gai"] = " ".join(
            a[4][0] for a in socket.getaddrinfo(self.name, self.port, 0, socket.SOCK_STREAM))
        return self

    def __exit__(self, *exc) -> None:
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def expand(self, template: list[str]) -> list[str]:
        subst = {"name": self.name, "port": str(self.port), "bin": str(BIN), "src": str(SRC),
                 "python": sys.executable, "other_ip": OTHER_IP,
                 "other_port": str(self.port + 1)}
        return [t.format(**subst) for t in template]

    def run_variants(self, template: list[str], variants: list[tuple[str, float]],
                     env: dict[str, str], serial: bool) -> list[H.Result]:
        cmd = self.expand(template)
        results: list[H.Result | None] = [None] * len(variants)

        def one(i: int, kind: str, timeout: float) -> None:
            preload, extra, want_log = H.VARIANTS[kind]
            log = (self.workdir / f"dnsfo-{i}-{kind}.log") if want_log else None
            results[i] = H.run_client(cmd, preload=preload, env={**env, **extra},
                                      timeout=timeout, variant=kind, log_file=log)

        if serial:
            for i, (k, t) in enumerate(variants):
                one(i, k, t)
        else:
            threads = [threading.Thread(target=one, args=(i, k, t))
                       for i, (k, t) in enumerate(variants)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return [r for r in results if r is not None]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _parse_addr(spec: str) -> tuple[str, str]:
    kind, sep, ip = spec.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected KIND:IP (up/refused/silent)")
    return kind, ip


def _watchdog(signum, frame) -> None:
    H.kill_all_clients()
    print("evloop: error: watchdog expired, aborting", file=sys.stderr, flush=True)
    os._exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="evloop.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run an event-loop client in a scenario")
    run.add_argument("--client", help=", ".join(CLIENTS))
    run.add_argument("--server", choices=("banner", "http", "pg"),
                     help="server flavour for a raw command (default: the client's, or banner)")
    run.add_argument("command", nargs="*", help="raw client command (after --) instead of "
                     "--client; {name} {port} {bin} {src} {python} {other_ip} {other_port} expand")
    run.add_argument("--name", default=H.DEFAULT_NAME)
    run.add_argument("--port", type=int, default=H.DEFAULT_PORT)
    run.add_argument("--addr", action="append", type=_parse_addr, required=True)
    run.add_argument("--variant", action="append", default=[],
                     help="plain|dnsfo|disable|log[:TIMEOUT_S] (default: dnsfo and plain)")
    run.add_argument("--timeout", type=float, default=10.0)
    run.add_argument("--env", action="append", default=[], help="K=V for every run")
    run.add_argument("--serial", action="store_true")
    sub.add_parser("build-clients")
    sub.add_parser("clients")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build-clients":
            build()
            print(f"ev clients built in {BIN}")
            return 0
        if args.cmd == "clients":
            for k, (tmpl, flavour, _) in CLIENTS.items():
                print(f"{k:20} [{flavour:6}] {' '.join(tmpl)}")
            return 0
        if args.client:
            if args.client not in CLIENTS:
                raise H.HarnessError(f"unknown client {args.client!r}; known: {', '.join(CLIENTS)}")
            template, flavour, target = CLIENTS[args.client]
        elif args.command:
            template, flavour, target = list(args.command), "banner", None
        else:
            ap.error("give --client or a command after --")
        flavour = args.server or flavour
        variants = [H.parse_variant(v, args.timeout) for v in (args.variant or ["dnsfo", "plain"])]
        env = dict(kv.split("=", 1) for kv in args.env)
        if not H.in_namespace():
            if target:
                build([target])
            H.enter_namespace([str(Path(__file__).resolve()), *argv])
        budget = (sum if args.serial else max)(t for _, t in variants) + 30
        signal.signal(signal.SIGALRM, _watchdog)
        signal.alarm(int(budget))
        other = (args.client or "").startswith("ev-close-race")
        with EvScenario(args.addr, flavour, args.name, args.port, budget, other) as sc:
            info = {**H.lib_facts(), "client": args.client or " ".join(template), **sc.info}
            results = sc.run_variants(template, variants, env, args.serial)
        signal.alarm(0)
        H.emit(info, results, False)
        return 0
    except H.HarnessError as e:
        print(f"evloop: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
