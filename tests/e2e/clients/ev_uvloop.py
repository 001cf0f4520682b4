"""Python asyncio on uvloop (libuv): the ev_asyncio.py client run on a uvloop event loop.

Run with the venv that scripts/test-deps makes (target/venv-uvloop/bin/python).

mode first (default): getaddrinfo(NAME, PORT, AF_UNSPEC, SOCK_STREAM)[0] only, a non-blocking
    socket of that family, `await loop.sock_connect(sock, addr)` (uvloop: connect, EINPROGRESS,
    a libuv poll handle for writability, then SO_ERROR), then open_connection(sock=sock) to read:
    the FIRST address only, so only dnsfo can fail over.
mode open: `asyncio.open_connection(NAME, PORT)`; uvloop tries every address in turn itself
    (uv_tcp_connect, sequentially), so refused-first works without dnsfo, silent-first hangs.
Prints `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1), then `GAP <ms>`: the longest pause
of a 10 ms asyncio timer from the start of the loop to the end (event-loop stall).
Hard timeout: fourth argument, s (default 10). Exit 3 when the loop is not uvloop's.
"""
import asyncio
import errno
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import ev_asyncio as A  # noqa: E402  (same connect logic and error naming)

try:
    import uvloop
except ImportError as e:  # the harness checks first; this is for hand runs
    print(f"ERR NO_UVLOOP ({e}: run scripts/test-deps and use target/venv-uvloop/bin/python)",
          flush=True)
    sys.exit(3)


def errno_line(e: OSError) -> str:
    """`ERR <errno name>`, as ev_asyncio.py names it (open_connection over several addresses
    raises OSError('Multiple exceptions: ...') without errno: the first errno named in it)."""
    if e.errno:
        return "ERR " + errno.errorcode.get(e.errno, str(e.errno))
    msg = str(e)
    names = [n for c, n in errno.errorcode.items() if f"[Errno {c}]" in msg]
    return "ERR " + (names[0] if names else repr(e))


class Gap:
    """Longest pause between runs of a 10 ms timer (asyncio.sleep on the running loop)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.gap = 0.0

    def mark(self) -> None:
        now = time.monotonic()
        self.gap = max(self.gap, now - self.last)
        self.last = now

    async def tick(self) -> None:
        for _ in range(100_000):  # bounded: cancelled at the end of the run anyway
            await asyncio.sleep(0.01)
            self.mark()


async def main(name: str, port: int, mode: str, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    if not isinstance(loop, uvloop.Loop):
        return f"ERR NOT_UVLOOP ({type(loop).__module__}.{type(loop).__name__})"
    A.trace(f"loop {type(loop).__module__}.{type(loop).__name__} uvloop {uvloop.__version__}")
    gap = Gap()
    ticker = asyncio.ensure_future(gap.tick())
    try:
        out = await asyncio.wait_for(A.main(name, port, mode), timeout)
    except asyncio.TimeoutError:
        out = "ERR ETIMEDOUT (client hard timeout)"
    except OSError as e:
        out = errno_line(e)
    finally:
        gap.mark()
        ticker.cancel()
    return f"{out}\nGAP {gap.gap * 1000:.1f}"


def run() -> int:
    name, port = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "first"
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    coro = main(name, port, mode, timeout)
    if sys.version_info >= (3, 12):
        out = asyncio.run(coro, loop_factory=uvloop.new_event_loop)
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        out = asyncio.run(coro)
    print(out, flush=True)
    A.trace(out.replace("\n", " "))
    if out.startswith("ERR NOT_UVLOOP"):
        return 3
    return 0 if out.startswith("GOT ") else 1


if __name__ == "__main__":
    sys.exit(run())
