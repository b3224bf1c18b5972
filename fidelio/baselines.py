"""The demo's baseline policies, run in-process on the member simulator: what Fidelio is compared
with, on the same world (same seed, same members) as Fidelio's own run.

* ``blast`` — a typical CRM calendar: on Monday, Wednesday and Friday (the member's local
  calendar) at 10:00 local time, every eligible member gets the newest active offer by email.
  Eligible: a profile learnt from events, email consent for the offer's topic, email not
  suppressed, not in the holdout. The newest active offer is the email-capable offer, active at
  the send time and open to the member's tier, with the latest ``starts_at`` (offers without
  dates count as oldest; ties go to the smallest ``offer_id``). Its own calendar cap: at most
  3 sends per member per local calendar week (Monday to Sunday); the engine's
  ``PolicyConfig`` caps, topic gaps, offer-repeat rule and quiet hours do not apply to it
  (a calendar sends what is planned). The offer is chosen at send time, with the profile as
  it is then.
* ``random`` — a random eligible action, at the same total volume as Fidelio (``sends_budget``,
  Fidelio's number of sends): each day aims at (sends left) / (days left), spent on members
  in a seeded random order that favours those with the fewest sends so far. The action is a
  uniformly drawn (offer x channel) the member can receive and consented to, at a uniformly
  drawn non-quiet whole hour of the UTC day, under the engine's guardrails
  (``channel_guardrail``, ``offer_guardrail``, ``is_quiet_hour``, ``cap_guardrail``).
* ``oracle`` — knows the hidden traits: for each eligible member each day it evaluates, with
  the simulator's truth (``World.expected_value``), each (offer x channel) the guardrails allow
  at the member's most active allowed hour (among their 3 most active non-quiet local hours),
  then the best one at the other two hours, and sends the best action when
  ``expected_revenue - channel_cost - unsubscribe_cost x (p_unsubscribe + p_complaint)``
  is positive (``expected_offer_value`` instead when ``PolicyConfig.objective`` is
  ``"offer_value"``: the oracle maximizes what the engine maximizes). A complaint suppresses the channel like an unsubscribe, hence the same cost.
  Same guardrails as the engine. It is myopic: it does not weigh what a send does to later
  sends (fatigue, opt-outs) beyond that cost.

The loop (all three): a fresh ``World(config, offers)``, driven UTC day by day. Each day's
events, the feedback of earlier sends and the day's sends are merged in time order; every event
is applied to an in-memory ``MemberProfile`` with ``apply_event`` (as the engine's ingest does)
and every send applies its own ``notification.sent``, so consent, unsubscribes, suppression,
tier and recent sends are learnt from events only. Each baseline plans at the start of the UTC
day with the events before it (a member enrolling during the day is considered from the next
day; blast plans who is due at 10:00 local and picks the offer at send time); every send is
re-checked at its send time with the profile as it is then (like the engine's dispatch
function) and dropped if a guardrail now refuses it. Holdout members (``in_holdout`` with
``PolicyConfig.holdout_share`` / ``holdout_salt``) get nothing. If the caps leave too few
eligible (member, day) pairs for ``sends_budget``, random sends less and says so
(``BaselineRun.requested_sends`` vs ``outcome.sends``).

Where each figure of ``PolicyOutcome`` comes from:

* ``sends``, ``channel_mix``, ``send_cost`` (``PolicyConfig.channel_cost`` per send): counted by
  this loop for each ``World.deliver`` call.
* ``conversions``, ``revenue``, ``unsubscribes``, ``complaints``: counted from the feedback
  ``World.deliver`` returns — a conversion is an ``offer.redeemed`` carrying one of this
  policy's decision ids, its revenue the amount of the ``purchase.completed`` with the same
  order id. Conversions dated after the last day (a redemption can come up to 7 days after the
  click) still count, as in ``World.stats``.
* ``daily_conversions``: attributed conversions by the UTC day of the *send* that caused them.
* ``send_hour_vs_active_hour``: |local send time - member's hidden peak hour|, circular, in hours,
  per send (the truth from ``fidelio.sim.traits.draw_traits``; for reporting only).
* ``members``: the population of the world (``config.members``), holdout included.

Every run is cross-checked against ``World.stats()`` (messages, message conversions, message
revenue, unsubscribes, complaints); a disagreement raises ``BaselineCrossCheckFailed``.
``BaselineRun`` adds what ``PolicyOutcome`` has no field for: the offer value of the
conversions, realised and expected net value, requested volume and sends dropped at dispatch.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel

from fidelio.report.log import PolicyOutcome
from fidelio.sim import Message, SimConfig, SimStats, World
from fidelio.sim.traits import MemberTraits, circular_hours, draw_traits
from fidelio.sim.world import ExpectedValue
from functions.domain import events as ev
from functions.domain.decision import (
    PolicyConfig,
    cap_guardrail,
    channel_guardrail,
    in_holdout,
    is_quiet_hour,
    offer_guardrail,
)
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event

BASELINES: tuple[str, ...] = ("blast", "random", "oracle")
BLAST_WEEKDAYS = (0, 2, 4)  # Monday, Wednesday, Friday (local calendar)
BLAST_LOCAL_HOUR = 10
BLAST_PER_WEEK = 3  # the calendar's own cap, per local calendar week
ORACLE_HOURS = 3  # the member's most active non-quiet local hours the oracle evaluates
HOUR = 3600.0
DAY_SECONDS = 86400.0


class UnknownBaseline(ValueError):
    """A baseline name that does not exist."""


class MissingSendsBudget(ValueError):
    """The random baseline needs Fidelio's send volume to match."""


