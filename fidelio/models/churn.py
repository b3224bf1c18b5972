"""Churn and lifetime value on CDNOW, through Fidelio's own code path.

Protocol (calibration / holdout, Fader, Hardie & Lee 2005 style):
- the 78-week study (1997-01-01 .. 1998-06-30) is cut after `calibration_weeks`; the rest
  is the holdout (horizon) whose purchases are the targets;
- every CDNOW row becomes a `purchase.completed` event (fidelio.importers.cdnow); each
  customer's calibration events are replayed through functions.domain.profile.replay and
  the model's columns are read with functions.domain.churn.churn_features at calibration
  end - the exact code that serves the model;
- a purchase, for the BG/NBD summary and the targets, is a day with at least one order
  (how FHL count CDNOW transactions); 3% of rows are a second order on the same day;
- customers are split 50/50 train/test by a seeded hash of their id.
Models: BG/NBD (fitted on the train half), a LightGBM classifier (any holdout purchase)
and Poisson regressor (holdout purchase count) on CHURN_FEATURES, and a hybrid adding the
BG/NBD expectation and P(alive) as features. Metrics are on the test half.

`python -m fidelio.models.churn --out model_artifacts/churn` writes the served artifact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from fidelio.datasets import DatasetUnavailable
from fidelio.importers import cdnow
from fidelio.models.bgnbd import (
    BgNbdParams,
    conditional_expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
)
from functions.domain.churn import (
    CHURN_FEATURE_VERSION,
    CHURN_FEATURES,
    GammaGammaParams,
    churn_feature_matrix,
    expected_spend_per_purchase,
    lifetime_value,
)
from functions.domain.events import PurchaseCompleted
from functions.domain.profile import replay

STUDY_WEEKS = 78
MIN_CALIBRATION_WEEKS = 13  # the last CDNOW customer's first purchase is in week 12
DEFAULT_CALIBRATION_WEEKS = 39
DEFAULT_SEED = 0
MODEL_NAME = "churn"
HYBRID_EXTRA = ("bgnbd_expected_purchases", "bgnbd_p_alive")
PARITY_TOLERANCE = 1e-5

# Small, slow-learning trees: chosen among five plain configurations by 5-fold cross-validation
# inside the train half (seed 0; 26, 39 and 52 weeks), never on the test half; differences were
# ~0.001-0.002 AUC. The number of trees comes from early stopping on a seeded 20% slice of the
# train half; the model is then refitted on the whole train half with that many trees.
GBDT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.02,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 100


# Fader, Hardie & Lee (2005a) Table/Fig. on the 2,357-customer cohort; (2005b) for Gamma-Gamma.
PAPER_BGNBD = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PAPER_GAMMA_GAMMA = GammaGammaParams(p=6.25, q=3.74, v=15.44)


def _max_rel_err(fitted: dict[str, float], paper: dict[str, float]) -> float:
    return max(abs(fitted[k] - v) / abs(v) for k, v in paper.items())


def paper_fit(source_dir: Path | None = None) -> dict[str, Any]:
    """BG/NBD and Gamma-Gamma refitted on the paper's cohort, against the published values.
    The published values have 3 (2) decimals: rounding alone is up to 0.2% (0.1%)."""
    summary = cdnow.load_paper_summary(source_dir)
    bgnbd = fit_bgnbd(summary.x, summary.t_x, summary.T)
    out: dict[str, Any] = {
        "bgnbd": bgnbd.params.as_dict(),
        "bgnbd_log_likelihood": bgnbd.log_likelihood,
        "bgnbd_max_rel_err": _max_rel_err(bgnbd.params.as_dict(), PAPER_BGNBD.as_dict()),
        "n_customers": bgnbd.n_customers,
    }
    if summary.z_bar is not None:
        spend = fit_gamma_gamma(summary.x, summary.z_bar)
        out["gamma_gamma"] = spend.params.as_dict()
        out["gamma_gamma_max_rel_err"] = _max_rel_err(spend.params.as_dict(), PAPER_GAMMA_GAMMA.as_dict())
    return out


class ProtocolError(ValueError):
    """A calibration split that cannot be evaluated (e.g. too few weeks)."""


# --- data: events -> profiles -> features and targets --------------------------------------


def purchase_histories(rows: Sequence[cdnow.CdnowPurchase]) -> dict[str, list[PurchaseCompleted]]:
    """Each member's purchase events, time-ordered (the importer's events, unchanged)."""
    histories: dict[str, list[PurchaseCompleted]] = defaultdict(list)
    for event in cdnow.to_events(rows):
        histories[event.member_id].append(event)
    for events in histories.values():
        events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return dict(histories)


def hash_fraction(member_id: str, seed: int, salt: str = "split") -> float:
    """A uniform [0, 1) number fixed by (seed, salt, member id): a split that never moves."""
    digest = hashlib.sha256(f"{salt}:{seed}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass
class ChurnPanel:
    """One row per customer known at calibration end (arrays aligned with member_ids)."""

    calibration_weeks: int
    calibration_end: datetime
    horizon_weeks: float
    member_ids: list[str]
    features: np.ndarray  # (n, len(CHURN_FEATURES)), float32, from the profile
    x: np.ndarray  # repeat purchase days in calibration
    t_x: np.ndarray  # weeks, first to last purchase day
    T: np.ndarray  # weeks, first purchase day to calibration end
    z_bar: np.ndarray  # mean value of the repeat purchase days in calibration (0 when x == 0)
    holdout_purchases: np.ndarray  # purchase days in the holdout
    holdout_spend: np.ndarray
    is_test: np.ndarray  # bool

    @property
    def any_purchase(self) -> np.ndarray:
        return (self.holdout_purchases > 0).astype(np.float64)

    def column(self, name: str) -> np.ndarray:
        return self.features[:, CHURN_FEATURES.index(name)].astype(np.float64)


def build_panel(histories: dict[str, list[PurchaseCompleted]], calibration_weeks: int, seed: int) -> ChurnPanel:
    if not MIN_CALIBRATION_WEEKS <= calibration_weeks <= STUDY_WEEKS - 1:
        raise ProtocolError(
            f"calibration weeks must be {MIN_CALIBRATION_WEEKS}..{STUDY_WEEKS - 1} "
            f"(CDNOW's cohort joins in weeks 1-12; the study lasts {STUDY_WEEKS}); got {calibration_weeks}"
        )
    start = datetime(cdnow.PERIOD_START.year, cdnow.PERIOD_START.month, cdnow.PERIOD_START.day, tzinfo=UTC)
    end = start + timedelta(weeks=calibration_weeks)
    study_end = start + timedelta(weeks=STUDY_WEEKS)
    member_ids, profiles = [], []
    x, t_x, T, z_bar, hold_n, hold_spend = [], [], [], [], [], []
    for member_id in sorted(histories):
        events = histories[member_id]
        calibration = [e for e in events if e.occurred_at < end]
        if not calibration:
            continue
        holdout = [e for e in events if end <= e.occurred_at < study_end]
        day_value: dict[date, float] = defaultdict(float)
        for e in calibration:
            day_value[e.occurred_at.date()] += e.amount
        days = sorted(day_value)
        first, last = days[0], days[-1]
        member_ids.append(member_id)
        profiles.append(replay(member_id, calibration))
        x.append(len(days) - 1)
        t_x.append((last - first).days / 7.0)
        T.append((end.date() - first).days / 7.0)
        z_bar.append(float(np.mean([day_value[d] for d in days[1:]])) if len(days) > 1 else 0.0)
        hold_n.append(len({e.occurred_at.date() for e in holdout}))
        hold_spend.append(sum(e.amount for e in holdout))
    return ChurnPanel(
        calibration_weeks=calibration_weeks,
        calibration_end=end,
        horizon_weeks=float(STUDY_WEEKS - calibration_weeks),
        member_ids=member_ids,
        features=churn_feature_matrix(profiles, end),
        x=np.asarray(x, dtype=np.float64),
        t_x=np.asarray(t_x, dtype=np.float64),
        T=np.asarray(T, dtype=np.float64),
        z_bar=np.asarray(z_bar, dtype=np.float64),
        holdout_purchases=np.asarray(hold_n, dtype=np.float64),
        holdout_spend=np.asarray(hold_spend, dtype=np.float64),
        is_test=np.array([hash_fraction(m, seed) < 0.5 for m in member_ids]),
    )


# --- metrics -------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def count_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    total_actual, total_predicted = float(actual.sum()), float(predicted.sum())
    return {
        "mae": float(np.mean(np.abs(actual - predicted))),
        "rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
        "total_actual": total_actual,
        "total_predicted": total_predicted,
        "total_rel_err": (total_predicted - total_actual) / total_actual if total_actual else float("nan"),
    }


# --- GBDT ------------------------------------------------------------------------------------


@dataclass
class GbdtPair:
    """Any-purchase classifier and purchase-count (Poisson) regressor on the same columns."""

    feature_names: tuple[str, ...]
    classifier: Any  # lightgbm.Booster
    regressor: Any
    rounds: dict[str, int]

    def predict(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = _float32_values(matrix)
        return self.classifier.predict(data), self.regressor.predict(data)


def _float32_values(matrix: np.ndarray) -> np.ndarray:
    # Train and predict on float32 values, as onnxruntime sees them: the same split side.
    return np.asarray(matrix, dtype=np.float32).astype(np.float64)


def _float32_thresholds(booster: Any) -> Any:
    """The same trees with every split threshold snapped down to the nearest float32.

    LightGBM keeps thresholds as doubles (midpoints between training values); ONNX's tree
    ensembles store float32, and rounding to nearest can land exactly on a training value and
    flip `x <= threshold` (seen: 24.98499966 -> 24.985f). For float32 inputs, x <= t holds
    iff x <= the largest float32 <= t, so this changes no prediction on float32 data and makes
    the ONNX export exact."""
    import lightgbm as lgb

    def snap(token: str) -> str:
        value = float(token)
        single = np.float32(value)
        if float(single) > value:
            single = np.nextafter(single, np.float32(-np.inf))
        return repr(float(single))

    # tree_sizes lists byte offsets of the tree blocks, which the edit shifts: LightGBM
    # parses the blocks sequentially without it.
    lines = [line for line in booster.model_to_string().split("\n") if not line.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            lines[i] = "threshold=" + " ".join(snap(t) for t in line[len("threshold="):].split())
    return lgb.Booster(model_str="\n".join(lines))


def _fit_booster(objective: str, matrix: np.ndarray, target: np.ndarray, inner_valid: np.ndarray,
                 names: Sequence[str], seed: int, n_jobs: int) -> tuple[Any, int]:
    import lightgbm as lgb

    params = {**GBDT_PARAMS, "objective": objective, "seed": seed, "num_threads": n_jobs}
    data = _float32_values(matrix)
    fit = lgb.Dataset(data[~inner_valid], target[~inner_valid], feature_name=list(names), free_raw_data=False)
    valid = lgb.Dataset(data[inner_valid], target[inner_valid], reference=fit)
    probe = lgb.train(params, fit, num_boost_round=MAX_ROUNDS, valid_sets=[valid],
                      callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)])
    rounds = max(1, int(probe.best_iteration or MAX_ROUNDS))
    full = lgb.Dataset(data, target, feature_name=list(names))
    return _float32_thresholds(lgb.train(params, full, num_boost_round=rounds)), rounds


def fit_gbdt_pair(matrix: np.ndarray, purchases: np.ndarray, member_ids: Sequence[str],
                  names: Sequence[str], seed: int, n_jobs: int = 2) -> GbdtPair:
    inner_valid = np.array([hash_fraction(m, seed, salt="early-stopping") < 0.2 for m in member_ids])
    any_purchase = (purchases > 0).astype(np.float64)
    classifier, clf_rounds = _fit_booster("binary", matrix, any_purchase, inner_valid, names, seed, n_jobs)
    regressor, reg_rounds = _fit_booster("poisson", matrix, purchases, inner_valid, names, seed, n_jobs)
    return GbdtPair(tuple(names), classifier, regressor, {"classifier": clf_rounds, "regressor": reg_rounds})


# --- the protocol ------------------------------------------------------------------------------


@dataclass
class ProtocolResult:
    panel: ChurnPanel
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    gbdt: GbdtPair
    hybrid: GbdtPair
    metrics: dict[str, Any]


def _bgnbd_outputs(params: BgNbdParams, panel: ChurnPanel, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    expected = conditional_expected_purchases(params, panel.horizon_weeks, panel.x[rows], panel.t_x[rows], panel.T[rows])
    return expected, p_alive(params, panel.x[rows], panel.t_x[rows], panel.T[rows])


def fit_spend_model(panel: ChurnPanel, rows: np.ndarray) -> GammaGammaParams:
    """Gamma-Gamma as in FHL 2005: on the mean value of each customer's repeat purchase days
    (the first purchase is cheaper on CDNOW, $32.8 vs $37.4 a repeat order, and is left out).
    Serving applies it to what the profile keeps: repeat_purchases and monetary_avg."""
    return fit_gamma_gamma(panel.x[rows], panel.z_bar[rows]).params


def served_expected_spend(params: GammaGammaParams, panel: ChurnPanel, rows: np.ndarray) -> np.ndarray:
    return expected_spend_per_purchase(
        params, panel.column("repeat_purchases")[rows], panel.column("monetary_avg")[rows]
    )


def run_protocol(panel: ChurnPanel, seed: int, n_jobs: int = 2) -> ProtocolResult:
    train, test = ~panel.is_test, panel.is_test
    if train.sum() < 100 or test.sum() < 100:
        raise ProtocolError(f"too few customers to split: {int(train.sum())} train, {int(test.sum())} test")
    ids = np.asarray(panel.member_ids)
    y = panel.holdout_purchases
    any_purchase = panel.any_purchase

    bgnbd = fit_bgnbd(panel.x[train], panel.t_x[train], panel.T[train]).params
    bg_train = _bgnbd_outputs(bgnbd, panel, train)
    bg_test = _bgnbd_outputs(bgnbd, panel, test)

    gbdt = fit_gbdt_pair(panel.features[train], y[train], ids[train], CHURN_FEATURES, seed, n_jobs)
    gbdt_p, gbdt_n = gbdt.predict(panel.features[test])

    hybrid_names = (*CHURN_FEATURES, *HYBRID_EXTRA)
    hybrid_train = np.column_stack([panel.features[train], *bg_train])
    hybrid_test = np.column_stack([panel.features[test], *bg_test])
    hybrid = fit_gbdt_pair(hybrid_train, y[train], ids[train], hybrid_names, seed, n_jobs)
    hybrid_p, hybrid_n = hybrid.predict(hybrid_test)

    spend = fit_spend_model(panel, train)
    spend_test = served_expected_spend(spend, panel, test)

    labels = any_purchase[test]
    counts = y[test]
    auc = {
        "bgnbd": roc_auc(labels, bg_test[0]),
        "bgnbd_p_alive": roc_auc(labels, bg_test[1]),
        "gbdt": roc_auc(labels, gbdt_p),
        "gbdt_count": roc_auc(labels, gbdt_n),
        "hybrid": roc_auc(labels, hybrid_p),
        "hybrid_count": roc_auc(labels, hybrid_n),
    }
    by_model = {
        "bgnbd": count_metrics(counts, bg_test[0]),
        "gbdt": count_metrics(counts, gbdt_n),
        "hybrid": count_metrics(counts, hybrid_n),
        "zero": count_metrics(counts, np.zeros_like(counts)),
    }
    actual_spend = float(panel.holdout_spend[test].sum())
    metrics = {
        "n_customers": len(panel.member_ids),
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "holdout_any_purchase_rate_test": float(labels.mean()),
        "auc": auc,
        "counts": by_model,
        "mae": {k: v["mae"] for k, v in by_model.items()},
        "holdout_purchases": {"actual": float(counts.sum()), **{k: v["total_predicted"] for k, v in by_model.items() if k != "zero"}},
        "holdout_spend": {
            "actual": actual_spend,
            "bgnbd_x_gamma_gamma": float(lifetime_value(bg_test[0], spend_test).sum()),
            "gbdt_x_gamma_gamma": float(lifetime_value(gbdt_n, spend_test).sum()),
            "hybrid_x_gamma_gamma": float(lifetime_value(hybrid_n, spend_test).sum()),
        },
        "gbdt_rounds": gbdt.rounds,
        "hybrid_rounds": hybrid.rounds,
    }
    return ProtocolResult(panel, bgnbd, spend, gbdt, hybrid, metrics)


# --- the served artifact -------------------------------------------------------------------------


def export_onnx(pair: GbdtPair) -> Any:
    """One ONNX graph, input `input` (float32, CHURN_FEATURES order), outputs `probabilities`
    (n, 2) of the classifier and `expected_purchases` (n, 1) of the Poisson regressor."""
    import onnx
    from onnx import helper
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    n = len(pair.feature_names)
    types = [("input", FloatTensorType([None, n]))]
    classifier = convert_lightgbm(pair.classifier, initial_types=types, zipmap=False, target_opset=15)
    regressor = convert_lightgbm(pair.regressor, initial_types=types, target_opset=15)
    regressor = onnx.compose.add_prefix(regressor, "purchases_")
    for node in regressor.graph.node:
        node.input[:] = ["input" if name == "purchases_input" else name for name in node.input]
    (regressor_output,) = regressor.graph.output
    probabilities = next(o for o in classifier.graph.output if o.name == "probabilities")
    rename = helper.make_node("Identity", [regressor_output.name], ["expected_purchases"], name="expected_purchases")
    graph = helper.make_graph(
        [*classifier.graph.node, *regressor.graph.node, rename],
        "fidelio_churn",
        [classifier.graph.input[0]],
        [probabilities, helper.make_tensor_value_info("expected_purchases", onnx.TensorProto.FLOAT, [None, 1])],
        initializer=[*classifier.graph.initializer, *regressor.graph.initializer],
    )
    opsets: dict[str, int] = {}
    for model in (classifier, regressor):
        for entry in model.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                               producer_name="fidelio.models.churn")
    merged.ir_version = classifier.ir_version
    onnx.checker.check_model(merged)
    return merged


def onnx_parity(model_bytes: bytes, pair: GbdtPair, matrix: np.ndarray) -> dict[str, float]:
    """Max |ONNX - native LightGBM| on `matrix` for both outputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    probabilities, purchases = session.run(["probabilities", "expected_purchases"],
                                           {"input": np.asarray(matrix, dtype=np.float32)})
    native_p, native_n = pair.predict(matrix)
    return {
        "probabilities": float(np.max(np.abs(probabilities[:, 1] - native_p))),
        "expected_purchases": float(np.max(np.abs(purchases.reshape(-1) - native_n))),
        "expected_purchases_rel": float(np.max(np.abs(purchases.reshape(-1) - native_n) / np.maximum(native_n, 1.0))),
    }


