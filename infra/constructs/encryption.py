"""The customer-managed KMS key that encrypts every Fidelio data store and channel."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class DataKey(Construct):
    """One CMK (rotation on) for tables, bucket, queues, topics and log groups.

    AWS services that write into encrypted resources on Fidelio's behalf (SES and CloudWatch
    publishing to encrypted topics, CloudWatch Logs) get key use through the key policy,
    each restricted to this account.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Fidelio: encrypts member data, decisions, queues, topics and logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # SES (configuration-set events) and CloudWatch (alarm actions) publish to topics
        # encrypted with this key: SNS asks them for a data key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowServicesPublishingToEncryptedTopics",
                principals=[
                    iam.ServicePrincipal("ses.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        # Lambda log groups are encrypted too: logs carry (masked) member identifiers.
        log_groups_of_this_account = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups_of_this_account}},
            )
        )
