"""The policy's limits and the guardrails that enforce them, per candidate: contact point,
consent, suppression, offer eligibility, quiet hours and frequency caps. Each guardrail
returns a reason code when the candidate must not be sent.

Pure Python on purpose (no numpy): dispatch re-checks them at send time and must stay light;
functions/domain/decision.py applies them to every candidate and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, consent_key


@dataclass(frozen=True)
class PolicyConfig:
    quiet_start_hour: int = 21  # local; quiet from 21:00 ...
    quiet_end_hour: int = 8  # ... to 08:00
    max_per_day: int = 1
    max_per_week: int = 2  # marketing messages per member per rolling 7 days
    topic_gap_hours: dict[str, float] = field(
        default_factory=lambda: {"offers": 48.0, "points": 72.0, "tier": 72.0, "reminders": 24.0}
    )
    offer_repeat_days: float = 14.0
    slot_hours: int = 24
    exploration: Literal["epsilon", "softmax", "none"] = "epsilon"
    epsilon: float = 0.05
    temperature: float = 0.05
    channel_cost: dict[str, float] = field(
        default_factory=lambda: {"email": 0.002, "push": 0.001, "sms": 0.04}
    )
    unsubscribe_cost: float = 10.0  # value lost when a member opts out of a channel
    base_unsubscribe_risk: dict[str, float] = field(
        default_factory=lambda: {"email": 0.002, "push": 0.002, "sms": 0.004}
    )
    fatigue_growth: float = 0.6  # unsubscribe risk grows by this factor per message in 7 days
    delay_cost_per_hour: float = 0.002  # relative value lost per hour of waiting
    # What a conversion is worth: "revenue" = the member's expected basket (their average
    # purchase, `default_basket` without history) — what the programme's net value counts;
    # "offer_value" = the catalog's `value` (margin minus discount, when the catalog sets it).
    objective: Literal["revenue", "offer_value"] = "revenue"
    default_basket: float = 30.0
    seed: int = 0
    holdout_share: float = 0.05
    holdout_salt: str = "fidelio-holdout-v1"


# --- guardrails: each returns a reason code when the candidate must not be sent ----------


def _contact_ok(profile: MemberProfile, channel: str) -> bool:
    if channel == "email":
        return bool(profile.email)
    if channel == "push":
        return bool(profile.push_endpoint_arn)
    return bool(profile.phone)


def channel_guardrail(profile: MemberProfile, channel: str, topic: str, transactional: bool) -> str | None:
    if not _contact_ok(profile, channel):
        return "no_contact_point"
    if channel in profile.suppressed:
        return f"suppressed_{profile.suppressed[channel]}"
    consent = profile.consent.get(consent_key(channel, "transactional" if transactional else topic))
    if transactional:
        return "consent_withdrawn" if consent is not None and not consent.granted else None
    if consent is None or not consent.granted:
        return "no_consent"
    return None


def offer_guardrail(profile: MemberProfile, offer: Offer, now: datetime, config: PolicyConfig,
                    budget_left: dict[str, int] | None) -> str | None:
    if not offer.active_at(now):
        return "offer_inactive"
    if offer.tiers and profile.tier not in offer.tiers:
        return "tier_mismatch"
    if budget_left is not None and offer.budget is not None and budget_left.get(offer.offer_id, offer.budget) <= 0:
        return "budget_exhausted"
    last = profile.last_send_by_offer.get(offer.offer_id)
    if last is not None and now.timestamp() - last < config.offer_repeat_days * 86400:
        return "recently_sent_offer"
    return None


def is_quiet_hour(local_hour: int, config: PolicyConfig) -> bool:
    start, end = config.quiet_start_hour, config.quiet_end_hour
    if start == end:
        return False
    return local_hour >= start or local_hour < end if start > end else start <= local_hour < end


def cap_guardrail(profile: MemberProfile, topic: str, send_at: float, config: PolicyConfig) -> str | None:
    sends = profile.recent_sends
    if sum(1 for s in sends if send_at - 86400 < s <= send_at) >= config.max_per_day:
        return "daily_cap"
    if sum(1 for s in sends if send_at - 7 * 86400 < s <= send_at) >= config.max_per_week:
        return "weekly_cap"
    last_topic = profile.last_send_by_topic.get(topic)
    gap = config.topic_gap_hours.get(topic)
    if last_topic is not None and gap is not None and send_at - last_topic < gap * 3600:
        return "topic_cap"
    return None


def local_time(epoch: float, time_zone: str) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone(ZoneInfo(time_zone))


def next_allowed(moment: datetime, time_zone: str, config: PolicyConfig) -> datetime:
    """The first moment at or after `moment` outside quiet hours (for re-timing at dispatch)."""
    local = moment.astimezone(ZoneInfo(time_zone))
    for _ in range(48):
        if not is_quiet_hour(local.hour, config):
            return local.astimezone(UTC)
        local = (local + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return moment
