"""Least privilege, read off the template: no wildcard actions, no wildcard data resources,
and each function may do what its job needs and nothing its neighbours do."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure.cfn_template import (
    allowed,
    as_list,
    iam_statements,
    identity_statements,
    ref_id,
    resources_of,
    role_of_function,
    statements_of_role,
)

DATA_SERVICES = {"dynamodb", "s3", "sqs", "sns", "kms", "secretsmanager", "ssm", "events", "scheduler"}
# Actions IAM only accepts on Resource "*" (acknowledged, with these reasons, in cdk-nag).
NO_RESOURCE_LEVEL_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SMS_PUBLISH = "sns:Publish"  # a phone number has no ARN


def _is_account_root_delegation(owner: dict[str, Any], statement: dict[str, Any]) -> bool:
    """The default key-policy statement that lets IAM policies grant use of the key."""
    principal = statement.get("Principal", {}).get("AWS", {})
    return (
        owner["Type"] == "AWS::KMS::Key"
        and statement["Action"] == "kms:*"
        and ":root" in repr(principal)
        and "Condition" not in statement
    )


def wildcard_action_offenders(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(owner, action) of every Allow of "*" or of a whole service ("dynamodb:*", "s3:*", ...)
    or a prefix of one ("dynamodb:Get*" is fine; "dynamodb:*Item" is not a thing)."""
    offenders = []
    for owner_id, statement in iam_statements(template):
        owner = template["Resources"][owner_id]
        if statement["Effect"] != "Allow" or _is_account_root_delegation(owner, statement):
            continue
        for action in as_list(statement.get("Action", [])):
            if action == "*" or action.endswith(":*"):
                offenders.append((owner_id, action))
    return offenders


def _literal(resource: Any) -> str:
    """A resource as text, with references replaced by "<ref>" (a reference names one thing)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        return separator.join(_literal(part) for part in parts)
    return "<ref>"


# An ARN of a data service whose resource part names nothing: every table, bucket, queue...
_WILDCARD_DATA_ARN = re.compile(
    r"^arn:[^:]*:(?P<service>[a-z0-9-]+):[^:]*:[^:]*:(?:[A-Za-z-]+[/:])?\*$")


def wildcard_data_resource_offenders(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(owner, action, resource) of every identity-policy Allow of a data-service action on "*"
    or on an ARN that names no particular resource ("arn:aws:dynamodb:*:*:table/*")."""
    offenders = []
    for owner_id, statement in identity_statements(template):
        if statement["Effect"] != "Allow":
            continue
        actions = [a for a in as_list(statement["Action"]) if a == "*" or a.split(":")[0] in DATA_SERVICES]
        for resource in as_list(statement.get("Resource", [])):
            text = _literal(resource)
            # SMS has no ARN to name; test_wildcard_resources_carry_only_the_acknowledged_actions
            # keeps it to dispatch's role.
            named = [a for a in actions if not (a == SMS_PUBLISH and text == "*")]
            match = _WILDCARD_DATA_ARN.match(text)
            if text == "*" or text == "arn:aws:s3:::*" or (match and match["service"] in DATA_SERVICES):
                offenders += [(owner_id, action, text) for action in named]
    return offenders


def test_no_policy_grants_a_wildcard_action(template_json: dict[str, Any]) -> None:
    # Given every statement of every identity, resource and key policy
    # Then none allows "*" or a whole service ("dynamodb:*", "sagemaker:*", ...)
    assert wildcard_action_offenders(template_json) == []


def test_no_data_service_action_applies_to_every_resource(template_json: dict[str, Any]) -> None:
    assert wildcard_data_resource_offenders(template_json) == []


def _template_with(statement: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": {"BadPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}, "Roles": [{"Ref": "Role"}]}}}}


@pytest.mark.parametrize("action,resource", [
    ("dynamodb:*", {"Fn::GetAtt": ["Table", "Arn"]}),
    ("s3:*", {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]}),
    ("*", {"Fn::GetAtt": ["Queue", "Arn"]}),
    (["sqs:SendMessage", "sqs:*"], {"Fn::GetAtt": ["Queue", "Arn"]}),
])
def test_the_wildcard_action_check_catches_a_bad_policy(action: Any, resource: Any) -> None:
    # Given a template whose one policy allows a whole service (or everything)
    bad = _template_with({"Effect": "Allow", "Action": action, "Resource": resource})
    # Then the check names it
    assert wildcard_action_offenders(bad)
    # and a Deny of the same is no offence
    assert wildcard_action_offenders(_template_with({"Effect": "Deny", "Action": action, "Resource": "*"})) == []


