"""Model lifecycle steps that run the same way locally and in the SageMaker pipeline:
train a challenger, judge it against the champion on the same held-out examples (the gate),
promote it only when it is better.

Two layers:
- the demo's in-process loop (`retrain` → `gate` → `promote` on directories), unchanged;
- the registry entry points that `fidelio train|evaluate` and a pipeline step call:
  `train_challenger` / `train_from_archive` (model + card + held-out examples to the S3
  registry `models/offers/<version>/`, an entry in the local registry index) and `evaluate`
  (AUC, Brier, ECE and the off-policy value of each model from the decision log, with a
  bootstrap CI, and a verdict with its reason). Serving-config changes are fidelio/rollout.py.

The gate's rule: the challenger's AUC on examples neither model trained on must beat the
champion's by `min_gain`, and its predictions must stay calibrated (mean predicted within
`max_calibration_gap` of the observed rate). A refusal says why, in words.
"""

from __future__ import annotations

import json
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


def _predict(directory: Path, rows: np.ndarray) -> np.ndarray:
    """The served model's predictions: its ONNX file, or the cold-start scorer when the
    programme has no trained model yet (what decide serves then)."""
    from fidelio.models.offers import onnx_predict
    from functions.domain.decision import PriorScorer

    if (directory / MODEL_FILE).exists():
        return onnx_predict((directory / MODEL_FILE).read_bytes(), rows)
    return PriorScorer().predict(rows)


def _version(directory: Path) -> str:
    import json

    if not (directory / "metadata.json").exists():
        from functions.domain.decision import PriorScorer

        return PriorScorer.version
    return str(json.loads((directory / "metadata.json").read_text())["model_version"])


MIN_HELD_OUT_POSITIVES = 20  # below this an AUC difference is noise: the gate cannot tell


def gate(champion_dir: Path, challenger_dir: Path, rows: np.ndarray, labels: np.ndarray,
         min_gain: float = 0.005, max_calibration_gap: float = 0.5,
         min_positives: int = MIN_HELD_OUT_POSITIVES) -> GateDecision:
    """Compare two models on the same examples; promote only a better, calibrated challenger,
    judged on enough held-out conversions to tell them apart."""
    from fidelio.models.offers import onnx_predict, roc_auc

    champion = _predict(champion_dir, rows)
    challenger = onnx_predict((challenger_dir / MODEL_FILE).read_bytes(), rows)
    champion_auc, challenger_auc = roc_auc(labels, champion), roc_auc(labels, challenger)
    observed = float(np.mean(labels)) if len(labels) else float("nan")
    mean_prediction = float(np.mean(challenger)) if len(challenger) else float("nan")
    common = dict(champion_version=_version(champion_dir), challenger_version=_version(challenger_dir),
                  champion_auc=champion_auc, challenger_auc=challenger_auc,
                  challenger_mean_prediction=mean_prediction, observed_rate=observed, examples=len(labels))
    if not np.isfinite(challenger_auc) or not np.isfinite(champion_auc):
        return GateDecision(False, "refused: the evaluation examples hold one outcome only", **common)
    positives = int(np.sum(labels))
    if positives < min_positives:
        return GateDecision(False, f"refused: {positives} held-out conversions, fewer than the {min_positives} "
                                   f"needed to tell the models apart (AUC {challenger_auc:.3f} vs "
                                   f"{champion_auc:.3f}); the champion keeps serving", **common)
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
    # Open label windows are kept here, as before: whether a live retrain should drop them (and
    # with them the newest data) is a lifecycle decision not taken yet (docs/models.md).
    card = train_offer_model(events, offers, holdout_from, challenger_dir, source, data=data, keep_censored=True)
    split_at = datetime(holdout_from.year, holdout_from.month, holdout_from.day, tzinfo=UTC).timestamp()
    _, test = data.split(split_at)
    decision = gate(champion_dir, challenger_dir, test.rows, test.labels)
    return decision, card




