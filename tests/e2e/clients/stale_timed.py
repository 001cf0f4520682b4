#!/usr/bin/env python3
"""A short program (cron job, CLI): getaddrinfo(NAME, AF_INET), one blocking connect to the first
address, read the banner. The connect alone is timed inside the process, so interpreter start-up
and the lookup cannot blur the number.

Usage: stale_timed.py NAME PORT [IP]
With IP (which must be among the resolved addresses), connect to IP instead of the first address:
a program with its own idea of the order (sorted, or a configured preference).
Output: `ADDRS ip...`, `CONNECT_MS n`, `PEER ip`, `GOT <banner>` (or `ERR <errno>`).
"""
import errno
import socket
import sys
import time

name, port = sys.argv[1], int(sys.argv[2])
addrs = [a[4][0] for a in socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)]
print("ADDRS", " ".join(addrs), flush=True)
target = addrs[0]
if len(sys.argv) > 3:
    target = sys.argv[3]
    if target not in addrs:
        print("ERR NOT_RESOLVED")
        sys.exit(1)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t0 = time.monotonic()
try:
    s.connect((target, port))
except OSError as e:
    print(f"CONNECT_MS {int((time.monotonic() - t0) * 1000)}")
    print("ERR", errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(1)
print(f"CONNECT_MS {int((time.monotonic() - t0) * 1000)}")
print(f"PEER {s.getpeername()[0]}")
s.settimeout(5)
data = b""
for _ in range(64):
    chunk = s.recv(256)
    if not chunk:
        break
    data += chunk
    if b"\n" in data:
        break
s.close()
if not data:
    print("ERR EOF")
    sys.exit(1)
print("GOT", data.decode(errors="replace").split("\n")[0])
