"""The lift of the messages themselves: treated sends against the holdout's withheld would-be
sends (ghost sends), on synthetic logs with known redemption rates."""

from __future__ import annotations

import numpy as np
import pytest

from fidelio.report.log import Exposure, Redemption
from fidelio.report.measure import exposure_lift, exposure_outcomes

DAY = 86400.0


def world(seed: int, treated_rate: float, holdout_rate: float, members: int = 1500, holdout_share: float = 0.2,
          per_member: int = 6) -> tuple[list[Exposure], list[Redemption]]:
    """Each member gets `per_member` offer messages 10 days apart; each is redeemed within 2 days
    with the group's probability; plus an unrelated redemption of another offer for everyone."""
    rng = np.random.default_rng(seed)
    exposures, redemptions = [], []
    for m in range(members):
        holdout = bool(rng.random() < holdout_share)
        for k in range(per_member):
            at = k * 10 * DAY + float(rng.uniform(0, DAY))
            exposures.append(Exposure(f"m{m}", f"d{m}-{k}", f"o{k}", at, holdout))
            if rng.random() < (holdout_rate if holdout else treated_rate):
                redemptions.append(Redemption(f"m{m}", f"o{k}", at + float(rng.uniform(0, 2 * DAY)),
                                              None if holdout else f"d{m}-{k}"))
        redemptions.append(Redemption(f"m{m}", "unrelated", float(rng.uniform(0, 60 * DAY))))
    return exposures, redemptions


def test_a_redemption_counts_once_for_the_latest_exposure_of_its_offer_within_the_window():
    # Given one member sent offer A on day 0 and day 3, offer B on day 1, and an exposure without offer
    exposures = [Exposure("m", "d1", "A", 0.0, False), Exposure("m", "d2", "A", 3 * DAY, False),
                 Exposure("m", "d3", "B", 1 * DAY, False), Exposure("m", "d4", None, 2 * DAY, False)]
    # When A is redeemed on day 4 and again on day 20, and B on day 9 (outside a 7-day window)
    redemptions = [Redemption("m", "A", 4 * DAY), Redemption("m", "A", 20 * DAY), Redemption("m", "B", 9 * DAY)]
    # Then only the day-4 redemption counts, once, for the day-3 exposure; the offer-less one is left out
    assert exposure_outcomes(exposures, redemptions, window_days=7) == {"m": (False, 3, 1)}
    # ... and two redemptions of A within the window of both exposures count for both, each once
    both = [Redemption("m", "A", 3.5 * DAY), Redemption("m", "A", 4 * DAY)]
    assert exposure_outcomes(exposures, both, window_days=7) == {"m": (False, 3, 2)}


def test_messages_that_cause_redemptions_have_an_interval_above_zero():
    # Given treated messages redeemed 3 % of the time and the holdout's would-be sends 0.6 %
    outcome = exposure_lift(*world(seed=1, treated_rate=0.03, holdout_rate=0.006), seed=1)
    # Then the rates, the counts and the lift are found, with an interval above zero
    assert outcome["treated_mean"] == pytest.approx(0.03, abs=0.005)
    assert outcome["holdout_mean"] == pytest.approx(0.006, abs=0.004)
    assert outcome["treated_exposures"] + outcome["holdout_exposures"] == 1500 * 6
    assert outcome["treated_redeemed"] == pytest.approx(outcome["treated_mean"] * outcome["treated_exposures"])
    assert 0 < outcome["ci_low"] < outcome["relative"]
    assert 0 < outcome["absolute_ci_low"] < outcome["absolute"] < outcome["absolute_ci_high"]
    assert outcome["incremental"] == pytest.approx(outcome["absolute"] * outcome["treated_exposures"])


def test_messages_without_effect_have_an_interval_around_zero_in_most_worlds():
    # Given 100 worlds where sends and withheld sends are redeemed alike (2 %)
    covered = 0
    for seed in range(100):
        outcome = exposure_lift(*world(seed=500 + seed, treated_rate=0.02, holdout_rate=0.02, members=600),
                                resamples=300, seed=seed)
        covered += outcome["absolute_ci_low"] <= 0 <= outcome["absolute_ci_high"]
    # Then the 95 % interval covers the null in most of them: a percentile bootstrap on ~14
    # holdout redemptions per world covers about 90 % (measured: 0.90 over 200 such worlds,
    # 0.935 with 4x the members; docs/report.md), the same bar as the member-level lift's test
    assert covered >= 85, covered


def test_a_holdout_without_redemptions_gives_an_unbounded_upper_end_and_no_ratio():
    # Given treated messages that are redeemed and withheld ones that never are
    exposures, redemptions = world(seed=3, treated_rate=0.05, holdout_rate=0.0, members=300)
    outcome = exposure_lift(exposures, redemptions, seed=3)
    # Then the ratio is undefined, its interval has no upper end, and the difference is above zero
    assert outcome["holdout_redeemed"] == 0 and outcome["relative"] is None
    assert outcome["ci_high"] is None and outcome["ci_low"] is None
    assert outcome["absolute_ci_low"] > 0


def test_without_holdout_exposures_nothing_is_estimated():
    exposures = [Exposure("m", "d1", "A", 0.0, False)]
    outcome = exposure_lift(exposures, [Redemption("m", "A", 1.0)])
    assert outcome["relative"] is None and outcome["absolute"] is None and outcome["treated_exposures"] == 1
