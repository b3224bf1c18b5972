"""Starting and stopping the moto server that plays AWS on 127.0.0.1."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from fidelio.local.stack import DUMMY_CREDENTIALS, REGION, LocalStack, create_resources, free_port


def _quiet_env() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for key, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


@contextmanager
def local_aws(port: int | None = None) -> Iterator[LocalStack]:
    """A moto server on 127.0.0.1 (a free port) with Fidelio's resources; stopped on exit."""
    from moto.server import ThreadedMotoServer

    _quiet_env()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or free_port(), verbose=False)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        yield create_resources(f"http://{host}:{bound_port}")
    finally:
        server.stop()
