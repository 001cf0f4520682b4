"""The end-to-end harness, one package: `base` (paths, the library, errors), `clients` (the
built-in clients and their compilation), `ns` (the private namespace and its counters),
`servers` (up and silent servers), `runs` (one client run, its variants), `scenario` (a
namespace, its servers and its runs) and `protocol` (what the Rust tests parse).
`scripts/lib/hermetic.py` is its command line and re-exports all of it (`import hermetic as H`).
"""

from harness.base import *  # noqa: F401,F403
from harness.clients import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403
from harness.servers import *  # noqa: F401,F403
from harness.runs import *  # noqa: F401,F403
from harness.protocol import *  # noqa: F401,F403
from harness.scenario import *  # noqa: F401,F403
