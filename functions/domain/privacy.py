"""GDPR rights, the pure parts: pseudonyms, what identifies a member, removing a member's rows
from archive files, the erasure receipt, and the Bloom filter a model card uses to say which
members its training set held (erasure lineage).

A pseudonym is "p-" + HMAC-SHA256(secret salt, member id) truncated to 128 bits: the same as
the training export's (fidelio/training_export.py), so training rows match the erasure list. The salt is a secret
(Secrets Manager in AWS): without it, nobody holding the erasure list or a model card can test
whether a guessed member id (loyalty numbers are often sequential) was erased or trained on.
Pseudonyms are still personal data under GDPR while the salt exists; they are kept only to
honour the erasure itself (suppress replays, exclude the member from the next training).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PSEUDONYM_HEX = 32  # 128 bits: collisions are not a concern at any member count
TOMBSTONE_PREFIX = "erased#"  # ledger pk of the erasure tombstone / suppression record
TOMBSTONE_SK = "tombstone"
BLOOM_FALSE_POSITIVE_RATE = 0.01
MAX_REASON_CHARS = 200


class PrivacyRequestError(ValueError):
    """A privacy request that cannot be served as given; the message says how to fix it."""


def pseudonym(member_id: str, salt: str) -> str:
    """The member's pseudonym: a keyed hash of the id, stable for one salt."""
    if not member_id:
        raise PrivacyRequestError("a member id is needed (got an empty one)")
    if not salt:
        raise PrivacyRequestError("the pseudonym salt is empty: set FIDELIO_PSEUDONYM_SALT(_SECRET)")
    return "p-" + hmac.new(salt.encode(), member_id.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def tombstone_key(member_pseudonym: str) -> tuple[str, str]:
    """(pk, sk) of the ledger item that suppresses the member and holds the erasure receipt."""
    return f"{TOMBSTONE_PREFIX}{member_pseudonym}", TOMBSTONE_SK


@dataclass(frozen=True)
class MemberIdentifiers:
    """Every value that identifies one member in Fidelio's stores."""

    member_id: str
    pseudonym: str
    contact: tuple[str, ...] = ()  # email, phone, push endpoint: distinctive even inside a text
    names: tuple[str, ...] = ()  # first name: identifying only as a whole value ("Ann" is in "Annual")

    @property
    def needles(self) -> frozenset[str]:
        """Values that make a row the member's when a field holds exactly one of them."""
        return frozenset({self.member_id, self.pseudonym, *self.contact, *self.names} - {""})

    @property
    def raw_forms(self) -> frozenset[str]:
        """The needles as they may appear in serialized JSON (escaped when not ASCII): the cheap
        pre-test on raw text, before parsing a line."""
        return frozenset(f for n in self.needles for f in (n, json.dumps(n)[1:-1]))

    @property
    def contained(self) -> frozenset[str]:
        """Values that make a row the member's wherever they appear inside a string."""
        return frozenset(c for c in self.contact if len(c) >= 6)


def identifiers_from_profile(member_id: str, member_pseudonym: str, profile: Mapping[str, Any] | None
                             ) -> MemberIdentifiers:
    def present(*keys: str) -> tuple[str, ...]:
        values = [profile.get(k) for k in keys] if profile else []
        return tuple(v for v in values if isinstance(v, str) and v)

    return MemberIdentifiers(member_id, member_pseudonym, present("email", "phone", "push_endpoint_arn"),
                             present("first_name"))


def check_reason(reason: str, identifiers: MemberIdentifiers) -> str:
    """The erasure reason is kept in the receipt forever: it must not identify the member."""
    text = reason.strip()
    if not text:
        raise PrivacyRequestError("give a reason for the erasure (e.g. 'member request via support ticket 123')")
    if len(text) > MAX_REASON_CHARS:
        raise PrivacyRequestError(f"the reason is {len(text)} characters; keep it under {MAX_REASON_CHARS}")
    lowered = text.lower()
    if any(n.lower() in lowered for n in identifiers.needles if len(n) >= 3):
        raise PrivacyRequestError("the reason names the member (id, email, phone or name): the receipt "
                                  "outlives the erasure, so describe the request without identifying them")
    return text


# --- finding a member in archive rows -------------------------------------------------------


def mentions(value: Any, needles: frozenset[str], contained: frozenset[str] = frozenset()) -> bool:
    """True when any string (or key) anywhere in a JSON-like value equals one of `needles`
    or contains one of `contained`."""
    if isinstance(value, str):
        return value in needles or any(c in value for c in contained)
    if isinstance(value, Mapping):
        return any(mentions(k, needles, contained) or mentions(v, needles, contained) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(mentions(v, needles, contained) for v in value)
    return False


def row_is_members(row: Any, ids: MemberIdentifiers) -> bool:
    return mentions(row, ids.needles, ids.contained)


def rows_mentioning(data: bytes, ids: MemberIdentifiers) -> list[dict[str, Any]]:
    """The JSON-lines rows of `data` that belong to the member (for the export)."""
    found = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip() or not any(n in line for n in ids.raw_forms):
            continue  # the cheap test first: most lines of an archive are other members'
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row_is_members(row, ids):
            found.append(row)
    return found


def without_member_lines(data: bytes, ids: MemberIdentifiers) -> tuple[bytes, int]:
    """JSON-lines `data` without the member's rows, and how many rows were removed. A line
    that is not JSON is removed when it contains an identifier at all (erring towards erasure)."""
    kept: list[str] = []
    removed = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip() and any(n in line for n in ids.raw_forms):
            try:
                row: Any = json.loads(line)
            except ValueError:
                removed += 1
                continue
            if row_is_members(row, ids):
                removed += 1
                continue
        kept.append(line)
    return "\n".join(kept).encode(), removed


# --- erasure lineage: which members a model's training set held ----------------------------


@dataclass
class BloomFilter:
    """A set of pseudonyms in m bits with k hash functions: `in` is never wrong when it says
    no, and says yes for a non-member with probability about `false_positive_rate`."""

    bits: int
    hashes: int
    data: bytearray = field(default_factory=bytearray)
    count: int = 0

    def __post_init__(self) -> None:
        if self.bits <= 0 or self.hashes <= 0:
            raise ValueError("a Bloom filter needs at least one bit and one hash")
        if not self.data:
            self.data = bytearray((self.bits + 7) // 8)

    @classmethod
    def for_capacity(cls, items: int, false_positive_rate: float = BLOOM_FALSE_POSITIVE_RATE) -> BloomFilter:
        n = max(1, items)
        bits = max(64, math.ceil(-n * math.log(false_positive_rate) / math.log(2) ** 2))
        hashes = max(1, round(bits / n * math.log(2)))
        return cls(bits=bits, hashes=hashes)

    def _positions(self, item: str) -> list[int]:
        digest = hashlib.sha256(item.encode()).digest()
        h1, h2 = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big") | 1
        return [(h1 + i * h2) % self.bits for i in range(self.hashes)]

    def add(self, item: str) -> None:
        for p in self._positions(item):
            self.data[p // 8] |= 1 << (p % 8)
        self.count += 1

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and all(self.data[p // 8] & (1 << (p % 8)) for p in self._positions(item))

    @property
    def false_positive_rate(self) -> float:
        return float((1 - math.exp(-self.hashes * self.count / self.bits)) ** self.hashes)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "bloom", "of": "pseudonym (HMAC-SHA256 of the member id, privacy salt)",
                "bits": self.bits, "hashes": self.hashes, "count": self.count,
                "false_positive_rate": round(self.false_positive_rate, 6),
                "data": base64.b64encode(bytes(self.data)).decode()}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> BloomFilter:
        if value.get("kind") != "bloom":
            raise ValueError(f"not a Bloom filter description: kind={value.get('kind')!r}")
        return cls(bits=int(value["bits"]), hashes=int(value["hashes"]),
                   data=bytearray(base64.b64decode(value["data"])), count=int(value.get("count", 0)))


TRAINING_MEMBERS_KEY = "training_members"


def training_members_entry(pseudonyms: Iterable[str]) -> dict[str, Any]:
    """What a model card records about the members its training rows came from."""
    unique = sorted(set(pseudonyms))
    bloom = BloomFilter.for_capacity(len(unique))
    for p in unique:
        bloom.add(p)
    return bloom.to_dict()


def card_may_include(card: Mapping[str, Any], member_pseudonym: str) -> bool | None:
    """Whether a model's training set may have held the member: False = certainly not,
    True = yes (or a Bloom false positive), None = the card does not record its members."""
    entry = card.get(TRAINING_MEMBERS_KEY)
    if not isinstance(entry, Mapping):
        return None
    return member_pseudonym in BloomFilter.from_dict(entry)


@dataclass(frozen=True)
class ErasureList:
    """The pseudonyms of erased members, as the next training reads them."""

    salt: str
    pseudonyms: frozenset[str]

    def excludes(self, member_id: str) -> bool:
        return pseudonym(member_id, self.salt) in self.pseudonyms

    def __len__(self) -> int:
        return len(self.pseudonyms)


# --- what an erasure leaves behind ----------------------------------------------------------


class ModelLineage(BaseModel):
    # defer_build (both models): built on an erasure, not in the cold start of every function
    # that imports this module to check a pseudonym.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    trained_on: list[str] = Field(default_factory=list)  # model versions whose training set held the member
    not_trained_on: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)  # cards that do not record their members


class ErasureReceipt(BaseModel):
    """Proof that an erasure happened, holding nothing that identifies the member."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    pseudonym: str
    requested_at: datetime
    completed_at: datetime
    reason: str
    removed: dict[str, int] = Field(default_factory=dict)  # store -> items / rows removed
    models: ModelLineage = Field(default_factory=ModelLineage)
    runs: int = 1  # erasure is idempotent; a re-run catches writes that raced the first one


def lineage_of(cards: Iterable[tuple[str, Mapping[str, Any]]], member_pseudonym: str) -> ModelLineage:
    """Sort model versions by whether their training set held the member."""
    lineage = ModelLineage()
    for where, card in cards:
        version = f"{card.get('name', '?')}:{card.get('model_version', where)}"
        verdict = card_may_include(card, member_pseudonym)
        bucket = lineage.unknown if verdict is None else lineage.trained_on if verdict else lineage.not_trained_on
        if version not in bucket:
            bucket.append(version)
    return lineage
