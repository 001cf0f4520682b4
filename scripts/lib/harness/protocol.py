"""The output protocol the Rust tests parse: lines `SECTION KEY VALUE` with escaped values
(or JSON).
"""

from __future__ import annotations


import json
import sys

from harness.base import *  # noqa: F401,F403
from harness.runs import *  # noqa: F401,F403

def escape(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def emit(info: dict[str, str], results: list[Result], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"harness": info, "variants": {r.variant: r.fields() for r in results}},
                         indent=2))
        return
    for k, v in info.items():
        print(f"harness {k} {escape(v)}")
    for r in results:
        for k, v in r.fields().items():
            print(f"{r.variant} {k} {escape(v)}")
    sys.stdout.flush()
