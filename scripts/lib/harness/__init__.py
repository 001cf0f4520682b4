"""The end-to-end harness, one package: `base` (paths, the library, errors), `clients` (the
built-in clients and their compilation), `ns` (the private namespace and its counters),
`servers` (up and silent servers), `runs` (one client run, its variants), `scenario` (a
namespace, its servers and its runs), `protocol` (what the Rust tests parse), `dns` (the
in-namespace DNS server and the resolver set-up that uses it) and `interactive` (runs with
scenario facts; a client told to go on after READY), `golang` (offline Go builds, ELF linking).
`scripts/lib/hermetic.py` is its command line and re-exports all of it (`import hermetic as H`).
"""

from harness.base import *  # noqa: F401,F403
from harness.clients import *  # noqa: F401,F403
from harness.ns import *  # noqa: F401,F403
from harness.servers import *  # noqa: F401,F403
from harness.runs import *  # noqa: F401,F403
from harness.protocol import *  # noqa: F401,F403
from harness.scenario import *  # noqa: F401,F403
from harness.dns import *  # noqa: F401,F403
from harness.interactive import *  # noqa: F401,F403
from harness.golang import *  # noqa: F401,F403
