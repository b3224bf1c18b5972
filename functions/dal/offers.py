"""The offer catalog in DynamoDB, cached per container for a short time."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence

from functions.dal.tables import OfferRecord
from functions.domain.features import CatalogArrays
from functions.domain.offers import Offer

CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, CatalogArrays]] = {}


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


def load_catalog(now: float | None = None) -> CatalogArrays:
    moment = time.monotonic() if now is None else now
    cached = _cache.get("catalog")
    if cached and moment - cached[0] < CACHE_SECONDS:
        return cached[1]
    offers = sorted((Offer.model_validate(r.body) for r in OfferRecord.scan()), key=lambda o: o.offer_id)
    arrays = CatalogArrays.build(offers)
    _cache["catalog"] = (moment, arrays)
    return arrays


def clear_cache() -> None:
    _cache.clear()
