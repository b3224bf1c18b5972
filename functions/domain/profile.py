"""A member's live profile and the one function that applies an event to it.

The same `apply_event` runs online (ingest, one event at a time, stored with a
conditional write) and offline (replaying history for training), so the features a
model is trained on are the features it is served.

Counters are exponentially decayed (constant size, no windows to expire): each keeps its
value at its last update time; reading it at `now` decays it further.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from functions.domain import events as ev

HALF_LIFE_DAYS = {
    "spend": 90.0,
    "purchases": 90.0,
    "category": 90.0,
    "engagement": 60.0,
    "hour": 60.0,
    "app": 30.0,
    "offers": 180.0,
}
MAX_CATEGORIES = 48
MAX_RECENT_SENDS = 40
MAX_OFFER_HISTORY = 40
RECENT_SEND_WINDOW_S = 7 * 86400
TIERS = ("bronze", "silver", "gold", "platinum")
TIER_THRESHOLDS = {"bronze": 0, "silver": 1000, "gold": 5000, "platinum": 15000}


def tier_rank(tier: str) -> int:
    return TIERS.index(tier) if tier in TIERS else 0


def points_to_next_tier(profile: MemberProfile) -> float:
    if profile.points_to_next_tier is not None:
        return float(profile.points_to_next_tier)
    rank = tier_rank(profile.tier)
    if rank + 1 >= len(TIERS):
        return 0.0
    return float(max(0, TIER_THRESHOLDS[TIERS[rank + 1]] - profile.points_balance))


def _ts(moment: datetime) -> float:
    return moment.timestamp()


class Decayed(BaseModel):
    """sum_i w_i * 2^(-(t - t_i) / half_life), stored as its value at time `t`."""

    model_config = ConfigDict(extra="forbid")
    v: float = 0.0
    t: float = 0.0

    def add(self, amount: float, at: float, half_life_days: float) -> None:
        rate = math.log(2) / (half_life_days * 86400.0)
        if self.v == 0.0 and self.t == 0.0:
            self.v, self.t = amount, at
        elif at >= self.t:
            self.v = self.v * math.exp(-rate * (at - self.t)) + amount
            self.t = at
        else:  # late event: decay it to the counter's time instead
            self.v += amount * math.exp(-rate * (self.t - at))

    def value(self, now: float, half_life_days: float) -> float:
        if self.v == 0.0:
            return 0.0
        rate = math.log(2) / (half_life_days * 86400.0)
        return self.v * math.exp(-rate * max(0.0, now - self.t))


class ChannelEngagement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sent: Decayed = Field(default_factory=Decayed)
    opened: Decayed = Field(default_factory=Decayed)
    clicked: Decayed = Field(default_factory=Decayed)
    sent_total: int = 0
    opened_total: int = 0
    clicked_total: int = 0


class ConsentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    granted: bool
    source: str
    at: float


class MemberProfile(BaseModel):
    """Everything Fidelio knows about a member, derived only from events."""

    model_config = ConfigDict(extra="forbid")

    member_id: str
    enrolled_at: float | None = None
    time_zone: str = "UTC"
    locale: str = "en"
    tier: str = "bronze"
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_endpoint_arn: str | None = None
    birth_year: int | None = None

    # "channel:topic" -> latest consent
    consent: dict[str, ConsentRecord] = Field(default_factory=dict)
    # channel -> reason ("hard_bounce", "complaint")
    suppressed: dict[str, str] = Field(default_factory=dict)

    points_balance: int = 0
    points_expiring: int = 0
    points_expire_at: float | None = None
    points_to_next_tier: int | None = None

    purchase_count: int = 0
    total_spend: float = 0.0
    first_purchase_at: float | None = None
    last_purchase_at: float | None = None
    spend: Decayed = Field(default_factory=Decayed)
    purchases: Decayed = Field(default_factory=Decayed)
    categories: dict[str, Decayed] = Field(default_factory=dict)

    engagement: dict[str, ChannelEngagement] = Field(default_factory=dict)
    # 168 local hour-of-week buckets of decayed engagement (opens, clicks, app opens)
    hour_of_week: list[float] = Field(default_factory=lambda: [0.0] * 168)
    hour_of_week_t: float = 0.0
    app_opens: Decayed = Field(default_factory=Decayed)
    last_app_open_at: float | None = None
    last_cart_abandoned_at: float | None = None
    last_cart_value: float = 0.0

    offers_received: Decayed = Field(default_factory=Decayed)
    offers_redeemed: Decayed = Field(default_factory=Decayed)
    offers_redeemed_total: int = 0
    offers_received_total: int = 0
    last_offer_redeemed_at: float | None = None
    # purchases that used an offer or coupon (purchase.completed with offer_id set)
    offer_purchases: Decayed = Field(default_factory=Decayed)
    offer_purchases_total: int = 0
    last_offer_purchase_at: float | None = None

    recent_sends: list[float] = Field(default_factory=list)  # marketing sends, last 7 days
    last_send_by_topic: dict[str, float] = Field(default_factory=dict)
    last_send_by_offer: dict[str, float] = Field(default_factory=dict)
    unsubscribes: int = 0
    complaints: int = 0

    churn_risk: float | None = None
    clv: float | None = None
    scores_at: float | None = None

    last_event_at: float = 0.0


def new_profile(member_id: str) -> MemberProfile:
    return MemberProfile(member_id=member_id)


def consent_key(channel: str, topic: str) -> str:
    return f"{channel}:{topic}"


def local_hour_of_week(moment: float, time_zone: str) -> int:
    local = datetime.fromtimestamp(moment, tz=UTC).astimezone(ZoneInfo(time_zone))
    return local.weekday() * 24 + local.hour


def _add_hour_engagement(profile: MemberProfile, at: float, weight: float) -> None:
    rate = math.log(2) / (HALF_LIFE_DAYS["hour"] * 86400.0)
    bucket = local_hour_of_week(at, profile.time_zone)
    if at >= profile.hour_of_week_t:
        factor = math.exp(-rate * (at - profile.hour_of_week_t)) if profile.hour_of_week_t else 1.0
        if factor != 1.0:
            profile.hour_of_week = [v * factor for v in profile.hour_of_week]
        profile.hour_of_week[bucket] += weight
        profile.hour_of_week_t = at
    else:
        profile.hour_of_week[bucket] += weight * math.exp(-rate * (profile.hour_of_week_t - at))


def _channel(profile: MemberProfile, channel: str) -> ChannelEngagement:
    if channel not in profile.engagement:
        profile.engagement[channel] = ChannelEngagement()
    return profile.engagement[channel]


def _trim_categories(profile: MemberProfile, at: float) -> None:
    if len(profile.categories) <= MAX_CATEGORIES:
        return
    half_life = HALF_LIFE_DAYS["category"]
    ranked = sorted(
        profile.categories.items(), key=lambda kv: (-kv[1].value(at, half_life), kv[0])
    )
    profile.categories = dict(ranked[:MAX_CATEGORIES])


def _bounded_latest(mapping: dict[str, float], limit: int) -> dict[str, float]:
    if len(mapping) <= limit:
        return mapping
    return dict(sorted(mapping.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def apply_event(profile: MemberProfile, event: Any) -> MemberProfile:
    """Apply one validated event to the profile (mutates and returns it)."""
    at = _ts(event.occurred_at)
    profile.last_event_at = max(profile.last_event_at, at)
    handler = _APPLY.get(type(event))
    if handler is not None:
        handler(profile, event, at)
    return profile


def _enrolled(p: MemberProfile, e: ev.MemberEnrolled, at: float) -> None:
    p.enrolled_at = at if p.enrolled_at is None else min(p.enrolled_at, at)
    p.time_zone, p.locale, p.tier = e.time_zone, e.locale, e.tier
    p.first_name, p.email, p.phone = e.first_name, e.email, e.phone
    p.push_endpoint_arn, p.birth_year = e.push_endpoint_arn, e.birth_year
    p.points_balance = max(p.points_balance, e.points_balance)


def _updated(p: MemberProfile, e: ev.MemberUpdated, at: float) -> None:
    for name in e.model_fields_set & {
        "time_zone", "locale", "tier", "first_name", "email", "phone", "push_endpoint_arn"
    }:
        value = getattr(e, name)
        if value is None and name in {"time_zone", "locale", "tier"}:
            continue
        setattr(p, name, value)
        if name == "email":
            p.suppressed.pop("email", None)  # a new address starts clean


def _consent(p: MemberProfile, e: ev.ConsentChanged, at: float) -> None:
    key = consent_key(e.channel.value, e.topic.value)
    current = p.consent.get(key)
    if current is None or current.at <= at:
        p.consent[key] = ConsentRecord(granted=e.granted, source=e.source, at=at)


def _purchase(p: MemberProfile, e: ev.PurchaseCompleted, at: float) -> None:
    p.purchase_count += 1
    p.total_spend += e.amount
    p.first_purchase_at = at if p.first_purchase_at is None else min(p.first_purchase_at, at)
    p.last_purchase_at = at if p.last_purchase_at is None else max(p.last_purchase_at, at)
    p.spend.add(e.amount, at, HALF_LIFE_DAYS["spend"])
    p.purchases.add(1.0, at, HALF_LIFE_DAYS["purchases"])
    if e.offer_id:
        p.offer_purchases.add(1.0, at, HALF_LIFE_DAYS["offers"])
        p.offer_purchases_total += 1
        p.last_offer_purchase_at = at if p.last_offer_purchase_at is None else max(p.last_offer_purchase_at, at)
    for item in e.line_items:
        value = item.quantity * item.unit_price or item.quantity
        p.categories.setdefault(item.category, Decayed()).add(value, at, HALF_LIFE_DAYS["category"])
    _trim_categories(p, at)
    # When the member shops is when they are about: the strongest activity signal most
    # members give (few open the app, and opens need messages first).
    _add_hour_engagement(p, at, 0.5)


def _points_earned(p: MemberProfile, e: ev.PointsEarned, at: float) -> None:
    p.points_balance += e.points


def _points_redeemed(p: MemberProfile, e: ev.PointsRedeemed, at: float) -> None:
    p.points_balance = max(0, p.points_balance - e.points)


def _points_expiring(p: MemberProfile, e: ev.PointsExpiring, at: float) -> None:
    p.points_expiring = e.points
    expires = datetime(e.expires_on.year, e.expires_on.month, e.expires_on.day, tzinfo=UTC)
    p.points_expire_at = expires.timestamp()


def _tier(p: MemberProfile, e: ev.TierChanged, at: float) -> None:
    p.tier = e.new_tier
    p.points_to_next_tier = e.points_to_next_tier


def _cart(p: MemberProfile, e: ev.CartAbandoned, at: float) -> None:
    if p.last_cart_abandoned_at is None or at >= p.last_cart_abandoned_at:
        p.last_cart_abandoned_at, p.last_cart_value = at, e.value


def _app(p: MemberProfile, e: ev.AppOpened, at: float) -> None:
    p.app_opens.add(1.0, at, HALF_LIFE_DAYS["app"])
    p.last_app_open_at = at if p.last_app_open_at is None else max(p.last_app_open_at, at)
    _add_hour_engagement(p, at, 0.5)


def _offer_redeemed(p: MemberProfile, e: ev.OfferRedeemed, at: float) -> None:
    p.offers_redeemed.add(1.0, at, HALF_LIFE_DAYS["offers"])
    p.offers_redeemed_total += 1
    p.last_offer_redeemed_at = at if p.last_offer_redeemed_at is None else max(p.last_offer_redeemed_at, at)


def _sent(p: MemberProfile, e: ev.NotificationSent, at: float) -> None:
    engagement = _channel(p, e.channel.value)
    engagement.sent.add(1.0, at, HALF_LIFE_DAYS["engagement"])
    engagement.sent_total += 1
    if e.topic is ev.Topic.TRANSACTIONAL:
        return
    _count_for_caps(p, e, at)
    if e.offer_id:
        p.offers_received.add(1.0, at, HALF_LIFE_DAYS["offers"])
        p.offers_received_total += 1


def _withheld(p: MemberProfile, e: ev.NotificationWithheld, at: float) -> None:
    """A holdout member's would-be send: it counts for the caps (so the holdout's decisions
    follow the treated members' caps), not as anything the member received."""
    if e.topic is not ev.Topic.TRANSACTIONAL:
        _count_for_caps(p, e, at)


