"""The in-app offers API: a queue-less function behind an IAM-authenticated Function URL, that
reads profiles and offers, writes placements to the decisions table, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from infra import spec
from tests.infrastructure.cfn_template import (
    allowed,
    as_list,
    ref_id,
    resources_of,
    role_of_function,
    statements_of_role,
)

OFFERS_API = next(f for f in spec.FUNCTIONS if f.logical_name == "offers_api")
TABLE_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


@pytest.fixture(scope="module")
def offers_api(template_json: dict[str, Any], function_ids: dict[str, str]) -> dict[str, Any]:
    return template_json["Resources"][function_ids["offers_api"]]["Properties"]


@pytest.fixture(scope="module")
def permissions(template_json: dict[str, Any], function_ids: dict[str, str]) -> list[dict[str, Any]]:
    return statements_of_role(template_json, role_of_function(template_json, function_ids["offers_api"]))


def test_the_offers_api_is_a_function_without_a_queue(offers_api: dict[str, Any]) -> None:
    # Given the spec's offers API
    # Then it runs its handler, scores with the model and is fed by no queue
    assert OFFERS_API.queue is None and OFFERS_API.needs_model
    assert offers_api["Handler"] == "functions.handlers.offers_api.handler"
    assert len(offers_api["Layers"]) == 3  # core + numpy + ml


def test_its_url_accepts_only_sigv4_signed_requests(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    # Given the Function URL of the offers API
    urls = {i: u for i, u in resources_of(template_json, "AWS::Lambda::Url").items()
            if ref_id(u["Properties"]["TargetFunctionArn"]) == function_ids["offers_api"]}
    # Then there is one, with IAM auth
    (url,) = urls.values()
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    # and no resource policy opens the function to anyone (callers get identity policies)
    for permission in resources_of(template_json, "AWS::Lambda::Permission").values():
        assert ref_id(permission["Properties"]["FunctionName"]) != function_ids["offers_api"]
    # and its address is a stack output
    (url_id,) = urls
    assert template_json["Outputs"]["OffersApiUrl"]["Value"] == {"Fn::GetAtt": [url_id, "FunctionUrl"]}


def test_it_reads_members_and_offers_and_writes_only_decisions(
    permissions: list[dict[str, Any]], table_ids: dict[str, str]
) -> None:
    # Given the offers API's role
    # Then it reads profiles and the catalog
    assert allowed(permissions, "dynamodb:GetItem", table_ids["members"])
    assert allowed(permissions, "dynamodb:Scan", table_ids["offers"])
    # and puts placements in the decisions table
    assert allowed(permissions, "dynamodb:PutItem", table_ids["decisions"])
    # and cannot write profiles, offers, the ledger or idempotency records
    for table in ("members", "offers", "ledger", "idempotency"):
        for action in TABLE_WRITES:
            assert not allowed(permissions, action, table_ids[table]), (table, action)
    assert not allowed(permissions, "dynamodb:GetItem", table_ids["ledger"])


def test_it_cannot_send_schedule_or_publish(permissions: list[dict[str, Any]]) -> None:
    actions = {action for s in permissions for action in as_list(s["Action"])}
    # Given every action the role may take
    # Then none of them sends a message, queues work or publishes an event
    assert not {a for a in actions if a.split(":")[0] in {"sqs", "ses", "sns", "scheduler", "events"}}
    # and its only S3 access reads model versions (test_lifecycle_functions: the registry prefix)
    assert {a for a in actions if a.startswith("s3:")} == {"s3:GetObject"}
