"""EventBridge Scheduler: the group holding 'send later' schedules and the role they run as."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import spec


class SendScheduling(Construct):
    """Decide creates one-time `at(...)` schedules in this group; when one fires, Scheduler
    puts the send request on the dispatch queue as `role`, which may do nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        key: kms.IKey,
        dispatch_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.group = scheduler.ScheduleGroup(
            self,
            "Group",
            schedule_group_name=names.schedule_group,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            description="Assumed by EventBridge Scheduler to deliver scheduled sends",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                # Confused-deputy guard: only schedules of this group (Scheduler's source ARN
                # is the schedule *group*, not the schedule).
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": self.group.schedule_group_arn,
                    }
                },
            ),
        )
        dispatch_queue.grant(self.role, "sqs:SendMessage")
        # SQS with SSE-KMS: the sender needs a data key.
        key.grant(self.role, "kms:GenerateDataKey", "kms:Decrypt")

    def schedule_arns(self) -> str:
        """ARN pattern of every schedule in the group (names are chosen at run time)."""
        return Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.group.schedule_group_name}/*",
        )
