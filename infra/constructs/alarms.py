"""Alarms an operator acts on: a message in any DLQ, any function error."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import constants, spec
from infra.constructs.queues import WorkQueues


class OperationalAlarms(Construct):
    """Every alarm notifies one encrypted SNS topic; subscribe the on-call address to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        key: kms.IKey,
        queues: WorkQueues,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{names.prefix}-alarms",
            display_name="Fidelio alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic policy CDK writes (TLS only) replaces SNS's default one: CloudWatch needs
        # an explicit allow, limited to this account's alarms.
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        action = actions.SnsAction(self.topic)
        period = Duration.minutes(constants.ALARM_PERIOD_MINUTES)
        self.alarms: list[cloudwatch.Alarm] = []
        for work_queue in queues:
            dlq_name = names.dlq(work_queue.spec.logical_name)
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{work_queue.spec.logical_name}-dlq-not-empty",
                    alarm_name=f"{dlq_name}-not-empty",
                    alarm_description=f"Messages failed {work_queue.spec.max_receive_count} "
                    f"times and wait in {dlq_name}: inspect, fix, then redrive.",
                    metric=work_queue.dlq.metric_approximate_number_of_messages_visible(
                        period=period, statistic=cloudwatch.Stats.MAXIMUM
                    ),
                    threshold=0,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for name, function in functions.items():
            self.alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{name}-errors",
                    alarm_name=f"{names.prefix}-{name}-errors",
                    alarm_description=f"The {name} function failed whole invocations "
                    "(record-level failures go back to the queue, then to its DLQ).",
                    metric=function.metric_errors(period=period, statistic=cloudwatch.Stats.SUM),
                    threshold=0,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
