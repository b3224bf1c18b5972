"""Triggers are data: which event (or sweep) asks for a decision, under which conditions, and
which kinds of offers and topics it may lead to. Edit TRIGGERS (or load a YAML with the same
fields) to change when Fidelio considers messaging a member — no code branch per trigger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from functions.domain.profile import MemberProfile


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


DEFAULT_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(name="cart_abandoned", on="cart.abandoned", offer_kinds=("coupon", "reminder"),
            topics=("offers", "reminders")),
    Trigger(name="cross_sell", on="purchase.completed", offer_kinds=("coupon", "points")),
    Trigger(name="points_expiring", on="points.expiring", offer_kinds=("reminder", "coupon"),
            topics=("points", "offers"), max_days_to_points_expiry=14),
    Trigger(name="close_to_next_tier", on="points.earned", offer_kinds=("points", "content"),
            topics=("tier", "offers"), max_points_to_next_tier=300),
    Trigger(name="tier_changed", on="tier.changed", offer_kinds=("content", "points"),
            topics=("tier",)),
    Trigger(name="app_engagement", on="app.opened", offer_kinds=("coupon", "points")),
    Trigger(name="win_back", on="sweep:win_back", offer_kinds=("coupon",), min_days_inactive=30),
    Trigger(name="weekly_digest", on="sweep:weekly_digest", offer_kinds=("coupon", "points", "content")),
    Trigger(name="points_expiry_sweep", on="sweep:points_expiry", offer_kinds=("reminder",),
            topics=("points",), max_days_to_points_expiry=7),
)


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
        from functions.domain.features import points_to_next_tier

        gap = points_to_next_tier(profile)
        if gap <= 0 or gap > trigger.max_points_to_next_tier:
            return False
    if trigger.min_days_inactive is not None:
        last = max(profile.last_purchase_at or 0.0, profile.last_app_open_at or 0.0)
        if last and (t - last) / 86400.0 < trigger.min_days_inactive:
            return False
    return True
