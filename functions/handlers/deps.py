"""What a handler needs (settings, clients, bound tables), built once per container.

`reset()` rebuilds them from the environment: the local runner and tests call it after
pointing the environment at another moto server."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

from functions.dal.clients import AwsClients
from functions.dal.tables import bind_tables
from functions.settings import Settings, get_settings


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    clients: AwsClients


_override: Dependencies | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Dependencies:
    settings = get_settings()
    clients = AwsClients(settings)
    bind_tables(settings, clients.session)  # one botocore session for every client
    return Dependencies(settings=settings, clients=clients)


def deps() -> Dependencies:
    return _override if _override is not None else _from_environment()


def use(dependencies: Dependencies | None) -> None:
    """Serve `dependencies` to the handlers (the local runner switches per function)."""
    global _override
    _override = dependencies
    if dependencies is not None:
        bind_tables(dependencies.settings, dependencies.clients.session)


def reset() -> None:
    use(None)
    get_settings.cache_clear()
    _from_environment.cache_clear()
    # Per-container caches, cleared only where loaded: importing them here would put numpy and
    # onnxruntime in every function's bundle (tests/infrastructure/test_lambda_packaging.py).
    offers_store = sys.modules.get("functions.dal.offers")
    if offers_store is not None:
        offers_store.clear_cache()
    decide = sys.modules.get("functions.handlers.decide")
    if decide is not None:
        decide.reset_model()