@pytest.mark.parametrize("action,resource", [
    ("dynamodb:GetItem", "*"),
    ("s3:GetObject", "arn:aws:s3:::*"),
    ("dynamodb:Query", {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":dynamodb:",
                                          {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":table/*"]]}),
    ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:*"),
    (["xray:PutTraceSegments", "s3:PutObject"], ["*"]),
])
def test_the_wildcard_resource_check_catches_a_bad_policy(action: Any, resource: Any) -> None:
    bad = _template_with({"Effect": "Allow", "Action": action, "Resource": resource})
    assert wildcard_data_resource_offenders(bad)


def test_the_wildcard_resource_check_accepts_named_resources() -> None:
    # Given grants the way CDK writes them: one table and its indexes, one bucket's objects
    good = [
        ("dynamodb:Query", [{"Fn::GetAtt": ["Table", "Arn"]},
                            {"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/*"]]}]),
        ("s3:PutObject", {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]}),
        ("scheduler:CreateSchedule", "arn:aws:scheduler:eu-west-1:123456789012:schedule/fidelio-sends/*"),
        ("xray:PutTraceSegments", "*"),
    ]
    for action, resource in good:
        assert wildcard_data_resource_offenders(
            _template_with({"Effect": "Allow", "Action": action, "Resource": resource})) == [], action