class BaselineCrossCheckFailed(RuntimeError):
    """The loop's own counts disagree with the simulator's `World.stats()`."""


@dataclass(frozen=True)
class SentMessage:
    """One message a baseline sent (for audits and tests)."""

    decision_id: str
    member_id: str
    day: int
    channel: str
    offer_id: str
    topic: str
    sent_at: datetime


@dataclass
class BaselineRun:
    """One baseline's run: the outcome for the report, and what it has no field for."""

    outcome: PolicyOutcome
    offer_value: float  # sum of offer.value over attributed conversions (the engine's value unit)
    # Under the policy's objective (revenue, or offer_value):
    # worth of conversions - send_cost - unsubscribe_cost x (unsubscribes + complaints)
    net_value: float
    # Truth at each send (World.expected_value just before deliver): sum of expected revenue
    # (or expected offer value) - channel cost - unsubscribe_cost x (p_unsubscribe + p_complaint)
    expected_net_value: float
    requested_sends: int | None  # random: sends_budget
    dropped_at_dispatch: int  # planned sends a guardrail refused at send time
    members_reached: int
    stats: SimStats
    seconds: float
    messages: list[SentMessage] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    send_at: float  # epoch seconds
    member_id: str
    day: int
    offer_id: str | None = None  # None: blast chooses at send time
    channel: str = "email"


@dataclass
class _Tally:
    sends: int = 0
    conversions: int = 0
    revenue: float = 0.0
    offer_value: float = 0.0
    unsubscribes: int = 0
    complaints: int = 0
    send_cost: float = 0.0
    expected_net: float = 0.0
    expected_revenue: float = 0.0
    expected_unsubscribes: float = 0.0
    dropped: int = 0
    channel_mix: Counter = field(default_factory=Counter)
    reached: set[str] = field(default_factory=set)
    messages: list[SentMessage] = field(default_factory=list)
    hour_gaps: list[float] = field(default_factory=list)
    daily_conversions: list[int] = field(default_factory=list)


