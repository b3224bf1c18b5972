"""Triggers are data: which event (or sweep) asks for a decision, under which conditions, and
which kinds of offers and topics it may lead to. They live in triggers.json beside this file;
change that file (no code branch per trigger) to change when Fidelio considers a message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from functions.domain.profile import MemberProfile, points_to_next_tier


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    on: str  # event type, or "sweep:<name>"
    offer_kinds: tuple[str, ...] = ("coupon", "points", "reminder", "content")
    topics: tuple[str, ...] = ("offers",)
    # Conditions on the profile after the event was applied (all must hold).
    max_days_to_points_expiry: float | None = None
    max_points_to_next_tier: float | None = None
    min_days_inactive: float | None = None
    transactional: bool = False


TRIGGERS_FILE = Path(__file__).with_name("triggers.json")


class InvalidTriggers(ValueError):
    """The trigger configuration cannot be used; the message says which entry and why."""


def load_triggers(path: Path | str = TRIGGERS_FILE) -> tuple[Trigger, ...]:
    """Triggers from a JSON file `{"triggers": [...]}` (shipped and deployed with the code:
    functions/domain/triggers.json)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InvalidTriggers(f"{path}: cannot read triggers ({error})") from error
    entries = raw.get("triggers") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise InvalidTriggers(f"{path}: expected a top-level 'triggers' list")
    triggers = []
    for number, entry in enumerate(entries, 1):
        try:
            triggers.append(Trigger.model_validate(entry))
        except ValidationError as error:
            first = error.errors()[0]
            raise InvalidTriggers(f"{path}: trigger {number}: {'.'.join(map(str, first['loc']))}: "
                                  f"{first['msg']}") from error
    names = [t.name for t in triggers]
    if len(set(names)) != len(names):
        raise InvalidTriggers(f"{path}: trigger names must be unique")
    return tuple(triggers)


DEFAULT_TRIGGERS: tuple[Trigger, ...] = load_triggers()


@dataclass(frozen=True)
class DecisionRequest:
    """Ask for one decision: for `member_id`, because of `trigger`, caused by event `cause_id`."""

    member_id: str
    trigger: Trigger
    cause_id: str
    occurred_at: datetime
    context: dict[str, Any] | None = None


def triggers_for(on: str, triggers: tuple[Trigger, ...] = DEFAULT_TRIGGERS) -> list[Trigger]:
    return [t for t in triggers if t.on == on]


def conditions_hold(trigger: Trigger, profile: MemberProfile, now: datetime) -> bool:
    t = now.timestamp()
    if trigger.max_days_to_points_expiry is not None:
        if profile.points_expire_at is None or profile.points_expiring <= 0:
            return False
        days = (profile.points_expire_at - t) / 86400.0
        if not 0 <= days <= trigger.max_days_to_points_expiry:
            return False
    if trigger.max_points_to_next_tier is not None:
        gap = points_to_next_tier(profile)
        if gap <= 0 or gap > trigger.max_points_to_next_tier:
            return False
    if trigger.min_days_inactive is not None:
        last = max(profile.last_purchase_at or 0.0, profile.last_app_open_at or 0.0)
        if last and (t - last) / 86400.0 < trigger.min_days_inactive:
            return False
    return True
