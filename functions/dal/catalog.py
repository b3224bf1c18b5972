"""The offer catalog as the arrays decide and the offers API score with (numpy), built once per
cached catalog (functions/dal/offers.py holds the cache and its expiry)."""

from __future__ import annotations

from functions.dal.offers import cached_offers
from functions.domain.features import CatalogArrays
from functions.domain.offers import Offer

_built: tuple[tuple[Offer, ...], CatalogArrays] | None = None


def load_catalog(now: float | None = None) -> CatalogArrays:
    """The same object while the offer cache holds the same catalog."""
    global _built
    offers = cached_offers(now)
    if _built is None or _built[0] is not offers:
        _built = (offers, CatalogArrays.build(offers))
    return _built[1]
