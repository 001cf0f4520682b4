"""The built-in clients (C, Java, python, ...) and their cached compilation.
"""

from __future__ import annotations


import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.base import *  # noqa: F401,F403

C_CLIENTS = ("c_gethostbyname", "c_getaddrinfo", "c_sockopt", "c_sndtimeo", "c_sigalrm", "c_twice",
             "c_order")

JAVA_OPTS = [
    # keep the system's getaddrinfo order (Java's default puts IPv4 first on its own)
    "-Djava.net.preferIPv6Addresses=system",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
]

# name -> (command template, what it needs built)
CLIENTS: dict[str, tuple[list[str], str | None]] = {
    "python": ([sys.executable, "{src}/client.py", "{name}", "{port}", "inet"], None),
    "python-unspec": ([sys.executable, "{src}/client.py", "{name}", "{port}", "unspec"], None),
    "perl": (["perl", "{src}/client.pl", "{name}", "{port}"], None),
    "java": (["java", *JAVA_OPTS, "-cp", "{bin}", "SocketClient", "{name}", "{port}"], "java"),
    "c-ghbn": (["{bin}/c_gethostbyname", "{name}", "{port}"], "c_gethostbyname"),
    "c-gai": (["{bin}/c_getaddrinfo", "{name}", "{port}"], "c_getaddrinfo"),
    "c-sockopt": (["{bin}/c_sockopt", "{name}", "{port}", "127.0.0.1"], "c_sockopt"),
    "c-sndtimeo": (["{bin}/c_sndtimeo", "{name}", "{port}", "300"], "c_sndtimeo"),
    "c-sigalrm": (["{bin}/c_sigalrm", "{name}", "{port}", "300"], "c_sigalrm"),
    "c-twice": (["{bin}/c_twice", "{name}", "{port}"], "c_twice"),
    "c-order": (["{bin}/c_order", "{name}", "{port}"], "c_order"),
}


def fresh(target: Path, *sources: Path) -> bool:
    """Is `target` newer than every source that exists?"""
    try:
        t = target.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(s.stat().st_mtime <= t for s in sources if s.exists())


def compile_c(out: Path, srcs: list[Path], deps: list[Path] | None = None,
              cflags: list[str] | None = None, libs: list[str] | None = None,
              shared: bool = False) -> None:
    """Compile a C program (or shared object) unless `out` is fresh; the output appears
    atomically (temporary file + rename). Callers serialise with their build lock."""
    if fresh(out, *srcs, *(deps or [])):
        return
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    cc = os.environ.get("CC") or shutil.which("cc") or "gcc"
    cmd = [cc, "-O1", "-Wall", "-Werror", "-std=gnu11", *(cflags or []),
           *(["-shared", "-fPIC"] if shared else []), "-o", str(tmp), *map(str, srcs), *(libs or [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise HarnessError(f"compiling {out.name} failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    os.replace(tmp, out)


@dataclasses.dataclass(frozen=True)
class Build:
    """How one client is built into BIN_DIR: C sources (cc; a shared object with `shared`) or
    one Java source (javac, giving `<stem>.class`), all in CLIENT_SRC. `deps`: what else makes
    the output stale (headers in CLIENT_SRC, or absolute paths such as a library it links)."""
    srcs: tuple[str, ...]
    deps: tuple[str, ...] = ("common.h",)
    cflags: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()
    shared: bool = False


def build(clients: dict[str, Build], which=None) -> None:
    """Compile `clients` (those named in `which`, else all) into BIN_DIR, each only if stale,
    in the order of `clients` (a library before the programs linking it).

    Every suite's builder is this one: safe from parallel tests (one file lock serialises
    builders, outputs appear atomically).
    """
    wanted = set(clients) if which is None else set(which)
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with open(BIN_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name, b in clients.items():
            if name not in wanted:
                continue
            srcs = [CLIENT_SRC / s for s in b.srcs]
            if srcs[0].suffix == ".java":
                _javac(srcs[0])
            else:
                compile_c(BIN_DIR / name, srcs, deps=[CLIENT_SRC / d for d in b.deps],
                          cflags=list(b.cflags), libs=list(b.libs), shared=b.shared)


def _javac(src: Path) -> None:
    out = BIN_DIR / f"{src.stem}.class"
    if fresh(out, src):
        return
    tmpdir = Path(tempfile.mkdtemp(prefix=".javac", dir=BIN_DIR))
    try:
        r = subprocess.run(["javac", "-d", str(tmpdir), str(src)], capture_output=True,
                           text=True, timeout=180)
        if r.returncode != 0:
            raise HarnessError(f"javac {src} failed:\n{r.stdout}{r.stderr}")
        os.replace(tmpdir / out.name, out)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# The harness's own clients: the C ones and, as `java`, SocketClient.
BUILDS = {**{c: Build((f"{c}.c",)) for c in C_CLIENTS}, "java": Build(("SocketClient.java",))}


def build_clients(which: list[str] | None = None) -> None:
    """Compile the harness's C clients and the Java client into target/e2e-bin, if stale."""
    build(BUILDS, which)


def client_command(client: str, extra: list[str] | None = None) -> tuple[list[str], str | None]:
    """Command template of a built-in client (placeholders unexpanded) and its build target."""
    if client not in CLIENTS:
        raise HarnessError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    tmpl, build = CLIENTS[client]
    return [*tmpl, *(extra or [])], build


def expand(template: list[str], name: str, port: int) -> list[str]:
    subst = {"name": name, "port": str(port), "bin": str(BIN_DIR), "repo": str(REPO),
             "src": str(CLIENT_SRC), "python": sys.executable}
    return [t.format(**subst) for t in template]
