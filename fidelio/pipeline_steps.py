"""The retraining pipeline's steps as plain functions: prepare -> train -> evaluate -> publish.

The SageMaker Pipeline (infra/pipeline.py) runs each step in a scikit-learn container through
a thin script in functions/training/ that parses SageMaker's paths and calls one function
here; tests and the local CLI call the same functions with ordinary directories.

Input: the training export (fidelio/training_export.py), date-partitioned Parquet parts, one row
per logged decision with its feature rows, propensity and outcome.

    prepare_training_set(input_dir, output_dir)  -> train/ and test/ (Parquet), split in time
    train(train_dir, model_dir)                  -> model.onnx + metadata.json (the model card)
    evaluate(champion_dir, candidate_dir, test_dir, out_json)
        -> evaluation.json: AUC, calibration (Brier score, ECE) and the off-policy value (SNIPS
           with a bootstrap CI) of candidate and champion on the same held-out decisions, and
           the gate's verdict. The pipeline's ConditionStep reads the `GATE_*` paths below.
    publish_candidate(...)                       -> the model in the S3 registry and, when
           approved, the serving config naming it challenger at the first rollout share.

The gate: candidate AUC >= champion AUC + min gain; candidate Brier score <= champion's +
tolerance (a proper score: a sharper but miscalibrated model loses on it; ECE is reported, not
gated, as it is noisy on a few hundred examples and favours a model that predicts the base
rate); the lower CI bound of the candidate's off-policy value >= the champion's estimate and
>= a floor.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.domain import features as ft

EVALUATION_FILE = "evaluation.json"
SUMMARY_FILE = "summary.json"
DECISIONS_FILE = "decisions.parquet"
MODEL_FILES = ("model.onnx", "metadata.json")
OPE_ESTIMATOR = "snips"  # bounded by the observed rewards; DR would lean on the models' own estimates
UNDEFINED = -1.0  # an undefined figure: rewards are >= 0, so it fails the (>= 0) off-policy floor
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_MIN_AUC_GAIN = 0.005
DEFAULT_CALIBRATION_TOLERANCE = 0.001
DEFAULT_MIN_OPE_VALUE = 0.0
DEFAULT_INITIAL_SHARE = 0.05
ECE_BINS = 10

# JSON paths of evaluation.json the gate compares; the pipeline's ConditionStep reads the same.
GATE_CANDIDATE_AUC = "candidate.auc"
GATE_REQUIRED_AUC = "gate.required_auc"
GATE_CANDIDATE_BRIER = "candidate.brier"
GATE_MAX_BRIER = "gate.max_brier"
GATE_CANDIDATE_OPE_LOW = "candidate.ope.ci_low"
GATE_CHAMPION_OPE = "champion.ope.estimate"
GATE_REASON = "gate.reason"


class PipelineInputError(ValueError):
    """A step's input is missing or cannot train or judge a model; the message says which."""


# --- prepare -------------------------------------------------------------------------------