# --- the registry entry points (CLI and pipeline) ---------------------------------------------

REGISTRY_FILES = ("model.onnx", "metadata.json", "holdout.npz", "holdout.parquet")


class LifecycleError(ValueError):
    """A lifecycle step cannot run as asked (unknown version, no champion, no data); the message
    says what to do."""


@dataclass
class Lifecycle:
    """What the entry points need: settings (bucket, registry prefix, SSM parameter), clients,
    and the local registry index (a JSON file: versions, their cards' figures, evaluations)."""

    settings: Any  # functions.settings.Settings
    s3: Any
    ssm: Any
    index_path: Path
    bundled_dir: Path = Path(__file__).resolve().parent.parent / "model_artifacts" / "offers"

    @property
    def cache_dir(self) -> Path:
        return self.index_path.parent / "models"

    def key(self, version: str, file: str) -> str:
        from functions.dal.serving_config import registry_key

        return registry_key(self.settings.model_registry_prefix, version, file)

    # -- the index ------------------------------------------------------------------------------

    def index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"models": {}}
        return dict(json.loads(self.index_path.read_text()))

    def record(self, version: str, **fields: Any) -> dict[str, Any]:
        index = self.index()
        entry = index["models"].setdefault(version, {"version": version})
        entry.update(fields)
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        self.index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        return dict(entry)

    def entry(self, version: str) -> dict[str, Any]:
        found = self.index()["models"].get(version)
        if found is None:
            raise LifecycleError(f"model {version} is not in the registry index {self.index_path}; "
                                 "see `fidelio models` / `fidelio train`")
        return dict(found)

    # -- artifacts --------------------------------------------------------------------------------

    def register(self, model_dir: Path, **fields: Any) -> str:
        """Upload a model directory (model.onnx, metadata.json, held-out data) under its
        card's version and list it in the index. Same version twice: the same bytes, kept."""
        card = json.loads((model_dir / "metadata.json").read_text())
        version = str(card["model_version"])
        for file in REGISTRY_FILES:
            if (model_dir / file).exists():
                self.s3.upload_file(str(model_dir / file), self.settings.data_bucket, self.key(version, file))
        self.record(version, registered=True, name=card.get("name"), metrics=card.get("metrics", {}),
                    split_date=card.get("split_date"), **fields)
        return version

    def fetch(self, version: str) -> Path:
        """A local copy of a registered model (downloaded once)."""
        from functions.dal.serving_config import ModelNotInRegistry, ModelStore

        store = ModelStore(self.s3, self.settings.data_bucket, self.settings.model_registry_prefix, self.cache_dir)
        try:
            return store.directory(version)
        except ModelNotInRegistry as error:
            raise LifecycleError(f"{error}; `fidelio train` registers models") from error

    def has(self, version: str, file: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.settings.data_bucket, Key=self.key(version, file))
            return True
        except Exception as error:  # botocore ClientError
            if "404" in str(error) or "Not Found" in str(error):
                return False
            raise

    def holdout(self, version: str) -> tuple[np.ndarray, np.ndarray]:
        """The held-out examples saved with `version` at training time (rows, labels)."""
        import io

        try:
            body = self.s3.get_object(Bucket=self.settings.data_bucket, Key=self.key(version, "holdout.npz"))
        except self.s3.exceptions.NoSuchKey as error:
            raise LifecycleError(f"model {version} has no held-out examples in the registry "
                                 "(only models trained by `fidelio train` can be evaluated)") from error
        data = np.load(io.BytesIO(body["Body"].read()))
        return data["rows"], data["labels"]

    def config(self) -> Any:
        from functions.dal.serving_config import read_config

        return read_config(self.ssm, self.settings.serving_config_parameter)

    def champion(self) -> str:
        """The serving champion; with no serving config yet, the bundled model is registered
        and becomes the champion (what decide served until now)."""
        from functions.dal.serving_config import ServingConfig, write_config

        config = self.config()
        if config is not None:
            return str(config.champion)
        version = self.register(self.bundled_dir, origin="bundled model")
        write_config(self.ssm, self.settings.serving_config_parameter, ServingConfig(champion=version))
        return version


