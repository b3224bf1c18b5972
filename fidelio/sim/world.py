"""The closed-loop world: members live day by day (`events_for_day`), receive what Fidelio sends
(`deliver`) and react. `expected_value` and `stats` expose the truth, for evaluation only; the
engine must never call them to decide.

Every random draw comes from a generator that belongs to one member and one purpose (traits,
history, daily life, reactions), seeded by (seed, purpose, member index) and consumed in that
member's own order. So one member's life does not depend on how many other members there are or
in which order members are simulated or messaged, and the same seed and the same calls give
byte-identical events.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel

from fidelio.sim import response
from fidelio.sim.config import SimConfig
from fidelio.sim.response import CONVERSION_BASKET, KIND_CONVERSION, LoyaltyView, ResponseProbabilities
from fidelio.sim.traits import (
    CATEGORIES,
    CATEGORY_INDEX,
    CATEGORY_ITEM_EUR,
    TIER_EARN_MULTIPLIER,
    TIER_THRESHOLDS,
    TIERS,
    MemberTraits,
    draw_traits,
    index_of,
    tier_of,
    utc_offset_hours,
)
from functions.domain import events as ev
from functions.domain.offers import Offer

PURPOSE_HISTORY, PURPOSE_DAY, PURPOSE_DELIVER = 2, 3, 4
DAY = timedelta(days=1)
EXPIRY_NOTICE_DAYS = 30
ITEM_EUR: list[float] = CATEGORY_ITEM_EUR.tolist()
ORGANIC_POINTS_VOUCHER = 500  # points a member may turn into a voucher at checkout
LINK_BASE = "https://shop.example.com/offers/"


class UnknownMember(KeyError):
    """A member id this world never had (e.g. a typo, or a member of another world)."""


class UnknownOffer(KeyError):
    """An offer id that is not in the catalog the world was given."""


@dataclass(frozen=True)
class Message:
    """One message Fidelio sent. `sent_at` is when it left (timezone-aware)."""

    member_id: str
    decision_id: str
    channel: str
    offer_id: str | None
    topic: str
    sent_at: datetime


@dataclass(frozen=True)
class ExpectedValue:
    """The truth about sending one message now, from hidden traits and the current state.
    Myopic: it does not include what this message does to the member's later messages."""

    p_delivered: float
    p_open: float  # unconditional
    p_click: float
    p_convert: float  # P(offer redeemed because of this message); organic redemptions are extra
    expected_revenue: float  # p_convert x expected basket of the converting purchase (EUR)
    expected_offer_value: float  # p_convert x offer.value (the business value of a redemption)
    p_unsubscribe: float
    p_complaint: float
    relevance: float  # hidden 0..1 (0.5 = an average offer for this member)
    eligible: bool
    violation: str | None  # why this send would break a rule ("unsubscribed", "no_consent", ...)


@dataclass
class MemberState:
    """What changes about a member during the run (hidden from the engine)."""

    enrolled: bool = False
    enrolled_at: datetime | None = None
    churned_at: datetime | None = None
    qualifying_points: float = 0.0
    points_balance: int = 0
    expiring_points: int = 0
    expiring_on: date | None = None
    expiry_notified: bool = False
    last_purchase_at: datetime | None = None
    received: list[tuple[float, str | None]] = field(default_factory=list)  # marketing (sent_at, offer)
    opted_out: set[tuple[str, str]] = field(default_factory=set)
    complained: set[str] = field(default_factory=set)
    hard_bounced: set[str] = field(default_factory=set)
    decision_ids: set[str] = field(default_factory=set)
    messages: int = 0
    orders: int = 0
    conversions: int = 0
    revenue: float = 0.0

    def loyalty(self) -> LoyaltyView:
        return LoyaltyView(
            self.qualifying_points,
            self.points_balance,
            self.expiring_points,
            self.expiring_on,
            self.last_purchase_at or self.enrolled_at,
        )

    def churned_by(self, moment: datetime) -> bool:
        return self.churned_at is not None and self.churned_at <= moment


