"""Starting and stopping the moto server that plays AWS on 127.0.0.1.

The server runs in its own process: the handlers and the simulator then do not compete with
it for one interpreter lock, which made every call several times slower in-process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from fidelio.local.stack import DUMMY_CREDENTIALS, REGION, LocalStack, create_resources, free_port

START_TIMEOUT_S = 60.0


def _quiet_env() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for key, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """A moto server process bound to 127.0.0.1; yields its endpoint, stops it on exit."""
    _quiet_env()
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "fidelio.local.moto_keepalive", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the moto server exited with code {process.returncode}")
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the moto server did not answer on {endpoint} within {START_TIMEOUT_S} s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def local_aws(port: int | None = None) -> Iterator[LocalStack]:
    """A moto server on 127.0.0.1 (a free port) with Fidelio's resources; stopped on exit."""
    with moto_server(port) as endpoint:
        yield create_resources(endpoint)
