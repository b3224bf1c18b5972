"""Exactly-once profile updates on moto with the small member item: an archive replayed
through ingest's write path does not double-count purchases, however long the history."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fidelio.local.runner import LocalRunner
from functions.dal.members import applied_events, apply_to_stored_profile, load_profile
from functions.dal.tables import MemberRecord
from functions.domain import events as ev
from functions.domain.applied_events import RECENT_EVENTS
from functions.handlers import deps

pytestmark = pytest.mark.integration
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _purchases(member: str, n: int) -> list[ev.PurchaseCompleted]:
    return [ev.PurchaseCompleted(event_id=f"{member}-buy-{i}", member_id=member, order_id=f"o-{i}",
                                 occurred_at=START + timedelta(hours=7 * i), amount=10.0 + i,
                                 line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=10.0 + i)])
            for i in range(n)]


def test_a_replayed_archive_of_many_purchases_is_not_counted_twice(local_stack):
    deps.use(LocalRunner(local_stack)._deps["ingest"])
    member = "m-replay-1"
    history = _purchases(member, 3 * RECENT_EVENTS)
    # Given a member whose purchases arrived a little out of order, some twice (SQS redelivery)
    rng = random.Random(5)
    arrivals = sorted(history, key=lambda e: history.index(e) + rng.uniform(0, 4))
    applied = [apply_to_stored_profile(e) for e in arrivals + arrivals[::7]]
    assert applied.count(True) == len(history)
    # When the whole archive is replayed, in another order
    replayed = [apply_to_stored_profile(e) for e in rng.sample(history, len(history))]
    # Then nothing is applied again: each purchase counted once
    assert not any(replayed)
    profile = load_profile(member)
    assert profile is not None and profile.purchase_count == len(history)
    assert profile.total_spend == pytest.approx(sum(e.amount for e in history))
    # and the item remembers only the last RECENT_EVENTS ids, not the whole history
    remembered = applied_events(MemberRecord.get(member, consistent_read=True))
    assert remembered.ids == [e.event_id for e in history[-RECENT_EVENTS:]]
    assert remembered.floor == int(history[-RECENT_EVENTS].occurred_at.timestamp())


def test_a_new_event_after_the_replay_still_applies(local_stack):
    deps.use(LocalRunner(local_stack)._deps["ingest"])
    member = "m-replay-2"
    history = _purchases(member, RECENT_EVENTS + 5)
    for event in history + history:
        apply_to_stored_profile(event)
    # When a new purchase, and one that occurred between recent ones, arrive
    newest = _purchases(member, RECENT_EVENTS + 6)[-1]
    between = ev.AppOpened(event_id=f"{member}-open", member_id=member,
                           occurred_at=history[-3].occurred_at + timedelta(minutes=5))
    # Then both are applied once
    assert apply_to_stored_profile(newest) and apply_to_stored_profile(between)
    assert not apply_to_stored_profile(newest) and not apply_to_stored_profile(between)
    profile = load_profile(member)
    assert profile is not None and profile.purchase_count == RECENT_EVENTS + 6


def test_the_profile_is_stored_compressed_and_an_item_written_before_still_reads(local_stack):
    deps.use(LocalRunner(local_stack)._deps["ingest"])
    member = "m-compressed"
    for event in _purchases(member, 40):
        apply_to_stored_profile(event)
    profile = load_profile(member)
    assert profile is not None
    # Then the stored attribute is binary, and several times smaller than the profile's JSON
    client = local_stack.client("dynamodb")
    item = client.get_item(TableName=MemberRecord.Meta.table_name, Key={"member_id": {"S": member}},
                           ConsistentRead=True)["Item"]
    stored, as_json = item["profile"]["B"], profile.model_dump_json().encode()
    assert len(stored) * 2.5 < len(as_json)
    # Given an item written before the change, with the profile as a JSON string
    item["profile"] = {"S": profile.model_dump_json()}
    item["member_id"] = {"S": "m-legacy"}
    client.put_item(TableName=MemberRecord.Meta.table_name, Item=item)
    # Then it reads as the same profile, and the next event applies to it and stores it compressed
    legacy = load_profile("m-legacy")
    assert legacy is not None and legacy.purchase_count == 40 and legacy.total_spend == profile.total_spend
    newer = ev.PurchaseCompleted(event_id="legacy-buy", member_id="m-legacy", order_id="o-new",
                                 occurred_at=START + timedelta(days=30), amount=5.0,
                                 line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=5.0)])
    assert apply_to_stored_profile(newer)
    after = client.get_item(TableName=MemberRecord.Meta.table_name, Key={"member_id": {"S": "m-legacy"}},
                            ConsistentRead=True)["Item"]
    assert "B" in after["profile"] and load_profile("m-legacy").purchase_count == 41


def test_a_skipped_event_says_whether_it_is_a_known_duplicate_or_older_than_the_floor(local_stack):
    deps.use(LocalRunner(local_stack)._deps["ingest"])
    member = "m-skips"
    history = _purchases(member, 2 * RECENT_EVENTS)
    for event in history:
        assert apply_to_stored_profile(event)
    heard: list[str] = []
    # When a recent event comes again, and one older than the member's recent events
    assert not apply_to_stored_profile(history[-1], on_skip=heard.append)
    assert not apply_to_stored_profile(history[0], on_skip=heard.append)
    # ... and an event never seen, that occurred before the floor (a genuine late arrival)
    late = ev.AppOpened(event_id=f"{member}-late-open", member_id=member, occurred_at=history[1].occurred_at)
    assert not apply_to_stored_profile(late, on_skip=heard.append)
    # Then the first is a known duplicate, the other two are below the floor (not told apart)
    assert heard == ["duplicate", "below_floor", "below_floor"]