def run_baseline(
    name: str,
    config: SimConfig,
    offers: Sequence[Offer],
    policy_config: PolicyConfig | None = None,
    sends_budget: int | None = None,
    rng_seed: int = 0,
) -> PolicyOutcome:
    """Run one baseline (blast, random or oracle) on a fresh world; see the module docstring."""
    return simulate_baseline(name, config, offers, policy_config, sends_budget, rng_seed).outcome


def simulate_baseline(
    name: str,
    config: SimConfig,
    offers: Sequence[Offer],
    policy_config: PolicyConfig | None = None,
    sends_budget: int | None = None,
    rng_seed: int = 0,
) -> BaselineRun:
    """`run_baseline`, with the figures `PolicyOutcome` has no field for."""
    if name not in BASELINES:
        raise UnknownBaseline(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    if name == "random" and (sends_budget is None or sends_budget < 0):
        raise MissingSendsBudget(
            "the random baseline needs sends_budget (Fidelio's number of sends, >= 0) to match its volume"
        )
    started = time.perf_counter()
    loop = _Loop(name, config, offers, policy_config or PolicyConfig(), sends_budget, rng_seed)
    loop.run()
    return loop.result(time.perf_counter() - started)


class _Loop:
    """The closed loop of one baseline over one world."""

    def __init__(
        self,
        name: str,
        config: SimConfig,
        offers: Sequence[Offer],
        policy: PolicyConfig,
        sends_budget: int | None,
        rng_seed: int,
    ):
        self.name = name
        self.config = config
        self.policy = policy
        self.world = World(config, offers)
        self.offers = {o.offer_id: o for o in offers}
        self.offer_list = [self.offers[k] for k in sorted(self.offers)]
        self.budget_left = {o.offer_id: o.budget for o in offers if o.budget is not None}
        self.sends_budget = sends_budget
        self.rng = np.random.default_rng([rng_seed, config.seed, BASELINES.index(name)])
        self.member_ids = self.world.member_ids
        # Hidden traits, for the oracle and for the send-hour report only (never for eligibility).
        self.traits: dict[str, MemberTraits] = {
            t.member_id: t for t in (draw_traits(config, i) for i in range(config.members))
        }
        self.holdout = {
            m for m in self.member_ids if in_holdout(m, policy.holdout_share, policy.holdout_salt)
        }
        self.profiles: dict[str, MemberProfile] = {}
        self.tally = _Tally(daily_conversions=[0] * config.days)
        self.sent_per_member: Counter[str] = Counter()
        self.blast_weeks: Counter[tuple[str, int, int]] = Counter()  # (member, iso year, iso week)
        self.pending: list[tuple[float, int, int, Any]] = []  # feedback not yet applied
        self.seq = count()
        self.zones: dict[str, ZoneInfo] = {}
        self.oracle_hours: dict[str, list[int]] = {}
        self.topics = sorted({o.topic.value for o in offers})
        self.churned: set[str] = set()  # the oracle's knowledge (truth), never used by blast/random

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        planners: dict[str, Callable[[int], list[_Planned]]] = {
            "blast": self._plan_blast,
            "random": self._plan_random,
            "oracle": self._plan_oracle,
        }
        plan = planners[self.name]
        for day in range(self.config.days):
            start = self.world.day_start(day).timestamp()
            heap = self.pending
            for event in self.world.events_for_day(day):
                heapq.heappush(heap, (event.occurred_at.timestamp(), 0, next(self.seq), event))  # type: ignore[attr-defined]
            # Decisions see what happened before the day starts (day 0 also backfills enrolments,
            # consents and purchase history, dated in the past), never the day's own events.
            self._apply_pending(until=start)
            for planned in plan(day):
                heapq.heappush(heap, (planned.send_at, 1, next(self.seq), planned))
            end = start + DAY_SECONDS
            while heap and heap[0][0] < end:
                _, _, _, item = heapq.heappop(heap)
                if isinstance(item, _Planned):
                    self._dispatch(item)
                else:
                    self._apply(item)
        self._apply_pending(until=float("inf"))

    def _apply_pending(self, until: float) -> None:
        while self.pending and self.pending[0][0] < until:
            _, _, _, item = heapq.heappop(self.pending)
            self._apply(item)

    def _apply(self, event: BaseModel) -> None:
        member_id: str = event.member_id  # type: ignore[attr-defined]
        profile = self.profiles.get(member_id)
        if profile is None:
            profile = self.profiles[member_id] = MemberProfile(member_id=member_id)
        apply_event(profile, event)

    def _zone(self, name: str) -> ZoneInfo:
        zone = self.zones.get(name)
        if zone is None:
            zone = self.zones[name] = ZoneInfo(name)
        return zone

    def _local_hours(self, day: int) -> Callable[[str], list[int]]:
        """Local hour of each of the day's 24 whole-hour UTC slots, per time zone (cached)."""
        start = self.world.day_start(day)
        cache: dict[str, list[int]] = {}

        def hours(time_zone: str) -> list[int]:
            found = cache.get(time_zone)
            if found is None:
                zone = self._zone(time_zone)
                found = cache[time_zone] = [
                    (start + timedelta(hours=k)).astimezone(zone).hour for k in range(24)
                ]
            return found

        return hours

    def _marketing_members(self) -> list[tuple[str, MemberProfile]]:
        return [
            (m, p)
            for m in self.member_ids
            if m not in self.holdout and (p := self.profiles.get(m)) is not None and p.enrolled_at is not None
        ]

    # ------------------------------------------------------------------ blast

    def _plan_blast(self, day: int) -> list[_Planned]:
        """10:00 local (the time zone from member.enrolled) on Monday/Wednesday/Friday, for every
        member known at the start of the day whose 10:00 falls today. Consent, suppression and
        the offer are checked at send time."""
        start = self.world.day_start(day)
        end = start + timedelta(days=1)
        planned = []
        for member_id, profile in self._marketing_members():
            zone = self._zone(profile.time_zone)
            for offset in (-1, 0, 1):
                local_date = (start + timedelta(days=offset)).date()
                if local_date.weekday() not in BLAST_WEEKDAYS:
                    continue
                local = datetime(
                    local_date.year, local_date.month, local_date.day, BLAST_LOCAL_HOUR, tzinfo=zone
                )
                at = local.astimezone(UTC)
                if start <= at < end:
                    planned.append(_Planned(at.timestamp(), member_id, day))
        return planned

    def _blast_offer(self, profile: MemberProfile, at: datetime) -> Offer | None:
        usable = [
            o
            for o in self.offer_list
            if ev.Channel.EMAIL in o.channels
            and o.active_at(at)
            and (not o.tiers or profile.tier in o.tiers)
            and (o.offer_id not in self.budget_left or self.budget_left[o.offer_id] > 0)
        ]
        if not usable:
            return None
        return min(
            usable, key=lambda o: (-o.starts_at.timestamp() if o.starts_at else float("inf"), o.offer_id)
        )

    # ------------------------------------------------------------------ random

    def _plan_random(self, day: int) -> list[_Planned]:
        assert self.sends_budget is not None
        days_left = self.config.days - day
        target = round((self.sends_budget - self.tally.sends) / days_left) if days_left else 0
        if target <= 0:
            return []
        members = self._marketing_members()
        ties = self.rng.random(len(members))
        order = sorted(range(len(members)), key=lambda i: (self.sent_per_member[members[i][0]], ties[i]))
        start = self.world.day_start(day).timestamp()
        local_hours = self._local_hours(day)
        planned: list[_Planned] = []
        for i in order:
            if len(planned) >= target:
                break
            member_id, profile = members[i]
            hours = local_hours(profile.time_zone)
            open_slots = [k for k in range(24) if not is_quiet_hour(hours[k], self.policy)]
            choice = self._random_action(profile, start, open_slots)
            if choice is not None:
                offer_id, channel, slot = choice
                planned.append(_Planned(start + slot * HOUR, member_id, day, offer_id, channel))
        return planned

    def _random_action(
        self, profile: MemberProfile, start: float, open_slots: list[int]
    ) -> tuple[str, str, int] | None:
        if not open_slots:
            return None
        moment = datetime.fromtimestamp(start + open_slots[0] * HOUR, tz=UTC)
        pairs = [
            (offer, channel.value)
            for offer in self.offer_list
            if offer_guardrail(profile, offer, moment, self.policy, self.budget_left) is None
            for channel in offer.channels
            if channel_guardrail(profile, channel.value, offer.topic.value, False) is None
        ]
        slots_by_topic: dict[str, list[int]] = {}
        for j in self.rng.permutation(len(pairs)):
            offer, channel = pairs[int(j)]
            topic = offer.topic.value
            if topic not in slots_by_topic:
                slots_by_topic[topic] = [
                    k
                    for k in open_slots
                    if cap_guardrail(profile, topic, start + k * HOUR, self.policy) is None
                ]
            slots = slots_by_topic[topic]
            if slots:
                return offer.offer_id, channel, slots[int(self.rng.integers(len(slots)))]
        return None

    # ------------------------------------------------------------------ oracle

    def _top_hours(self, member_id: str) -> list[int]:
        """The member's most active non-quiet local hours, most active first (hidden trait)."""
        found = self.oracle_hours.get(member_id)
        if found is None:
            activity = self.traits[member_id].activity
            allowed = [h for h in range(24) if not is_quiet_hour(h, self.policy)]
            found = sorted(allowed, key=lambda h: (-float(activity[h]), h))[:ORACLE_HOURS]
            self.oracle_hours[member_id] = found
        return found

    def _net(self, member_id: str, offer: Offer, channel: str, at: datetime) -> tuple[float, bool]:
        """Truth: net value of this send, and whether the member has churned by then."""
        truth = self.world.expected_value(member_id, offer.offer_id, channel, at)
        value = (
            self._worth(truth)
            - self.policy.channel_cost[channel]
            - self.policy.unsubscribe_cost * (truth.p_unsubscribe + truth.p_complaint)
        )
        return value, truth.p_delivered > 0.0 and truth.p_open == 0.0  # reachable but nobody reads

    def _worth(self, truth: ExpectedValue) -> float:
        """Expected value of a conversion under the engine's objective (the same for both)."""
        return truth.expected_revenue if self.policy.objective == "revenue" else truth.expected_offer_value

    def _plan_oracle(self, day: int) -> list[_Planned]:
        start = self.world.day_start(day).timestamp()
        local_hours = self._local_hours(day)
        planned: list[_Planned] = []
        for member_id, profile in self._marketing_members():
            if member_id in self.churned:
                continue
            hours = local_hours(profile.time_zone)
            slot_of: dict[int, int] = {}
            for k, h in enumerate(hours):
                slot_of.setdefault(h, k)
            slots = [slot_of[h] for h in self._top_hours(member_id) if h in slot_of]
            # Caps first (cheap): the active hours each topic may still use today.
            allowed = {
                topic: [
                    k for k in slots if cap_guardrail(profile, topic, start + k * HOUR, self.policy) is None
                ]
                for topic in self.topics
            }
            if not any(allowed.values()):
                continue
            consented: dict[tuple[str, str], bool] = {}
            best: tuple[float, int, Offer, str] | None = None
            for offer in self.offer_list:
                topic = offer.topic.value
                if not allowed[topic]:
                    continue
                slot = allowed[topic][0]  # the most active allowed hour: the best for every action
                moment = datetime.fromtimestamp(start + slot * HOUR, tz=UTC)
                if offer_guardrail(profile, offer, moment, self.policy, self.budget_left) is not None:
                    continue
                for channel in (c.value for c in offer.channels):
                    key = (channel, topic)
                    if key not in consented:
                        consented[key] = channel_guardrail(profile, channel, topic, False) is None
                    if not consented[key]:
                        continue
                    value, churned = self._net(member_id, offer, channel, moment)
                    if churned:  # churn is permanent: nothing will ever be worth sending
                        self.churned.add(member_id)
                        break
                    if best is None or value > best[0]:
                        best = (value, slot, offer, channel)
                if member_id in self.churned:
                    break
            if best is None or member_id in self.churned:
                continue
            value, slot, offer, channel = best
            for other in allowed[offer.topic.value][1:]:  # the same action at the other active hours
                other_value, _ = self._net(
                    member_id, offer, channel, datetime.fromtimestamp(start + other * HOUR, tz=UTC)
                )
                if other_value > value:
                    value, slot = other_value, other
            if value > 0.0:
                planned.append(_Planned(start + slot * HOUR, member_id, day, offer.offer_id, channel))
        return planned

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, planned: _Planned) -> None:
        """Re-check at send time with the profile as it is now, then deliver."""
        profile = self.profiles.get(planned.member_id)
        at = datetime.fromtimestamp(planned.send_at, tz=UTC)
        if profile is None or profile.enrolled_at is None:
            if self.name != "blast":
                self.tally.dropped += 1
            return
        if self.name == "blast":
            offer = self._blast_offer(profile, at)
            if offer is None:
                return
            local = at.astimezone(self._zone(profile.time_zone))
            week = (planned.member_id, *local.isocalendar()[:2])
            if (
                channel_guardrail(profile, "email", offer.topic.value, False) is not None
                or self.blast_weeks[week] >= BLAST_PER_WEEK
            ):
                return  # not eligible today: not a dropped decision, the calendar skips them
            self.blast_weeks[week] += 1
            channel = "email"
        else:
            assert planned.offer_id is not None
            offer = self.offers[planned.offer_id]
            channel = planned.channel
            topic = offer.topic.value
            local_hour = at.astimezone(self._zone(profile.time_zone)).hour
            if (
                channel_guardrail(profile, channel, topic, False) is not None
                or offer_guardrail(profile, offer, at, self.policy, self.budget_left) is not None
                or is_quiet_hour(local_hour, self.policy)
                or cap_guardrail(profile, topic, planned.send_at, self.policy) is not None
            ):
                self.tally.dropped += 1
                return
        self._deliver(planned, profile, offer, channel, at)

    def _deliver(
        self, planned: _Planned, profile: MemberProfile, offer: Offer, channel: str, at: datetime
    ) -> None:
        tally, member_id, topic = self.tally, planned.member_id, offer.topic.value
        decision_id = f"{self.name}-s{self.config.seed}-{member_id}-d{planned.day:04d}"
        truth = self.world.expected_value(member_id, offer.offer_id, channel, at)
        tally.expected_net += (
            self._worth(truth)
            - self.policy.channel_cost[channel]
            - self.policy.unsubscribe_cost * (truth.p_unsubscribe + truth.p_complaint)
        )
        tally.expected_revenue += truth.expected_revenue
        tally.expected_unsubscribes += truth.p_unsubscribe
        feedback = self.world.deliver(Message(member_id, decision_id, channel, offer.offer_id, topic, at))
        tally.messages.append(
            SentMessage(decision_id, member_id, planned.day, channel, offer.offer_id, topic, at)
        )
        apply_event(
            profile,
            ev.NotificationSent(
                event_id=f"{decision_id}-sent",
                member_id=member_id,
                occurred_at=at,
                decision_id=decision_id,
                channel=ev.Channel(channel),
                offer_id=offer.offer_id,
                topic=ev.Topic(topic),
            ),
        )
        if offer.offer_id in self.budget_left:
            self.budget_left[offer.offer_id] -= 1
        tally.sends += 1
        tally.channel_mix[channel] += 1
        tally.send_cost += self.policy.channel_cost[channel]
        tally.reached.add(member_id)
        self.sent_per_member[member_id] += 1
        traits = self.traits[member_id]
        local = at.astimezone(traits.zone)
        tally.hour_gaps.append(round(circular_hours(local.hour + local.minute / 60.0, traits.peak_hour), 3))
        amounts = {e.order_id: e.amount for e in feedback if isinstance(e, ev.PurchaseCompleted)}
        for event in feedback:
            if isinstance(event, ev.OfferRedeemed) and event.decision_id == decision_id:
                tally.conversions += 1
                tally.revenue += amounts.get(event.order_id or "", 0.0)
                tally.offer_value += offer.value
                tally.daily_conversions[planned.day] += 1
            elif isinstance(event, ev.NotificationUnsubscribed):
                tally.unsubscribes += 1
            elif isinstance(event, ev.NotificationComplained):
                tally.complaints += 1
            heapq.heappush(self.pending, (event.occurred_at.timestamp(), 0, next(self.seq), event))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ result

    def result(self, seconds: float) -> BaselineRun:
        tally, stats = self.tally, self.world.stats()
        outcome = PolicyOutcome(
            name=self.name,
            sends=tally.sends,
            conversions=tally.conversions,
            revenue=round(tally.revenue, 2),
            unsubscribes=tally.unsubscribes,
            complaints=tally.complaints,
            members=self.config.members,
            send_cost=round(tally.send_cost, 4),
            daily_conversions=list(tally.daily_conversions),
            channel_mix=dict(sorted(tally.channel_mix.items())),
            send_hour_vs_active_hour=tally.hour_gaps,
            through_stack=False,
            expected_revenue=round(tally.expected_revenue, 4),
            expected_unsubscribes=round(tally.expected_unsubscribes, 6),
        )
        _cross_check(outcome, stats)
        lost = self.policy.unsubscribe_cost * (tally.unsubscribes + tally.complaints)
        worth = tally.revenue if self.policy.objective == "revenue" else tally.offer_value
        return BaselineRun(
            outcome=outcome,
            offer_value=round(tally.offer_value, 2),
            net_value=round(worth - tally.send_cost - lost, 4),
            expected_net_value=round(tally.expected_net, 4),
            requested_sends=self.sends_budget if self.name == "random" else None,
            dropped_at_dispatch=tally.dropped,
            members_reached=len(tally.reached),
            stats=stats,
            seconds=round(seconds, 2),
            messages=tally.messages,
        )


