"""The drift monitor's figures (functions.domain.drift, pure Python) equal the numpy ones the
model card is built with (fidelio.models.model_card), on random data, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fidelio.models import model_card
from functions.domain.drift import MIN_ROWS, bin_shares, calibration, drift_report, psi, quantile

TOLERANCE = 1e-9


def _column(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    """A mix of what features look like: skewed amounts, small counts, ties, non-finite values."""
    if kind == 0:
        column = rng.lognormal(mean=1.0, sigma=0.9, size=n)
    elif kind == 1:
        column = rng.integers(0, 6, size=n).astype(np.float64)  # ties on the edges
    else:
        column = rng.normal(0.0, 3.0, size=n)
    column[rng.random(n) < 0.03] = np.nan
    column[rng.random(n) < 0.01] = np.inf
    return column


@pytest.mark.parametrize("seed", range(12))
def test_bin_shares_and_psi_match_the_numpy_model_card(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kind = seed % 3
    # Given a baseline from one sample and serving values from a shifted one
    baseline = model_card.quantile_bins(_column(rng, 2000, kind), bins=10)
    live = _column(rng, int(rng.integers(1, 3000)), kind) * (1.0 + 0.2 * rng.random()) + rng.random()
    # When both implementations bin and score the serving values (a list and a numpy array)
    expected_shares = model_card.bin_proportions(baseline, live)
    expected_psi = model_card.population_stability_index(baseline, live)
    # Then they agree
    assert bin_shares(baseline["edges"], live.tolist()) == pytest.approx(expected_shares.tolist(), abs=TOLERANCE)
    assert psi(baseline, live.tolist()) == pytest.approx(expected_psi, abs=TOLERANCE)
    assert psi(baseline, live) == pytest.approx(expected_psi, abs=TOLERANCE)
    assert expected_psi > 0  # a real comparison, not two zeros


def test_values_on_an_edge_go_to_the_upper_bin_and_non_finite_ones_are_left_out() -> None:
    # Given edges 1 and 2, values on both edges, and values that are not numbers
    shares = bin_shares([1.0, 2.0], [0.5, 1.0, 2.0, 3.0, math.nan, math.inf, -math.inf])
    # Then each edge value counts in the bin above it, out of the 4 finite values
    assert shares == [0.25, 0.25, 0.5]
    assert bin_shares([1.0], [math.nan]) == [0.0, 0.0]


def test_drift_report_matches_numpy_per_feature_for_rows_as_lists_or_an_array() -> None:
    rng = np.random.default_rng(7)
    names = ["a", "b", "c", "unbaselined"]
    reference = np.column_stack([_column(rng, 3000, k % 3) for k in range(len(names))])
    card = {"model_version": "m1", "baseline_features": model_card.feature_baseline(reference[:, :3], names[:3])}
    # Given serving rows where only "b" moved
    rows = np.column_stack([_column(rng, 500, k % 3) for k in range(len(names))])
    rows[:, 1] += 2.0
    # When the report is built from a numpy matrix and from plain lists
    from_array = drift_report(card, names, rows, threshold=0.2)
    from_lists = drift_report(card, names, rows.tolist(), threshold=0.2)
    # Then both give the model card's PSI per baselined feature, and flag the moved one
    expected = {n: model_card.population_stability_index(card["baseline_features"][n], rows[:, i])
                for i, n in enumerate(names[:3])}
    for report in (from_array, from_lists):
        assert report.psi.keys() == expected.keys() and report.rows == 500
        for name, value in expected.items():
            assert report.psi[name] == pytest.approx(value, abs=TOLERANCE)
        assert report.drifted and report.max_feature == "b"


def test_too_few_rows_never_count_as_drift() -> None:
    card = {"model_version": "m1", "baseline_features": {"a": {"edges": [1.0], "proportions": [0.5, 0.5]}}}
    report = drift_report(card, ["a"], [[5.0]] * (MIN_ROWS - 1), threshold=0.2)
    assert report.max_psi > 0.2 and not report.drifted
    assert drift_report(card, ["a"], [], threshold=0.2).rows == 0


def test_rows_of_the_wrong_width_are_refused() -> None:
    card = {"model_version": "m1", "baseline_features": {"a": {"edges": [1.0], "proportions": [0.5, 0.5]}}}
    with pytest.raises(ValueError, match="2 values"):
        drift_report(card, ["a", "b"], [[1.0, 2.0], [1.0]], threshold=0.2)


@pytest.mark.parametrize("seed", range(8))
def test_calibration_matches_numpy_mean_and_quantiles(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 400))
    p = rng.beta(1.0, 20.0, size=n)
    if seed % 2:
        p = np.round(p, 2)  # ties
    sends = [{"decision_id": f"d{i}", "action": {"probability": float(v)}} for i, v in enumerate(p)]
    outcomes = {f"d{i}": ["clicked", "redeemed"] if rng.random() < 0.05 else ["opened"] for i in range(n)}
    report = calibration(sends, outcomes)
    redeemed = np.mean(["redeemed" in outcomes[f"d{i}"] for i in range(n)])
    assert report.predicted_mean == pytest.approx(float(p.mean()), abs=TOLERANCE)
    assert report.predicted_p50 == pytest.approx(float(np.quantile(p, 0.5)), abs=TOLERANCE)
    assert report.predicted_p90 == pytest.approx(float(np.quantile(p, 0.9)), abs=TOLERANCE)
    assert report.redeemed_rate == pytest.approx(float(redeemed), abs=TOLERANCE)
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.99, 1.0):
        assert quantile(p.tolist(), q) == pytest.approx(float(np.quantile(p, q)), abs=TOLERANCE)
