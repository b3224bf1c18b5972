"""The custom event bus, its archive, and one routing rule per queue that has detail-types."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra import constants, spec
from infra.constructs.queues import WorkQueues

# EventBridge pattern keys -> EventPattern fields (the spec speaks EventBridge's JSON).
_PATTERN_FIELDS = {
    "account": "account",
    "detail": "detail",
    "detail-type": "detail_type",
    "id": "id",
    "region": "region",
    "resources": "resources",
    "source": "source",
    "time": "time",
    "version": "version",
}


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """The CDK form of an EventBridge JSON pattern from spec.rule_pattern."""
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"pattern keys {sorted(unknown)} unsupported; known: {sorted(_PATTERN_FIELDS)}")
    return events.EventPattern(**{_PATTERN_FIELDS[key]: value for key, value in pattern.items()})


class EventBackbone(Construct):
    """Producers publish to the bus; rules fan member events out to the work queues.

    The archive keeps every event published to this bus so history can be replayed
    (a new feature, a rebuilt profile, a backfill of training data).
    """

    def __init__(self, scope: Construct, construct_id: str, *, names: spec.Names, queues: WorkQueues) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=names.bus)
        self.archive = self.bus.archive(
            "Archive",
            archive_name=f"{names.bus}-all-events",
            description="Every event published to the Fidelio bus, for replay",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(constants.ARCHIVE_RETENTION_DAYS),
        )
        self.rules: dict[str, events.Rule] = {}
        for work_queue in queues:
            queue_spec = work_queue.spec
            if not queue_spec.detail_types:
                continue  # fed by a Lambda, the scheduler or SNS, not by the bus
            self.rules[queue_spec.logical_name] = events.Rule(
                self,
                f"to-{queue_spec.logical_name}",
                rule_name=names.rule(queue_spec.logical_name),
                description=f"Routes {len(queue_spec.detail_types)} detail-types to "
                f"{names.queue(queue_spec.logical_name)}",
                event_bus=self.bus,
                event_pattern=event_pattern(spec.rule_pattern(queue_spec)),
                targets=[targets.SqsQueue(work_queue.queue)],
            )

        # Scheduled sweeps (win-back, points expiry, weekly digest): a schedule rule on the
        # default bus puts a sweep.requested event, in the contract's shape, on decide's queue.
        decide_queue = next(q.queue for q in queues if q.spec.logical_name == "decide")
        self.sweep_rules: dict[str, events.Rule] = {}
        for sweep, expression in spec.SWEEP_SCHEDULES:
            self.sweep_rules[sweep] = events.Rule(
                self,
                f"sweep-{sweep}",
                rule_name=f"{names.prefix}-sweep-{sweep.replace('_', '-')}",
                description=f"Daily/weekly {sweep} sweep over all members",
                schedule=events.Schedule.expression(expression),
                targets=[targets.SqsQueue(decide_queue, message=events.RuleTargetInput.from_object({
                    "detail-type": "sweep.requested",
                    "source": spec.EVENT_SOURCE,
                    "detail": {
                        "event_id": events.EventField.event_id,
                        "occurred_at": events.EventField.time,
                        "schema_version": 1,
                        "sweep": sweep,
                    },
                }))],
            )