def _cross_check(outcome: PolicyOutcome, stats: SimStats) -> None:
    mine = {
        "messages": outcome.sends,
        "message_conversions": outcome.conversions,
        "unsubscribes": outcome.unsubscribes,
        "complaints": outcome.complaints,
    }
    theirs = {k: getattr(stats, k) for k in mine}
    differ = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
    if abs(outcome.revenue - stats.message_revenue) > 0.01 * max(1, outcome.conversions):
        differ["message_revenue"] = (outcome.revenue, stats.message_revenue)  # type: ignore[assignment]
    if differ:
        raise BaselineCrossCheckFailed(
            f"baseline {outcome.name}: loop counts disagree with World.stats() (mine, world's): {differ}"
        )


def hour_gap_summary(outcome: PolicyOutcome) -> dict[str, float]:
    """Mean and median |send hour - peak hour| of a policy's sends, for the report."""
    gaps = outcome.send_hour_vs_active_hour
    if not gaps:
        return {"mean": 0.0, "median": 0.0}
    return {"mean": round(float(np.mean(gaps)), 2), "median": round(float(np.median(gaps)), 2)}


__all__ = [
    "BASELINES",
    "BaselineCrossCheckFailed",
    "BaselineRun",
    "MissingSendsBudget",
    "SentMessage",
    "UnknownBaseline",
    "hour_gap_summary",
    "run_baseline",
    "simulate_baseline",
]
