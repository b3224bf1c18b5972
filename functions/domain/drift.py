"""Drift of serving features against the model card's training baseline (PSI per feature), and
calibration of the served P(redeem) against what happened.

Pure Python (bisect, math): takes values, returns values, and imports no numpy, so the drift
monitor's bundle is the core layer only. Any sequence of numbers works (lists, tuples, numpy
arrays). The binning is the model card's (fidelio/models/model_card.py): bin k = number of
edges <= v; non-finite values are left out. tests/unit/test_drift.py checks every figure
against the numpy implementation to 1e-9. The feature rows decide logs are built in
functions/domain/feature_log.py.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PSI_FLOOR = 1e-4  # share given to an empty bin so the PSI stays finite (same as the model card)
MIN_ROWS = 50  # fewer serving rows than this say nothing about a distribution


class MissingBaseline(ValueError):
    """The model card has no baseline distribution for the features being monitored."""


def bin_shares(edges: Sequence[float], values: Iterable[float]) -> list[float]:
    """Share of the finite `values` in each of the len(edges) + 1 bins (all 0 when none is)."""
    cut = [float(e) for e in edges]
    counts = [0] * (len(cut) + 1)
    finite = 0
    for value in values:
        v = float(value)
        if math.isfinite(v):
            counts[bisect_right(cut, v)] += 1
            finite += 1
    if finite == 0:
        return [0.0] * len(counts)
    return [c / finite for c in counts]


def psi(baseline: Mapping[str, Any], values: Iterable[float]) -> float:
    """Population stability index of `values` against one feature's baseline
    ({"edges", "proportions"}): sum (live - base) ln(live / base); > 0.2 = the population moved."""
    expected = [max(float(p), PSI_FLOOR) for p in baseline["proportions"]]
    actual = [max(s, PSI_FLOOR) for s in bin_shares(baseline["edges"], values)]
    if len(expected) != len(actual):
        raise MissingBaseline(f"baseline has {len(expected)} bins for {len(baseline['edges'])} edges")
    return math.fsum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))


@dataclass(frozen=True)
class DriftReport:
    model_version: str
    rows: int
    psi: dict[str, float]  # feature -> PSI (features with a baseline only)
    threshold: float

    @property
    def max_feature(self) -> str | None:
        return max(self.psi, key=lambda f: self.psi[f]) if self.psi else None

    @property
    def max_psi(self) -> float:
        return max(self.psi.values()) if self.psi else 0.0

    @property
    def drifted(self) -> bool:
        return self.rows >= MIN_ROWS and self.max_psi > self.threshold

    def summary(self) -> str:
        if self.rows < MIN_ROWS:
            return f"{self.rows} serving rows (< {MIN_ROWS}): too few to judge drift"
        verdict = "drift" if self.drifted else "stable"
        return (f"{verdict}: max PSI {self.max_psi:.3f} on {self.max_feature} over {self.rows} rows "
                f"(threshold {self.threshold}) against {self.model_version}'s training baseline")


def drift_report(card: Mapping[str, Any], feature_names: Sequence[str], rows: Sequence[Sequence[float]],
                 threshold: float) -> DriftReport:
    """PSI of every feature column of `rows` (each row in `feature_names` order) that the card
    baselines."""
    baseline = card.get("baseline_features")
    if not baseline:
        raise MissingBaseline(f"model card {card.get('model_version')} has no baseline_features")
    width = len(feature_names)
    if any(len(row) != width for row in rows):
        raise ValueError(f"every serving row must have {width} values, one per feature name")
    columns: list[Sequence[float]] = list(zip(*rows, strict=True)) if len(rows) else [() for _ in feature_names]
    values = {name: psi(baseline[name], columns[i]) for i, name in enumerate(feature_names) if name in baseline}
    return DriftReport(str(card.get("model_version")), len(rows), values, threshold)


MATURITY_S = 2 * 86400.0  # a send's outcomes (opens, clicks, redemptions) are judged after 2 days


@dataclass(frozen=True)
class Calibration:
    """Predicted P(redeem) of the logged sends against what happened to them."""

    sends: int  # matured sends with a prediction
    predicted_mean: float | None
    predicted_p50: float | None
    predicted_p90: float | None
    redeemed_rate: float | None  # share of those sends with a "redeemed" outcome
    clicked_rate: float | None

    @property
    def ratio(self) -> float | None:
        """Realized ÷ predicted redemption rate (1 = calibrated), None when undefined."""
        if self.redeemed_rate is None or not self.predicted_mean:
            return None
        return self.redeemed_rate / self.predicted_mean


def matured_sends(decisions: Sequence[Mapping[str, Any]], now: float,
                  maturity_s: float = MATURITY_S) -> list[Mapping[str, Any]]:
    """Logged sends old enough to judge, with the model's P(redeem) of the chosen action."""
    return [d for d in decisions
            if d.get("action", {}).get("kind") == "send" and d.get("action", {}).get("probability") is not None
            and float(d.get("decided_at", now)) <= now - maturity_s]


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of non-empty `values` by linear interpolation between the closest ranks
    (numpy.quantile's default method, including its rounding-friendly interpolation)."""
    ordered = sorted(float(v) for v in values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    t = position - below
    a, b = ordered[below], ordered[above]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def calibration(sends: Sequence[Mapping[str, Any]], outcomes: Mapping[str, Sequence[str]]) -> Calibration:
    """Prediction distribution and realized engagement of `sends` (outcomes by decision id)."""
    if not sends:
        return Calibration(0, None, None, None, None, None)
    predicted = [float(d["action"]["probability"]) for d in sends]
    got = [set(outcomes.get(str(d["decision_id"]), ())) for d in sends]
    return Calibration(
        sends=len(sends),
        predicted_mean=math.fsum(predicted) / len(predicted),
        predicted_p50=quantile(predicted, 0.5),
        predicted_p90=quantile(predicted, 0.9),
        redeemed_rate=sum("redeemed" in g for g in got) / len(got),
        clicked_rate=sum("clicked" in g for g in got) / len(got),
    )
