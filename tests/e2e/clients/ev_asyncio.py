"""Python asyncio client (default selector loop: epoll). Reads the `HELLO <ip>` banner line.

mode first (default): getaddrinfo(NAME, PORT, AF_UNSPEC, SOCK_STREAM)[0] only, a non-blocking
    socket of that family, `await loop.sock_connect(sock, addr)` (connect, EINPROGRESS,
    add_writer = epoll, then SO_ERROR), then asyncio.open_connection(sock=sock) to read:
    the FIRST address only, so only dnsfo can fail over.
mode open: plain `asyncio.open_connection(NAME, PORT)`; asyncio itself tries every address in
    turn (sequentially; no happy eyeballs unless asked), so refused-first works even without
    dnsfo, silent-first hangs without it.
Prints `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1). Hard timeout: third argument, s.
"""
import asyncio
import errno
import socket
import sys
import time

T0 = time.monotonic()


def trace(what: str) -> None:
    print(f"ev {int((time.monotonic() - T0) * 1000)} {what}", file=sys.stderr, flush=True)


async def first(name: str, port: int):
    loop = asyncio.get_running_loop()
    fam, typ, proto, _, addr = (await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM))[0]
    sock = socket.socket(fam, typ, proto)
    sock.setblocking(False)
    trace(f"sock_connect {addr}")
    await loop.sock_connect(sock, addr)
    trace(f"connected to {sock.getpeername()}")
    return await asyncio.open_connection(sock=sock)


async def main(name: str, port: int, mode: str) -> str:
    if mode == "first":
        reader, writer = await first(name, port)
    else:
        reader, writer = await asyncio.open_connection(name, port)
        trace(f"open_connection connected to {writer.get_extra_info('peername')}")
    line = await reader.readline()
    writer.close()
    if not line:
        return "ERR EOF"
    return "GOT " + line.decode(errors="replace").rstrip("\n")


def run() -> int:
    name, port = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "first"
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    try:
        out = asyncio.run(asyncio.wait_for(main(name, port, mode), timeout))
    except asyncio.TimeoutError:
        out = "ERR ETIMEDOUT (client hard timeout)"
    except OSError as e:
        # open_connection over several addresses raises OSError('Multiple exceptions: ...')
        # without errno when every address failed; report the first errno named in it.
        if e.errno:
            out = "ERR " + errno.errorcode.get(e.errno, str(e.errno))
        else:
            msg = str(e)
            names = [n for c, n in errno.errorcode.items() if f"[Errno {c}]" in msg]
            out = "ERR " + (names[0] if names else repr(e))
    print(out, flush=True)
    trace(out)
    return 0 if out.startswith("GOT ") else 1


if __name__ == "__main__":
    sys.exit(run())
