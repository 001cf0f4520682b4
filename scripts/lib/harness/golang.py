"""Go clients and static binaries: finding the Go toolchain, building a one-file Go client into
BIN_DIR (cached by mtime, under the builders' lock, offline, nothing written to $HOME), and what
an ELF file says about its linking (static or not).

Not re-exported by `harness/__init__.py` (yet): `from harness import golang`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
from pathlib import Path

from harness.base import REPO, BIN_DIR, CLIENT_SRC, HarnessError
from harness.clients import fresh

GO_DIR = REPO / "target" / "e2e-go"  # GOCACHE and GOPATH: nothing written to $HOME


def go_tool() -> str | None:
    """The `go` command: on PATH, else Debian's golang-go places."""
    return shutil.which("go") or next(
        (g for g in ("/usr/lib/go/bin/go", "/usr/lib/go-1.19/bin/go") if os.access(g, os.X_OK)),
        None)


def go_env(cgo: bool = False) -> dict[str, str]:
    """The environment of an offline, hermetic `go build`: the caller's without GO* and
    LD_PRELOAD, caches under target/, no proxy, no module downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO") and k != "LD_PRELOAD"}
    env.update(GOCACHE=str(GO_DIR / "cache"), GOPATH=str(GO_DIR / "path"), GOENV="off",
               GOPROXY="off", GOFLAGS="-mod=mod", GO111MODULE="on", GOTOOLCHAIN="local",
               GONOSUMDB="*", GOSUMDB="off", CGO_ENABLED="1" if cgo else "0")
    return env


def build_go(out_name: str, src_name: str, *, cgo: bool = False, tags: tuple[str, ...] = (),
             go: str | None = None) -> Path:
    """Build CLIENT_SRC/src_name (one Go file, standard library only) into BIN_DIR/out_name,
    unless fresh. CGO_ENABLED=0 by default (a static binary, pure Go resolver). The output
    appears atomically; the builders' lock (BIN_DIR/.build.lock) serialises parallel tests."""
    go = go or go_tool()
    if go is None:
        raise HarnessError("the go toolchain is not installed (Debian: golang-go)")
    src, out = CLIENT_SRC / src_name, BIN_DIR / out_name
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with open(BIN_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fresh(out, src):
            return out
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        cmd = [go, "build", "-trimpath", *(["-tags", ",".join(tags)] if tags else []),
               "-o", str(tmp), str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=go_env(cgo),
                           cwd=BIN_DIR)
        if r.returncode != 0:
            raise HarnessError(f"building {out.name} failed:\n{' '.join(cmd)}\n"
                               f"{r.stdout}{r.stderr}")
        os.replace(tmp, out)
    return out


def elf_interp(path: Path) -> str | None:
    """The ELF program interpreter (PT_INTERP) of a 64-bit little-endian executable: None for a
    statically linked one (which the dynamic loader, and so LD_PRELOAD, never sees)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise HarnessError(f"{path}: not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", data, off)
        if p_type == 3:  # PT_INTERP
            p_offset, = struct.unpack_from("<Q", data, off + 8)
            p_filesz, = struct.unpack_from("<Q", data, off + 32)
            return data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
    return None


def elf_linking(path: Path) -> str:
    """`static` (no PT_INTERP) or `dynamic <interpreter>`: for the harness's facts."""
    interp = elf_interp(path)
    return "static" if interp is None else f"dynamic {interp}"
