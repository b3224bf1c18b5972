"""Lift against the holdout, net value and fairness, on synthetic members with known effects."""

from __future__ import annotations

import numpy as np
import pytest

from fidelio.report.log import LoggedDecision, MemberOutcome, PolicyOutcome, Segment
from fidelio.report.measure import (
    UnknownChannelCost,
    UnknownMetric,
    fairness,
    lift,
    net_value,
    net_value_breakdown,
    value_parameters,
)


def members(seed: int, treated_rate: float, holdout_rate: float, n: int = 3000,
            holdout_share: float = 0.1) -> list[MemberOutcome]:
    """Purchases ~ Poisson(rate), revenue = 38 EUR per purchase, redemptions ~ Poisson(rate / 4)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        holdout = bool(rng.random() < holdout_share)
        rate = holdout_rate if holdout else treated_rate
        purchases = int(rng.poisson(rate))
        out.append(MemberOutcome(
            member_id=f"m{i}", holdout=holdout, segment=Segment("bronze", "35-49", False),
            purchases=purchases, revenue=38.0 * purchases, organic_conversions=int(rng.poisson(rate / 4))))
    return out


def test_a_clearly_positive_effect_has_an_interval_above_zero():
    # Given treated members who buy 25 % more than the holdout
    outcome = lift(members(seed=1, treated_rate=2.5, holdout_rate=2.0), "purchases")
    # Then the relative lift is near 0.25 and its 95 % interval excludes zero
    assert outcome["relative"] == pytest.approx(0.25, abs=0.08)
    assert 0 < outcome["ci_low"] < outcome["relative"] < outcome["ci_high"]
    assert outcome["absolute_ci_low"] > 0
    assert outcome["treated_n"] + outcome["holdout_n"] == 3000
    assert outcome["relative"] == pytest.approx(outcome["treated_mean"] / outcome["holdout_mean"] - 1)


def test_a_null_effect_has_an_interval_around_zero():
    # Given treated and holdout members with the same purchase rate
    outcome = lift(members(seed=2, treated_rate=2.0, holdout_rate=2.0), "purchases")
    # Then the interval includes zero, for the relative and the absolute difference
    assert outcome["ci_low"] < 0 < outcome["ci_high"]
    assert outcome["absolute_ci_low"] < 0 < outcome["absolute_ci_high"]


def test_the_null_interval_covers_zero_in_most_worlds():
    # Given 200 worlds without any effect (1,000 members, about 100 in the holdout)
    covered = 0
    for seed in range(200):
        outcome = lift(members(seed=100 + seed, treated_rate=2.0, holdout_rate=2.0, n=1000), "revenue",
                       resamples=200, seed=seed)
        covered += outcome["ci_low"] <= 0 <= outcome["ci_high"]
    # Then the 95 % interval contains zero in at least 85 % of them
    assert covered >= 170, covered


def test_conversions_count_every_redemption_so_the_holdout_is_comparable():
    # Given holdout members who redeem only organically
    outcome = lift(members(seed=3, treated_rate=2.0, holdout_rate=2.0), "conversions")
    # Then the holdout mean is organic redemptions (not zero) and the lift is defined
    assert outcome["holdout_mean"] == pytest.approx(0.5, abs=0.1)
    assert outcome["relative"] is not None


def test_lift_without_a_holdout_is_undefined_not_an_error():
    outcome = lift([m for m in members(seed=4, treated_rate=2.0, holdout_rate=2.0, n=200) if not m.holdout])
    assert outcome["holdout_n"] == 0
    assert outcome["relative"] is None and outcome["ci_low"] is None


def test_an_unknown_metric_names_the_supported_ones():
    with pytest.raises(UnknownMetric, match="purchases, revenue, conversions"):
        lift(members(seed=5, treated_rate=1, holdout_rate=1, n=10), "clicks")


def test_lift_is_reproducible_with_the_same_seed():
    data = members(seed=6, treated_rate=2.2, holdout_rate=2.0, n=800)
    assert lift(data, seed=3) == lift(data, seed=3)


def test_net_value_is_revenue_minus_send_costs_minus_unsubscribes():
    # Given 1,000 emails, 200 pushes and 10 SMS, 500 EUR of revenue and 3 unsubscribes
    policy = PolicyOutcome(name="fidelio", sends=1210, conversions=20, revenue=500.0, unsubscribes=3,
                           complaints=0, members=100, channel_mix={"email": 1000, "push": 200, "sms": 10})
    # When priced with the default costs (email 0.001, push 0.0005, SMS 0.04; unsubscribe 10)
    breakdown = net_value_breakdown(policy)
    # Then the send cost is 1 + 0.1 + 0.4 and the net value 500 − 1.5 − 30
    assert breakdown["send_cost"] == pytest.approx(1.5)
    assert breakdown["unsubscribe_cost"] == pytest.approx(30.0)
    assert net_value(policy) == pytest.approx(468.5)
    # and the run's parameters override the defaults
    assert net_value(policy, {"send_cost": {"sms": 0.1}, "unsubscribe_cost": 0}) == pytest.approx(500 - 2.1)


def test_a_channel_without_a_price_is_refused():
    policy = PolicyOutcome(name="blast", sends=5, conversions=0, revenue=0.0, unsubscribes=0, complaints=0,
                           members=5, channel_mix={"whatsapp": 5})
    with pytest.raises(UnknownChannelCost, match="whatsapp"):
        net_value(policy)


def test_value_parameters_keep_defaults_for_channels_not_given():
    params = value_parameters({"send_cost": {"email": 0.002}})
    assert params == {"send_cost": {"email": 0.002, "push": 0.0005, "sms": 0.04}, "unsubscribe_cost": 10.0}


def _segmented_members() -> list[MemberOutcome]:
    """40 gold members with 2 EUR of offers each, 40 bronze with 1.5 on average, 5 platinum with 9, one holdout."""
    out = []
    for i in range(40):
        out.append(MemberOutcome(f"g{i}", False, Segment("gold", "35-49", False), sends=4, marketing_sends=4,
                                 offer_value_received=2.0))
        out.append(MemberOutcome(f"b{i}", False, Segment("bronze", "<25", i < 10), sends=2, marketing_sends=2,
                                 offer_value_received=1.0 if i % 2 else 2.0))
    for i in range(5):
        out.append(MemberOutcome(f"p{i}", False, Segment("platinum", "65+", False), sends=9, marketing_sends=9,
                                 offer_value_received=9.0))
    out.append(MemberOutcome("h0", True, Segment("gold", "35-49", False), offer_value_received=0.0))
    return out


def test_fairness_reports_each_segment_and_a_disparity_over_large_segments():
    # Given gold members getting 2 EUR of offers each, bronze 1.5 on average, and 5 platinum members
    outcomes = _segmented_members()
    decisions = [LoggedDecision(f"d{i}", "g0", 0, 0.0, "t", False, False, {"kind": "send" if i else "none"}, {},
                                0.5, 0.5, []) for i in range(4)]
    report = fairness(outcomes, decisions)
    tiers = {row["segment"]: row for row in report["by"]["tier"]}
    # Then every segment has its counts and means, in tier order, holdout excluded
    assert [row["segment"] for row in report["by"]["tier"]] == ["bronze", "gold", "platinum"]
    assert tiers["gold"]["members"] == 40 and tiers["platinum"]["members"] == 5
    assert tiers["gold"]["offer_value_per_member"] == pytest.approx(2.0)
    assert tiers["bronze"]["offer_value_per_member"] == pytest.approx(1.5)
    assert tiers["gold"]["decisions_per_member"] == pytest.approx(4 / 40)
    assert tiers["gold"]["send_rate"] == pytest.approx(0.75)
    assert report["holdout_excluded"] == 1
    # and the disparity compares only segments with at least 30 members (platinum's 9 EUR is left out)
    assert report["disparity"]["tier"]["segments_compared"] == 2
    assert report["disparity"]["tier"]["offer_value_ratio"] == pytest.approx(2.0 / 1.5)
    assert report["disparity"]["tier"]["marketing_sends_ratio"] == pytest.approx(2.0)
    assert {row["segment"] for row in report["by"]["new_member"]} == {"new", "existing"}
    # new vs existing: both groups are large enough only for "existing" (10 new members)
    assert report["disparity"]["new_member"]["offer_value_ratio"] is None


def test_the_rate_ratio_interval_of_two_poisson_counts_is_exact_and_honest_about_few_events():
    from fidelio.report.measure import rate_ratio_interval

    # Given 50 and 100 events over the same exposure, Then the interval is around 0.5, not containing 1
    low, high = rate_ratio_interval(50, 100, 1.0, 1.0)
    assert 0.33 < low < 0.37 and 0.68 < high < 0.73
    # ... 4 against 5 unsubscribes cannot tell 0.5 from 2
    low, high = rate_ratio_interval(4, 5, 300.0, 300.0)
    assert low < 0.5 and high > 2.0
    # ... exposures scale the ratio; none on the denominator side leaves it unbounded above
    assert rate_ratio_interval(50, 100, 2.0, 1.0)[0] == pytest.approx(low_half := rate_ratio_interval(50, 100, 1.0, 1.0)[0] / 2)
    assert low_half > 0 and rate_ratio_interval(3, 0, 1.0, 1.0)[1] is None
    assert rate_ratio_interval(0, 0, 1.0, 1.0) == (None, None)
    # ... and over many worlds with a true ratio of 0.5, the interval covers it at least 95 % of the time
    rng = np.random.default_rng(7)
    covered = sum(lo <= 0.5 <= (hi if hi is not None else np.inf)
                  for lo, hi in (rate_ratio_interval(int(rng.poisson(4)), int(rng.poisson(8)), 1.0, 1.0)
                                 for _ in range(400)) if lo is not None)
    assert covered >= 0.95 * 400 - 8
