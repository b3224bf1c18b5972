"""Encryption and transport, swept over every resource of each kind (so a table, queue, DLQ,
topic, bucket or log group added later is covered without a new test): at rest under
Fidelio's customer-managed key, in transit TLS only."""

from __future__ import annotations

from typing import Any

from tests.infrastructure.cfn_template import as_list, ref_id, resources_of

# S3 server access logs can only be delivered to an SSE-S3 bucket (docs/security.md).
SSE_S3_ALLOWED = "LoggingConfiguration"


def _the_key(template: dict[str, Any]) -> str:
    (key_id,) = resources_of(template, "AWS::KMS::Key")
    return key_id


def _is_key(value: Any, key_id: str) -> bool:
    return ref_id(value) == key_id


def test_every_table_queue_topic_and_log_group_is_encrypted_with_the_fidelio_key(
    template_json: dict[str, Any],
) -> None:
    key = _the_key(template_json)
    unencrypted = []
    for table_id, table in resources_of(template_json, "AWS::DynamoDB::GlobalTable").items():
        sse = table["Properties"].get("SSESpecification", {})
        replicas = table["Properties"].get("Replicas", [])
        keys = [r.get("SSESpecification", {}).get("KMSMasterKeyId") for r in replicas]
        if sse.get("SSEType") != "KMS" or not keys or not all(_is_key(k, key) for k in keys):
            unencrypted.append(table_id)
    for table_id, table in resources_of(template_json, "AWS::DynamoDB::Table").items():
        sse = table["Properties"].get("SSESpecification", {})
        if not _is_key(sse.get("KMSMasterKeyId"), key):
            unencrypted.append(table_id)
    for kind in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
        for resource_id, resource in resources_of(template_json, kind).items():
            if not _is_key(resource["Properties"].get("KmsMasterKeyId"), key):
                unencrypted.append(resource_id)
    for group_id, group in resources_of(template_json, "AWS::Logs::LogGroup").items():
        if not _is_key(group["Properties"].get("KmsKeyId"), key):
            unencrypted.append(group_id)
    for secret_id, secret in resources_of(template_json, "AWS::SecretsManager::Secret").items():
        if not _is_key(secret["Properties"].get("KmsKeyId"), key):
            unencrypted.append(secret_id)
    assert unencrypted == []
    # and there is something to check: every queue has its DLQ, both encrypted
    queues = resources_of(template_json, "AWS::SQS::Queue")
    assert len(queues) >= 8 and sum(q["Properties"]["QueueName"].endswith("-dlq") for q in queues.values()) >= 4


def test_buckets_use_the_key_except_the_access_log_bucket(template_json: dict[str, Any]) -> None:
    key = _the_key(template_json)
    buckets = resources_of(template_json, "AWS::S3::Bucket")
    for bucket_id, bucket in buckets.items():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        logs_here = any(SSE_S3_ALLOWED in b["Properties"] and ref_id(
            b["Properties"][SSE_S3_ALLOWED].get("DestinationBucketName")) == bucket_id for b in buckets.values())
        if logs_here:
            assert default["SSEAlgorithm"] == "AES256", bucket_id
        else:
            assert default["SSEAlgorithm"] == "aws:kms" and _is_key(default["KMSMasterKeyID"], key), bucket_id
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}


def _denies_plain_http(statements: list[dict[str, Any]]) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        and s.get("Principal") in ("*", {"AWS": "*"})
        for s in statements
    )


def test_every_bucket_queue_and_topic_refuses_requests_without_tls(template_json: dict[str, Any]) -> None:
    policies = {
        "AWS::S3::BucketPolicy": ("AWS::S3::Bucket", lambda p: [p["Bucket"]]),
        "AWS::SQS::QueuePolicy": ("AWS::SQS::Queue", lambda p: p["Queues"]),
        "AWS::SNS::TopicPolicy": ("AWS::SNS::Topic", lambda p: p["Topics"]),
    }
    for policy_type, (resource_type, targets) in policies.items():
        protected: set[str | None] = set()
        for policy in resources_of(template_json, policy_type).values():
            properties = policy["Properties"]
            if _denies_plain_http(properties["PolicyDocument"]["Statement"]):
                protected.update(ref_id(t) for t in as_list(targets(properties)))
        # Then every resource of the kind has a policy denying plain HTTP to everyone
        missing = set(resources_of(template_json, resource_type)) - protected
        assert missing == set(), (resource_type, missing)


def test_no_deployed_function_can_have_crashes_injected(template_json: dict[str, Any]) -> None:
    from functions import faults

    # The fault-injection seam (functions/faults.py) is armed only through these variables.
    for function_id, function in resources_of(template_json, "AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not {faults.ENV_POINTS, faults.ENV_MODE} & set(variables), function_id