def _count_for_caps(p: MemberProfile, e: ev.NotificationSent | ev.NotificationWithheld, at: float) -> None:
    """What the frequency caps and the offer-repeat rule read: recent marketing sends, the last
    send per topic and per offer."""
    p.recent_sends = sorted([*p.recent_sends, at])[-MAX_RECENT_SENDS:]
    p.recent_sends = [t for t in p.recent_sends if t >= p.last_event_at - RECENT_SEND_WINDOW_S]
    topic = e.topic.value
    p.last_send_by_topic[topic] = max(p.last_send_by_topic.get(topic, 0.0), at)
    if e.offer_id:
        p.last_send_by_offer[e.offer_id] = max(p.last_send_by_offer.get(e.offer_id, 0.0), at)
        p.last_send_by_offer = _bounded_latest(p.last_send_by_offer, MAX_OFFER_HISTORY)


def _opened(p: MemberProfile, e: ev.NotificationOpened, at: float) -> None:
    engagement = _channel(p, e.channel.value)
    engagement.opened.add(1.0, at, HALF_LIFE_DAYS["engagement"])
    engagement.opened_total += 1
    _add_hour_engagement(p, at, 1.0)


def _clicked(p: MemberProfile, e: ev.NotificationClicked, at: float) -> None:
    engagement = _channel(p, e.channel.value)
    engagement.clicked.add(1.0, at, HALF_LIFE_DAYS["engagement"])
    engagement.clicked_total += 1
    _add_hour_engagement(p, at, 1.0)


