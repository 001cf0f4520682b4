#!/usr/bin/env python3
"""ns_stale.py TIMEOUT NAME PORT: resolve once (AF_INET), connect to the first address
and read its banner, print READY, wait (at most 20 s) for a line on stdin, then connect AGAIN
(new socket, same TIMEOUT handling as ns_connect.py) to the address resolved at start.

A client of tests/e2e/neverslower.py (never-slower scenarios); run inside its namespace.
"""
import errno, select, socket, sys, time
tmo, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ips = [a[4][0] for a in socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)]
print("GAI1", " ".join(ips))
def attempt(tag, ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if tmo != "none":
        s.settimeout(float(tmo))
    t0 = time.monotonic()
    try:
        s.connect((ip, port))
    except OSError as e:
        ms = int((time.monotonic() - t0) * 1000)
        code = errno.errorcode.get(e.errno, str(e.errno)) if e.errno is not None else "NONE"
        print(f"{tag} ms={ms} ERR {code}")
        print(f"{tag}_EXC {type(e).__name__}: {e}")
        s.close()
        return
    ms = int((time.monotonic() - t0) * 1000)
    print(f"{tag}_PEER {s.getpeername()[0]}")
    s.settimeout(5)
    data = b""
    try:
        for _ in range(64):
            chunk = s.recv(256)
            data += chunk
            if not chunk or b"\n" in data:
                break
    except OSError as e:
        print(f"{tag} ms={ms} ERR {errno.errorcode.get(e.errno, e.errno)} (read)")
        return
    finally:
        s.close()
    print(f"{tag} ms={ms} GOT {data.decode(errors='replace').split(chr(10))[0]}" if data
          else f"{tag} ms={ms} ERR EOF")
attempt("C1", ips[0])
print("READY")
r, _, _ = select.select([sys.stdin], [], [], 20)
if not r or not sys.stdin.readline():
    print("NO_GO")
    sys.exit(3)
attempt("C2", ips[0])