@dataclass(frozen=True)
class SimStats:
    """Counters of the run so far. Rates are per delivered message."""

    members: int
    enrolled: int
    churned_during_run: int
    dormant_at_start: int
    messages: int
    messages_by_channel: dict[str, int]
    messages_per_member: dict[str, int]
    delivered: int
    opened: int
    clicked: int
    bounced: int
    unsubscribes: int
    complaints: int
    message_conversions: int
    message_revenue: float
    organic_redemptions: int
    purchases: int
    revenue: float
    revenue_by_member: dict[str, float]
    sends_to_churned: int
    duplicates: int  # the same decision_id delivered more than once
    violations: dict[str, int]  # no_consent, unsubscribed, complained, hard_bounced, not_enrolled

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "total_violations": self.total_violations,
        }


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


class World:
    """A population of simulated members and the offer catalog they can redeem."""

    def __init__(self, config: SimConfig, offers: Sequence[Offer]):
        self.config = config
        self.offers: dict[str, Offer] = {}
        for offer in offers:
            if offer.offer_id in self.offers:
                raise ValueError(f"offer {offer.offer_id!r} appears twice in the catalog")
            self.offers[offer.offer_id] = offer
        self._offer_list = [self.offers[k] for k in sorted(self.offers)]
        self._traits: list[MemberTraits] = [draw_traits(config, i) for i in range(config.members)]
        self._states: list[MemberState] = [MemberState() for _ in range(config.members)]
        self._next_day = 0
        self._hour_weights: dict[tuple[int, float], list[float]] = {}
        self._category_relevance: dict[tuple[int, str], float] = {}
        self._preference_cdfs: dict[int, list[float]] = {}
        self._reaction_cdfs: dict[tuple[int, int, float], list[float]] = {}
        self._rngs: dict[tuple[int, int], np.random.Generator] = {}
        self._counts: Counter[str] = Counter()
        self._by_channel: Counter[str] = Counter()
        self._violations: Counter[str] = Counter(
            {k: 0 for k in ("no_consent", "unsubscribed", "complained", "hard_bounced", "not_enrolled")}
        )
        self._money = {"message_revenue": 0.0, "revenue": 0.0}

    # ---------------------------------------------------------------- public API

    @property
    def member_ids(self) -> list[str]:
        return [t.member_id for t in self._traits]

    @property
    def next_day(self) -> int:
        return self._next_day

    def day_start(self, day: int) -> datetime:
        return self.config.start.astimezone(UTC) + day * DAY

    def events_for_day(self, day: int) -> list[BaseModel]:
        """Everything members do on `day` (0-based, UTC days from `config.start`), sorted by time.
        Day 0 also carries existing members' enrolment, consents and purchase history."""
        if day != self._next_day:
            raise ValueError(f"days are simulated in order: expected day {self._next_day}, got {day}")
        self._next_day += 1
        start = self.day_start(day)
        end = start + DAY
        out: list[BaseModel] = []
        for traits, state in zip(self._traits, self._states, strict=True):
            if not state.enrolled:
                if traits.enrolled_at >= end:
                    continue
                self._enrol(traits, state, out)
            self._loyalty_notices(traits, state, start, out)
            if state.churned_by(start):
                continue
            rng = self._rng(PURPOSE_DAY, traits.index)
            self._live_day(traits, state, rng, start, out)
        out.sort(key=lambda e: (e.occurred_at, e.event_id))  # type: ignore[attr-defined]
        return out

    def deliver(self, message: Message) -> list[BaseModel]:
        """The member receives one message; returns the feedback (and any conversion) it causes,
        sorted by time. Times may fall on later days."""
        index, traits, state = self._member(message.member_id)
        channel = ev.Channel(message.channel).value
        topic = ev.Topic(message.topic).value
        offer = self._offer(message.offer_id)
        sent_at = message.sent_at
        if sent_at.tzinfo is None:
            raise ValueError("Message.sent_at must be timezone-aware")
        if not state.enrolled or sent_at < traits.enrolled_at:
            self._violations["not_enrolled"] += 1
            return []

        number = state.messages
        state.messages += 1
        rng = self._rng(PURPOSE_DELIVER, index)
        if message.decision_id in state.decision_ids:
            self._counts["duplicates"] += 1
        state.decision_ids.add(message.decision_id)
        self._counts["messages"] += 1
        self._by_channel[channel] += 1

        probs, violation = self._probabilities(traits, state, offer, channel, topic, sent_at)
        if violation is not None:
            self._violations[violation] += 1
        if topic != "transactional":
            state.received.append((sent_at.timestamp(), message.offer_id))
        churned = state.churned_by(sent_at)

        ids = _Ids(f"s{self.config.seed}-m{index:06d}-x{number:05d}")
        common: dict[str, Any] = {
            "member_id": traits.member_id,
            "decision_id": message.decision_id,
            "channel": channel,
            "offer_id": message.offer_id,
            "topic": topic,
        }
        out: list[BaseModel] = []
        u = rng.random(8)
        if u[0] < probs.p_bounce:
            self._counts["bounced"] += 1
            if probs.hard_bounce:
                state.hard_bounced.add(channel)
            out.append(
                ev.NotificationBounced(
                    event_id=ids.next(),
                    occurred_at=_utc(sent_at + timedelta(seconds=1 + 59 * u[1])),
                    bounce_type="Permanent" if probs.hard_bounce else "Transient",
                    **common,
                )
            )
            return out
        self._counts["delivered"] += 1
        out.append(
            ev.NotificationDelivered(
                event_id=ids.next(),
                occurred_at=_utc(sent_at + timedelta(seconds=1 + 19 * u[1])),
                **common,
            )
        )
        if churned:
            self._counts["sends_to_churned"] += 1
            return out

        look = self._reaction_time(traits, rng, sent_at, self.config.rates(channel).reaction_hours)
        opened = u[2] < probs.p_open
        if opened and channel != "sms":  # SMS has no open tracking
            self._counts["opened"] += 1
            out.append(ev.NotificationOpened(event_id=ids.next(), occurred_at=_utc(look), **common))
        if u[3] < probs.p_complaint:
            self._counts["complaints"] += 1
            state.complained.add(channel)
            out.append(
                ev.NotificationComplained(
                    event_id=ids.next(),
                    occurred_at=_utc(look + timedelta(seconds=5)),
                    **common,
                )
            )
        elif u[3] < probs.p_complaint + probs.p_unsubscribe:
            self._counts["unsubscribes"] += 1
            # STOP ends every SMS topic; an opt-out from a receipt means "no marketing at all"
            all_topics = channel == "sms" or topic == "transactional" or u[4] < 0.7
            for marketing_topic in ("offers", "points", "tier", "reminders") if all_topics else (topic,):
                state.opted_out.add((channel, marketing_topic))
            out.append(
                ev.NotificationUnsubscribed(
                    event_id=ids.next(),
                    occurred_at=_utc(look + timedelta(seconds=20)),
                    all_topics=all_topics,
                    **common,
                )
            )
        elif opened and u[5] < probs.p_click_given_open:
            self._counts["clicked"] += 1
            clicked_at = look + timedelta(seconds=10 + 60 * u[6])
            link = LINK_BASE + (message.offer_id or "home")
            out.append(
                ev.NotificationClicked(
                    event_id=ids.next(),
                    occurred_at=_utc(clicked_at),
                    link=link,
                    **common,
                )
            )
            if u[7] < probs.p_convert_given_click and offer is not None:
                self._convert(traits, state, rng, offer, message.decision_id, clicked_at, ids, out)
        out.sort(key=lambda e: (e.occurred_at, e.event_id))  # type: ignore[attr-defined]
        return out

    def expected_value(
        self, member_id: str, offer_id: str | None, channel: str, send_at: datetime, topic: str | None = None
    ) -> ExpectedValue:
        """Truth for the oracle and for scoring off-policy estimates: what sending this message at
        `send_at` is worth, given the member's hidden traits and state now."""
        _, traits, state = self._member(member_id)
        offer = self._offer(offer_id)
        channel = ev.Channel(channel).value
        topic = ev.Topic(topic).value if topic else (offer.topic.value if offer else "offers")
        if not state.enrolled or send_at < traits.enrolled_at:
            return ExpectedValue(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False, "not_enrolled")
        probs, violation = self._probabilities(traits, state, offer, channel, topic, send_at)
        churned = state.churned_by(send_at)
        p_open = 0.0 if churned else probs.p_delivered * probs.p_open
        p_click = 0.0 if churned else probs.p_click
        p_convert = 0.0 if (churned or offer is None) else probs.p_convert
        return ExpectedValue(
            p_delivered=probs.p_delivered,
            p_open=p_open,
            p_click=p_click,
            p_convert=p_convert,
            expected_revenue=p_convert * traits.basket_eur * CONVERSION_BASKET,
            expected_offer_value=p_convert * (offer.value if offer else 0.0),
            p_unsubscribe=0.0 if churned else probs.p_delivered * probs.p_unsubscribe,
            p_complaint=0.0 if churned else probs.p_delivered * probs.p_complaint,
            relevance=probs.relevance,
            eligible=probs.eligible,
            violation=violation,
        )

    def active_peak_hour(self, member_id: str) -> float:
        """The member's hidden peak local hour (truth, for reports only)."""
        index = index_of(member_id)
        if index is None or index >= len(self._traits):
            raise KeyError(member_id)
        return float(self._traits[index].peak_hour)

    def relevance(self, member_id: str, offer_id: str | None, at: datetime) -> float:
        """Hidden relevance (0..1, 0.5 = average) of an offer for a member: truth, for analysis."""
        index, traits, state = self._member(member_id)
        return self._relevance(index, traits, state, self._offer(offer_id), at)

    def stats(self) -> SimStats:
        c = self._counts
        return SimStats(
            members=len(self._traits),
            enrolled=sum(s.enrolled for s in self._states),
            churned_during_run=c["churned"],
            dormant_at_start=sum(
                1 for t, s in zip(self._traits, self._states, strict=True) if s.enrolled and t.dormant_at
            ),
            messages=c["messages"],
            messages_by_channel=dict(sorted(self._by_channel.items())),
            messages_per_member={
                t.member_id: s.messages for t, s in zip(self._traits, self._states, strict=True) if s.messages
            },
            delivered=c["delivered"],
            opened=c["opened"],
            clicked=c["clicked"],
            bounced=c["bounced"],
            unsubscribes=c["unsubscribes"],
            complaints=c["complaints"],
            message_conversions=c["message_conversions"],
            message_revenue=round(self._money["message_revenue"], 2),
            organic_redemptions=c["organic_redemptions"],
            purchases=c["purchases"],
            revenue=round(self._money["revenue"], 2),
            revenue_by_member={
                t.member_id: round(s.revenue, 2)
                for t, s in zip(self._traits, self._states, strict=True)
                if s.revenue
            },
            sends_to_churned=c["sends_to_churned"],
            duplicates=c["duplicates"],
            violations=dict(sorted(self._violations.items())),
        )

    # ---------------------------------------------------------------- members and offers

    def _member(self, member_id: str) -> tuple[int, MemberTraits, MemberState]:
        index = index_of(member_id)
        if index is None or index >= len(self._traits):
            raise UnknownMember(
                f"no member {member_id!r} in this world (sim-000000..{len(self._traits) - 1:06d})"
            )
        return index, self._traits[index], self._states[index]

    def _offer(self, offer_id: str | None) -> Offer | None:
        if offer_id is None:
            return None
        offer = self.offers.get(offer_id)
        if offer is None:
            raise UnknownOffer(f"offer {offer_id!r} is not in the catalog ({len(self.offers)} offers)")
        return offer

    def _relevance(
        self, index: int, traits: MemberTraits, state: MemberState, offer: Offer | None, at: datetime
    ) -> float:
        if offer is not None and offer.categories:
            key = (index, offer.offer_id)
            cached = self._category_relevance.get(key)
            if cached is None:
                cached = response.category_relevance(traits.category_prefs, offer.categories)
                self._category_relevance[key] = cached
            return cached
        return response.relevance(traits, offer, at, state.loyalty())

    def _violation(self, traits: MemberTraits, state: MemberState, channel: str, topic: str) -> str | None:
        if topic == "transactional":
            return None
        if channel in state.complained:
            return "complained"
        if (channel, topic) in state.opted_out:
            return "unsubscribed"
        if channel in state.hard_bounced:
            return "hard_bounced"
        if not traits.consents.get((channel, topic), False):
            return "no_consent"
        return None

    def _probabilities(
        self,
        traits: MemberTraits,
        state: MemberState,
        offer: Offer | None,
        channel: str,
        topic: str,
        at: datetime,
    ) -> tuple[ResponseProbabilities, str | None]:
        now = at.timestamp()
        window = now - 7 * 86400
        load = same = 0
        for sent, offer_id in state.received:
            if window <= sent < now:
                load += 1
                same += offer is not None and offer_id == offer.offer_id
        violation = self._violation(traits, state, channel, topic)
        hard = not traits.reachable(channel) or (channel == "email" and traits.email_bad)
        probs = response.response_probabilities(
            self.config,
            traits,
            offer,
            channel,
            topic,
            at,
            state.loyalty(),
            messages_last_7d=load,
            same_offer_last_7d=same,
            churned=state.churned_by(at),
            violation=violation,
            hard_bounce=hard,
        )
        return probs, violation

    # ---------------------------------------------------------------- daily life

    def _enrol(self, traits: MemberTraits, state: MemberState, out: list[BaseModel]) -> None:
        state.enrolled = True
        state.enrolled_at = traits.enrolled_at
        state.qualifying_points = float(traits.qualifying_points)
        state.points_balance = traits.points_balance
        state.expiring_points = traits.expiring_points
        state.expiring_on = traits.expiring_on
        state.churned_at = traits.dormant_at
        ids = _Ids(f"s{self.config.seed}-m{traits.index:06d}-e")
        at = traits.enrolled_at
        out.append(
            ev.MemberEnrolled(
                event_id=ids.next(),
                member_id=traits.member_id,
                occurred_at=_utc(at),
                time_zone=traits.time_zone,
                locale=traits.locale,
                tier=TIERS[tier_of(state.qualifying_points)],
                first_name=traits.first_name,
                email=traits.email,
                phone=traits.phone,
                push_endpoint_arn=traits.push_endpoint_arn,
                birth_year=traits.birth_year,
                points_balance=traits.points_balance,
            )
        )
        for (channel, topic), granted in sorted(traits.consents.items()):
            out.append(
                ev.ConsentChanged(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=_utc(at + timedelta(seconds=1)),
                    channel=ev.Channel(channel),
                    topic=ev.Topic(topic),
                    granted=granted,
                    source="app_permission_prompt" if channel == "push" else "signup_form",
                )
            )
        if traits.is_new:
            state.points_balance += 100
            out.append(
                ev.PointsEarned(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=_utc(at + timedelta(seconds=2)),
                    points=100,
                    reason="welcome_bonus",
                )
            )
        elif self.config.history_days > 0:
            self._history(traits, state, out)

    def _history(self, traits: MemberTraits, state: MemberState, out: list[BaseModel]) -> None:
        """Purchases of the last `history_days` before the run, as the retailer would backfill them.
        Points are already in the enrolment balance, so no points events."""
        start = self.day_start(0)
        first = max(traits.enrolled_at.astimezone(UTC), start - self.config.history_days * DAY)
        last = min(traits.dormant_at or start, start)
        span_days = (last - first).total_seconds() / 86400
        if span_days <= 0:
            return
        rng = np.random.default_rng([self.config.seed, PURPOSE_HISTORY, traits.index])
        count = int(rng.poisson(traits.purchases_per_day * span_days))
        ids = _Ids(f"s{self.config.seed}-m{traits.index:06d}-h")
        for offset in sorted(rng.uniform(0.0, span_days, size=count)):
            day_start = (first + timedelta(days=float(offset))).replace(
                hour=start.hour, minute=start.minute, second=0, microsecond=0
            )
            (at,) = self._times_in_day(traits, rng, day_start, 1)
            if first <= at < last:
                self._purchase(traits, state, rng, at, ids, out, history=True)

    def _loyalty_notices(
        self, traits: MemberTraits, state: MemberState, start: datetime, out: list[BaseModel]
    ) -> None:
        today = start.date()
        if state.expiring_points <= 0 or state.expiring_on is None:
            return
        if today >= state.expiring_on:  # lapsed unused; the contract has no points.expired event
            state.points_balance = max(0, state.points_balance - state.expiring_points)
            state.expiring_points, state.expiring_on = 0, None
            return
        if not state.expiry_notified and today >= state.expiring_on - timedelta(days=EXPIRY_NOTICE_DAYS):
            state.expiry_notified = True
            ids = _Ids(f"s{self.config.seed}-m{traits.index:06d}-n{today:%Y%m%d}")
            out.append(
                ev.PointsExpiring(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=max(_utc(start + timedelta(hours=5)), _utc(traits.enrolled_at)),
                    points=state.expiring_points,
                    expires_on=state.expiring_on,
                )
            )

    def _live_day(
        self,
        traits: MemberTraits,
        state: MemberState,
        rng: np.random.Generator,
        start: datetime,
        out: list[BaseModel],
    ) -> None:
        config = self.config
        ids = _Ids(f"s{config.seed}-m{traits.index:06d}-d{(start - self.day_start(0)).days:04d}")
        u = rng.random(4)
        load = sum(
            1 for sent, _ in state.received if start.timestamp() - 7 * 86400 <= sent < start.timestamp()
        )
        hazard = traits.churn_per_day * (
            1.0 + config.fatigue_churn * response.excess_load(config, traits, load)
        )
        if u[0] < hazard:
            state.churned_at = max(start + timedelta(seconds=int(86400 * u[1])), traits.enrolled_at)
            self._counts["churned"] += 1

        def alive(at: datetime) -> bool:
            return at >= traits.enrolled_at and not state.churned_by(at)

        for at in self._times_in_day(traits, rng, start, int(rng.poisson(traits.purchases_per_day))):
            if alive(at):
                self._purchase(traits, state, rng, at, ids, out)
        if traits.push_endpoint_arn is not None:
            for at in self._times_in_day(traits, rng, start, int(rng.poisson(traits.app_opens_per_day))):
                if alive(at):
                    out.append(
                        ev.AppOpened(
                            event_id=ids.next(),
                            member_id=traits.member_id,
                            occurred_at=at,
                            platform=traits.platform,  # type: ignore[arg-type]
                        )
                    )
        cart_rate = config.cart_abandon_per_day * (1.3 if traits.push_endpoint_arn else 0.8)
        if u[2] < cart_rate:
            (at,) = self._times_in_day(traits, rng, start, 1)
            if alive(at):
                items = self._line_items(traits, rng, 0.6 * traits.basket_eur * _noise(rng, 0.45), None)
                out.append(
                    ev.CartAbandoned(
                        event_id=ids.next(),
                        member_id=traits.member_id,
                        occurred_at=at,
                        cart_id=f"c{config.seed}-{traits.index:06d}-{ids.prefix.rsplit('-', 1)[-1]}",
                        value=round(sum(i["quantity"] * i["unit_price"] for i in items), 2),
                        line_items=items,  # type: ignore[arg-type]
                    )
                )

    def _purchase(
        self,
        traits: MemberTraits,
        state: MemberState,
        rng: np.random.Generator,
        at: datetime,
        ids: _Ids,
        out: list[BaseModel],
        *,
        offer: Offer | None = None,
        decision_id: str | None = None,
        history: bool = False,
    ) -> float:
        config = self.config
        basket = traits.basket_eur * (CONVERSION_BASKET if offer is not None else 1.0) * _noise(rng, 0.45)
        if offer is None and not history:
            offer = self._organic_offer(traits, state, rng, at)
            if offer is not None:
                self._counts["organic_redemptions"] += 1
        items = self._line_items(traits, rng, basket, offer)
        amount = round(sum(i["quantity"] * i["unit_price"] for i in items), 2)
        state.orders += 1
        order_id = f"o{config.seed}-{traits.index:06d}-{state.orders:05d}"
        at = _utc(at)
        out.append(
            ev.PurchaseCompleted(
                event_id=ids.next(),
                member_id=traits.member_id,
                occurred_at=at,
                order_id=order_id,
                amount=amount,
                currency="EUR",
                line_items=items,  # type: ignore[arg-type]
                offer_id=offer.offer_id if offer else None,
            )
        )
        state.last_purchase_at = at if state.last_purchase_at is None else max(state.last_purchase_at, at)
        if history:
            return amount
        self._counts["purchases"] += 1
        self._money["revenue"] += amount
        state.revenue += amount
        if offer is not None:
            out.append(
                ev.OfferRedeemed(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=at,
                    offer_id=offer.offer_id,
                    order_id=order_id,
                    decision_id=decision_id,
                )
            )
        rank = tier_of(state.qualifying_points)
        points = int(
            amount * TIER_EARN_MULTIPLIER[rank] * (2 if offer is not None and offer.kind == "points" else 1)
        )
        if points > 0:
            state.points_balance += points
            state.qualifying_points += points
            out.append(
                ev.PointsEarned(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=at + timedelta(seconds=1),
                    points=points,
                    reason="purchase",
                )
            )
            new_rank = tier_of(state.qualifying_points)
            if new_rank > rank:
                to_next = (
                    int(TIER_THRESHOLDS[new_rank + 1] - state.qualifying_points)
                    if new_rank + 1 < len(TIERS)
                    else None
                )
                out.append(
                    ev.TierChanged(
                        event_id=ids.next(),
                        member_id=traits.member_id,
                        occurred_at=at + timedelta(seconds=2),
                        previous_tier=TIERS[rank],
                        new_tier=TIERS[new_rank],
                        points_to_next_tier=to_next,
                    )
                )
        redeem = 0
        if offer is not None and offer.topic.value == "points" and state.expiring_points > 0:
            redeem = min(state.expiring_points, state.points_balance)  # saved the expiring points
        elif state.points_balance >= ORGANIC_POINTS_VOUCHER and rng.random() < 0.04:
            redeem = ORGANIC_POINTS_VOUCHER
        if redeem > 0:
            state.points_balance -= redeem
            state.expiring_points = max(0, state.expiring_points - redeem)
            out.append(
                ev.PointsRedeemed(
                    event_id=ids.next(),
                    member_id=traits.member_id,
                    occurred_at=at + timedelta(seconds=3),
                    points=redeem,
                )
            )
        return amount

    def _organic_offer(
        self, traits: MemberTraits, state: MemberState, rng: np.random.Generator, at: datetime
    ) -> Offer | None:
        """Without any message, members still use offers they see in the app or in store."""
        if not self._offer_list:
            return None
        draws = rng.random(len(self._offer_list)).tolist()
        tier = TIERS[tier_of(state.qualifying_points)]
        for offer, u in zip(self._offer_list, draws, strict=True):
            if (
                offer.kind == "content"
                or not offer.active_at(at)
                or (offer.tiers and tier not in offer.tiers)
            ):
                continue
            rel = self._relevance(traits.index, traits, state, offer, at)
            if u < self.config.organic_redemption * 2.0 * rel * KIND_CONVERSION[offer.kind]:
                return offer
        return None

    def _convert(
        self,
        traits: MemberTraits,
        state: MemberState,
        rng: np.random.Generator,
        offer: Offer,
        decision_id: str,
        clicked_at: datetime,
        ids: _Ids,
        out: list[BaseModel],
    ) -> None:
        if rng.random() < 0.4:  # online, in the same session
            at = clicked_at + timedelta(minutes=float(rng.uniform(2.0, 30.0)))
        else:  # at the next shopping trip, within the week
            mean_days = min(3.0, 1.0 / max(traits.purchases_per_day, 1e-3))
            at = clicked_at + timedelta(days=float(min(7.0, rng.exponential(mean_days))))
        amount = self._purchase(traits, state, rng, at, ids, out, offer=offer, decision_id=decision_id)
        state.conversions += 1
        self._counts["message_conversions"] += 1
        self._money["message_revenue"] += amount

    # ---------------------------------------------------------------- sampling helpers

    def _times_in_day(
        self, traits: MemberTraits, rng: np.random.Generator, start: datetime, count: int
    ) -> list[datetime]:
        """`count` moments within the UTC day starting at `start`, following the member's local
        activity curve."""
        if count <= 0:
            return []
        start = start.astimezone(UTC)
        shift = utc_offset_hours(start + timedelta(hours=12), traits.zone) + start.hour + start.minute / 60
        key = (traits.index, shift)
        cumulative = self._hour_weights.get(key)
        if cumulative is None:
            local = ((np.arange(24) + 0.5 + shift) % 24).astype(int)
            cumulative = np.cumsum(traits.activity[local]).tolist()
            self._hour_weights[key] = cumulative
        draws = rng.random(2 * count).tolist()
        total = cumulative[-1]
        moments = []
        for u, v in zip(draws[:count], draws[count:], strict=True):
            hour = min(bisect_right(cumulative, u * total), 23)
            moments.append(start + timedelta(seconds=hour * 3600 + int(v * 3600)))
        return sorted(moments)

    def _reaction_time(
        self, traits: MemberTraits, rng: np.random.Generator, sent_at: datetime, scale_hours: float
    ) -> datetime:
        """When the member first looks at a message: soon if they are active, else at their next
        active hours (within two days)."""
        hour = sent_at.astimezone(traits.zone).hour
        key = (traits.index, hour, scale_hours)
        cumulative = self._reaction_cdfs.get(key)
        if cumulative is None:
            ahead = np.arange(48)
            cumulative = np.cumsum(
                traits.activity[(hour + ahead) % 24] * np.exp(-ahead / scale_hours)
            ).tolist()
            self._reaction_cdfs[key] = cumulative
        u, v = rng.random(2).tolist()
        k = min(bisect_right(cumulative, u * cumulative[-1]), 47)
        return sent_at + timedelta(seconds=k * 3600 + 30 + int(v * 3600))

    def _line_items(
        self, traits: MemberTraits, rng: np.random.Generator, basket: float, offer: Offer | None
    ) -> list[dict[str, Any]]:
        """A basket worth `basket` EUR, in the member's favourite categories (and the offer's, if
        one was redeemed). Plain Python over one batch of draws: baskets are small."""
        count = int(min(60, max(1, round(basket / 4.2))))
        draws = rng.random(3 * count + 1).tolist()
        normals = rng.standard_normal(count).tolist()
        cumulative = self._preference_cdf(traits)
        total = cumulative[-1]
        last = len(CATEGORIES) - 1
        categories = [min(bisect_right(cumulative, u * total), last) for u in draws[:count]]
        if offer is not None and offer.categories:
            known = [CATEGORY_INDEX[c] for c in offer.categories if c in CATEGORY_INDEX]
            if known:  # the redeemed offer's category is in the basket
                weights = np.cumsum(traits.category_prefs[known]).tolist()
                categories[0] = known[min(bisect_right(weights, draws[-1] * weights[-1]), len(known) - 1)]
        quantities = [2.0 if u < 0.2 else 1.0 for u in draws[count : 2 * count]]
        prices = [ITEM_EUR[c] * math.exp(-0.045 + 0.3 * z) for c, z in zip(categories, normals, strict=True)]
        scale = basket / sum(p * q for p, q in zip(prices, quantities, strict=True))
        # plain dicts: the event model validates them in one pass (much faster than one model each)
        return [
            {
                "product_id": f"{CATEGORIES[c]}-{int(40 * u * u):03d}",
                "category": CATEGORIES[c],
                "quantity": q,
                "unit_price": max(0.01, round(p * scale, 2)),
            }
            for c, p, q, u in zip(categories, prices, quantities, draws[2 * count : 3 * count], strict=True)
        ]

    def _rng(self, purpose: int, index: int) -> np.random.Generator:
        """The generator of one member for one purpose, consumed in that member's own order."""
        rng = self._rngs.get((purpose, index))
        if rng is None:
            rng = np.random.default_rng([self.config.seed, purpose, index])
            self._rngs[(purpose, index)] = rng
        return rng

    def _preference_cdf(self, traits: MemberTraits) -> list[float]:
        cdf = self._preference_cdfs.get(traits.index)
        if cdf is None:
            cdf = np.cumsum(traits.category_prefs).tolist()
            self._preference_cdfs[traits.index] = cdf
        return cdf


def _noise(rng: np.random.Generator, sigma: float) -> float:
    return float(rng.lognormal(-0.5 * sigma * sigma, sigma))


class _Ids:
    """Deterministic event ids: a prefix naming the member and the occasion, then a counter."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self.prefix}-{self._n:03d}"


def event_counts(events: Iterable[BaseModel]) -> dict[str, int]:
    counts = Counter(ev.event_type_of(e) for e in events)
    return dict(sorted(counts.items()))
