"""Drift of serving features against the model card's training baseline (PSI per feature),
and the feature rows decide logs with each decision so the monitor and the training export
can read them back.

Pure numpy: takes values, returns values. The binning is the model card's
(fidelio/models/model_card.py): bin k = number of edges <= v; non-finite values are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from functions.domain import features as ft
from functions.domain.profile import MemberProfile

PSI_FLOOR = 1e-4  # share given to an empty bin so the PSI stays finite (same as the model card)
MIN_ROWS = 50  # fewer serving rows than this say nothing about a distribution


class MissingBaseline(ValueError):
    """The model card has no baseline distribution for the features being monitored."""


def bin_shares(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    column = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = column[np.isfinite(column)]
    cut = np.asarray(edges, dtype=np.float64)
    if len(finite) == 0:
        return np.zeros(len(cut) + 1)
    counts = np.bincount(np.searchsorted(cut, finite, side="right"), minlength=len(cut) + 1)
    return counts / len(finite)


def psi(baseline: Mapping[str, Any], values: np.ndarray) -> float:
    """Population stability index of `values` against one feature's baseline
    ({"edges", "proportions"}): sum (live - base) ln(live / base); > 0.2 = the population moved."""
    expected = np.maximum(np.asarray(baseline["proportions"], dtype=np.float64), PSI_FLOOR)
    actual = np.maximum(bin_shares(baseline["edges"], values), PSI_FLOOR)
    if expected.shape != actual.shape:
        raise MissingBaseline(f"baseline has {len(expected)} bins for {len(baseline['edges'])} edges")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


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


def drift_report(card: Mapping[str, Any], feature_names: Sequence[str], rows: np.ndarray,
                 threshold: float) -> DriftReport:
    """PSI of every feature column of `rows` (named by `feature_names`) that the card baselines."""
    baseline = card.get("baseline_features")
    if not baseline:
        raise MissingBaseline(f"model card {card.get('model_version')} has no baseline_features")
    matrix = np.asarray(rows, dtype=np.float64).reshape(-1, len(feature_names))
    values = {name: psi(baseline[name], matrix[:, i]) for i, name in enumerate(feature_names) if name in baseline}
    return DriftReport(str(card.get("model_version")), len(matrix), values, threshold)


def logged_feature_rows(profile: MemberProfile, top: Sequence[Mapping[str, Any]], catalog: ft.CatalogArrays,
                        now: datetime) -> list[list[float]]:
    """The engine's feature rows (FEATURE_NAMES order) of a decision's top candidates, as
    scored: what the archive keeps so drift can be measured and challengers re-scored."""
    known = [c for c in top if c.get("offer_id") in catalog.index and c.get("channel") in ft.CHANNELS]
    if not known or len(known) != len(top):  # the catalog changed under the decision: skip it
        return []
    vector = ft.member_features(profile, now)
    rows = ft.candidate_features(
        profile, vector, catalog,
        np.array([catalog.index[c["offer_id"]] for c in known], dtype=np.int64),
        np.array([ft.CHANNELS.index(c["channel"]) for c in known], dtype=np.int64),
        np.array([float(c["send_at"]) for c in known], dtype=np.float64), now,
    )
    return [[round(float(v), 6) for v in row] for row in rows]


def logged_features(decision: Any, profile: MemberProfile, catalog: ft.CatalogArrays,
                    now: datetime) -> dict[str, Any]:
    """What the archive keeps beside a decision: `top_features` (rows of its top candidates,
    to re-score them with another model) and, when it sends, `action_features` (the row of
    the sent candidate, explored or not: a training example and a drift sample). One
    feature computation for both."""
    action = decision.action
    candidates = list(decision.top)
    if action.kind == "send":
        candidates.append({"offer_id": action.offer_id, "channel": action.channel, "send_at": action.send_at})
    rows = logged_feature_rows(profile, candidates, catalog, now)
    if not rows:
        return {"top_features": []} | ({"action_features": None} if action.kind == "send" else {})
    logged: dict[str, Any] = {"top_features": rows[: len(decision.top)]}
    if action.kind == "send":
        logged["action_features"] = rows[-1]
    return logged


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


def calibration(sends: Sequence[Mapping[str, Any]], outcomes: Mapping[str, Sequence[str]]) -> Calibration:
    """Prediction distribution and realized engagement of `sends` (outcomes by decision id)."""
    if not sends:
        return Calibration(0, None, None, None, None, None)
    predicted = np.array([float(d["action"]["probability"]) for d in sends])
    got = [set(outcomes.get(str(d["decision_id"]), ())) for d in sends]
    return Calibration(
        sends=len(sends),
        predicted_mean=float(predicted.mean()),
        predicted_p50=float(np.quantile(predicted, 0.5)),
        predicted_p90=float(np.quantile(predicted, 0.9)),
        redeemed_rate=float(np.mean(["redeemed" in g for g in got])),
        clicked_rate=float(np.mean(["clicked" in g for g in got])),
    )
