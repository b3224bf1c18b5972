"""The offer catalog in DynamoDB, cached per container for a short time.

Numpy-free (dispatch looks one offer up); functions/dal/catalog.py turns the cached offers
into the arrays decide scores with.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence

from functions.dal.tables import OfferRecord
from functions.domain.offers import Offer

CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, tuple[Offer, ...]]] = {}


def catalog_version(offers: Sequence[Offer]) -> str:
    canonical = json.dumps([o.model_dump(mode="json") for o in offers], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def replace_catalog(offers: Sequence[Offer]) -> str:
    """Write the whole catalog (offers missing from it are deleted). Returns its version."""
    version = catalog_version(offers)
    wanted = {o.offer_id for o in offers}
    with OfferRecord.batch_write() as batch:
        for offer in offers:
            batch.save(OfferRecord(offer.offer_id, body=offer.model_dump(mode="json"), catalog_version=version))
        for stale in OfferRecord.scan():
            if stale.offer_id not in wanted:
                batch.delete(stale)
    _cache.clear()
    return version


def cached_offers(now: float | None = None) -> tuple[Offer, ...]:
    """Every offer, in offer-id order: the same tuple object until the cache expires."""
    moment = time.monotonic() if now is None else now
    cached = _cache.get("offers")
    if cached and moment - cached[0] < CACHE_SECONDS:
        return cached[1]
    offers = tuple(sorted((Offer.model_validate(r.body) for r in OfferRecord.scan()), key=lambda o: o.offer_id))
    _cache["offers"] = (moment, offers)
    return offers


def load_offers(now: float | None = None) -> dict[str, Offer]:
    """Every offer by id (cached)."""
    return {o.offer_id: o for o in cached_offers(now)}


def clear_cache() -> None:
    _cache.clear()
