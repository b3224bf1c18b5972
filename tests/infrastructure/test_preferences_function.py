"""The preferences function: a public Function URL (the signed link token authenticates the
member), a role that touches profiles, the ledger, the bus and the signing-key secret only, and
the unsubscribe links of dispatch pointing at it when no public domain is configured."""

from __future__ import annotations

from typing import Any

import pytest

from functions.settings import env_var
from infra import spec
from tests.infrastructure.cfn_template import (
    allowed,
    as_list,
    ref_id,
    resources_of,
    role_of_function,
    statements_of_role,
)

PREFERENCES = next(f for f in spec.FUNCTIONS if f.logical_name == "preferences")


@pytest.fixture(scope="module")
def permissions(template_json: dict[str, Any], function_ids: dict[str, str]) -> list[dict[str, Any]]:
    return statements_of_role(template_json, role_of_function(template_json, function_ids["preferences"]))


def link_signing_secret_id(template_json: dict[str, Any]) -> str:
    (secret_id,) = [i for i, s in resources_of(template_json, "AWS::SecretsManager::Secret").items()
                    if "unsubscribe and preference links" in s["Properties"]["Description"]]
    return secret_id


def _url(template_json: dict[str, Any], function_id: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(i, u) for i, u in resources_of(template_json, "AWS::Lambda::Url").items()
                if ref_id(u["Properties"]["TargetFunctionArn"]) == function_id]
    return found


def test_members_reach_it_through_a_public_url_without_a_queue(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    # Given the preferences function of the spec
    assert PREFERENCES.queue is None and not PREFERENCES.needs_model
    # Then its URL needs no AWS credentials (mailbox providers post the one-click unsubscribe)
    url_id, url = _url(template_json, function_ids["preferences"])
    assert url["Properties"]["AuthType"] == "NONE"
    # and its resource policy lets anyone call that URL, and invoke the function only through it
    permissions = sorted(
        (p["Properties"] for p in resources_of(template_json, "AWS::Lambda::Permission").values()
         if ref_id(p["Properties"]["FunctionName"]) == function_ids["preferences"]),
        key=lambda p: p["Action"])
    assert [{k: v for k, v in p.items() if k != "FunctionName"} for p in permissions] == [
        {"Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True},
        {"Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE"},
    ]
    # and its address is a stack output
    assert template_json["Outputs"]["PreferencesUrl"]["Value"] == {"Fn::GetAtt": [url_id, "FunctionUrl"]}


def test_unsubscribe_links_in_emails_point_at_it_by_default(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    url_id, _ = _url(template_json, function_ids["preferences"])
    variables = template_json["Resources"][function_ids["dispatch"]]["Properties"]["Environment"]["Variables"]
    assert variables[env_var("unsubscribe_base_url")] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "unsubscribe"]]}


def test_it_changes_profiles_and_the_ledger_publishes_and_reads_the_signing_key(
    permissions: list[dict[str, Any]], table_ids: dict[str, str], template_json: dict[str, Any]
) -> None:
    (bus_id,) = resources_of(template_json, "AWS::Events::EventBus")
    secret_id = link_signing_secret_id(template_json)
    # Given the preferences function's role
    # Then it reads and updates profiles, and writes consent history and privacy requests
    for action in ("dynamodb:GetItem", "dynamodb:PutItem"):
        assert allowed(permissions, action, table_ids["members"])
    for action in ("dynamodb:Query", "dynamodb:PutItem"):
        assert allowed(permissions, action, table_ids["ledger"])
    # and publishes consent.changed / privacy.requested on Fidelio's bus
    assert allowed(permissions, "events:PutEvents", bus_id)
    # and reads the link signing key
    assert allowed(permissions, "secretsmanager:GetSecretValue", secret_id)


def test_it_touches_nothing_else(permissions: list[dict[str, Any]], table_ids: dict[str, str],
                                 template_json: dict[str, Any]) -> None:
    # Given every action and resource of the role
    actions = {action for s in permissions for action in as_list(s["Action"])}
    # Then it never sends, queues, schedules or reads the data bucket
    assert not {a for a in actions if a.split(":")[0] in {"sqs", "ses", "sns", "scheduler", "s3", "sagemaker"}}
    # and touches no other table, and no other secret
    for table in ("decisions", "offers", "idempotency"):
        assert not any(table_ids[table] in repr(s["Resource"]) for s in permissions), table
    secret_reads = [s for s in permissions if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert secret_reads and all(as_list(s["Resource"]) == [{"Ref": link_signing_secret_id(template_json)}]
                                for s in secret_reads)
    # and every statement names its resources (the X-Ray trace actions excepted, which have none)
    for statement in permissions:
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_ingest_may_append_consent_history(template_json: dict[str, Any], function_ids: dict[str, str],
                                           table_ids: dict[str, str]) -> None:
    ingest = statements_of_role(template_json, role_of_function(template_json, function_ids["ingest"]))
    assert allowed(ingest, "dynamodb:PutItem", table_ids["ledger"])
