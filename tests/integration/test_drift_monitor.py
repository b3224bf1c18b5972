"""The drift monitor on moto: replayed serving traffic against a model card's baseline; PSI
published to CloudWatch; a shifted feature starts retraining, unshifted traffic does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fidelio.local.runner import LocalRunner
from fidelio.models import model_card
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION
from functions.handlers import deps, drift_monitor

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SHIFTED = "spend_90d"


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Feature rows of a fixed mixed distribution; `shift` moves SHIFTED's values up."""
    rng = np.random.default_rng(seed)
    rows = np.column_stack([
        rng.lognormal(mean=1.0 + 0.02 * i, sigma=0.8, size=n) if i % 3 else rng.integers(0, 6, size=n)
        for i in range(len(FEATURE_NAMES))
    ]).astype(np.float64)
    column = FEATURE_NAMES.index(SHIFTED)
    rows[:, column] = rows[:, column] * (1.0 + shift) + 10.0 * shift
    return rows


def _card_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "champion"
    model_card.write_model_card(directory, {
        "name": "offers", "model_version": "drift-test-1", "feature_version": FEATURE_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "baseline_features": model_card.feature_baseline(_rows(3000, seed=1), FEATURE_NAMES),
    })
    return directory


def _replay(stack, rows: np.ndarray, day: datetime) -> None:
    """Archive one logged send per row, as decide writes them (action, top, top_features)."""
    lines = []
    for i, row in enumerate(rows):
        send_at = day.timestamp() + i
        candidate = {"offer_id": "o1", "channel": "email", "send_at": send_at, "p": 0.1, "ev": 0.2, "propensity": 0.9}
        lines.append(json.dumps({
            "decision_id": f"d-{day:%Y%m%d}-{i}", "member_id": f"m{i}", "decided_at": send_at,
            "action": {"kind": "send", "offer_id": "o1", "channel": "email", "send_at": send_at},
            "top": [candidate], "top_features": [[float(v) for v in row]],
            "action_features": [float(v) for v in row],
        }))
    stack.client("s3").put_object(Bucket=stack.data_bucket, Key=f"decisions/date={day:%Y-%m-%d}/replay.jsonl",
                                  Body="\n".join(lines).encode())


def _monitor(stack, tmp_path: Path, **settings) -> dict:
    runner = LocalRunner(stack)
    runner.update_settings("decide", model_dir=str(_card_dir(tmp_path)), **settings)
    deps.use(runner._deps["decide"])
    return drift_monitor.monitor(NOW)


def _psi_datapoints(stack, feature: str | None) -> list[float]:
    dimensions = [{"Name": "Feature", "Value": feature}] if feature else []
    response = stack.client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "psi", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Fidelio", "MetricName": "FeaturePSI" if feature else "MaxFeaturePSI",
                       "Dimensions": dimensions}, "Period": 60, "Stat": "Maximum"}}],
        StartTime=NOW - timedelta(minutes=5), EndTime=NOW + timedelta(minutes=5))
    return response["MetricDataResults"][0]["Values"]


def test_a_shifted_feature_raises_psi_publishes_it_and_starts_the_pipeline(local_stack, tmp_path):
    # Given a pipeline to retrain with, and a day of serving traffic whose spend_90d moved up
    sagemaker = local_stack.client("sagemaker")
    sagemaker.create_pipeline(PipelineName=f"{local_stack.names.prefix}-retrain", RoleArn=
                              "arn:aws:iam::123456789012:role/pipeline",
                              PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    _replay(local_stack, _rows(600, seed=2, shift=1.5), NOW - timedelta(days=1))
    # When the monitor runs
    result = _monitor(local_stack, tmp_path, pipeline_name=f"{local_stack.names.prefix}-retrain")
    # Then the moved feature is the worst, above the threshold, and the metrics are in CloudWatch
    assert result["max_feature"] == SHIFTED
    assert result["max_psi"] > 0.2
    assert max(_psi_datapoints(local_stack, SHIFTED)) > 0.2
    assert max(_psi_datapoints(local_stack, None)) == pytest.approx(result["max_psi"])
    names = {(m["MetricName"], tuple(d["Value"] for d in m.get("Dimensions", [])))
             for m in local_stack.client("cloudwatch").list_metrics(Namespace="Fidelio")["Metrics"]}
    assert ("FeaturePSI", (SHIFTED,)) in names and ("MaxFeaturePSI", ()) in names
    # And the monitor itself started one retraining execution
    executions = sagemaker.list_pipeline_executions(PipelineName=f"{local_stack.names.prefix}-retrain")
    assert len(executions["PipelineExecutionSummaries"]) == 1
    assert result["retraining"] == executions["PipelineExecutionSummaries"][0]["PipelineExecutionArn"]


def test_unshifted_traffic_stays_below_the_threshold_and_requests_nothing(local_stack, tmp_path):
    # Given traffic drawn from the training distribution (another sample)
    _replay(local_stack, _rows(600, seed=3), NOW - timedelta(days=2))
    # When the monitor runs (no pipeline configured: it would record a request in S3)
    result = _monitor(local_stack, tmp_path)
    # Then every feature is stable and nothing was requested
    assert result["rows"] == 600
    assert result["max_psi"] < 0.1
    assert result["retraining"] is None
    listed = local_stack.client("s3").list_objects_v2(Bucket=local_stack.data_bucket,
                                                      Prefix=drift_monitor.RETRAIN_PREFIX)
    assert listed.get("KeyCount", 0) == 0


def test_without_a_pipeline_the_retrain_request_is_recorded_in_the_bucket(local_stack, tmp_path):
    # Given shifted traffic and no pipeline (the local stand-in)
    _replay(local_stack, _rows(600, seed=4, shift=1.5), NOW)
    # When the monitor runs
    result = _monitor(local_stack, tmp_path)
    # Then the request, with its reason, is in the data bucket where `fidelio train` can act on it
    s3 = local_stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.data_bucket,
                                                 Prefix=drift_monitor.RETRAIN_PREFIX)["Contents"]]
    assert result["retraining"] == f"s3://{local_stack.data_bucket}/{keys[0]}"
    request = json.loads(s3.get_object(Bucket=local_stack.data_bucket, Key=keys[0])["Body"].read())
    assert request["max_feature"] == SHIFTED and request["reason"].startswith("drift: max PSI")


