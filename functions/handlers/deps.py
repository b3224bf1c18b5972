"""What a handler needs (settings, clients, bound tables), built once per container.

`reset()` rebuilds them from the environment: the local runner and tests call it after
pointing the environment at another moto server."""

from __future__ import annotations

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
    bind_tables(settings)
    return Dependencies(settings=settings, clients=AwsClients(settings))


def deps() -> Dependencies:
    return _override if _override is not None else _from_environment()


def use(dependencies: Dependencies | None) -> None:
    """Serve `dependencies` to the handlers (the local runner switches per function)."""
    global _override
    _override = dependencies
    if dependencies is not None:
        bind_tables(dependencies.settings)


def reset() -> None:
    use(None)
    get_settings.cache_clear()
    _from_environment.cache_clear()
    from functions.dal import offers as offers_store  # not at import: keeps numpy off cold starts

    offers_store.clear_cache()
    from functions.handlers import decide

    decide.reset_model()
