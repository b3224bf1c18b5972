"""The keys that sign and verify unsubscribe / preference links, read from Secrets Manager.

The secret holds "kid:secret[,kid:secret...]": the first key signs, every key verifies. To
rotate, put a new key first and keep the old ones until the links they signed have expired;
each container re-reads the secret after `ttl_s`, so no deploy is needed. A bare value (as
the stack generates it) is one key with id DEFAULT_KEY_ID. Without a secret name (local and
dev only) the keys come from settings.link_signing_keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from functions.domain.tokens import parse_keys
from functions.settings import Settings

DEFAULT_KEY_ID = "k1"
CACHE_TTL_S = 300.0

Keys = list[tuple[str, bytes]]


class SigningKeysUnavailable(RuntimeError):
    """The signing-key secret could not be read or holds no usable key."""


def keys_from_secret_value(value: str) -> Keys:
    value = value.strip()
    if not value:
        raise SigningKeysUnavailable("the link signing secret is empty")
    if ":" not in value:
        value = f"{DEFAULT_KEY_ID}:{value}"
    try:
        return parse_keys(value)
    except ValueError as error:
        raise SigningKeysUnavailable(f"the link signing secret is malformed: {error}") from None


class CachedKeys:
    """Keys fetched by `fetch`, kept `ttl_s` seconds (rotation reaches a warm container then)."""

    def __init__(self, fetch: Callable[[], str], ttl_s: float = CACHE_TTL_S,
                 monotonic: Callable[[], float] = time.monotonic):
        self._fetch, self._ttl_s, self._monotonic = fetch, ttl_s, monotonic
        self._keys: Keys | None = None
        self._fetched_at = 0.0

    def get(self) -> Keys:
        now = self._monotonic()
        if self._keys is None or now - self._fetched_at >= self._ttl_s:
            self._keys = keys_from_secret_value(self._fetch())
            self._fetched_at = now
        return self._keys


_cache: dict[tuple[str, str | None], CachedKeys] = {}


def link_signing_keys(settings: Settings, secrets_client: Callable[[], Any]) -> Keys:
    """The current keys for these settings (`secrets_client` builds the Secrets Manager client)."""
    if not settings.link_signing_secret:
        return parse_keys(settings.link_signing_keys)
    cache_key = (settings.link_signing_secret, settings.endpoint_url)
    if cache_key not in _cache:
        name = settings.link_signing_secret

        def fetch() -> str:
            try:
                return str(secrets_client().get_secret_value(SecretId=name)["SecretString"])
            except Exception as error:  # botocore raises many types; the caller needs one
                raise SigningKeysUnavailable(f"cannot read the link signing secret {name!r}: {error}") from error

        _cache[cache_key] = CachedKeys(fetch)
    return _cache[cache_key].get()


def clear_cache() -> None:
    _cache.clear()
