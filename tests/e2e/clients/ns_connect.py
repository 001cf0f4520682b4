#!/usr/bin/env python3
"""ns_connect.py TIMEOUT TWICE REGAI NAME PORT: getaddrinfo(NAME, AF_INET), then a connect to
the first address (TIMEOUT `none`: blocking; else s.settimeout(TIMEOUT)), timed alone; TWICE=1: again on a new socket, REGAI=1:
after a fresh getaddrinfo (its failure: the first answer's address). Output as ns_connect's.

A client of tests/e2e/neverslower.py (never-slower scenarios); run inside its namespace.
"""
import errno, socket, sys, time
tmo, twice, regai, name, port = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", \
    sys.argv[4], int(sys.argv[5])
GAI = {socket.EAI_AGAIN: "EAI_AGAIN", socket.EAI_NONAME: "EAI_NONAME"}
def gai(i):
    t0 = time.monotonic()
    try:
        ips = [a[4][0] for a in socket.getaddrinfo(name, port, socket.AF_INET,
                                                   socket.SOCK_STREAM)]
    except socket.gaierror as e:
        print(f"GAI{i} ERR {GAI.get(e.errno, e.errno)}")
        print(f"GAI{i}_MS {int((time.monotonic() - t0) * 1000)}")
        return None
    print(f"GAI{i} {' '.join(ips)}")
    print(f"GAI{i}_MS {int((time.monotonic() - t0) * 1000)}")
    return ips
def attempt(i, ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if tmo != "none":
        s.settimeout(float(tmo))
    t0 = time.monotonic()
    cpu0 = time.process_time()
    try:
        s.connect((ip, port))
    except OSError as e:
        ms = int((time.monotonic() - t0) * 1000)
        print(f"C{i}_CPU_MS {int((time.process_time() - cpu0) * 1000)}")
        code = errno.errorcode.get(e.errno, str(e.errno)) if e.errno is not None else "NONE"
        print(f"C{i} ms={ms} ERR {code}")
        print(f"C{i}_EXC {type(e).__name__}: {e}")
        s.close()
        return
    ms = int((time.monotonic() - t0) * 1000)
    s.settimeout(5)
    data = b""
    try:
        for _ in range(64):
            chunk = s.recv(256)
            if not chunk or b"\n" in data + chunk:
                data += chunk
                break
            data += chunk
    except OSError as e:
        print(f"C{i} ms={ms} ERR {errno.errorcode.get(e.errno, e.errno)} (read)")
        return
    finally:
        s.close()
    print(f"C{i} ms={ms} GOT {data.decode(errors='replace').split(chr(10))[0]}" if data
          else f"C{i} ms={ms} ERR EOF")
ips = gai(1)
if not ips:
    sys.exit(3)
attempt(1, ips[0])
if twice:
    again = gai(2) if regai else None
    ip = again[0] if again else ips[0]
    print(f"C2_TARGET {ip} (from {'GAI2' if again else 'GAI1'})")
    attempt(2, ip)
