"""The demo's evaluation gate (fidelio.lifecycle.gate): a challenger is promoted only on enough
held-out evidence, against the served model — the cold-start scorer when there is no model yet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fidelio.lifecycle import MIN_HELD_OUT_POSITIVES, gate
from fidelio.models.offers import onnx_predict
from functions.domain import features as ft

MODEL = Path(__file__).resolve().parents[2] / "model_artifacts" / "offers"


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.gamma(2.0, 2.0, size=(n, len(ft.FEATURE_NAMES))).astype(np.float32)
    channel = [ft.FEATURE_NAMES.index(f"channel_{c}") for c in ft.CHANNELS]
    rows[:, channel] = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return rows


def test_too_few_held_out_conversions_keep_the_champion(tmp_path: Path) -> None:
    # Given a challenger that ranks the held-out examples perfectly, but only 2 conversions
    rows = _rows(200)
    scores = onnx_predict((MODEL / "model.onnx").read_bytes(), rows)
    labels = np.zeros(len(rows), dtype=np.int8)
    labels[np.argsort(-scores)[:2]] = 1
    decision = gate(tmp_path, MODEL, rows, labels)  # champion: no model yet (cold start)
    # Then it is refused, saying why
    assert not decision.promote
    assert decision.challenger_auc == 1.0
    assert "2 held-out conversions" in decision.reason and str(MIN_HELD_OUT_POSITIVES) in decision.reason
    assert decision.champion_version == "prior-2"


def test_enough_conversions_are_judged_on_auc(tmp_path: Path) -> None:
    # Given enough conversions, drawn against the challenger's own ranking
    rows = _rows(400, seed=1)
    scores = onnx_predict((MODEL / "model.onnx").read_bytes(), rows)
    labels = np.zeros(len(rows), dtype=np.int8)
    labels[np.argsort(scores)[:40]] = 1  # the challenger's least likely examples convert
    decision = gate(tmp_path, MODEL, rows, labels)
    # Then the verdict is about the ranking, not the sample size
    assert not decision.promote
    assert decision.challenger_auc < 0.1
    assert "does not beat" in decision.reason
