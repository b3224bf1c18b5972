"""Sends for later: one-time EventBridge Scheduler schedules that put the decision on the
dispatch queue at the chosen local time, deleted after they fire."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from functions.domain.decision_record import Decision
from functions.settings import Settings

_AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$")


class InvalidSchedule(ValueError):
    pass


def at_expression(moment: datetime, time_zone: str) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` in the member's local time (Scheduler's format)."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"at({local.strftime('%Y-%m-%dT%H:%M:%S')})"


def parse_at(expression: str, time_zone: str) -> datetime:
    """The UTC moment of an `at(...)` expression; moto accepts garbage, so we check our own."""
    match = _AT.match(expression)
    if not match:
        raise InvalidSchedule(f"not a one-time schedule expression: {expression!r}")
    y, mo, d, h, mi, s = (int(g) for g in match.groups())
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def schedule_name(decision_id: str) -> str:
    return decision_id[:64]


def schedule_dispatch(scheduler: Any, settings: Settings, decision: Decision) -> None:
    send_at = decision.outgoing.send_at
    assert send_at is not None
    zone = decision.time_zone
    moment = datetime.fromtimestamp(send_at, tz=UTC)
    expression = at_expression(moment, zone)
    parse_at(expression, zone)
    try:
        scheduler.create_schedule(
            Name=schedule_name(decision.decision_id),
            GroupName=settings.schedule_group,
            ScheduleExpression=expression,
            ScheduleExpressionTimezone=zone,
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": settings.dispatch_queue_arn,
                "RoleArn": settings.scheduler_role_arn,
                "Input": json.dumps({"decision_id": decision.decision_id}),
            },
        )
    except scheduler.exceptions.ConflictException:
        pass  # already scheduled by an earlier delivery of the same trigger
