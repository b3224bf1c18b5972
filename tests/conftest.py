"""Shared fixtures: canonical events, and a moto server on 127.0.0.1 for integration tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

EVENTS_DIR = Path(__file__).parent / "events"


def canonical_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def canonical_events() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(EVENTS_DIR.glob("*.json"))}


def invalid_events() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((EVENTS_DIR / "invalid").glob("*.json"))}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from fidelio.local.server import local_aws

    with local_aws() as stack:
        yield stack.endpoint


_prefixes = itertools.count()


@pytest.fixture
def local_stack(moto_endpoint: str) -> Iterator[Any]:
    """Fidelio's resources under a fresh name prefix on the shared moto server, with the
    handlers pointed at them and a fixed clock."""
    from fidelio.local.stack import create_resources
    from functions import clock
    from functions.handlers import deps
    from infra.spec import Names

    stack = create_resources(moto_endpoint, Names(prefix=f"t{next(_prefixes)}"))
    clock.set_clock(lambda: datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    yield stack
    clock.set_clock(None)
    deps.reset()