def train_challenger(life: Lifecycle, data: Any, split_date: date, source: Any, work_dir: Path,
                     **fields: Any) -> tuple[str, dict[str, Any]]:
    """Train on `data` (a fidelio.models.offers.TrainingSet, e.g. from an event log) before
    `split_date`, keep the rest as the held-out examples `evaluate` compares champion and
    challenger on (holdout.npz), register it all."""
    from datetime import UTC, datetime

    from fidelio.models.offers import train_offer_model

    out = work_dir / "challenger"
    if out.exists():
        shutil.rmtree(out)
    card = train_offer_model([], [], split_date, out, source, data=data, keep_censored=True)  # as retrain
    split_at = datetime(split_date.year, split_date.month, split_date.day, tzinfo=UTC).timestamp()
    _, test = data.split(split_at)
    np.savez_compressed(out / "holdout.npz", rows=test.rows, labels=test.labels, decided_at=test.decided_at)
    version = life.register(out, source=source.description, status="trained", **fields)
    return version, card


def train_from_archive(life: Lifecycle, start: date, end: date, work_dir: Path,
                       exclude_ids: set[str] | frozenset[str] = frozenset(),
                       test_fraction: float | None = None) -> tuple[str, dict[str, Any], Any]:
    """`fidelio train`: export the decision log of [start, end] to Parquet, then the pipeline's
    own steps (fidelio/pipeline_steps.py): prepare (split in time), train; the held-out
    decisions are registered with the model (holdout.parquet) for `evaluate`."""
    from fidelio import pipeline_steps as steps
    from fidelio import training_export as te
    from functions.dal.privacy import load_erasure_list

    # Erased members (GDPR) never enter a training set: the erasure list holds their pseudonyms.
    erased = load_erasure_list(life.s3, life.settings.data_bucket, life.settings.pseudonym_salt)
    exclude_ids = frozenset(exclude_ids) | erased.pseudonyms
    exported = te.export_training_data(life.s3, life.settings.data_bucket, start, end,
                                       life.settings.pseudonym_salt, exclude_ids)
    if not exported.keys:
        raise LifecycleError(f"the decision archive holds no decisions between {start} and {end}")
    for name in ("export", "prepared", "candidate"):
        shutil.rmtree(work_dir / name, ignore_errors=True)
    for key in exported.keys:
        target = work_dir / "export" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        life.s3.download_file(life.settings.data_bucket, key, str(target))
    try:
        summary = steps.prepare_training_set(work_dir / "export", work_dir / "prepared",
                                             test_fraction or steps.DEFAULT_TEST_FRACTION)
        card = steps.train(work_dir / "prepared" / "train", work_dir / "candidate")
    except steps.PipelineInputError as error:
        raise LifecycleError(str(error)) from error
    shutil.copy(work_dir / "prepared" / "test" / steps.DECISIONS_FILE, work_dir / "candidate" / "holdout.parquet")
    version = life.register(work_dir / "candidate", source=f"decision log {start}..{end}", status="trained",
                            export={"start": start.isoformat(), "end": end.isoformat(), "rows": exported.rows,
                                    "excluded": exported.excluded}, prepared=summary)
    return version, card, exported


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class Evaluation:
    version: str
    champion: str
    passed: bool
    reason: str
    examples: int
    positives: int
    models: dict[str, dict[str, Any]]  # "champion" / "challenger" -> version, auc, brier, ece, ... [ope]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_without_log(champion: dict[str, Any], challenger: dict[str, Any]) -> tuple[bool, str]:
    """The pipeline gate's AUC and calibration checks (same thresholds), for a model trained on
    an event log: without logged decisions there is no off-policy value to compare."""
    from fidelio import pipeline_steps as steps

    failures = []
    gain, tolerance = steps.DEFAULT_MIN_AUC_GAIN, steps.DEFAULT_CALIBRATION_TOLERANCE
    if not (np.isfinite(challenger["auc"]) and np.isfinite(champion["auc"])):
        failures.append("the held-out examples hold one outcome only (no AUC)")
    elif challenger["auc"] < champion["auc"] + gain:
        failures.append(f"AUC {challenger['auc']:.4f} < champion {champion['auc']:.4f} + {gain}")
    if challenger["brier"] > champion["brier"] + tolerance:
        failures.append(f"Brier score {challenger['brier']:.4f} > champion {champion['brier']:.4f} + {tolerance}")
    if failures:
        return False, f"refused candidate {challenger['version']}: " + "; ".join(failures)
    return True, (f"passed: candidate {challenger['version']} beats champion {champion['version']} on AUC "
                  f"({challenger['auc']:.4f} vs {champion['auc']:.4f}) and calibration (no decision log: "
                  "off-policy value not estimated)")


