"""Stock Python client: connect to the FIRST address of NAME only, read the banner line.

mode inet (default): socket.socket().connect((name, port)) -- Python resolves with getaddrinfo
(AF_INET) and uses the first result only. mode unspec: socket.getaddrinfo(name, port, 0,
SOCK_STREAM)[0], a socket of that family, connect to that one address (what first-result
programs do). Prints "GOT <banner>" and exits 0, or "ERR <errno name>" and exits 1; the connect
time (resolution included, interpreter start-up excluded) goes to stderr as "connect_ms=N".
"""
import errno
import socket
import sys
import time

name, port = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "inet"
t0 = time.monotonic()
try:
    if mode == "unspec":
        fam, typ, proto, _, addr = socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(fam, typ, proto)
        s.connect(addr)
    else:
        s = socket.socket()
        s.connect((name, port))
    print(f"connect_ms={int((time.monotonic() - t0) * 1000)}", file=sys.stderr)
    line = s.makefile("rb").readline(256)
    if not line:
        print("ERR EOF")
        sys.exit(1)
    print("GOT " + line.decode(errors="replace").rstrip("\n"))
except OSError as e:
    print(f"connect_ms={int((time.monotonic() - t0) * 1000)}", file=sys.stderr)
    print("ERR " + (errno.errorcode.get(e.errno, repr(e)) if e.errno else repr(e)))
    sys.exit(1)
