"""Invariants of the decision engine, checked on generated members (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.domain import events as ev
from functions.domain.decision import (
    PolicyConfig,
    PriorScorer,
    cap_guardrail,
    decide_batch,
    in_holdout,
    is_quiet_hour,
    local_time,
)
from functions.domain.features import CatalogArrays
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event, consent_key
from functions.domain.triggers import DEFAULT_TRIGGERS, DecisionRequest

CATALOG = CatalogArrays.build([
    Offer(offer_id=f"o{i}", title=f"Offer {i}", categories=[c], value=v,
          channels=[ev.Channel.EMAIL, ev.Channel.PUSH, ev.Channel.SMS], topic=t)
    for i, (c, v, t) in enumerate([("coffee", 4, ev.Topic.OFFERS), ("wine", 9, ev.Topic.OFFERS),
                                   ("bakery", 2, ev.Topic.OFFERS), ("coffee", 3, ev.Topic.POINTS)])
])
ZONES = ["Europe/Paris", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney", "UTC"]
TRIGGERS = [t for t in DEFAULT_TRIGGERS if not t.max_days_to_points_expiry and not t.max_points_to_next_tier
            and not t.min_days_inactive]

member_strategy = st.fixed_dictionaries({
    "zone": st.sampled_from(ZONES),
    "consents": st.sets(st.tuples(st.sampled_from(["email", "push", "sms"]),
                                  st.sampled_from(["offers", "points"]), st.booleans()), max_size=6),
    "sends_hours_ago": st.lists(st.floats(min_value=0.5, max_value=200), max_size=6),
    "suppressed": st.sampled_from([None, "email", "push"]),
    "member_no": st.integers(min_value=0, max_value=10_000),
})


def _profile(spec: dict, now: datetime) -> MemberProfile:
    member = f"m{spec['member_no']}"
    profile = MemberProfile(member_id=member)
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member, occurred_at=now - timedelta(days=90),
                                           time_zone=spec["zone"], email="a@example.com", phone="+33612345678",
                                           push_endpoint_arn="arn:endpoint"))
    for i, (channel, topic, granted) in enumerate(sorted(spec["consents"])):
        apply_event(profile, ev.ConsentChanged(event_id=f"c{i}", member_id=member, occurred_at=now - timedelta(days=80),
                                               channel=channel, topic=topic, granted=granted, source="test"))
    for i, hours in enumerate(spec["sends_hours_ago"]):
        apply_event(profile, ev.NotificationSent(event_id=f"s{i}", member_id=member, occurred_at=now - timedelta(hours=hours),
                                                 decision_id=f"d{i}", channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS))
    if spec["suppressed"]:
        profile.suppressed[spec["suppressed"]] = "hard_bounce"
    return profile


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(member_strategy, min_size=1, max_size=8), hour=st.integers(0, 23),
       trigger=st.sampled_from(TRIGGERS), exploration=st.sampled_from(["epsilon", "softmax", "none"]))
def test_marketing_decisions_respect_every_guardrail(members, hour, trigger, exploration):
    now = datetime(2026, 3, 2, hour, 17, tzinfo=UTC)
    config = PolicyConfig(exploration=exploration, holdout_share=0.2)
    profiles = {}
    for spec in members:
        profile = _profile(spec, now)
        profiles[profile.member_id] = profile
    requests = [DecisionRequest(member_id=m, trigger=trigger, cause_id="cause", occurred_at=now) for m in profiles]
    decisions = decide_batch(requests, profiles, CATALOG, PriorScorer(), now, config)
    again = decide_batch(requests, profiles, CATALOG, PriorScorer(), now, config)
    assert [d.model_dump() for d in decisions] == [d.model_dump() for d in again]  # deterministic
    for decision in decisions:
        profile = profiles[decision.member_id]
        assert 0 < decision.propensity <= 1
        assert abs(decision.exploration["p_nothing"] + sum(t["propensity"] for t in decision.top) - 1) < 1e-5 \
            or decision.candidates_allowed > len(decision.top)
        if in_holdout(decision.member_id, config.holdout_share, config.holdout_salt):
            assert decision.holdout and not decision.sends
        if not decision.sends:
            continue
        action = decision.action
        consent = profile.consent.get(consent_key(action.channel, action.topic))
        assert consent is not None and consent.granted, "marketing without consent"
        assert action.channel not in profile.suppressed
        assert not is_quiet_hour(local_time(action.send_at, profile.time_zone).hour, config)
        assert cap_guardrail(profile, action.topic, action.send_at, config) is None


def test_propensities_over_the_whole_action_set_sum_to_one():
    from functions.domain.decision import choose

    rng = np.random.default_rng(0)
    for policy in ("epsilon", "softmax", "none"):
        values = rng.normal(size=40)
        _, probabilities, _ = choose(values, PolicyConfig(exploration=policy), rng)
        assert probabilities.min() >= 0 and abs(probabilities.sum() - 1) < 1e-12
        assert probabilities.shape == (41,)


def test_holdout_is_stable_and_near_its_share():
    members = [f"member-{i}" for i in range(20_000)]
    share = np.mean([in_holdout(m, 0.05, "salt") for m in members])
    assert 0.04 < share < 0.06
    assert [in_holdout(m, 0.05, "salt") for m in members[:100]] == [in_holdout(m, 0.05, "salt") for m in members[:100]]


def test_the_first_of_the_logged_top_candidates_is_the_greedy_action_even_among_ties():
    from functions.domain.decision import top_order

    rng = np.random.default_rng(3)
    for n in (1, 2, 10, 60, 500, 3000):
        # Given candidates where many share the best value (a prior scoring offers alike)
        expected = np.round(rng.normal(size=n), 1)
        expected[rng.integers(0, n, size=max(1, n // 3))] = expected.max()
        order = top_order(expected)
        # Then the first is the one `choose` takes greedily (np.argmax: the first of the ties),
        # the rest follow by value, ties in index order
        assert order[0] == int(np.argmax(expected))
        assert len(order) == min(5, n)
        assert all((expected[a], -a) > (expected[b], -b) for a, b in pairwise(order))
    assert top_order(np.zeros(0)) == []