def read_export_dir(input_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of every Parquet part under `input_dir` (any depth: date=YYYY-MM-DD/ partitions),
    in decision time order."""
    import pyarrow.parquet as pq

    root = Path(input_dir)
    parts = sorted(root.rglob("*.parquet"))
    if not parts:
        raise PipelineInputError(f"{root}: no Parquet parts; run the training export first")
    rows: list[dict[str, Any]] = []
    for part in parts:
        rows.extend(pq.read_table(part).to_pylist())
    return sorted(rows, key=lambda r: (r["decided_at"], r["decision_id"]))


def _write_rows(rows: Sequence[Mapping[str, Any]], directory: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows)), directory / DECISIONS_FILE)


def _training_set(rows: Sequence[Mapping[str, Any]]) -> Any:
    from fidelio.training_export import training_set

    return training_set(rows)


def prepare_training_set(input_dir: str | Path, output_dir: str | Path,
                         test_fraction: float = DEFAULT_TEST_FRACTION) -> dict[str, Any]:
    """Split the exported decisions in time: the latest `test_fraction` judge, the rest train.

    Writes output_dir/train/decisions.parquet, output_dir/test/decisions.parquet and
    output_dir/summary.json; both sides must hold sends with and without a conversion."""
    if not 0.0 < test_fraction < 1.0:
        raise PipelineInputError(f"test fraction {test_fraction} must be between 0 and 1 (exclusive)")
    rows = read_export_dir(input_dir)
    times = np.array([r["decided_at"] for r in rows], dtype=np.float64)
    split_at = float(np.quantile(times, 1.0 - test_fraction))
    train_rows = [r for r in rows if r["decided_at"] < split_at]
    test_rows = [r for r in rows if r["decided_at"] >= split_at]
    summary: dict[str, Any] = {"decisions": len(rows), "split_at": split_at,
                               "split_at_iso": datetime.fromtimestamp(split_at, tz=UTC).isoformat()}
    for name, part in (("train", train_rows), ("test", test_rows)):
        examples = _training_set(part)
        positives = int(examples.labels.sum())
        if len(examples) == 0 or positives in (0, len(examples)):
            raise PipelineInputError(
                f"the {name} side holds {len(examples)} sends with {positives} conversions: it needs both "
                f"outcomes (export a longer window or change the test fraction {test_fraction})")
        summary[name] = {"decisions": len(part), "sends": len(examples), "conversions": positives}
    out = Path(output_dir)
    _write_rows(train_rows, out / "train")
    _write_rows(test_rows, out / "test")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


# --- train ---------------------------------------------------------------------------------


def train(train_dir: str | Path, model_dir: str | Path, params: Mapping[str, Any] | None = None,
          rounds: int | None = None) -> dict[str, Any]:
    """Fit the offer model on train_dir's sends; write model.onnx and its model card."""
    from fidelio.models import model_card
    from fidelio.models import offers as om
    from functions.domain.privacy import TRAINING_MEMBERS_KEY, training_members_entry

    rows = read_export_dir(train_dir)
    examples = _training_set(rows)
    parameters = {**om.PARAMS, **(params or {})}
    num_rounds = rounds or om.NUM_ROUNDS
    booster = om.fit(examples, parameters, num_rounds)
    model = om.to_onnx(booster)
    digest = model_card.sha256_bytes(model)
    last = datetime.fromtimestamp(max(r["decided_at"] for r in rows), tz=UTC).date()
    card: dict[str, Any] = {
        "name": om.MODEL_NAME,
        "model_version": f"pipeline-{last.isoformat()}-{digest[:8]}",
        "feature_version": ft.FEATURE_VERSION,
        "feature_names": list(ft.FEATURE_NAMES),
        "task": "binary classification: P(conversion | member profile, offer, channel, send time); "
                "output 'probabilities'[:, 1]",
        "label": "the decision's message converted (offer redeemed or clicked), from the training export",
        "training_data": {
            "source": "training export (fidelio.training_export): logged sends with their feature rows",
            "decisions": len(rows),
            "sends": len(examples),
            "conversions": int(examples.labels.sum()),
            "first_decision": datetime.fromtimestamp(min(r["decided_at"] for r in rows), tz=UTC).isoformat(),
            "last_decision": datetime.fromtimestamp(max(r["decided_at"] for r in rows), tz=UTC).isoformat(),
            "members": len({r["member"] for r in rows}),  # pseudonyms: the export never holds member ids
        },
        "algorithm": {"library": "lightgbm", "params": parameters, "num_boost_round": num_rounds,
                      "onnx": {"converter": "onnxmltools.convert_lightgbm", "target_opset": om.TARGET_OPSET,
                               "zipmap": False, "input": "input", "output": "probabilities"}},
        "baseline_bins": "edges = distinct interior deciles of the training rows; bin k holds "
                         "edges[k-1] <= v < edges[k]",
        "baseline_features": model_card.feature_baseline(examples.rows, ft.FEATURE_NAMES),
        "libraries": model_card.library_versions(om.LIBRARIES),
        "sha256": {"training_rows": examples.sha256(), "model": digest},
        # Erasure lineage (docs/privacy.md): a Bloom filter of the pseudonyms whose rows trained it.
        TRAINING_MEMBERS_KEY: training_members_entry(str(r["member"]) for r in rows),
    }
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(model)
    model_card.write_model_card(out, card)
    return card


# --- evaluate ------------------------------------------------------------------------------


def expected_calibration_error(labels: np.ndarray, predictions: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean prediction| over equal-width probability bins, weighted by size."""
    p = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        mask = index == k
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(p))


def load_model(model_dir: str | Path) -> tuple[bytes, dict[str, Any]]:
    """model.onnx and its card from a directory, or from a model.tar.gz inside it (what a
    SageMaker training job leaves); refuses a model built on other features."""
    directory = Path(model_dir)
    if not (directory / "model.onnx").exists() and (directory / "model.tar.gz").exists():
        with tarfile.open(directory / "model.tar.gz") as archive:
            archive.extractall(directory, filter="data")
    missing = [f for f in MODEL_FILES if not (directory / f).exists()]
    if missing:
        raise PipelineInputError(f"{directory}: no {' / '.join(missing)} (not a model directory)")
    card = json.loads((directory / "metadata.json").read_text(encoding="utf-8"))
    if list(card.get("feature_names", [])) != list(ft.FEATURE_NAMES):
        raise PipelineInputError(
            f"{directory}: model {card.get('model_version')} was built on feature version "
            f"{card.get('feature_version')}, the code computes {ft.FEATURE_VERSION}: it cannot be compared")
    return (directory / "model.onnx").read_bytes(), card


def _number(value: float | None) -> float:
    return UNDEFINED if value is None or not np.isfinite(value) else float(value)


def _logged_decisions(rows: Sequence[Mapping[str, Any]], models: Mapping[str, bytes]) -> list[Any]:
    """Decisions as the OPE code reads them; each model's policy sends the top candidate it
    scores highest (or nothing when the decision had no candidate)."""
    from fidelio.models.offers import onnx_predict
    from fidelio.report.log import LoggedDecision
    from fidelio.report.ope import NOTHING

    tops = [json.loads(row["top"]) if row.get("top") else [] for row in rows]
    candidate_rows = [row.get("top_features") or [] for row in rows]
    scored = [i for i, (top, features) in enumerate(zip(tops, candidate_rows, strict=True))
              if top and len(features) == len(top)]
    matrix = np.asarray([f for i in scored for f in candidate_rows[i]], dtype=np.float32)
    matrix = matrix.reshape(-1, len(ft.FEATURE_NAMES))
    # One onnxruntime call per model over every candidate of every decision.
    scores = {name: onnx_predict(model, matrix) for name, model in models.items()}
    offsets = dict(zip(scored, np.cumsum([0] + [len(tops[i]) for i in scored])[:-1].tolist(), strict=True))
    decisions = []
    for i, row in enumerate(rows):
        target_action: dict[str, int] = {}
        model_estimate: dict[str, float] = {}
        for name in models:
            if i in offsets:
                own = scores[name][offsets[i]: offsets[i] + len(tops[i])]
                best = int(np.argmax(own))
                target_action[name], model_estimate[name] = best, float(own[best])
            else:
                target_action[name], model_estimate[name] = NOTHING, 0.0
        sent = row["action_kind"] == "send"
        decisions.append(LoggedDecision(
            decision_id=row["decision_id"], member_id=row["member"], day=0, decided_at=row["decided_at"],
            trigger=row.get("trigger", ""), holdout=bool(row.get("holdout")), explored=bool(row.get("explored")),
            action={"kind": row["action_kind"], "offer_id": row.get("offer_id"), "channel": row.get("channel"),
                    "send_at": row.get("send_at")},
            intended=json.loads(row["intended"]) if row.get("intended") else {},
            propensity=float(row["propensity"]), p_nothing=float(row.get("p_nothing") or 0.0), top=tops[i],
            reward=float(bool(row.get("converted")) and sent), converted=bool(row.get("converted")),
            model_estimate=model_estimate, target_action=target_action,
        ))
    return decisions


def _model_figures(model: bytes, card: Mapping[str, Any], examples: Any, ope: Mapping[str, Any]) -> dict[str, Any]:
    from fidelio.models.offers import onnx_predict, roc_auc

    predictions = onnx_predict(model, examples.rows)
    labels = examples.labels.astype(np.float64)
    estimate = ope.get(OPE_ESTIMATOR) or {}
    return {
        "version": str(card.get("model_version", "")),
        "auc": _number(roc_auc(examples.labels, predictions)),
        "ece": _number(expected_calibration_error(labels, predictions)),
        "brier": _number(float(np.mean((predictions - labels) ** 2))),
        "mean_prediction": _number(float(predictions.mean())),
        "ope": {
            "estimator": OPE_ESTIMATOR,
            "estimate": _number(estimate.get("estimate")),
            "ci_low": _number(estimate.get("ci_low")),
            "ci_high": _number(estimate.get("ci_high")),
            "matched": int(ope.get("matched", 0)),
            "ess": _number(ope.get("ess")),
        },
    }


def gate_verdict(candidate: Mapping[str, Any], champion: Mapping[str, Any], min_auc_gain: float,
                 calibration_tolerance: float, min_ope_value: float) -> dict[str, Any]:
    """The four checks of the pipeline's ConditionStep, with a reason a person can act on."""
    required_auc = champion["auc"] + min_auc_gain
    max_brier = champion["brier"] + calibration_tolerance
    failures = []
    if candidate["auc"] < required_auc:
        failures.append(f"AUC {candidate['auc']:.4f} < champion {champion['auc']:.4f} + {min_auc_gain}")
    if candidate["brier"] > max_brier:
        failures.append(f"Brier score {candidate['brier']:.4f} > champion {champion['brier']:.4f} "
                        f"+ {calibration_tolerance}")
    low = candidate["ope"]["ci_low"]
    if low < champion["ope"]["estimate"]:
        failures.append(f"off-policy value's lower bound {low:.4f} < champion's value "
                        f"{champion['ope']['estimate']:.4f}")
    if low < min_ope_value:
        failures.append(f"off-policy value's lower bound {low:.4f} < the minimum {min_ope_value}")
    passed = not failures
    reason = (f"passed: candidate {candidate['version']} beats champion {champion['version']} on AUC, "
              "calibration and off-policy value" if passed
              else f"refused candidate {candidate['version']}: " + "; ".join(failures))
    return {"passed": passed, "reason": reason, "required_auc": required_auc, "max_brier": max_brier,
            "min_ope_value": min_ope_value, "min_auc_gain": min_auc_gain,
            "calibration_tolerance": calibration_tolerance}


def evaluate(champion_dir: str | Path, candidate_dir: str | Path, test_dir: str | Path, out_json: str | Path,
             *, min_auc_gain: float = DEFAULT_MIN_AUC_GAIN,
             calibration_tolerance: float = DEFAULT_CALIBRATION_TOLERANCE,
             min_ope_value: float = DEFAULT_MIN_OPE_VALUE, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Judge candidate and champion on the same held-out decisions; write evaluation.json."""
    from fidelio.report.ope import off_policy_value

    rows = read_export_dir(test_dir)
    examples = _training_set(rows)
    if len(examples) == 0 or examples.labels.min() == examples.labels.max():
        raise PipelineInputError(f"{test_dir}: {len(examples)} held-out sends with "
                                 f"{int(examples.labels.sum())} conversions: the AUC needs both outcomes")
    models = {"candidate": load_model(candidate_dir), "champion": load_model(champion_dir)}
    decisions = _logged_decisions(rows, {name: model for name, (model, _) in models.items()})
    figures = {name: _model_figures(model, card, examples,
                                    off_policy_value(decisions, name, resamples=resamples, seed=seed))
               for name, (model, card) in models.items()}
    report: dict[str, Any] = {
        "evaluated_at": datetime.now(tz=UTC).isoformat(),
        "held_out": {"decisions": len(rows), "sends": len(examples), "conversions": int(examples.labels.sum()),
                     "observed_rate": float(examples.labels.mean())},
        **figures,
        "gate": gate_verdict(figures["candidate"], figures["champion"], min_auc_gain,
                             calibration_tolerance, min_ope_value),
    }
    path = Path(out_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return report


# --- publish -------------------------------------------------------------------------------


def resolve_champion(s3: Any, ssm: Any, *, bucket: str, prefix: str, parameter: str,
                     cache_dir: str | Path, bootstrap_dir: str | Path) -> Path:
    """The directory of the model serving now: the serving config's champion from the registry,
    or the bundled model when no config exists yet (what decide serves then)."""
    from functions.dal.serving_config import ModelStore, read_config

    config = read_config(ssm, parameter)
    if config is None:
        return Path(bootstrap_dir)
    return ModelStore(s3, bucket, prefix, cache_dir).directory(config.champion)



def upload_model(s3: Any, bucket: str, prefix: str, model_dir: str | Path) -> str:
    """Copy model.onnx + metadata.json to `<prefix>/<version>/` (the registry decide reads)."""
    from functions.dal.serving_config import registry_key

    _, card = load_model(model_dir)
    version = str(card["model_version"])
    for name in MODEL_FILES:
        s3.upload_file(str(Path(model_dir) / name), bucket, registry_key(prefix, version, name))
    return version


def publish_candidate(s3: Any, ssm: Any, *, bucket: str, prefix: str, parameter: str,
                      candidate_dir: str | Path, bootstrap_dir: str | Path, approved: bool,
                      initial_share: float = DEFAULT_INITIAL_SHARE, now: datetime) -> dict[str, Any]:
    """Put the candidate in the registry; when `approved`, name it challenger at `initial_share`
    (the champion keeps serving the rest; the rollout then advances on guardrails). The first
    time, the bundled model (`bootstrap_dir`) is registered as the champion."""
    from functions.dal.serving_config import ServingConfig, read_config, write_config

    if not 0.0 < initial_share <= 1.0:
        raise PipelineInputError(f"initial share {initial_share} must be in (0, 1]")
    version = upload_model(s3, bucket, prefix, candidate_dir)
    if not approved:
        return {"version": version, "serving_config": "unchanged: the model package awaits manual approval"}
    current = read_config(ssm, parameter)
    champion = current.champion if current else upload_model(s3, bucket, prefix, bootstrap_dir)
    if champion == version:
        return {"version": version, "serving_config": "unchanged: the candidate already is the champion"}
    config = ServingConfig(champion=champion, challenger=version, challenger_share=initial_share,
                           previous_champion=current.previous_champion if current else None,
                           changed_at=now.timestamp())
    write_config(ssm, parameter, config)
    return {"version": version, "serving_config": config.model_dump()}