def test_too_little_traffic_is_not_called_drift(local_stack, tmp_path):
    # Given a handful of shifted rows only
    _replay(local_stack, _rows(20, seed=5, shift=3.0), NOW)
    # When the monitor runs
    result = _monitor(local_stack, tmp_path)
    # Then it says so instead of raising an alarm on noise
    assert result["retraining"] is None
    assert "too few to judge" in result["summary"]


def test_calibration_compares_predictions_with_the_redemptions_ingest_joined(local_stack, tmp_path):
    from functions.dal.bus import publish
    from functions.dal.tables import DecisionRecord
    from functions.domain import events as ev

    # Given 100 sends logged three days ago, each predicted to convert with P = 0.05
    day = NOW - timedelta(days=3)
    rows = _rows(100, seed=4)
    _replay(local_stack, rows, day)
    s3 = local_stack.client("s3")
    key = f"decisions/date={day:%Y-%m-%d}/replay.jsonl"
    lines = [json.loads(line) for line in s3.get_object(Bucket=local_stack.data_bucket, Key=key)["Body"]
             .read().decode().splitlines()]
    for line in lines:
        line["action"]["probability"] = 0.05
    s3.put_object(Bucket=local_stack.data_bucket, Key=key, Body="\n".join(json.dumps(x) for x in lines).encode())
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["ingest"])
    for line in lines:
        DecisionRecord(line["decision_id"], member_id=line["member_id"], decided_at=line["decided_at"],
                       expires_at=int(NOW.timestamp()) + 86400, trigger="daily_next_best_action",
                       trigger_event_id="sweep", body=line, status="sent").save()
    # When 10 of those members redeem their offer (the event carries the decision id) and ingest runs
    redeemed = lines[:10]
    publish(local_stack.client("events"), local_stack.names.bus, [
        ev.OfferRedeemed(event_id=f"r-{i}", member_id=line["member_id"], occurred_at=day + timedelta(hours=5),
                         offer_id="o1", decision_id=line["decision_id"]) for i, line in enumerate(redeemed)], "test")
    runner.pump()
    # Then each conversion is joined to its decision
    assert {r.decision_id for r in DecisionRecord.scan() if "redeemed" in (r.outcomes or [])} == {
        line["decision_id"] for line in redeemed}
    # and the monitor reports 10 % realized against 5 % predicted: twice what the model said
    result = _monitor(local_stack, tmp_path)
    assert result["calibration"]["sends"] == 100
    assert result["calibration"]["redeemed_rate"] == pytest.approx(0.10)
    assert result["calibration"]["ratio"] == pytest.approx(2.0)
    response = local_stack.client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "ratio", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Fidelio", "MetricName": "CalibrationRatio",
                       "Dimensions": [{"Name": "ModelVersion", "Value": "drift-test-1"}]},
            "Period": 60, "Stat": "Maximum"}}],
        StartTime=NOW - timedelta(minutes=5), EndTime=NOW + timedelta(minutes=5))
    assert response["MetricDataResults"][0]["Values"] == [pytest.approx(2.0)]
