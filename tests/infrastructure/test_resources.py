"""The stack holds every kind of resource the design names, in the expected numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import spec

if TYPE_CHECKING:
    from aws_cdk.assertions import Template


def test_every_resource_kind_of_the_design_is_deployed(template: Template) -> None:
    # Given the synthesized FidelioStack
    # When counting resources by type
    # Then each part of the design is present
    queues_with_rules = [q for q in spec.QUEUES if q.detail_types]
    expected = {
        "AWS::KMS::Key": 1,
        "AWS::Events::EventBus": 1,
        "AWS::Events::Archive": 1,
        # + the retraining pipeline's weekly schedule and drift trigger
        "AWS::Events::Rule": len(queues_with_rules) + len(spec.SWEEP_SCHEDULES) + 2
        + len(spec.FUNCTION_SCHEDULES),  # drift monitor, batch scoring
        "AWS::SQS::Queue": 2 * len(spec.QUEUES),  # each queue and its DLQ
        "AWS::DynamoDB::GlobalTable": len(spec.TABLES),  # TableV2
        "AWS::Lambda::Function": len(spec.FUNCTIONS),
        "AWS::Lambda::EventSourceMapping": len([f for f in spec.FUNCTIONS if f.queue]),
        "AWS::Lambda::LayerVersion": 3,  # core, numpy, ml (infra/bundle.py)
        "AWS::S3::Bucket": 2,  # data + its access logs
        "AWS::SNS::Topic": 2,  # SES events + alarms
        "AWS::SES::ConfigurationSet": 1,
        "AWS::SES::ConfigurationSetEventDestination": 1,
        "AWS::Scheduler::ScheduleGroup": 1,
        "AWS::CloudWatch::Alarm": len(spec.QUEUES) + len(spec.FUNCTIONS) + 1,  # + feature drift
        "AWS::CloudWatch::Dashboard": 1,
        "AWS::SageMaker::Pipeline": 1,
        "AWS::SageMaker::ModelPackageGroup": 1,
        "AWS::SecretsManager::Secret": 2,  # link-signing keys, pseudonym salt
    }
    for resource_type, count in expected.items():
        template.resource_count_is(resource_type, count)
    assert len(spec.FUNCTIONS) >= 4


def test_the_key_that_encrypts_member_data_rotates(template: Template) -> None:
    # Given the customer-managed key
    # Then its rotation is on and it survives a stack deletion
    template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
        },
    )


def test_operators_get_the_names_they_need_as_outputs(template_json: dict) -> None:
    # Given the stack outputs
    outputs = template_json["Outputs"]
    # Then the bus, every queue URL and every table name are exported
    assert "BusName" in outputs
    for queue in spec.QUEUES:
        assert f"{queue.logical_name.capitalize()}QueueUrl" in outputs
        assert f"{queue.logical_name.capitalize()}DlqUrl" in outputs
    for table in spec.TABLES:
        assert f"{table.logical_name.capitalize()}TableName" in outputs
