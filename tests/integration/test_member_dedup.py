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
