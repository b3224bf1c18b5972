"""One SQS work queue per spec.QUEUES entry, each with its dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants, spec


@dataclass(frozen=True)
class WorkQueue:
    spec: spec.QueueSpec
    queue: sqs.Queue
    dlq: sqs.Queue


class WorkQueues(Construct):
    """Queues in front of every function: they absorb bursts, batch records and keep
    failures (after `max_receive_count` receives) in a DLQ for inspection and redrive."""

    def __init__(self, scope: Construct, construct_id: str, *, names: spec.Names, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._queues: dict[str, WorkQueue] = {}
        for queue_spec in spec.QUEUES:
            name = queue_spec.logical_name
            dlq = sqs.Queue(
                self,
                f"{name}-dlq",
                queue_name=names.dlq(name),
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                enforce_ssl=True,
                retention_period=Duration.days(constants.DLQ_RETENTION_DAYS),
            )
            queue = sqs.Queue(
                self,
                name,
                queue_name=names.queue(name),
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(queue_spec.visibility_timeout_s),
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=dlq, max_receive_count=queue_spec.max_receive_count
                ),
            )
            self._queues[name] = WorkQueue(queue_spec, queue, dlq)

    def __getitem__(self, logical_name: str) -> WorkQueue:
        return self._queues[logical_name]

    def __iter__(self):
        return iter(self._queues.values())
