"""Measure the simulator's response rates with a fixed, naive sending protocol, and the published
ranges they should land in (sources in docs/simulator.md).

Protocol: every day, every member who consented to `channel` x offers and has not opted out,
complained or hard-bounced (as a sender learns from feedback) gets one message at 10:00 local
time with the offer most relevant to them that the channel carries. The offer choice uses hidden
relevance: this is a calibration harness inside the simulator, not a policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from fidelio.sim.config import SimConfig
from fidelio.sim.world import Message, World
from functions.domain import events as ev
from functions.domain.offers import Offer


@dataclass(frozen=True)
class CitedRange:
    channel: str
    metric: str  # a ResponseRates property
    low: float
    high: float
    source: str


CITED_RANGES: tuple[CitedRange, ...] = (
    CitedRange(
        "email",
        "open_rate",
        0.15,
        0.30,
        "Mailchimp benchmarks (Oct 2019): 22.71% all; Campaign Monitor 2022: 21.5% avg, 17.1% retail",
    ),
    CitedRange(
        "email", "click_rate", 0.01, 0.05, "Mailchimp (Oct 2019): 2.91% all; Campaign Monitor 2022: 2.3% avg"
    ),
    CitedRange(
        "email",
        "unsubscribe_rate",
        0.001,
        0.005,
        "Mailchimp (Oct 2019): 0.25% all, 0.28% food services; Campaign Monitor 2022: 0.1%",
    ),
    CitedRange(
        "email",
        "complaint_rate",
        0.0,
        0.001,
        "Mailchimp (Mar 2018): abuse 0.012%; Gmail/Yahoo sender rules (2024): stay < 0.1%",
    ),
    CitedRange("email", "bounce_rate", 0.002, 0.015, "Mailchimp (Oct 2019): hard 0.40% + soft 0.61%"),
    CitedRange(
        "push",
        "open_rate",
        0.015,
        0.10,
        "Appboy/Braze Digits vol. 1 (2016): direct opens 6.1% Android, 2.0% iOS; Leanplum (2016): 3.48% / 1.77%",
    ),
    CitedRange(
        "sms",
        "click_rate",
        0.03,
        0.15,
        "Klaviyo campaign SMS benchmarks (US): 6.0-8.8% 'room for improvement', 8.9-14.5% 'good'",
    ),
    CitedRange(
        "sms",
        "unsubscribe_rate",
        0.002,
        0.015,
        "Klaviyo campaign SMS benchmarks: < 0.5% great, 0.5-1.2% good; campaigns 0.6-1.0%",
    ),
)


@dataclass(frozen=True)
class ResponseRates:
    channel: str
    sends: int
    delivered: int
    opens: int
    clicks: int
    conversions: int
    unsubscribes: int
    complaints: int
    bounces: int
    revenue: float
    # the same counts as the truth expects them (sums of World.expected_value over the sends):
    # rare events (unsubscribes, complaints) are judged on these, as a few thousand sends only
    # produce a handful of them
    expected: dict[str, float] = field(default_factory=dict)

    def expected_rate(self, metric: str) -> float:
        """The rate the truth expects for `metric` (a *_rate property name)."""
        if metric == "bounce_rate":
            return 1.0 - self.expected["delivered"] / self.sends if self.sends else 0.0
        count = _METRIC_COUNTS[metric]
        delivered = self.expected.get("delivered", 0.0)
        return self.expected.get(count, 0.0) / delivered if delivered else 0.0

    def _per_delivered(self, count: int) -> float:
        return count / self.delivered if self.delivered else 0.0

    @property
    def open_rate(self) -> float:
        return self._per_delivered(self.opens)

    @property
    def click_rate(self) -> float:
        return self._per_delivered(self.clicks)

    @property
    def conversion_rate(self) -> float:
        return self._per_delivered(self.conversions)

    @property
    def unsubscribe_rate(self) -> float:
        return self._per_delivered(self.unsubscribes)

    @property
    def complaint_rate(self) -> float:
        return self._per_delivered(self.complaints)

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sends if self.sends else 0.0

    def rate(self, metric: str) -> float:
        value: float = getattr(self, metric)
        return value


def run_daily_protocol(
    config: SimConfig,
    offers: Sequence[Offer],
    channel: str = "email",
    *,
    local_hour: int = 10,
    every_days: int = 1,
    messages_per_day: int = 1,
    pick: Literal["most_relevant", "least_relevant"] = "most_relevant",
    collect: list[BaseModel] | None = None,
) -> tuple[ResponseRates, World]:
    """Run a fresh world for `config.days` days under the protocol; returns the rates and the world.

    Offers rotate: the most (or least) relevant offer the member has not been sent in the last
    7 days, else the one sent longest ago. Extra messages of a day go out 4 hours apart."""
    world = World(config, offers)
    candidates = [
        o
        for o in world.offers.values()
        if channel in {c.value for c in o.channels} and o.topic.value == "offers"
    ]
    consent: dict[tuple[str, str], bool] = {}
    stopped: set[str] = set()
    zones: dict[str, str] = {}
    enrolled_at: dict[str, datetime] = {}
    tiers: dict[str, str] = {}
    last_sent: dict[tuple[str, str], datetime] = {}
    counts = dict.fromkeys(
        ("sends", "delivered", "opens", "clicks", "conversions", "unsubscribes", "complaints", "bounces"), 0
    )
    expected = dict.fromkeys(
        ("delivered", "opens", "clicks", "conversions", "unsubscribes", "complaints"), 0.0
    )
    revenue = 0.0

    def observe(event: BaseModel) -> None:
        if collect is not None:
            collect.append(event)
        if isinstance(event, ev.MemberEnrolled):
            zones[event.member_id] = event.time_zone
            enrolled_at[event.member_id] = event.occurred_at
            tiers[event.member_id] = event.tier
        elif isinstance(event, ev.TierChanged):
            tiers[event.member_id] = event.new_tier
        elif isinstance(event, ev.ConsentChanged) and event.channel.value == channel:
            consent[(event.member_id, event.topic.value)] = event.granted
        elif isinstance(event, ev.NotificationUnsubscribed | ev.NotificationComplained) or (
            isinstance(event, ev.NotificationBounced) and event.bounce_type == "Permanent"
        ):
            stopped.add(event.member_id)

    def choose(member_id: str, at: datetime) -> Offer | None:
        usable = [o for o in candidates if _usable(o, at, tiers[member_id])]
        if not usable:
            return None
        sign = 1.0 if pick == "most_relevant" else -1.0
        week_ago = at - timedelta(days=7)

        def rank(offer: Offer) -> tuple[bool, float, str]:
            sent = last_sent.get((member_id, offer.offer_id))
            if sent is None or sent < week_ago:
                return (True, sign * world.relevance(member_id, offer.offer_id, at), offer.offer_id)
            return (False, -sent.timestamp(), offer.offer_id)

        return max(usable, key=rank)

    for day in range(config.days):
        for event in world.events_for_day(day):
            observe(event)
        if day % every_days:
            continue
        date = world.day_start(day).date()
        for member_id in sorted(zones):
            if not consent.get((member_id, "offers"), False):
                continue
            zone = _zone(zones[member_id])
            for n in range(messages_per_day):
                sent_at = datetime.combine(date, time((local_hour + 4 * n) % 24), tzinfo=zone).astimezone(UTC)
                if sent_at < enrolled_at[member_id] or member_id in stopped:
                    continue
                offer = choose(member_id, sent_at)
                if offer is None:
                    continue
                last_sent[(member_id, offer.offer_id)] = sent_at
                decision_id = f"protocol-{channel}-{member_id}-{day:03d}-{n}"
                counts["sends"] += 1
                truth = world.expected_value(member_id, offer.offer_id, channel, sent_at, "offers")
                expected["delivered"] += truth.p_delivered
                expected["opens"] += truth.p_open if channel != "sms" else 0.0  # SMS opens are not tracked
                expected["clicks"] += truth.p_click
                expected["conversions"] += truth.p_convert
                expected["unsubscribes"] += truth.p_unsubscribe
                expected["complaints"] += truth.p_complaint
                for event in world.deliver(
                    Message(member_id, decision_id, channel, offer.offer_id, "offers", sent_at)
                ):
                    observe(event)
                    key = _COUNTED.get(ev.event_type_of(event))
                    if key:
                        counts[key] += 1
                    if isinstance(event, ev.PurchaseCompleted):
                        revenue += event.amount
    return ResponseRates(channel=channel, revenue=round(revenue, 2), expected=expected, **counts), world


_METRIC_COUNTS = {
    "open_rate": "opens",
    "click_rate": "clicks",
    "conversion_rate": "conversions",
    "unsubscribe_rate": "unsubscribes",
    "complaint_rate": "complaints",
}
_COUNTED = {
    "notification.delivered": "delivered",
    "notification.opened": "opens",
    "notification.clicked": "clicks",
    "notification.unsubscribed": "unsubscribes",
    "notification.complained": "complaints",
    "notification.bounced": "bounces",
    "offer.redeemed": "conversions",
}


def _usable(offer: Offer, at: datetime, tier: str) -> bool:
    return offer.active_at(at) and (not offer.tiers or tier in offer.tiers)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
