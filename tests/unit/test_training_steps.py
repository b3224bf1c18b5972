"""The retraining pipeline's steps, run in-process through the same `main()` entry points the
SageMaker containers run, with temporary directories standing in for /opt/ml paths.

The data are a small logged-bandit world in the training export's format (built with
fidelio.training_export.export_row): each decision offers three candidates, the logging policy
picks one uniformly (propensity 1/3), and a send converts with a probability that rises with
two of its features. A model trained on it ranks candidates well; a model trained on shuffled
outcomes is the deliberately worse one."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fidelio import pipeline_steps as steps
from fidelio.training_export import export_row
from functions.domain.features import FEATURE_NAMES
from functions.training import evaluate as evaluate_step
from functions.training import prepare as prepare_step
from functions.training import promote as promote_step
from functions.training import train as train_step

START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
DAY = 86400.0
SIGNAL = (0, 3)  # columns that drive conversion
ROUNDS = "60"  # enough for this signal; keeps the tests quick


def _decision(i: int, rng: np.random.Generator, decided_at: float) -> tuple[dict[str, Any], bool]:
    features = rng.normal(size=(3, len(FEATURE_NAMES))).round(4)
    top = [{"offer_id": f"o{k}", "channel": "email", "send_at": decided_at, "p": 0.2, "ev": 1.0,
            "propensity": 1 / 3} for k in range(3)]
    chosen = int(rng.integers(0, 3))
    p = 1 / (1 + np.exp(-(-1.6 + 1.8 * features[chosen, SIGNAL[0]] - 1.2 * features[chosen, SIGNAL[1]])))
    action = {"kind": "send", **{k: top[chosen][k] for k in ("offer_id", "channel", "send_at")}}
    decision = {"decision_id": f"d{i:05d}", "decided_at": decided_at, "member_id": f"m{i % 400}",
                "variant": "champion", "model_version": "logging", "trigger": "sweep", "holdout": False,
                "exploration": {"explored": True, "p_nothing": 0.0}, "action": action, "intended": action,
                "propensity": 1 / 3, "top": top, "top_features": features.tolist(),
                "action_features": features[chosen].tolist()}
    return decision, bool(rng.random() < p)


def write_export(root: Path, decisions: int = 2400, seed: int = 11, shuffle_outcomes: bool = False,
                 converting: bool = True) -> Path:
    """Date-partitioned Parquet parts, as the training export writes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(decisions):
        decision, converted = _decision(i, rng, START + i * (30 * DAY / decisions))
        converted = converted and converting
        rows.append(export_row(decision, "sent", ["delivered", "redeemed"] if converted else ["delivered"], "salt"))
    if shuffle_outcomes:
        outcomes = [r["converted"] for r in rows]
        rng.shuffle(outcomes)
        for row, converted in zip(rows, outcomes, strict=True):
            row["converted"] = converted
    by_date: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_date.setdefault(row["date"], []).append(row)
    for day, part in by_date.items():
        (root / f"date={day}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(part), root / f"date={day}" / "part-0.parquet")
    return root


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """prepare -> train for a good model and a deliberately worse one (shuffled outcomes)."""
    root = tmp_path_factory.mktemp("pipeline")
    paths = {}
    for name, shuffle in (("good", False), ("worse", True)):
        export = write_export(root / name / "export", shuffle_outcomes=shuffle)
        prepared = root / name / "prepared"
        assert prepare_step.main(["--input", str(export), "--output", str(prepared)]) == 0
        model = root / name / "model"
        assert train_step.main(["--train", str(prepared / "train"), "--model-dir", str(model),
                                "--rounds", ROUNDS]) == 0
        paths[name], paths[f"{name}_prepared"] = model, prepared
    return paths


def _evaluate(tmp_path: Path, champion: Path, candidate: Path, test_dir: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "evaluation" / "evaluation.json"
    assert evaluate_step.main(["--champion-dir", str(champion), "--candidate-dir", str(candidate),
                               "--test-dir", str(test_dir), "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_prepare_holds_out_the_latest_decisions(pipeline_run: dict[str, Path]) -> None:
    # Given the prepared split of 2,400 exported decisions
    prepared = pipeline_run["good_prepared"]
    train_rows = steps.read_export_dir(prepared / "train")
    test_rows = steps.read_export_dir(prepared / "test")
    summary = json.loads((prepared / "summary.json").read_text())
    # Then every decision is on exactly one side, the test side is the latest fifth, in time
    assert len(train_rows) + len(test_rows) == 2400
    assert len(test_rows) == pytest.approx(480, abs=2)
    assert max(r["decided_at"] for r in train_rows) < min(r["decided_at"] for r in test_rows)
    assert summary["train"]["sends"] == len(train_rows) and summary["test"]["conversions"] > 0


def test_train_writes_an_onnx_model_with_its_card(pipeline_run: dict[str, Path]) -> None:
    model_bytes, card = steps.load_model(pipeline_run["good"])
    assert card["feature_names"] == list(FEATURE_NAMES)
    assert card["model_version"].startswith("pipeline-2026-")
    assert card["training_data"]["sends"] == 1920 and card["algorithm"]["num_boost_round"] == int(ROUNDS)
    assert set(card["baseline_features"]) == set(FEATURE_NAMES)  # what the drift monitor compares
    assert len(model_bytes) > 1000


def test_a_better_candidate_passes_the_gate(pipeline_run: dict[str, Path], tmp_path: Path) -> None:
    # Given the worse model serving, and a candidate trained on the real outcomes
    report = _evaluate(tmp_path, pipeline_run["worse"], pipeline_run["good"], pipeline_run["good_prepared"] / "test")
    candidate, champion = report["candidate"], report["champion"]
    # Then it wins on the same held-out decisions: AUC, and off-policy value beyond the CI
    assert candidate["auc"] > 0.7 > champion["auc"]
    assert candidate["ope"]["ci_low"] > champion["ope"]["estimate"]
    assert candidate["ope"]["matched"] > 0 and candidate["ope"]["estimator"] == "snips"
    assert candidate["brier"] < champion["brier"] and 0 <= candidate["ece"] < 0.2
    assert report["gate"]["passed"] is True, report["gate"]["reason"]
    assert report["gate"]["required_auc"] == pytest.approx(champion["auc"] + steps.DEFAULT_MIN_AUC_GAIN)
    assert report["held_out"]["sends"] == report["held_out"]["decisions"]


def test_a_worse_candidate_is_refused_with_a_readable_reason(pipeline_run: dict[str, Path], tmp_path: Path) -> None:
    # Given the good model serving, and a candidate trained on shuffled outcomes
    report = _evaluate(tmp_path, pipeline_run["good"], pipeline_run["worse"], pipeline_run["good_prepared"] / "test")
    # Then the gate refuses it and says which checks failed
    gate = report["gate"]
    assert gate["passed"] is False
    assert gate["reason"].startswith(f"refused candidate {report['candidate']['version']}: AUC ")
    assert "off-policy value's lower bound" in gate["reason"]


def test_a_candidate_equal_to_the_champion_is_refused(pipeline_run: dict[str, Path], tmp_path: Path) -> None:
    # The same model on both sides: no AUC gain, and its lower bound sits below its own value
    report = _evaluate(tmp_path, pipeline_run["good"], pipeline_run["good"], pipeline_run["good_prepared"] / "test")
    assert report["candidate"]["auc"] == report["champion"]["auc"]
    assert report["gate"]["passed"] is False


def test_evaluate_reads_the_model_archive_a_training_job_leaves(pipeline_run: dict[str, Path], tmp_path: Path) -> None:
    # Given the candidate as SageMaker hands it over: model.tar.gz only
    packed = tmp_path / "candidate"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as archive:
        for name in steps.MODEL_FILES:
            archive.add(pipeline_run["good"] / name, arcname=name)
    report = _evaluate(tmp_path, pipeline_run["worse"], packed, pipeline_run["good_prepared"] / "test")
    assert report["candidate"]["version"] == steps.load_model(pipeline_run["good"])[1]["model_version"]


def test_a_model_built_on_other_features_cannot_be_compared(pipeline_run: dict[str, Path], tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.onnx").write_bytes((pipeline_run["good"] / "model.onnx").read_bytes())
    card = json.loads((pipeline_run["good"] / "metadata.json").read_text())
    card["feature_names"] = card["feature_names"][:-1]
    (old / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(steps.PipelineInputError, match="cannot be compared"):
        steps.load_model(old)


def test_prepare_without_an_export_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prepare_step.main(["--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "no Parquet parts; run the training export first" in capsys.readouterr().err


def test_prepare_refuses_a_split_without_both_outcomes(tmp_path: Path) -> None:
    # Given an export in which no send converted
    export = write_export(tmp_path / "export", decisions=200, converting=False)
    with pytest.raises(steps.PipelineInputError, match="the train side holds 160 sends with 0 conversions"):
        steps.prepare_training_set(export, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_arguments_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_step.main(["--rounds", "many"])
    assert exit_info.value.code == 2
    assert "'many' is not a positive number of boosting rounds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_step.main(["--candidate-dir", "x"])  # no champion and no registry to find one
    assert "give --champion-dir, or --bucket" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        promote_step.main(["--bucket", "b", "--approval-status", "Maybe"])
    assert "invalid choice: 'Maybe'" in capsys.readouterr().err


def test_expected_calibration_error_is_zero_when_predictions_match_rates() -> None:
    labels = np.array([0, 0, 0, 1] * 25 + [1, 1, 1, 0] * 25)
    predictions = np.array([0.25] * 100 + [0.75] * 100)
    assert steps.expected_calibration_error(labels, predictions) == pytest.approx(0.0)
    assert steps.expected_calibration_error(labels, np.full(200, 0.9)) == pytest.approx(0.4)


# --- publishing: the registry and the serving config (moto in-process) ------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for name, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield boto3


def _promote(candidate: Path, status: str) -> int:
    return promote_step.main(["--candidate-dir", str(candidate), "--bucket", "data", "--approval-status", status,
                              "--serving-config-parameter", "/test/serving-config", "--initial-share", "0.05"])


def _registry(aws: Any) -> set[str]:
    listing = aws.client("s3").list_objects_v2(Bucket="data", Prefix="models/offers/")
    return {item["Key"] for item in listing.get("Contents", [])}


def test_an_approved_candidate_becomes_the_challenger_at_five_percent(pipeline_run: dict[str, Path], aws: Any) -> None:
    from functions.dal.serving_config import read_config
    from functions.training.paths import BUNDLED_CHAMPION

    candidate = steps.load_model(pipeline_run["good"])[1]["model_version"]
    bundled = steps.load_model(BUNDLED_CHAMPION)[1]["model_version"]
    # When the pipeline promotes an approved package for the first time
    assert _promote(pipeline_run["good"], "Approved") == 0
    # Then both the candidate and the bundled champion are in the registry decide reads
    assert _registry(aws) == {f"models/offers/{v}/{f}" for v in (candidate, bundled) for f in steps.MODEL_FILES}
    config = read_config(aws.client("ssm"), "/test/serving-config")
    assert config is not None
    assert (config.champion, config.challenger, config.challenger_share) == (bundled, candidate, 0.05)
    # And the evaluate step of the next run judges against that champion, fetched from the registry
    champion_dir = steps.resolve_champion(aws.client("s3"), aws.client("ssm"), bucket="data", prefix="models/offers",
                                          parameter="/test/serving-config", cache_dir=pipeline_run["good"].parent / "cache",
                                          bootstrap_dir=BUNDLED_CHAMPION)
    assert steps.load_model(champion_dir)[1]["model_version"] == bundled


def test_a_package_pending_approval_is_stored_but_not_served(pipeline_run: dict[str, Path], aws: Any) -> None:
    from functions.dal.serving_config import read_config

    assert _promote(pipeline_run["worse"], "PendingManualApproval") == 0
    version = steps.load_model(pipeline_run["worse"])[1]["model_version"]
    assert _registry(aws) == {f"models/offers/{version}/{f}" for f in steps.MODEL_FILES}
    assert read_config(aws.client("ssm"), "/test/serving-config") is None


def test_the_steps_need_only_the_containers_requirements(tmp_path: Path) -> None:
    """The containers install infra/pipeline.py's CONTAINER_REQUIREMENTS on the scikit-learn
    image: running the steps must not import a Lambda-only or local-only package."""
    import subprocess
    import sys

    export = write_export(tmp_path / "export", decisions=600)
    script = f"""
import sys
from functions.training import prepare, train, evaluate
root = {str(tmp_path)!r}
assert prepare.main(["--input", root + "/export", "--output", root + "/prepared"]) == 0
assert train.main(["--train", root + "/prepared/train", "--model-dir", root + "/model", "--rounds", "10"]) == 0
assert evaluate.main(["--champion-dir", root + "/model", "--candidate-dir", root + "/model",
                      "--test-dir", root + "/prepared/test", "--out", root + "/evaluation.json"]) == 0
print(sorted({{name.split(".")[0] for name in sys.modules}}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = set(json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')))
    assert {"lightgbm", "onnxruntime", "pyarrow", "pydantic"} <= imported
    assert not imported & {"aws_lambda_powertools", "pynamodb", "moto", "sagemaker", "aws_xray_sdk", "yaml"}
    assert export.is_dir()
