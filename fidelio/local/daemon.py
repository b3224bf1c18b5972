"""`fidelio local up` runs this in the background: a moto server with Fidelio's resources,
whose coordinates are written to a state file until it is stopped."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from fidelio.local.server import local_aws


def main(state_file: str) -> int:
    path = Path(state_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with local_aws() as stack:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stack.to_json())
        stop.wait()
    path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
