"""The privacy function (GDPR export and erasure): fed by its own queue from the bus, allowed to
read and delete the member's data everywhere it lives, and nothing else; the pseudonym salt is a
secret only the functions that check erasures can read."""

from __future__ import annotations

from typing import Any

import pytest

from functions.settings import env_var
from infra import constants, spec
from tests.infrastructure.cfn_template import (
    allowed,
    as_list,
    resources_of,
    role_of_function,
    statements_of_role,
)


@pytest.fixture(scope="module")
def permissions(template_json: dict[str, Any], function_ids: dict[str, str]) -> list[dict[str, Any]]:
    return statements_of_role(template_json, role_of_function(template_json, function_ids["privacy"]))


def test_privacy_requests_have_their_own_queue_and_rule(template_json: dict[str, Any]) -> None:
    # Given the rules on the bus
    rules = resources_of(template_json, "AWS::Events::Rule")
    # Then exactly one routes privacy.requested, and it routes nothing else
    routing = [r for r in rules.values() if "privacy.requested" in repr(r["Properties"].get("EventPattern"))]
    assert len(routing) == 1
    assert routing[0]["Properties"]["EventPattern"]["detail-type"] == ["privacy.requested"]
    assert spec.queue_spec("privacy").batch_size == 1


def test_privacy_may_delete_the_member_everywhere(permissions: list, table_ids: dict) -> None:
    for table in ("members", "decisions", "ledger", "idempotency"):
        assert allowed(permissions, "dynamodb:DeleteItem", table_ids[table]), table
        assert allowed(permissions, "dynamodb:Query", table_ids[table]), table
    assert allowed(permissions, "scheduler:DeleteSchedule", "schedule/fidelio-sends/*")
    for prefix in ("decisions/", "training/", "events/", "privacy/"):
        assert allowed(permissions, "s3:DeleteObjectVersion", f"/{prefix}*"), prefix
        assert allowed(permissions, "s3:PutObject", f"/{prefix}*"), prefix
    assert allowed(permissions, "s3:ListBucketVersions")


def test_privacy_reads_model_cards_but_cannot_change_models_or_send(permissions: list) -> None:
    assert allowed(permissions, "s3:GetObject", "/models/*")
    assert not allowed(permissions, "s3:PutObject", "/models/*")
    assert not allowed(permissions, "s3:DeleteObject", "/models/*")
    assert not any(a.startswith(("ses:", "sns:", "events:PutEvents", "scheduler:CreateSchedule"))
                   for s in permissions for a in as_list(s["Action"]))


def test_only_the_functions_that_check_erasures_get_the_pseudonym_salt(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    (salt_id,) = [i for i in resources_of(template_json, "AWS::SecretsManager::Secret") if "PseudonymSalt" in i]
    for name, function_id in function_ids.items():
        variables = template_json["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        statements = statements_of_role(template_json, role_of_function(template_json, function_id))
        reads_salt = allowed(statements, "secretsmanager:GetSecretValue", salt_id)
        if name in constants.PSEUDONYM_SALT_FUNCTIONS:
            assert variables[env_var("pseudonym_salt_secret")] == {"Ref": salt_id}, name
            assert reads_salt, name
        else:
            assert env_var("pseudonym_salt_secret") not in variables, name
            assert not reads_salt, name


def test_exports_of_personal_data_expire(template_json: dict[str, Any]) -> None:
    # Given the data bucket's lifecycle rules
    rules = [rule for bucket in resources_of(template_json, "AWS::S3::Bucket").values()
             for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])]
    # Then exports (and their old versions) expire
    (exports,) = [r for r in rules if r.get("Prefix") == "privacy/exports/"]
    assert exports["ExpirationInDays"] == constants.PRIVACY_EXPORT_EXPIRY_DAYS
    assert exports["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
