"""Email events come back to Fidelio; scheduled sends have their group; alarms reach a person."""

from __future__ import annotations

from typing import Any

from infra import spec
from tests.infrastructure.cfn_template import ref_id, resources_of

# Every type SES can publish except "send", which feedback drops (dispatch announces sends).
PUBLISHED_SES_EVENTS = [
    "delivery", "bounce", "complaint", "reject", "open", "click",
    "renderingFailure", "deliveryDelay", "subscription",
]  # fmt: skip


def test_every_ses_event_feedback_uses_flows_to_the_feedback_queue(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    names = spec.Names()
    # Given the configuration set dispatch sends with
    (config_set_id,) = resources_of(template_json, "AWS::SES::ConfigurationSet")
    config_set = template_json["Resources"][config_set_id]["Properties"]
    assert config_set["Name"] == names.ses_configuration_set
    # Then every event type but "send" is published to the SES events topic
    (destination,) = resources_of(template_json, "AWS::SES::ConfigurationSetEventDestination").values()
    event_destination = destination["Properties"]["EventDestination"]
    assert sorted(event_destination["MatchingEventTypes"]) == sorted(PUBLISHED_SES_EVENTS)
    assert event_destination["Enabled"] is True
    topic_id = ref_id(event_destination["SnsDestination"]["TopicARN"])
    topic = template_json["Resources"][topic_id]["Properties"]
    assert topic["TopicName"] == names.ses_events_topic
    # and the topic delivers the raw SES record to the feedback queue
    (subscription,) = resources_of(template_json, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "sqs"
    assert subscription["Properties"]["RawMessageDelivery"] is True
    assert ref_id(subscription["Properties"]["TopicArn"]) == topic_id
    assert ref_id(subscription["Properties"]["Endpoint"]) == queue_ids["feedback"][0]


def test_topics_are_encrypted_and_tls_only(template_json: dict[str, Any]) -> None:
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    topics = resources_of(template_json, "AWS::SNS::Topic")
    tls_only = {
        ref_id(topic)
        for policy in resources_of(template_json, "AWS::SNS::TopicPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for topic in policy["Properties"]["Topics"]
    }
    for topic_id, topic in topics.items():
        assert ref_id(topic["Properties"]["KmsMasterKeyId"]) == key_id, topic_id
    assert tls_only == set(topics)


def test_services_writing_into_encrypted_channels_may_use_the_key(
    template_json: dict[str, Any],
) -> None:
    (key,) = resources_of(template_json, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    principals = repr([s["Principal"] for s in statements])
    # SES and CloudWatch publish to encrypted topics, SNS and EventBridge to encrypted queues
    for service in ("ses", "cloudwatch", "sns", "events"):
        assert f"{service}.amazonaws.com" in principals, service
    # and none of those statements is open to other accounts or topics
    for statement in statements:
        if "Service" in statement.get("Principal", {}):
            assert "Condition" in statement, statement


def test_scheduled_sends_live_in_their_own_group(template_json: dict[str, Any]) -> None:
    (group,) = resources_of(template_json, "AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == spec.Names().schedule_group


def test_a_dead_letter_or_a_function_error_raises_an_alarm_to_the_alarm_topic(
    template_json: dict[str, Any],
    queue_ids: dict[str, tuple[str, str]],
    function_ids: dict[str, str],
) -> None:
    alarms = resources_of(template_json, "AWS::CloudWatch::Alarm").values()
    topics = resources_of(template_json, "AWS::SNS::Topic")
    (alarm_topic,) = [i for i, t in topics.items() if t["Properties"]["TopicName"] == "fidelio-alarms"]
    watched_dlqs, watched_functions = set(), set()
    # The drift alarm has its own test (test_ml_pipeline): a PSI threshold, retraining as action.
    alarms = [a for a in alarms if a["Properties"].get("MetricName") != spec.DRIFT_METRIC[1]]
    for alarm in alarms:
        properties = alarm["Properties"]
        # Every alarm fires on the first occurrence and notifies the alarm topic
        assert properties["ComparisonOperator"] == "GreaterThanThreshold"
        assert properties["Threshold"] == 0
        assert [ref_id(a) for a in properties["AlarmActions"]] == [alarm_topic]
        (dimension,) = properties["Dimensions"]
        if properties["MetricName"] == "ApproximateNumberOfMessagesVisible":
            watched_dlqs.add(dimension["Value"]["Fn::GetAtt"][0])
        elif properties["MetricName"] == "Errors":
            watched_functions.add(ref_id(dimension["Value"]))
    assert watched_dlqs == {dlq for _, dlq in queue_ids.values()}
    assert watched_functions == set(function_ids.values())


def test_the_data_bucket_is_private_versioned_encrypted_and_tiered(
    template_json: dict[str, Any],
) -> None:
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    buckets = resources_of(template_json, "AWS::S3::Bucket")
    (data,) = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    properties = data["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert ref_id(encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == key_id
    (rule,) = [r for r in properties["LifecycleConfiguration"]["Rules"] if "Transitions" in r]
    assert rule["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    # its access is logged to the other bucket
    logs_id = ref_id(properties["LoggingConfiguration"]["DestinationBucketName"])
    assert logs_id in buckets and buckets[logs_id] is not data


def test_every_ses_type_feedback_turns_into_an_event_is_published() -> None:
    from datetime import UTC, datetime

    from functions.domain.ses_events import feedback_events
    from infra.constructs.messaging import SES_EVENTS
    from tests.unit.test_ses_events import RECORDS

    def plain(kind: str) -> str:
        return kind.replace(" ", "").replace("_", "").lower()

    # Given the SES event types the configuration set publishes
    published = {plain(str(e.value)) for e in SES_EVENTS}
    # Then every type feedback turns into a Fidelio event is among them, and "Send" is not
    now = datetime(2026, 3, 2, tzinfo=UTC)
    used = {plain(kind) for kind, record in RECORDS.items() if feedback_events(record, now)[1]}
    assert used == {"delivery", "bounce", "complaint", "open", "click", "reject", "subscription"}
    assert used <= published and "send" not in published
