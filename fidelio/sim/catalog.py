"""Load an offer catalog (YAML with a top-level `offers:` list) into `Offer` models."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from functions.domain.offers import Offer

DEFAULT_OFFERS_PATH = Path(__file__).resolve().parents[2] / "examples" / "offers.yaml"


class CatalogError(ValueError):
    """The catalog file is missing, not YAML, or holds an offer that does not validate."""


def load_offers(path: str | Path = DEFAULT_OFFERS_PATH) -> list[Offer]:
    import yaml  # the `local` extra; imported here so the simulator itself does not need it

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogError(f"cannot read offer catalog {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise CatalogError(f"offer catalog {path} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("offers"), list):
        raise CatalogError(f"offer catalog {path} needs a top-level 'offers:' list")
    offers: list[Offer] = []
    seen: set[str] = set()
    for position, entry in enumerate(document["offers"]):
        try:
            offer = Offer.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "offer"
            name = entry.get("offer_id", f"#{position}") if isinstance(entry, dict) else f"#{position}"
            raise CatalogError(f"offer {name} in {path}: {where}: {first['msg']}") from error
        if offer.offer_id in seen:
            raise CatalogError(f"offer {offer.offer_id} appears twice in {path}")
        seen.add(offer.offer_id)
        offers.append(offer)
    return offers