def _figures(directory: Path, rows: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    from fidelio import pipeline_steps as steps
    from fidelio.models.offers import onnx_predict, roc_auc

    model, card = steps.load_model(directory)
    predictions = onnx_predict(model, rows)
    return {"version": str(card["model_version"]), "auc": roc_auc(labels, predictions),
            "brier": float(np.mean((predictions - labels) ** 2)) if len(labels) else float("nan"),
            "ece": steps.expected_calibration_error(labels, predictions),
            "mean_prediction": float(np.mean(predictions)) if len(predictions) else float("nan")}


def evaluate(life: Lifecycle, version: str) -> Evaluation:
    """`fidelio evaluate VERSION`: the candidate against the serving champion on the candidate's
    held-out data, both scored on the same rows. A model trained on the decision log is judged
    by the pipeline's own evaluate step (AUC, Brier, ECE, off-policy value with a bootstrap
    CI); one trained on an event log by the same AUC and calibration checks. The verdict is
    kept in the registry index."""
    import tempfile

    from fidelio import pipeline_steps as steps

    life.entry(version)
    champion = life.champion()
    if champion == version:
        raise LifecycleError(f"{version} is already the champion: nothing to compare it with")
    champion_dir, candidate_dir = life.fetch(champion), life.fetch(version)
    if life.has(version, "holdout.parquet"):
        with tempfile.TemporaryDirectory() as scratch:
            test_dir = Path(scratch) / "test"
            test_dir.mkdir()
            life.s3.download_file(life.settings.data_bucket, life.key(version, "holdout.parquet"),
                                  str(test_dir / steps.DECISIONS_FILE))
            try:
                report = steps.evaluate(champion_dir, candidate_dir, test_dir, Path(scratch) / steps.EVALUATION_FILE)
            except steps.PipelineInputError as error:
                raise LifecycleError(str(error)) from error
        result = Evaluation(version=version, champion=champion, passed=bool(report["gate"]["passed"]),
                            reason=str(report["gate"]["reason"]), examples=int(report["held_out"]["sends"]),
                            positives=int(report["held_out"]["conversions"]),
                            models={"champion": report["champion"], "challenger": report["candidate"]})
    else:
        rows, labels = life.holdout(version)
        figures = {"champion": _figures(champion_dir, rows, labels), "challenger": _figures(candidate_dir, rows, labels)}
        passed, reason = judge_without_log(figures["champion"], figures["challenger"])
        result = Evaluation(version=version, champion=champion, passed=passed, reason=reason, examples=len(labels),
                            positives=int(np.sum(labels)), models=figures)
    life.record(version, evaluation={"passed": result.passed, "reason": result.reason, "champion": champion,
                                     "examples": result.examples, "positives": result.positives})
    return result


__all__ = ["Evaluation", "GateDecision", "Lifecycle", "LifecycleError", "evaluate", "ft", "gate", "promote",
           "retrain", "train_challenger", "train_from_archive"]
