"""Churn risk and lifetime value at serving time: the churn model's feature columns, built
from the live profile, and the closed-form spend model that turns its output into CLV.

Pure numpy (runs in the daily scoring Lambda). The model (model_artifacts/churn) is one
ONNX graph with two outputs computed from CHURN_FEATURES:
  - `probabilities`: P(no purchase, any purchase) within the card's `horizon_weeks`;
  - `expected_purchases`: expected number of purchase days within the same horizon.
churn_risk = P(no purchase within the horizon); CLV = expected purchases x the Gamma-Gamma
conditional expected spend per purchase (Fader, Hardie & Lee 2005, fitted on repeat purchases
and applied to the profile's repeat count and mean order value), undiscounted, over the
horizon. Trained by fidelio.models.churn; see docs/models.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.domain.features import FEATURE_VERSION, MEMBER_FEATURES, member_features
from functions.domain.profile import MemberProfile

WEEK_S = 7 * 86400.0

# Member features the churn model reads, then the BG/NBD summary of the same profile.
CHURN_MEMBER_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary_avg",
    "spend_90d",
    "purchases_90d",
    "tenure_days",
)
CHURN_FEATURES: tuple[str, ...] = (
    *CHURN_MEMBER_FEATURES,
    "repeat_purchases",  # BG/NBD x: purchases after the first
    "repeat_span_weeks",  # BG/NBD t_x: first to last purchase
    "age_weeks",  # BG/NBD T: first purchase to now (not capped like tenure_days)
)
# Bump the suffix when CHURN_FEATURES or bgnbd_summary changes; a member-feature change
# bumps FEATURE_VERSION and so this too.
CHURN_FEATURE_VERSION = f"{FEATURE_VERSION}+churn.1"
_MEMBER_COLUMNS = np.array([MEMBER_FEATURES.index(name) for name in CHURN_MEMBER_FEATURES])


class ChurnModelInvalid(RuntimeError):
    """The churn model card lacks what serving needs (horizon, spend model)."""


@dataclass(frozen=True)
class GammaGammaParams:
    """Spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, v) across members."""

    p: float
    q: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}


def bgnbd_summary(profile: MemberProfile, now: datetime) -> tuple[float, float, float]:
    """(x, t_x, T) in weeks: repeat purchases, first-to-last purchase, first purchase to now.
    A member who never bought is (0, 0, 0)."""
    first = profile.first_purchase_at
    if first is None or profile.purchase_count == 0:
        return 0.0, 0.0, 0.0
    last = profile.last_purchase_at if profile.last_purchase_at is not None else first
    age = max(0.0, now.timestamp() - first) / WEEK_S
    span = min(age, max(0.0, last - first) / WEEK_S)
    return float(profile.purchase_count - 1), span, age


def churn_features(profile: MemberProfile, now: datetime) -> np.ndarray:
    """One member's row of CHURN_FEATURES (float32)."""
    member = member_features(profile, now)[_MEMBER_COLUMNS]
    return np.concatenate([member, np.asarray(bgnbd_summary(profile, now), dtype=np.float32)]).astype(np.float32)


def churn_feature_matrix(profiles: Sequence[MemberProfile], now: datetime) -> np.ndarray:
    """Rows of CHURN_FEATURES for `profiles`, all read at `now` (shape (n, len(CHURN_FEATURES)))."""
    matrix = np.zeros((len(profiles), len(CHURN_FEATURES)), dtype=np.float32)
    for row, profile in enumerate(profiles):
        matrix[row] = churn_features(profile, now)
    return matrix


def expected_spend_per_purchase(params: GammaGammaParams, repeat_purchases: object, mean_spend: object) -> np.ndarray:
    """Gamma-Gamma E[spend per purchase | x repeat purchases averaging m]:
    p (v + x m) / (p x + q - 1), a weighted average of the population mean p v / (q - 1)
    and the member's own mean m; x = 0 gives the population mean."""
    x = np.asarray(repeat_purchases, dtype=np.float64)
    m = np.asarray(mean_spend, dtype=np.float64)
    if params.q <= 1.0:
        raise ChurnModelInvalid(f"Gamma-Gamma q={params.q} <= 1 has no finite mean spend")
    x = np.where(m > 0, np.maximum(x, 0.0), 0.0)  # zero-value purchases say nothing about the spend scale
    return params.p * (params.v + x * m) / (params.p * x + params.q - 1.0)


def lifetime_value(expected_purchases: object, expected_spend: object, margin: float = 1.0) -> np.ndarray:
    """Undiscounted value over the model's horizon: purchases x spend per purchase x margin."""
    return np.asarray(expected_purchases, dtype=np.float64) * np.asarray(expected_spend, dtype=np.float64) * margin


@dataclass(frozen=True)
class ChurnScore:
    member_id: str
    churn_risk: float  # P(no purchase within horizon_weeks)
    expected_purchases: float  # within horizon_weeks
    expected_spend: float  # per purchase (Gamma-Gamma)
    clv: float  # expected_purchases x expected_spend, over horizon_weeks


class ChurnModel:
    """The churn/CLV model as served: an OnnxScorer checked against CHURN_FEATURES plus the
    Gamma-Gamma parameters and horizon read from its model card."""

    PURCHASE_OUTPUT = "expected_purchases"

    def __init__(self, directory: str | Path, threads: int = 1):
        from functions.domain.scoring import OnnxScorer  # onnxruntime only when a model is loaded

        self.scorer = OnnxScorer(directory, CHURN_FEATURES, CHURN_FEATURE_VERSION, threads=threads)
        card: dict[str, Any] = self.scorer.card.raw
        try:
            spend = card["clv"]["gamma_gamma"]
            self.gamma_gamma = GammaGammaParams(float(spend["p"]), float(spend["q"]), float(spend["v"]))
            self.horizon_weeks = float(card["horizon_weeks"])
        except (KeyError, TypeError, ValueError) as error:
            raise ChurnModelInvalid(f"churn model card lacks clv.gamma_gamma or horizon_weeks: {error}") from error
        outputs = {o.name for o in self.scorer.session.get_outputs()}
        if self.PURCHASE_OUTPUT not in outputs:
            raise ChurnModelInvalid(f"churn model has no '{self.PURCHASE_OUTPUT}' output (has {sorted(outputs)})")

    @property
    def version(self) -> str:
        return self.scorer.version

    def predict_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(any purchase within the horizon), expected purchases) for CHURN_FEATURES rows."""
        if rows.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        matrix = np.ascontiguousarray(rows, dtype=np.float32)
        probabilities, purchases = self.scorer.session.run(
            [self.scorer.output_name, self.PURCHASE_OUTPUT], {self.scorer.input_name: matrix}
        )
        return np.asarray(probabilities)[:, 1].astype(np.float64), np.asarray(purchases).reshape(-1).astype(np.float64)

    def score(self, profiles: Sequence[MemberProfile], now: datetime, margin: float = 1.0) -> list[ChurnScore]:
        rows = churn_feature_matrix(profiles, now)
        p_purchase, purchases = self.predict_rows(rows)
        repeat = rows[:, CHURN_FEATURES.index("repeat_purchases")]
        monetary = rows[:, CHURN_FEATURES.index("monetary_avg")]
        spend = expected_spend_per_purchase(self.gamma_gamma, repeat, monetary)
        value = lifetime_value(purchases, spend, margin)
        return [
            ChurnScore(p.member_id, float(1.0 - p_purchase[i]), float(purchases[i]), float(spend[i]), float(value[i]))
            for i, p in enumerate(profiles)
        ]