def test_wildcard_resources_carry_only_the_acknowledged_actions(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    dispatch_role = role_of_function(template_json, function_ids["dispatch"])
    for owner_id, statement in identity_statements(template_json):
        if "*" not in as_list(statement["Resource"]):
            continue
        roles = [ref_id(r) for r in template_json["Resources"][owner_id]["Properties"]["Roles"]]
        acknowledged = NO_RESOURCE_LEVEL_ACTIONS | ({SMS_PUBLISH} if roles == [dispatch_role] else set())
        if statement.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace") == "Fidelio":
            acknowledged |= {"cloudwatch:PutMetricData"}  # no resource ARN: held to Fidelio's namespace
        assert set(as_list(statement["Action"])) <= acknowledged, owner_id


def test_resource_policies_allow_only_named_principals(template_json: dict[str, Any]) -> None:
    # Given queue, topic and bucket policies
    for policy_type in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
        for policy_id, policy in resources_of(template_json, policy_type).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                # Then anonymous principals appear only in Deny statements (TLS only)
                if statement.get("Principal") == "*" or statement.get("Principal") == {"AWS": "*"}:
                    assert statement["Effect"] == "Deny", policy_id
                elif statement["Effect"] == "Allow":
                    # and a service may act only for this account's resources
                    assert "Condition" in statement, (policy_id, statement)


@pytest.fixture(scope="module")
def permissions(template_json: dict[str, Any], function_ids: dict[str, str]):
    """{function: its role's statements}"""
    return {
        name: statements_of_role(template_json, role_of_function(template_json, function_id))
        for name, function_id in function_ids.items()
    }


def test_ingest_updates_profiles_and_hands_over_to_decide_only(
    permissions: dict, table_ids: dict, queue_ids: dict
) -> None:
    ingest = permissions["ingest"]
    assert allowed(ingest, "dynamodb:UpdateItem", table_ids["members"])
    assert allowed(ingest, "dynamodb:PutItem", table_ids["idempotency"])
    assert allowed(ingest, "sqs:SendMessage", queue_ids["decide"][0])
    # not decisions, not sends
    assert not allowed(ingest, "dynamodb:PutItem", table_ids["decisions"])
    assert not allowed(ingest, "sqs:SendMessage", queue_ids["dispatch"][0])
    assert not allowed(ingest, "ses:SendEmail")
    assert not allowed(ingest, "scheduler:CreateSchedule")


def test_decide_reads_profiles_and_offers_and_plans_sends(
    permissions: dict, table_ids: dict, queue_ids: dict, template_json: dict
) -> None:
    decide = permissions["decide"]
    assert allowed(decide, "dynamodb:BatchGetItem", table_ids["members"])
    assert allowed(decide, "dynamodb:GetItem", table_ids["offers"])
    assert not allowed(decide, "dynamodb:PutItem", table_ids["members"])
    assert not allowed(decide, "dynamodb:PutItem", table_ids["offers"])
    assert allowed(decide, "dynamodb:PutItem", table_ids["decisions"])
    assert allowed(decide, "dynamodb:UpdateItem", table_ids["ledger"])
    assert allowed(decide, "sqs:SendMessage", queue_ids["dispatch"][0])
    assert allowed(decide, "scheduler:CreateSchedule", "schedule/fidelio-sends/*")
    (scheduler_role,) = [
        i
        for i, r in resources_of(template_json, "AWS::IAM::Role").items()
        if "scheduler.amazonaws.com" in repr(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert allowed(decide, "iam:PassRole", scheduler_role)
    (bucket_id,) = [
        i
        for i, b in resources_of(template_json, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" in b["Properties"]
    ]
    assert allowed(decide, "s3:PutObject", bucket_id)
    # Reads only model versions from the registry prefix (the serving config names them)
    reads = [s for s in decide if "s3:GetObject" in as_list(s["Action"])]
    assert reads and all("/models/offers/*" in repr(s["Resource"]) for s in reads)
    assert not allowed(decide, "ses:SendEmail")
    assert not allowed(decide, "sns:Publish")


def test_dispatch_sends_only_as_fidelio_through_its_configuration_set(
    permissions: dict, table_ids: dict, template_json: dict
) -> None:
    dispatch = permissions["dispatch"]
    (config_set_id,) = resources_of(template_json, "AWS::SES::ConfigurationSet")
    # Given the statement allowing email sends
    (ses_statement,) = [s for s in dispatch if "ses:SendEmail" in as_list(s["Action"])]
    resources = [repr(r) for r in as_list(ses_statement["Resource"])]
    # Then it names the sender (address or domain identity) and Fidelio's configuration set
    assert len(resources) == 3
    assert any(":identity/rewards@example.com'" in r for r in resources)
    assert any(":identity/example.com'" in r for r in resources)
    assert any(":configuration-set/" in r and config_set_id in r for r in resources)
    assert allowed(dispatch, "sns:Publish")
    assert allowed(dispatch, "scheduler:DeleteSchedule", "schedule/fidelio-sends/*")
    assert allowed(dispatch, "dynamodb:UpdateItem", table_ids["decisions"])  # the send claim
    assert not allowed(dispatch, "dynamodb:PutItem", table_ids["members"])
    assert not allowed(dispatch, "s3:PutObject")


def test_feedback_records_outcomes_and_republishes_them(
    permissions: dict, table_ids: dict, template_json: dict
) -> None:
    feedback = permissions["feedback"]
    (bus_id,) = resources_of(template_json, "AWS::Events::EventBus")
    assert allowed(feedback, "events:PutEvents", bus_id)
    assert allowed(feedback, "dynamodb:UpdateItem", table_ids["decisions"])
    assert not allowed(feedback, "dynamodb:UpdateItem", table_ids["members"])
    assert not allowed(feedback, "ses:SendEmail")
    assert not allowed(feedback, "sqs:SendMessage", "Queuesdispatch")


def test_the_scheduler_role_can_only_drop_sends_on_the_dispatch_queue(
    template_json: dict[str, Any], queue_ids: dict
) -> None:
    (role_id,) = [
        i
        for i, r in resources_of(template_json, "AWS::IAM::Role").items()
        if "scheduler.amazonaws.com" in repr(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    role = template_json["Resources"][role_id]["Properties"]
    # Given the role EventBridge Scheduler assumes
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    (group_id,) = resources_of(template_json, "AWS::Scheduler::ScheduleGroup")
    # Then only schedules of Fidelio's group, in this account, may assume it
    assert ref_id(trust["Condition"]["StringEquals"]["aws:SourceArn"]) == group_id
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # and it may only send to the dispatch queue (with the key to encrypt the message)
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    statements = statements_of_role(template_json, role_id)
    granted = sorted(
        (action, ref_id(resource))
        for s in statements
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    )
    assert granted == sorted(
        [
            ("sqs:SendMessage", queue_ids["dispatch"][0]),
            ("kms:Decrypt", key_id),
            ("kms:GenerateDataKey", key_id),
        ]
    )
    assert "ManagedPolicyArns" not in role
