"""Features defined once: the profile built online, one stored event at a time in any
delivery order with duplicates, gives the same features as an offline replay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np

from functions.domain import events as ev
from functions.domain.features import CatalogArrays, candidate_features, member_features
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event, replay

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _history(member: str, rng: random.Random) -> list[ev.MemberEvent]:
    start = NOW - timedelta(days=200)
    events: list[ev.MemberEvent] = [
        ev.MemberEnrolled(event_id="enrol", member_id=member, occurred_at=start, time_zone="America/New_York",
                          email="x@example.com"),
    ]
    for i in range(60):
        at = start + timedelta(hours=rng.uniform(1, 199 * 24))
        kind = rng.choice(["buy", "app", "sent", "open", "points"])
        if kind == "buy":
            cat = rng.choice(["coffee", "wine", "bakery"])
            events.append(ev.PurchaseCompleted(event_id=f"b{i}", member_id=member, occurred_at=at, order_id=f"o{i}",
                                               amount=rng.uniform(3, 80), line_items=[
                                                   ev.LineItem(product_id="p", category=cat, unit_price=rng.uniform(1, 20))]))
        elif kind == "app":
            events.append(ev.AppOpened(event_id=f"a{i}", member_id=member, occurred_at=at))
        elif kind == "sent":
            events.append(ev.NotificationSent(event_id=f"s{i}", member_id=member, occurred_at=at, decision_id=f"d{i}",
                                              channel=ev.Channel.EMAIL, offer_id="coffee", topic=ev.Topic.OFFERS))
        elif kind == "open":
            events.append(ev.NotificationOpened(event_id=f"op{i}", member_id=member, occurred_at=at, decision_id=f"d{i}",
                                                channel=ev.Channel.EMAIL))
        else:
            events.append(ev.PointsEarned(event_id=f"p{i}", member_id=member, occurred_at=at, points=rng.randint(1, 90)))
    return events


def _online(member: str, history: list[ev.MemberEvent], rng: random.Random) -> MemberProfile:
    """What ingest does: events in delivery order (roughly by time, some late, some twice)."""
    delivered = sorted(history, key=lambda e: e.occurred_at + timedelta(minutes=rng.uniform(0, 90)))
    delivered += rng.sample(history, 10)  # redeliveries
    seen: set[str] = set()
    profile = MemberProfile(member_id=member)
    for event in delivered:
        if event.event_id in seen:  # the stored item's recent event ids
            continue
        seen.add(event.event_id)
        apply_event(profile, event)
    return profile


def test_online_profile_features_equal_offline_replay_features():
    catalog = CatalogArrays.build([Offer(offer_id="coffee", title="Coffee", categories=["coffee"], value=4),
                                   Offer(offer_id="wine", title="Wine", categories=["wine"], value=9)])
    for seed in range(5):
        rng = random.Random(seed)
        history = _history(f"m{seed}", rng)
        online, offline = _online(f"m{seed}", history, rng), replay(f"m{seed}", history)
        on_vec, off_vec = member_features(online, NOW), member_features(offline, NOW)
        np.testing.assert_allclose(on_vec, off_vec, rtol=1e-5, atol=1e-5)
        idx = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
        slots = np.array([NOW.timestamp(), NOW.timestamp() + 3600, NOW.timestamp() + 7200, NOW.timestamp()])
        np.testing.assert_allclose(candidate_features(online, on_vec, catalog, *idx, slots, NOW),
                                   candidate_features(offline, off_vec, catalog, *idx, slots, NOW),
                                   rtol=1e-5, atol=1e-5)
