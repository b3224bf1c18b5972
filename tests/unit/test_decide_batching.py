"""The batched hot path decides exactly as one member at a time: a member's decision, its
features and its exploration draw do not depend on who else is in the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from functions.domain import events as ev
from functions.domain.decision import PolicyConfig, PriorScorer, _draw, decide_batch
from functions.domain.features import (
    CatalogArrays,
    candidate_features,
    candidate_features_batch,
    member_features,
)
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event
from functions.domain.triggers import DEFAULT_TRIGGERS, DecisionRequest

NOW = datetime(2026, 3, 2, 9, 17, tzinfo=UTC)
CATALOG = CatalogArrays.build([
    Offer(offer_id=f"o{i}", title=f"Offer {i}", categories=cats, value=v,
          channels=[ev.Channel.EMAIL, ev.Channel.PUSH, ev.Channel.SMS], topic=t)
    for i, (cats, v, t) in enumerate([(["coffee"], 4, ev.Topic.OFFERS), (["wine", "bakery"], 9, ev.Topic.OFFERS),
                                      (["bakery"], 2, ev.Topic.OFFERS), (["coffee"], 3, ev.Topic.POINTS),
                                      ([], 5, ev.Topic.OFFERS)])
])
ZONES = ["UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Kolkata", "Asia/Kathmandu"]


def _member(i: int, rng: np.random.Generator) -> MemberProfile:
    member_id = f"m{i}"
    profile = MemberProfile(member_id=member_id)
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member_id, occurred_at=NOW - timedelta(days=200),
                                           time_zone=ZONES[i % len(ZONES)], email="a@example.com",
                                           phone="+33612345678", push_endpoint_arn="arn:endpoint"))
    for k, (channel, topic) in enumerate([(ev.Channel.EMAIL, ev.Topic.OFFERS), (ev.Channel.PUSH, ev.Topic.OFFERS),
                                          (ev.Channel.SMS, ev.Topic.POINTS)]):
        if (i + k) % 3:
            apply_event(profile, ev.ConsentChanged(event_id=f"c{k}", member_id=member_id,
                                                   occurred_at=NOW - timedelta(days=100), channel=channel,
                                                   topic=topic, granted=True, source="test"))
    for k in range(int(rng.integers(0, 12))):
        category = ["coffee", "wine", "bakery", "tea"][int(rng.integers(0, 4))]
        apply_event(profile, ev.PurchaseCompleted(
            event_id=f"b{k}", member_id=member_id, occurred_at=NOW - timedelta(hours=float(rng.uniform(1, 3000))),
            order_id=f"o{k}", amount=float(rng.uniform(3, 90)),
            line_items=[ev.LineItem(product_id="p", category=category, unit_price=float(rng.uniform(1, 30)))]))
    if i % 4 == 1:
        apply_event(profile, ev.NotificationSent(event_id="s", member_id=member_id, occurred_at=NOW - timedelta(hours=30),
                                                 decision_id="d", channel=ev.Channel.EMAIL, offer_id="o2",
                                                 topic=ev.Topic.OFFERS))
    return profile


def test_a_batch_decides_as_each_member_alone():
    rng = np.random.default_rng(4)
    profiles = {p.member_id: p for p in (_member(i, rng) for i in range(40))}
    sends = 0
    for trigger in DEFAULT_TRIGGERS:
        for config in (PolicyConfig(slot_hours=12), PolicyConfig(exploration="softmax", objective="offer_value",
                                                                  quiet_start_hour=0, quiet_end_hour=0)):
            requests = [DecisionRequest(member_id=m, trigger=trigger, cause_id="c", occurred_at=NOW)
                        for m in [*profiles, "unknown"]]
            batched = decide_batch(requests, profiles, CATALOG, PriorScorer(), NOW, config)
            alone = [decide_batch([r], profiles, CATALOG, PriorScorer(), NOW, config)[0] for r in requests]
            assert [d.model_dump() for d in batched] == [d.model_dump() for d in alone]
            sends += sum(d.sends for d in batched)
    assert sends > 100  # the comparison covers chosen candidates, not only "send nothing"


def test_batched_features_equal_per_member_features():
    rng = np.random.default_rng(5)
    profiles = [_member(i, rng) for i in range(12)]
    slots = NOW.timestamp() + 3600.0 * np.arange(8)
    pieces, index = [], []
    for k in range(len(profiles)):
        n = int(rng.integers(0, 30))
        offer_index = rng.integers(0, len(CATALOG.offers), n)
        channel_index = rng.integers(0, 3, n)
        send_at = slots[rng.integers(0, len(slots), n)]
        pieces.append((offer_index, channel_index, send_at))
        index.append(np.full(n, k))
    vectors = np.stack([member_features(p, NOW) for p in profiles])
    offers, channels, send_at = (np.concatenate(part) for part in zip(*pieces, strict=True))
    batched = candidate_features_batch(profiles, vectors, CATALOG, np.concatenate(index), offers, channels, send_at,
                                       NOW)
    alone = np.vstack([candidate_features(p, vectors[k], CATALOG, *pieces[k], NOW) for k, p in enumerate(profiles)])
    np.testing.assert_array_equal(batched, alone)


def test_the_exploration_draw_is_numpys_choice():
    for seed in range(300):
        n = 1 + seed % 50
        probabilities = np.random.default_rng(seed + 1000).dirichlet(np.ones(n))
        expected = np.random.default_rng(seed).choice(n, p=probabilities)
        assert _draw(np.random.default_rng(seed), probabilities) == expected
