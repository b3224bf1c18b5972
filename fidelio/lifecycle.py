"""Model lifecycle steps that run the same way locally and in the SageMaker pipeline:
train a challenger, judge it against the champion on the same held-out examples (the gate),
promote it only when it is better.

The gate's rule: the challenger's AUC on examples neither model trained on must beat the
champion's by `min_gain`, and its predictions must stay calibrated (mean predicted within
`max_calibration_gap` of the observed rate). A refusal says why, in words.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from functions.domain import features as ft
from functions.domain.events import MemberEvent
from functions.domain.offers import Offer

MODEL_FILE = "model.onnx"


@dataclass
class GateDecision:
    promote: bool
    reason: str
    champion_version: str
    challenger_version: str
    champion_auc: float
    challenger_auc: float
    challenger_mean_prediction: float
    observed_rate: float
    examples: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(directory: Path) -> str:
    import json

    return str(json.loads((directory / "metadata.json").read_text())["model_version"])


def gate(champion_dir: Path, challenger_dir: Path, rows: np.ndarray, labels: np.ndarray,
         min_gain: float = 0.005, max_calibration_gap: float = 0.5) -> GateDecision:
    """Compare two models on the same examples; promote only a better, calibrated challenger."""
    from fidelio.models.offers import onnx_predict, roc_auc

    champion = onnx_predict((champion_dir / MODEL_FILE).read_bytes(), rows)
    challenger = onnx_predict((challenger_dir / MODEL_FILE).read_bytes(), rows)
    champion_auc, challenger_auc = roc_auc(labels, champion), roc_auc(labels, challenger)
    observed = float(np.mean(labels)) if len(labels) else float("nan")
    mean_prediction = float(np.mean(challenger)) if len(challenger) else float("nan")
    common = dict(champion_version=_version(champion_dir), challenger_version=_version(challenger_dir),
                  champion_auc=champion_auc, challenger_auc=challenger_auc,
                  challenger_mean_prediction=mean_prediction, observed_rate=observed, examples=len(labels))
    if not np.isfinite(challenger_auc) or not np.isfinite(champion_auc):
        return GateDecision(False, "refused: the evaluation examples hold one outcome only", **common)
    if challenger_auc < champion_auc + min_gain:
        return GateDecision(False, f"refused: challenger AUC {challenger_auc:.3f} does not beat the champion's "
                                   f"{champion_auc:.3f} by {min_gain}", **common)
    if observed > 0 and abs(mean_prediction / observed - 1) > max_calibration_gap:
        return GateDecision(False, f"refused: challenger predicts {mean_prediction:.4f} on average against an "
                                   f"observed rate of {observed:.4f} (calibration)", **common)
    return GateDecision(True, f"promoted: AUC {challenger_auc:.3f} vs champion {champion_auc:.3f} on "
                              f"{len(labels)} held-out examples", **common)


def promote(challenger_dir: Path, serving_dir: Path, previous_dir: Path) -> None:
    """Make the challenger the served model, keeping the old champion for a rollback."""
    if previous_dir.exists():
        shutil.rmtree(previous_dir)
    if serving_dir.exists():
        shutil.copytree(serving_dir, previous_dir)
        shutil.rmtree(serving_dir)
    shutil.copytree(challenger_dir, serving_dir)


def retrain(events: Sequence[MemberEvent], offers: Sequence[Offer], champion_dir: Path, work_dir: Path,
            holdout_from: date, source_description: str) -> tuple[GateDecision, dict[str, Any]]:
    """Train a challenger on examples before `holdout_from` (the same entry point as
    `python -m fidelio.models.offers`), then gate it against the champion on the rest."""
    from datetime import UTC, datetime

    from fidelio.models import model_card
    from fidelio.models.offers import Source, build_training_set, train_offer_model

    data = build_training_set(events, offers)
    source = Source("sim", source_description, model_card.sha256_arrays(data.rows, data.labels))
    challenger_dir = work_dir / "challenger"
    card = train_offer_model(events, offers, holdout_from, challenger_dir, source, data=data)
    split_at = datetime(holdout_from.year, holdout_from.month, holdout_from.day, tzinfo=UTC).timestamp()
    _, test = data.split(split_at)
    decision = gate(champion_dir, challenger_dir, test.rows, test.labels)
    return decision, card


__all__ = ["GateDecision", "ft", "gate", "promote", "retrain"]