def baseline_distributions(matrix: np.ndarray, names: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """Per feature: interior cut points at training quantiles (ties merged) and the share of
    training rows per bin, for a PSI drift monitor. A value v falls in bin
    searchsorted(cuts, v, side='right'); there are len(cuts)+1 bins."""
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        column = np.asarray(matrix[:, j], dtype=np.float64)
        cuts = np.unique(np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(cuts, column, side="right"), minlength=len(cuts) + 1)
        out[name] = {
            "cuts": [float(c) for c in cuts],
            "proportions": [float(c) for c in counts / counts.sum()],
            "mean": float(column.mean()),
        }
    return out


def _library_versions() -> dict[str, str]:
    import lightgbm
    import onnx
    import onnxmltools
    import onnxruntime
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lightgbm": lightgbm.__version__,
        "onnxmltools": onnxmltools.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _rounded(value: Any, digits: int = 7) -> Any:
    """Floats to `digits` significant digits (a readable, stable card; tiny values survive)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    return value


def build_artifact(out_dir: Path, calibration_weeks: int = DEFAULT_CALIBRATION_WEEKS, seed: int = DEFAULT_SEED,
                   n_jobs: int = 2, source_dir: Path | None = None) -> dict[str, Any]:
    """Train on the train half, measure on the test half, export model.onnx + metadata.json."""
    rows, raw = cdnow.load_master(source_dir)
    panel = build_panel(purchase_histories(rows), calibration_weeks, seed)
    result = run_protocol(panel, seed, n_jobs)
    model = export_onnx(result.gbdt)
    model_bytes = model.SerializeToString()
    parity = onnx_parity(model_bytes, result.gbdt, panel.features[panel.is_test])
    if parity["probabilities"] > PARITY_TOLERANCE or parity["expected_purchases_rel"] > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export disagrees with LightGBM beyond {PARITY_TOLERANCE}: {parity}")
    digest = hashlib.sha256(model_bytes).hexdigest()
    train_rows = panel.features[~panel.is_test]
    m = result.metrics
    card = {
        "name": MODEL_NAME,
        "model_version": f"cdnow-{calibration_weeks}w-s{seed}-{digest[:12]}",
        "feature_version": CHURN_FEATURE_VERSION,
        "feature_names": list(CHURN_FEATURES),
        "task": (
            "P(any purchase within horizon_weeks) [output 'probabilities'[:, 1]; churn_risk = 1 - it] and "
            "expected purchase days within horizon_weeks [output 'expected_purchases'], "
            "from a member profile read at scoring time"
        ),
        "horizon_weeks": panel.horizon_weeks,
        "outputs": {"probabilities": "(n, 2) LightGBM binary classifier", "expected_purchases": "(n, 1) LightGBM Poisson regressor"},
        "training_data": {
            "dataset": "CDNOW master (Fader, Hardie & Lee 2005), lifetimes==0.11.3 wheel: lifetimes/datasets/CDNOW_master.txt",
            "sha256": cdnow.sha256_of(raw),
            "rows": len(rows),
            "customers": m["n_customers"],
            "calibration": f"{cdnow.PERIOD_START} .. {(panel.calibration_end - timedelta(days=1)).date()} "
                           f"({calibration_weeks} weeks)",
            "holdout": f"{panel.calibration_end.date()} .. {date(1998, 6, 30)} ({panel.horizon_weeks:g} weeks)",
            "split": f"50/50 by sha256('split:{seed}:' + member_id); trained on {m['n_train']}, measured on {m['n_test']}",
            "features": "functions.domain.churn.churn_features on profiles replayed from purchase.completed events",
            "target_unit": "a purchase = a day with at least one order",
        },
        "hyperparameters": {**GBDT_PARAMS, "rounds": result.gbdt.rounds, "seed": seed,
                            "early_stopping": f"{EARLY_STOPPING_ROUNDS} rounds on a seeded 20% of the train half, then refit"},
        "metrics": {
            "test_customers": m["n_test"],
            "auc_any_purchase": {"gbdt": m["auc"]["gbdt"], "bgnbd_expected_purchases": m["auc"]["bgnbd"],
                                 "hybrid": m["auc"]["hybrid"], "bgnbd_p_alive": m["auc"]["bgnbd_p_alive"]},
            "holdout_purchases": m["holdout_purchases"],
            "mae_purchases": m["mae"],
            "holdout_spend": m["holdout_spend"],
            "onnx_parity_max_abs": parity,
        },
        "baseline_distributions": baseline_distributions(train_rows, CHURN_FEATURES),
        "clv": {
            "formula": "clv = expected_purchases x Gamma-Gamma E[spend per purchase | repeat_purchases, monetary_avg], "
                       "undiscounted over horizon_weeks (functions.domain.churn)",
            "gamma_gamma_fit": "ML on the train half: mean value of each customer's repeat purchase days (FHL 2005)",
            "gamma_gamma": result.gamma_gamma.as_dict(),
            "bgnbd": result.bgnbd.as_dict(),
            "bgnbd_units": "weeks; x = repeat purchase days (reference only: serving uses the ONNX model)",
        },
        "libraries": _library_versions(),
        "onnx_sha256": digest,
        "reproduce": f"python -m fidelio.models.churn --out <dir> --calibration-weeks {calibration_weeks} --seed {seed}",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(model_bytes)
    (out_dir / "metadata.json").write_text(json.dumps(_rounded(card), indent=2, sort_keys=False) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fidelio.models.churn", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="artifact directory (model.onnx, metadata.json)")
    parser.add_argument("--calibration-weeks", type=int, default=DEFAULT_CALIBRATION_WEEKS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int, default=2, help="LightGBM threads (results depend on it)")
    parser.add_argument("--source-dir", type=Path, default=None, help="folder with CDNOW_master.txt or the lifetimes wheel")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"churn: --out {args.out} exists and is not a directory", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        card = build_artifact(args.out, args.calibration_weeks, args.seed, args.jobs, args.source_dir)
    except (DatasetUnavailable, cdnow.MalformedCdnowRow) as error:
        print(f"churn: CDNOW is unavailable: {error}", file=sys.stderr)
        return 1
    except ProtocolError as error:
        print(f"churn: {error}", file=sys.stderr)
        return 2
    auc = card["metrics"]["auc_any_purchase"]
    totals = card["metrics"]["holdout_purchases"]
    print(f"churn {card['model_version']}: AUC {auc['gbdt']:.4f} (BG/NBD {auc['bgnbd_expected_purchases']:.4f}), "
          f"holdout purchases {totals['gbdt']:.0f} predicted vs {totals['actual']:.0f} actual "
          f"-> {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