def _bounced(p: MemberProfile, e: ev.NotificationBounced, at: float) -> None:
    if e.bounce_type == "Permanent":
        p.suppressed[e.channel.value] = "hard_bounce"


def _complained(p: MemberProfile, e: ev.NotificationComplained, at: float) -> None:
    p.complaints += 1
    p.suppressed[e.channel.value] = "complaint"


def _unsubscribed(p: MemberProfile, e: ev.NotificationUnsubscribed, at: float) -> None:
    p.unsubscribes += 1
    topics = [t for t in ev.Topic if t is not ev.Topic.TRANSACTIONAL] if e.all_topics else [e.topic]
    for topic in topics:
        key = consent_key(e.channel.value, topic.value)
        current = p.consent.get(key)
        if current is None or current.at <= at:
            p.consent[key] = ConsentRecord(granted=False, source="unsubscribe_link", at=at)


_APPLY: dict[type, Any] = {
    ev.MemberEnrolled: _enrolled,
    ev.MemberUpdated: _updated,
    ev.ConsentChanged: _consent,
    ev.PurchaseCompleted: _purchase,
    ev.PointsEarned: _points_earned,
    ev.PointsRedeemed: _points_redeemed,
    ev.PointsExpiring: _points_expiring,
    ev.TierChanged: _tier,
    ev.CartAbandoned: _cart,
    ev.AppOpened: _app,
    ev.OfferRedeemed: _offer_redeemed,
    ev.NotificationSent: _sent,
    ev.NotificationWithheld: _withheld,
    ev.NotificationOpened: _opened,
    ev.NotificationClicked: _clicked,
    ev.NotificationBounced: _bounced,
    ev.NotificationComplained: _complained,
    ev.NotificationUnsubscribed: _unsubscribed,
}


def replay(member_id: str, history: list[Any]) -> MemberProfile:
    """Offline: the profile after `history` (sorted by time, then event id)."""
    profile = new_profile(member_id)
    for event in sorted(history, key=lambda e: (e.occurred_at, e.event_id)):
        apply_event(profile, event)
    return profile
