"""drift_monitor (daily): PSI per feature between the last days' serving rows (the feature rows
of logged sends, from the decision archive) and the serving champion's training baseline (its
model card); publishes FeaturePSI (by Feature) and MaxFeaturePSI; when the population moved
(max PSI > settings.drift_threshold) it starts the retraining pipeline itself, or, with no
pipeline configured (locally), records the retrain request in the data bucket."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from functions import clock
from functions.dal.archive import read_archived_decisions
from functions.dal.serving_config import ModelStore, read_config
from functions.domain.drift import (
    Calibration,
    DriftReport,
    MissingBaseline,
    calibration,
    drift_report,
    matured_sends,
)
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.observability import logger, tracer

NAMESPACE = "Fidelio"
RETRAIN_PREFIX = "lifecycle/retrain-requests"


def _champion_card() -> dict[str, Any]:
    d = deps()
    s = d.settings
    config = read_config(d.clients.client("ssm"), s.serving_config_parameter)
    if config is None:
        directory = Path(s.model_dir)
        if not directory.is_absolute():
            directory = Path(__file__).resolve().parents[2] / directory
    else:
        directory = ModelStore(d.clients.s3, s.data_bucket, s.model_registry_prefix, s.model_cache_dir).directory(
            config.champion)
    return dict(json.loads((directory / "metadata.json").read_text()))


def feature_names(card: dict[str, Any]) -> list[str]:
    """The champion's feature list: the order decide logs its rows in (decide refuses a model
    whose list differs from the code's FEATURE_NAMES), read from the card so this function
    needs neither the feature code nor numpy."""
    names = card.get("feature_names")
    if not names:
        raise MissingBaseline(f"model card {card.get('model_version')} has no feature_names")
    return [str(n) for n in names]


def serving_rows(decisions: list[dict[str, Any]], width: int) -> list[list[float]]:
    """Feature rows of the logged sends (the population the training baseline describes); a
    row of another length was logged under another feature list and is left out."""
    return [[float(v) for v in d["action_features"]] for d in decisions
            if d.get("action", {}).get("kind") == "send" and d.get("action_features")
            and len(d["action_features"]) == width]


def publish(cloudwatch: Any, report: DriftReport, now: datetime) -> None:
    data = [{"MetricName": "FeaturePSI", "Dimensions": [{"Name": "Feature", "Value": feature}],
             "Timestamp": now, "Value": value, "Unit": "None"} for feature, value in sorted(report.psi.items())]
    data.append({"MetricName": "MaxFeaturePSI", "Timestamp": now, "Value": report.max_psi, "Unit": "None"})
    data.append({"MetricName": "DriftRows", "Timestamp": now, "Value": float(report.rows), "Unit": "Count"})
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])


def request_retraining(report: DriftReport, now: datetime) -> str:
    """Start the pipeline (one execution per day and model: the token makes a retry a no-op)."""
    d = deps()
    s = d.settings
    token = hashlib.sha256(f"drift|{now.date()}|{report.model_version}".encode()).hexdigest()[:40]
    if s.pipeline_name:
        response = d.clients.client("sagemaker").start_pipeline_execution(
            PipelineName=s.pipeline_name, PipelineExecutionDisplayName=f"drift-{now:%Y%m%d}",
            PipelineExecutionDescription=report.summary()[:3000], ClientRequestToken=token)
        return str(response["PipelineExecutionArn"])
    key = f"{RETRAIN_PREFIX}/{now:%Y-%m-%d}-{token[:12]}.json"
    d.clients.s3.put_object(Bucket=s.data_bucket, Key=key, ContentType="application/json", Body=json.dumps({
        "requested_at": now.isoformat(), "reason": report.summary(), "model_version": report.model_version,
        "max_feature": report.max_feature, "max_psi": report.max_psi, "psi": report.psi}).encode())
    return f"s3://{s.data_bucket}/{key}"


def outcomes_of(decision_ids: list[str]) -> dict[str, list[str]]:
    """Outcomes joined to each decision (SES feedback; redemptions through ingest)."""
    from functions.dal.tables import DecisionRecord

    found: dict[str, list[str]] = {}
    for record in DecisionRecord.batch_get(decision_ids, attributes_to_get=["decision_id", "outcomes"]):
        found[record.decision_id] = [str(o) for o in record.outcomes or []]
    return found


def publish_calibration(cloudwatch: Any, report: Calibration, model_version: str, now: datetime) -> None:
    figures = {"PredictedRedemptionRate": report.predicted_mean, "PredictionP50": report.predicted_p50,
               "PredictionP90": report.predicted_p90, "RealizedRedemptionRate": report.redeemed_rate,
               "RealizedClickRate": report.clicked_rate, "CalibrationRatio": report.ratio,
               "MaturedSends": float(report.sends)}
    data = [{"MetricName": name, "Dimensions": [{"Name": "ModelVersion", "Value": model_version}],
             "Timestamp": now, "Value": value, "Unit": "Count" if name == "MaturedSends" else "None"}
            for name, value in figures.items() if value is not None]
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)


def monitor(now: datetime) -> dict[str, Any]:
    d = deps()
    s = d.settings
    days = [(now - timedelta(days=k)).strftime("%Y-%m-%d") for k in range(s.drift_window_days)]
    decisions = [x for day in days for x in read_archived_decisions(d.clients.s3, s.data_bucket, day)]
    card = _champion_card()
    names = feature_names(card)
    report = drift_report(card, names, serving_rows(decisions, len(names)), s.drift_threshold)
    publish(d.clients.client("cloudwatch"), report, now)
    sends = matured_sends(decisions, now.timestamp())
    calibrated = calibration(sends, outcomes_of([str(x["decision_id"]) for x in sends]) if sends else {})
    publish_calibration(d.clients.client("cloudwatch"), calibrated, report.model_version, now)
    result: dict[str, Any] = {"summary": report.summary(), "rows": report.rows, "max_psi": report.max_psi,
                              "max_feature": report.max_feature, "model_version": report.model_version,
                              "retraining": None, "calibration": {**asdict(calibrated), "ratio": calibrated.ratio}}
    if report.drifted:
        result["retraining"] = request_retraining(report, now)
        logger.warning("drift: retraining requested", extra={k: v for k, v in result.items() if k != "summary"})
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return monitor(clock.now())


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
