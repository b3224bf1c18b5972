"""Every work queue has its DLQ, the spec's timeouts, KMS encryption and TLS only."""

from __future__ import annotations

from typing import Any

from infra import spec
from tests.infrastructure.cfn_template import ref_id, resources_of


def test_queue_names_equal_the_spec_names(template_json: dict[str, Any]) -> None:
    # Given the queues of the stack
    names = spec.Names()
    queues = resources_of(template_json, "AWS::SQS::Queue").values()
    # Then their names are the ones the local stand-in creates
    assert sorted(q["Properties"]["QueueName"] for q in queues) == sorted(
        [names.queue(q.logical_name) for q in spec.QUEUES] + [names.dlq(q.logical_name) for q in spec.QUEUES]
    )


def test_each_queue_redrives_to_its_own_dlq_after_the_spec_receive_count(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    for queue_spec in spec.QUEUES:
        queue_id, dlq_id = queue_ids[queue_spec.logical_name]
        properties = template_json["Resources"][queue_id]["Properties"]
        # Given a work queue
        redrive = properties["RedrivePolicy"]
        # Then a message failing max_receive_count times lands in that queue's DLQ
        assert ref_id(redrive["deadLetterTargetArn"]) == dlq_id
        assert redrive["maxReceiveCount"] == queue_spec.max_receive_count
        # and is invisible to other consumers for the spec's time
        assert properties["VisibilityTimeout"] == queue_spec.visibility_timeout_s
        # and DLQs keep messages the longest SQS allows, for inspection and redrive
        dlq = template_json["Resources"][dlq_id]["Properties"]
        assert dlq["MessageRetentionPeriod"] == 14 * 86400
        assert "RedrivePolicy" not in dlq


def test_queues_are_encrypted_with_the_fidelio_key(template_json: dict[str, Any]) -> None:
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    for name, queue in resources_of(template_json, "AWS::SQS::Queue").items():
        assert ref_id(queue["Properties"].get("KmsMasterKeyId")) == key_id, name


def test_queues_refuse_requests_without_tls(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    # Given the queue policies
    denied: set[str | None] = set()
    for policy in resources_of(template_json, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                denied |= {ref_id(q) for q in policy["Properties"]["Queues"]}
    # Then every queue, DLQs included, denies plain-HTTP access
    all_queues = {queue_id for pair in queue_ids.values() for queue_id in pair}
    assert all_queues <= denied
