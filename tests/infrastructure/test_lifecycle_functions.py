"""The model lifecycle in the template: decide and offers_api read the serving config and the
registry; the drift monitor and the batch scorer run on their schedules with only what they
need (the pipeline it may start is named, PutMetricData is held to Fidelio's namespace)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.settings import env_var
from infra import spec
from tests.infrastructure.cfn_template import (
    allowed,
    as_list,
    resources_of,
    role_of_function,
    statements_of_role,
)


def _permissions(template_json: dict[str, Any], function_ids: dict[str, str], name: str) -> list[dict[str, Any]]:
    return statements_of_role(template_json, role_of_function(template_json, function_ids[name]))


@pytest.mark.parametrize("name", ["decide", "offers_api", "drift_monitor"])
def test_serving_functions_read_the_config_and_the_registry_only(template_json, function_ids, name) -> None:
    permissions = _permissions(template_json, function_ids, name)
    assert allowed(permissions, "ssm:GetParameter", "parameter/fidelio/serving-config")
    assert allowed(permissions, "s3:GetObject", "/models/offers/*")
    assert not allowed(permissions, "ssm:PutParameter")
    assert not allowed(permissions, "s3:PutObject", "/models/")
    environment = template_json["Resources"][function_ids[name]]["Properties"]["Environment"]["Variables"]
    assert environment[env_var("serving_config_parameter")] == spec.SERVING_CONFIG_PARAMETER


def test_scheduled_functions_have_their_rules(template_json, function_ids) -> None:
    rules = resources_of(template_json, "AWS::Events::Rule")
    for name, expression in spec.FUNCTION_SCHEDULES:
        matching = [r for r in rules.values() if r["Properties"].get("ScheduleExpression") == expression
                    and any(function_ids[name] in repr(t["Arn"]) for t in r["Properties"]["Targets"])]
        assert len(matching) == 1, name
    permissions = resources_of(template_json, "AWS::Lambda::Permission")
    for name, _ in spec.FUNCTION_SCHEDULES:
        assert any(function_ids[name] in repr(p["Properties"]["FunctionName"])
                   and p["Properties"]["Principal"] == "events.amazonaws.com" for p in permissions.values()), name


def test_drift_monitor_starts_only_the_retraining_pipeline_and_publishes_only_fidelio_metrics(
        template_json, function_ids) -> None:
    permissions = _permissions(template_json, function_ids, "drift_monitor")
    start = [s for s in permissions if "sagemaker:StartPipelineExecution" in as_list(s["Action"])]
    assert len(start) == 1 and "pipeline/fidelio-retraining" in repr(start[0]["Resource"])
    assert not any(a.startswith("sagemaker:") and a != "sagemaker:StartPipelineExecution"
                   for s in permissions for a in as_list(s["Action"]))
    metrics = [s for s in permissions if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert metrics and all(s["Condition"]["StringEquals"]["cloudwatch:namespace"] == "Fidelio" for s in metrics)
    assert allowed(permissions, "s3:GetObject", "/decisions/*")
    assert allowed(permissions, "s3:PutObject", "/lifecycle/retrain-requests/*")
    environment = template_json["Resources"][function_ids["drift_monitor"]]["Properties"]["Environment"]["Variables"]
    assert environment[env_var("pipeline_name")] == "fidelio-retraining"


def test_batch_scorer_updates_members_and_puts_events_but_sends_nothing(template_json, function_ids) -> None:
    permissions = _permissions(template_json, function_ids, "score_members")
    assert allowed(permissions, "dynamodb:UpdateItem") and allowed(permissions, "dynamodb:Scan")
    assert allowed(permissions, "events:PutEvents")
    assert not any(a.startswith(("ses:", "sns:", "s3:Put", "sqs:SendMessage"))
                   for s in permissions for a in as_list(s["Action"]))
