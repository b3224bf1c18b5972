"""rank_offers: an in-app placement ranks by expected value, keeps the offer guardrails, drops
the message-only ones, and is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from functions.domain import events as ev
from functions.domain.decision import PolicyConfig, PriorScorer, in_holdout
from functions.domain.features import FEATURE_NAMES, CatalogArrays
from functions.domain.offers import Offer
from functions.domain.placements import placement_id_for, rank_offers
from functions.domain.profile import MemberProfile, apply_event

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
CONFIG = PolicyConfig()
VALUE = FEATURE_NAMES.index("offer_value")


class ScorerByValue:
    """P(redeem) chosen per offer value, so a test can set P and value independently."""

    version = "fake-1"

    def __init__(self, p_by_value: dict[float, float]):
        self.p_by_value = p_by_value

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.p_by_value[float(v)] for v in rows[:, VALUE]])


def _offer(offer_id: str, value: float, **extra) -> Offer:
    return Offer(offer_id=offer_id, title=f"Offer {offer_id}", value=value, **extra)


def _member(member_id: str = "m-1", **enrol) -> MemberProfile:
    profile = MemberProfile(member_id=member_id)
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member_id,
                                           occurred_at=NOW - timedelta(days=60), **enrol))
    return profile


def _rank(profile, offers, scorer=None, limit=5, version="v1", now=NOW, **kwargs):
    return rank_offers(profile, CatalogArrays.build(offers), scorer or PriorScorer(), now, limit, CONFIG,
                       catalog_version=version, **kwargs)


def test_offers_are_ranked_by_probability_times_value():
    # Given three offers whose order by P, by value and by P × value all differ
    offers = [_offer("a", 2.0), _offer("b", 4.0), _offer("c", 10.0)]
    scorer = ScorerByValue({2.0: 0.3, 4.0: 0.2, 10.0: 0.05})  # EV 0.6, 0.8, 0.5
    # When the member's offers are ranked
    placement = _rank(_member(), offers, scorer)
    # Then the order is by expected value, with P and EV reported
    assert [o.offer_id for o in placement.offers] == ["b", "a", "c"]
    assert [round(o.expected_value, 6) for o in placement.offers] == [0.8, 0.6, 0.5]
    assert [round(o.probability, 6) for o in placement.offers] == [0.2, 0.3, 0.05]
    assert placement.model_version == "fake-1" and placement.propensity == 1.0


def test_limit_keeps_the_best_k_and_ties_go_by_offer_id():
    offers = [_offer(f"o{i}", 3.0) for i in range(6)]
    placement = _rank(_member(), offers, ScorerByValue({3.0: 0.1}), limit=4)
    assert [o.offer_id for o in placement.offers] == ["o0", "o1", "o2", "o3"]
    assert placement.allowed == 6
    with pytest.raises(ValueError, match="at least one offer"):
        _rank(_member(), offers, limit=0)


def test_offer_guardrails_still_apply():
    # Given a gold-only offer, an expired one, one not started, one sent a week ago, one out of budget
    profile = _member(tier="silver")
    apply_event(profile, ev.NotificationSent(event_id="s", member_id="m-1", occurred_at=NOW - timedelta(days=7),
                                             decision_id="d", channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS,
                                             offer_id="recent"))
    offers = [
        _offer("ok", 3.0),
        _offer("gold-only", 3.0, tiers=["gold"]),
        _offer("expired", 3.0, starts_at=NOW - timedelta(days=30), ends_at=NOW - timedelta(hours=1)),
        _offer("future", 3.0, starts_at=NOW + timedelta(days=1)),
        _offer("recent", 3.0),
        _offer("spent", 3.0, budget=100),
    ]
    # When ranked
    placement = _rank(profile, offers, budget_left={"spent": 0})
    # Then only the allowed offer is placed, and each rejection is counted by reason
    assert [o.offer_id for o in placement.offers] == ["ok"]
    assert placement.rejected == {"tier_mismatch": 1, "offer_inactive": 2, "recently_sent_offer": 1,
                                  "budget_exhausted": 1}
    assert placement.considered == 6 and placement.allowed == 1


def test_message_only_guardrails_do_not_apply():
    # Given a member with no consent, no contact point, a suppressed email, capped sends today,
    # asked for offers at 03:00 their time (quiet hours for messages)
    profile = _member(time_zone="Europe/Paris")
    profile.suppressed["email"] = "complaint"
    for hours in (1, 5, 30):
        apply_event(profile, ev.NotificationSent(event_id=f"s{hours}", member_id="m-1",
                                                 occurred_at=NOW - timedelta(hours=hours), decision_id=f"d{hours}",
                                                 channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS))
    night = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    # When ranked
    placement = _rank(profile, [_offer("a", 3.0), _offer("b", 2.0)], now=night)
    # Then both offers are placed: consent, suppression, quiet hours and caps are for messages
    assert [o.offer_id for o in placement.offers] == ["a", "b"]
    assert placement.rejected == {}


def test_only_offers_a_member_can_act_on_are_placed():
    offers = [_offer("coupon", 3.0), _offer("points", 3.0, kind="points"),
              _offer("reminder", 3.0, kind="reminder", topic=ev.Topic.POINTS),
              _offer("content", 3.0, kind="content")]
    placement = _rank(_member(), offers)
    assert sorted(o.offer_id for o in placement.offers) == ["coupon", "points"]
    assert placement.considered == 2


def test_holdout_members_still_get_offers():
    # Given a member in the messaging holdout
    member_id = next(f"h-{i}" for i in range(10_000) if in_holdout(f"h-{i}", CONFIG.holdout_share, CONFIG.holdout_salt))
    # When ranked
    placement = _rank(_member(member_id), [_offer("a", 3.0)])
    # Then the offer is placed, and the record says the member is in the holdout
    assert [o.offer_id for o in placement.offers] == ["a"]
    assert placement.holdout
    decision = placement.as_decision()
    assert decision.holdout and not decision.sends


def test_the_category_a_member_buys_comes_first_with_a_reason_they_can_read():
    # Given a member who buys coffee, and a coffee and a wine offer of the same value
    profile = _member(time_zone="Europe/Paris")
    for day in range(3):
        apply_event(profile, ev.PurchaseCompleted(
            event_id=f"p{day}", member_id="m-1", occurred_at=NOW - timedelta(days=day + 1), order_id=f"o{day}",
            amount=12.0, line_items=[ev.LineItem(product_id="beans", category="coffee", unit_price=12)]))
        apply_event(profile, ev.AppOpened(event_id=f"a{day}", member_id="m-1",
                                          occurred_at=NOW - timedelta(days=day + 1)))
    offers = [_offer("wine-10", 3.0, categories=["wine"]), _offer("coffee-10", 3.0, categories=["coffee"])]
    # When ranked with the prior scorer
    placement = _rank(profile, offers)
    # Then coffee comes first, because they buy coffee, and no send-time reason is given
    top = placement.offers[0]
    assert top.offer_id == "coffee-10"
    assert "you often buy coffee" in top.reasons
    assert not any(r.startswith("usually opens") for o in placement.offers for r in o.reasons)
    assert placement.offers[1].reasons  # a fallback reason at least


def test_the_placement_is_deterministic_and_its_id_is_per_member_local_day_and_catalog():
    profile = _member(time_zone="Europe/Paris")
    offers = [_offer("a", 3.0), _offer("b", 2.0)]
    first = _rank(profile, offers)
    # Same inputs: same placement
    assert _rank(profile, offers) == first
    # Later the same local day: same id
    assert _rank(profile, offers, now=NOW + timedelta(hours=5)).decision_id == first.decision_id
    # 23:30 UTC is already the next day in Paris: new id
    assert _rank(profile, offers, now=datetime(2026, 3, 2, 23, 30, tzinfo=UTC)).day == "2026-03-03"
    assert _rank(profile, offers, now=datetime(2026, 3, 2, 23, 30, tzinfo=UTC)).decision_id != first.decision_id
    # Another catalog version: new id
    assert _rank(profile, offers, version="v2").decision_id != first.decision_id
    assert first.decision_id == placement_id_for("m-1", "2026-03-02", "v1")


def test_the_placement_is_recorded_as_a_decision_that_sends_nothing():
    placement = _rank(_member(), [_offer("a", 3.0), _offer("b", 2.0)], ScorerByValue({3.0: 0.1, 2.0: 0.1}))
    decision = placement.as_decision()
    assert decision.trigger == "in_app_offers"
    assert decision.action.kind == "none" and decision.intended.kind == "none" and not decision.sends
    assert decision.propensity == 1.0
    assert [t["offer_id"] for t in decision.top] == ["a", "b"]
    assert [t["rank"] for t in decision.top] == [1, 2]
    assert {t["channel"] for t in decision.top} == {"in_app"}
    assert decision.cause_id == f"{placement.day}:v1"
