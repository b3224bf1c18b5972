"""The offer benchmark's diagnostics: censored label windows, per-campaign margins, and the
campaign-resampled interval (synthetic rows, no download)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks import offers_completejourney as bench
from fidelio.models import offers as om
from functions.domain import events as ev
from functions.domain.features import FEATURE_NAMES
from functions.domain.offers import Offer

START = datetime(2026, 1, 1, tzinfo=UTC)


def _offer(offer_id: str, days: int) -> Offer:
    return Offer(offer_id=offer_id, title=offer_id, categories=["coffee"], value=1.0, channels=[ev.Channel.EMAIL],
                 starts_at=START, ends_at=START + timedelta(days=days))


def _test_set(offer_ids: list[str], labels: list[int]) -> om.TrainingSet:
    rows = np.zeros((len(labels), len(FEATURE_NAMES)), dtype=np.float32)
    targetings = [om.Targeting(f"m{i}", o, "email", START.timestamp()) for i, o in enumerate(offer_ids)]
    return om.TrainingSet(rows, np.array(labels, dtype=np.int8), targetings)


def test_a_window_running_past_the_log_end_is_marked_as_partly_observed() -> None:
    # Given a 10-day offer and a 40-day offer, both sent at START, and a log that stops 10 days in
    targetings = [om.Targeting("m0", "short", "email", START.timestamp()),
                  om.Targeting("m1", "long", "email", START.timestamp())]
    window_end = om.label_window_ends(targetings, [_offer("short", 10), _offer("long", 40)])
    test = om.TrainingSet(np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32), np.zeros(2, dtype=np.int8),
                          targetings, window_end, (START + timedelta(days=10)).timestamp())

    # When the observed share of each label window is computed
    share = bench.observed_share(test)

    # Then the short window is fully observed (not censored) and a quarter of the long one is
    assert share.tolist() == [1.0, 0.25]
    assert test.censored.tolist() == [False, True]


def test_a_small_test_set_is_flagged_and_one_campaign_gets_no_campaign_interval() -> None:
    # Given a test set of one campaign with 15 redemptions (2017-11-01 once censored pairs are out)
    rng = np.random.default_rng(2)
    labels = np.array([1] * 15 + [0] * 115, dtype=np.int8)
    model = labels + rng.normal(0, 1.0, 130)

    # When it is checked for size and its campaign-resampled interval is computed
    warning = bench.small_test_set_warning(campaigns=1, redemptions=15)
    interval = bench.campaign_interval(labels, model, np.zeros(130), np.array(["c19"] * 130))

    # Then both shortfalls are named, and no interval is made up from one campaign
    assert warning is not None and "1 campaign (< 5)" in warning and "15 redemptions (< 100)" in warning
    assert interval is None
    # And a test set as large as 2017-08-01's (6 campaigns, 480 redemptions) is not flagged
    assert bench.small_test_set_warning(campaigns=6, redemptions=480) is None


def test_margin_within_campaigns_ignores_how_campaigns_rank_against_each_other() -> None:
    # Given two campaigns where the model ranks households perfectly inside each, but gives
    # the campaign with fewer redemptions the higher scores overall, and a flat baseline
    offers = ["a"] * 4 + ["b"] * 4
    labels = [1, 0, 0, 0, 1, 1, 0, 0]
    model = np.array([0.4, 0.3, 0.2, 0.1, 0.2, 0.15, 0.05, 0.01]) + np.array([0.5] * 4 + [0.0] * 4)
    baseline = np.zeros(8)
    test = _test_set(offers, labels)

    # When the per-campaign rows and the within-campaign margin are computed
    campaigns = bench.by_campaign(test, model, baseline, np.ones(8))
    margin = bench.within_campaign_margin(campaigns)

    # Then each campaign has AUC 1 against the baseline's 0.5, while the pooled AUC is lower
    assert [(c.offer_id, c.pairs, c.redemptions, c.auc_fidelio) for c in campaigns] == [("a", 4, 1, 1.0), ("b", 4, 2, 1.0)]
    assert margin == 0.5
    assert om.roc_auc(np.array(labels), model) < 1.0


def test_campaign_interval_resamples_whole_campaigns() -> None:
    # Given a model better than the baseline in every one of six campaigns
    rng = np.random.default_rng(1)
    offers = np.repeat([f"c{k}" for k in range(6)], 50)
    labels = (rng.random(300) < 0.3).astype(np.int8)
    model = labels + rng.normal(0, 0.5, 300)
    baseline = labels + rng.normal(0, 2.0, 300)

    # When the margin's interval is bootstrapped over campaigns
    interval = bench.campaign_interval(labels, model, baseline, offers)
    assert interval is not None
    low, high = interval

    # Then it sits above zero and brackets the observed margin
    observed = om.roc_auc(labels, model) - om.roc_auc(labels, baseline)
    assert 0.0 < low <= observed <= high
