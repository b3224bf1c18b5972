"""Signed, expiring tokens for unsubscribe and preference links (HMAC-SHA256).

Several keys may be active at once ("kid:secret,kid:secret"): the first signs, all verify,
so rotating the key does not break links already in inboxes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class InvalidToken(ValueError):
    """The link is forged, altered, expired or signed by a retired key."""


@dataclass(frozen=True)
class LinkClaims:
    member_id: str
    purpose: str  # "unsubscribe" | "preferences"
    channel: str | None
    topic: str | None
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys = []
    for part in spec.split(","):
        kid, _, secret = part.strip().partition(":")
        if not kid or not secret:
            raise ValueError("signing keys must look like 'kid:secret[,kid:secret...]'")
        keys.append((kid, secret.encode()))
    return keys


def sign(claims: LinkClaims, keys: list[tuple[str, bytes]]) -> str:
    kid, secret = keys[0]
    payload = _b64(json.dumps(
        {"m": claims.member_id, "p": claims.purpose, "c": claims.channel, "t": claims.topic,
         "e": claims.expires_at, "k": kid}, separators=(",", ":")).encode())
    mac = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def verify(token: str, keys: list[tuple[str, bytes]], now: float) -> LinkClaims:
    try:
        payload, mac = token.split(".", 1)
        data = json.loads(_unb64(payload))
    except (ValueError, TypeError) as error:
        raise InvalidToken("malformed link token") from error
    secret = dict(keys).get(str(data.get("k")))
    if secret is None:
        raise InvalidToken("link signed with an unknown or retired key")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        raise InvalidToken("link signature does not match")
    if float(data["e"]) < now:
        raise InvalidToken("link has expired")
    return LinkClaims(str(data["m"]), str(data["p"]), data.get("c"), data.get("t"), int(data["e"]))
