#!/usr/bin/env python3
"""A long-running program that resolved once: getaddrinfo(NAME, AF_INET) at start, connect to the
first address and read the banner; print READY and wait (at most 20 s) for a line on stdin; then
connect AGAIN to the address it resolved at start (a stale cached IP), as a pool or daemon would.

Usage: stale_gai.py NAME PORT
Output: `ADDRS ip...`, `FIRST GOT <banner>` (or `FIRST ERR <errno>`), `READY`, then
`SECOND GOT <banner>` / `SECOND ERR <errno>`, `SECOND_PEER ip`, `SECOND_MS n` (the second connect
alone). Exit 0 when the second connect got a banner.
"""
import errno
import select
import socket
import sys
import time

name, port = sys.argv[1], int(sys.argv[2])
addrs = [a[4][0] for a in socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)]
print("ADDRS", " ".join(addrs), flush=True)
saved = addrs[0]


def attempt(tag: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # blocking, as a plain program's
    t0 = time.monotonic()
    try:
        s.connect((saved, port))
    except OSError as e:
        print(f"{tag}_MS {int((time.monotonic() - t0) * 1000)}", flush=True)
        print(tag, "ERR", errno.errorcode.get(e.errno, str(e.errno)), flush=True)
        s.close()
        return False
    print(f"{tag}_MS {int((time.monotonic() - t0) * 1000)}", flush=True)
    print(f"{tag}_PEER {s.getpeername()[0]}", flush=True)
    s.settimeout(5)
    data = b""
    try:
        for _ in range(64):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
            if b"\n" in data:
                break
    except OSError as e:
        print(tag, "ERR", errno.errorcode.get(e.errno, str(e.errno)), "(read)", flush=True)
        return False
    finally:
        s.close()
    if not data:
        print(tag, "ERR EOF", flush=True)
        return False
    print(tag, "GOT", data.decode(errors="replace").split("\n")[0], flush=True)
    return True


attempt("FIRST")
print("READY", flush=True)
r, _, _ = select.select([sys.stdin], [], [], 20)
if not r or not sys.stdin.readline():
    print("NO_GO", flush=True)
    sys.exit(3)
sys.exit(0 if attempt("SECOND") else 1)
