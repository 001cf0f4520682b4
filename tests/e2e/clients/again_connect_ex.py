"""The connect-again idiom in Python: a non-blocking `connect_ex` loop on ONE socket.

getaddrinfo(NAME, PORT, AF_UNSPEC, SOCK_STREAM)[0] only; a non-blocking socket of that family;
then, at most MAX_CALLS times and for at most the hard timeout:
    rc = connect_ex(addr)
    0 or EISCONN            -> connected: read the banner
    EINPROGRESS / EALREADY  -> select() for writability (the time left), then connect_ex again
    anything else           -> a real error: `ERR <errno name>`
(what libraries do that ask `connect()` again instead of reading SO_ERROR).

Prints `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1), then `CALLS <n>` (connect_ex calls
made) and `CONNECT_MS <ms>` (from the first connect_ex to the outcome: interpreter start-up and
the lookup excluded). Hard timeout: third argument, s (default 5).
"""
import errno
import select
import socket
import sys
import time

MAX_CALLS = 1_000_000  # a bound for the loop; the old library spins until the timeout


def main() -> int:
    name, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    fam, typ, proto, _, addr = socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM)[0]
    s = socket.socket(fam, typ, proto)
    s.setblocking(False)
    calls = 0
    t0 = time.monotonic()
    deadline = t0 + timeout
    out = "ERR ETIMEDOUT (client hard timeout)"
    while calls < MAX_CALLS:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        rc = s.connect_ex(addr)
        calls += 1
        if rc in (0, errno.EISCONN):
            out = ""
            break
        if rc in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
            select.select([], [s], [], left)
            continue
        out = "ERR " + errno.errorcode.get(rc, str(rc))
        break
    connect_ms = (time.monotonic() - t0) * 1000
    if not out:
        s.setblocking(True)
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            line = s.makefile("rb").readline(256)
            out = ("GOT " + line.decode(errors="replace").rstrip("\n")) if line else "ERR EOF"
        except OSError as e:
            out = "ERR " + errno.errorcode.get(e.errno or 0, repr(e))
    s.close()
    print(f"{out}\nCALLS {calls}\nCONNECT_MS {connect_ms:.1f}", flush=True)
    return 0 if out.startswith("GOT ") else 1


if __name__ == "__main__":
    sys.exit(main())
