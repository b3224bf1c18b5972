"""One joint decision per member and trigger: whether to send, which offer, on which channel
and when — candidates, guardrails, scores, choice — with its propensity and readable reasons.

Pure: takes profiles, catalog, a scorer and `now`; returns Decision values. No I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import numpy as np

from functions.domain import features as ft

# The decision record and the guardrails are numpy-free modules of their own (dispatch,
# feedback and privacy use them without numpy); re-exported here for every existing import.
from functions.domain.decision_record import ChosenAction, Decision
from functions.domain.guardrails import (
    PolicyConfig,
    cap_guardrail,
    channel_guardrail,
    is_quiet_hour,
    offer_guardrail,
)
from functions.domain.guardrails import local_time as local_time
from functions.domain.guardrails import next_allowed as next_allowed
from functions.domain.offers import Offer
from functions.domain.profile import TIERS, MemberProfile
from functions.domain.triggers import DecisionRequest, conditions_hold

Channel = Literal["email", "push", "sms"]


class Scorer(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, rows: np.ndarray) -> np.ndarray: ...


class PriorScorer:
    """The cold-start model, served until a model trained on the programme's own outcomes
    passes the gate: P(convert) as a funnel of what the profile already says.

    engagement(channel) × timing × relevance × P(convert | click), where engagement is the
    member's smoothed click rate on the channel — for email and push also read through their
    open rate, which is measured far sooner (a quarter of emails are opened, a few percent
    clicked); timing is the member's activity at the send hour (1 = average); relevance grows
    with the member's share of spending in the offer's categories. Priors are published
    industry rates (functions/domain/features.py)."""

    version = "prior-2"
    convert_given_click = 0.12

    _col = {name: i for i, name in enumerate(ft.FEATURE_NAMES)}
    _click_to_open = np.array([ft.CLICK_RATE_PRIOR[c] / ft.OPEN_RATE_PRIOR[c] for c in ft.CHANNELS])

    def predict(self, rows: np.ndarray) -> np.ndarray:
        col = self._col
        channel = np.argmax(rows[:, [col[f"channel_{c}"] for c in ft.CHANNELS]], axis=1)
        click = rows[:, col["channel_click_rate"]]
        via_open = rows[:, col["channel_open_rate"]] * self._click_to_open[channel]
        email, push = ft.CHANNELS.index("email"), ft.CHANNELS.index("push")
        engagement = np.where(channel == push, via_open,
                              np.where(channel == email, 0.5 * (click + via_open), click))
        timing = np.maximum(rows[:, col["hour_affinity"]], 0.05)
        relevance = 0.5 + 2.0 * rows[:, col["offer_category_share"]]
        return np.clip(engagement * timing * relevance * self.convert_given_click, 1e-5, 0.99)


def decision_id_for(member_id: str, cause_id: str, trigger: str) -> str:
    """Deterministic: the same trigger event for the same member is always the same decision."""
    digest = hashlib.sha256(f"{member_id}|{trigger}|{cause_id}".encode()).hexdigest()
    return f"d-{digest[:32]}"


def in_holdout(member_id: str, share: float, salt: str) -> bool:
    """Stable global holdout: a member is in it or not, whatever the trigger or the day."""
    digest = hashlib.sha256(f"{salt}|{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def send_slots(now: datetime, hours: int) -> np.ndarray:
    """Now, then each whole hour in the next `hours` hours (epoch seconds)."""
    t = now.timestamp()
    first = math.floor(t / 3600.0) * 3600.0 + 3600.0
    return np.array([t, *(first + 3600.0 * k for k in range(hours - 1))], dtype=np.float64)


@dataclass
class AllowedCandidates:
    """A member's allowed candidates before they become arrays: (offer, channel) pairs in
    catalog and channel order, each with the positions of the send slots it may use."""

    request: DecisionRequest
    profile: MemberProfile
    holdout: bool
    offers: list[int]
    channels: list[int]
    slots: list[list[int]]
    rejected: Counter
    considered: int

    @property
    def count(self) -> int:
        return sum(len(positions) for positions in self.slots)


@dataclass(frozen=True)
class _OfferTerms:
    """What the candidate loop reads from an offer, read once per batch."""

    index: int
    offer: Offer
    kind: str
    topic: str
    channels: tuple[str, ...]


def _offer_terms(catalog: ft.CatalogArrays) -> list[_OfferTerms]:
    return [_OfferTerms(i, o, o.kind, o.topic.value, tuple(c.value for c in o.channels))
            for i, o in enumerate(catalog.offers)]


def _quiet_slots(slots: np.ndarray, time_zone: str, config: PolicyConfig,
                 cache: dict[str, list[bool]] | None = None) -> list[bool]:
    if cache is not None and time_zone in cache:
        return cache[time_zone]
    local_hours = ft.local_hour_of_week(slots, time_zone) % 24
    quiet = [is_quiet_hour(int(h), config) for h in local_hours]
    if cache is not None:
        cache[time_zone] = quiet
    return quiet


def _allowed_candidates(request: DecisionRequest, profile: MemberProfile, terms: list[_OfferTerms],
                        slots: np.ndarray, now: datetime, config: PolicyConfig,
                        budget_left: dict[str, int] | None,
                        quiet_by_zone: dict[str, list[bool]] | None = None) -> AllowedCandidates:
    trigger = request.trigger
    holdout = in_holdout(profile.member_id, config.holdout_share, config.holdout_salt) and not trigger.transactional
    rejected: Counter = Counter()
    n_slots = len(slots)
    every_slot = list(range(n_slots))
    offers: list[int] = []
    channels: list[int] = []
    positions: list[list[int]] = []
    considered = 0
    # Quiet hours and caps depend on the slot and topic only: the allowed slots and the
    # rejection counts (in slot order) once per topic; channel guardrails once per channel and topic.
    by_topic: dict[str, tuple[list[int], list[tuple[str, int]]]] = {}
    by_channel: dict[tuple[str, str], str | None] = {}
    if not conditions_hold(trigger, profile, now):
        rejected["trigger_conditions"] += 1
        return AllowedCandidates(request, profile, holdout, offers, channels, positions, rejected, considered)
    quiet: list[bool] | None = None
    for term in terms:
        if term.kind not in trigger.offer_kinds or term.topic not in trigger.topics:
            continue
        reason = offer_guardrail(profile, term.offer, now, config, budget_left)
        considered += len(term.channels) * n_slots
        if reason:
            rejected[reason] += len(term.channels) * n_slots
            continue
        topic = term.topic
        allowed: list[int] = every_slot
        slot_rejections: list[tuple[str, int]] = []
        if not trigger.transactional:
            if topic not in by_topic:
                if quiet is None:
                    quiet = _quiet_slots(slots, profile.time_zone, config, quiet_by_zone)
                if not profile.recent_sends and topic not in profile.last_send_by_topic:
                    # Nothing sent yet: the cap does not depend on the slot.
                    cap = cap_guardrail(profile, topic, float(slots[0]), config)
                    caps = [cap] * n_slots
                else:
                    caps = [None if quiet[i] else cap_guardrail(profile, topic, float(slots[i]), config)
                            for i in range(n_slots)]
                counts: dict[str, int] = {}
                for i in range(n_slots):
                    slot_reason = "quiet_hours" if quiet[i] else caps[i]
                    if slot_reason:
                        counts[slot_reason] = counts.get(slot_reason, 0) + 1
                by_topic[topic] = ([i for i in range(n_slots) if not quiet[i] and caps[i] is None],
                                   list(counts.items()))
            allowed, slot_rejections = by_topic[topic]
        for channel in term.channels:
            key = (channel, topic)
            if key not in by_channel:
                by_channel[key] = channel_guardrail(profile, channel, topic, trigger.transactional)
            reason = by_channel[key]
            if reason:
                rejected[reason] += n_slots
                continue
            for slot_reason, count in slot_rejections:
                rejected[slot_reason] += count
            offers.append(term.index)
            channels.append(ft.CHANNELS.index(channel))
            positions.append(allowed)
    return AllowedCandidates(request, profile, holdout, offers, channels, positions, rejected, considered)


# Member-vector positions read once per member on the hot path.
_SENDS_7D = ft.MEMBER_FEATURES.index("sends_7d")
_CHURN_RISK = ft.MEMBER_FEATURES.index("churn_risk")
_MONETARY_AVG = ft.MEMBER_FEATURES.index("monetary_avg")


def conversion_value(member_vector: np.ndarray, catalog: ft.CatalogArrays, offer_index: np.ndarray,
                     config: PolicyConfig) -> np.ndarray:
    """What one conversion of each candidate is worth under the configured objective."""
    if config.objective == "offer_value":
        return catalog.value[offer_index]
    basket = float(member_vector[_MONETARY_AVG]) or config.default_basket
    return np.full(len(offer_index), basket, dtype=np.float64)


def _rng(config: PolicyConfig, decision_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{config.seed}|{decision_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> int:
    """The index `rng.choice(len(p), p=p)` returns, and the same state consumed (one uniform
    against the normalised cumulative sum, as numpy's Generator.choice does), without the
    argument checks that cost more than the draw on the hot path."""
    cdf = probabilities.cumsum()
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def top_order(expected: np.ndarray, k: int = 5) -> list[int]:
    """The k best candidates, best first; among tied ones the first by index, as np.argmax breaks
    ties in `choose`: the first is then the greedy action, which off-policy evaluation's target
    reads from the logged `top`. (numpy's default argsort is not stable: with a few hundred
    tied candidates it put another one first, whose propensity is epsilon / n.)"""
    return np.argsort(-expected, kind="stable")[:k].tolist() if len(expected) else []


def choose(expected: np.ndarray, config: PolicyConfig, rng: np.random.Generator) -> tuple[int, np.ndarray, bool]:
    """Pick among [send nothing] + candidates (index 0 = nothing, value 0).

    Returns the chosen index, the propensity of every action and whether it explored."""
    values = np.concatenate([[0.0], expected])
    n = len(values)
    greedy = int(np.argmax(values))
    if config.exploration == "none" or n == 1:
        probabilities = np.zeros(n)
        probabilities[greedy] = 1.0
    elif config.exploration == "epsilon":
        probabilities = np.full(n, config.epsilon / n)
        probabilities[greedy] += 1.0 - config.epsilon
    else:
        scaled = (values - values.max()) / max(config.temperature, 1e-6)
        weights = np.exp(scaled)
        probabilities = weights / weights.sum()
    chosen = _draw(rng, probabilities)
    return chosen, probabilities, chosen != greedy


def _local_hour_text(profile: MemberProfile, hour_affinity: np.ndarray | None = None) -> str | None:
    week = ft.hour_affinity_vector(profile) if hour_affinity is None else hour_affinity
    affinity = week.reshape(7, 24).sum(axis=0) / 7  # = mean(axis=0), bit for bit, without its overhead
    best = int(np.argmax(affinity))
    if affinity[best] < 1.6:
        return None
    return f"{best:02d}:00"


def reasons_for(profile: MemberProfile, offer: Offer, channel: str, request: DecisionRequest,
                now: datetime, *, timing: bool = True, hour_affinity: np.ndarray | None = None) -> list[str]:
    """Reasons a person can read, most specific first (also usable in templates).

    `timing=False` leaves out when the member usually opens messages (an in-app placement is
    seen while the member is in the app: send time is not a reason there). `hour_affinity` is
    the member's `features.hour_affinity_vector` when the caller already has it."""
    reasons: list[str] = []
    t = now.timestamp()
    if request.trigger.name.startswith("cart"):
        reasons.append("you left items in your cart")
    if profile.points_expiring > 0 and profile.points_expire_at is not None:
        days = (profile.points_expire_at - t) / 86400.0
        if 0 <= days <= 30:
            reasons.append(f"your {profile.points_expiring} points expire in {max(1, round(days))} days")
    gap = ft.points_to_next_tier(profile)
    rank = ft.tier_rank(profile.tier)
    if 0 < gap <= 500 and rank + 1 < len(TIERS):
        reasons.append(f"you are {int(gap)} points from {TIERS[rank + 1]}")
    if offer.categories and profile.categories:
        best = max(offer.categories, key=lambda c: profile.categories[c].v if c in profile.categories else 0.0)
        if best in profile.categories:
            reasons.append(f"you often buy {best}")
    hour = _local_hour_text(profile, hour_affinity) if timing else None
    if hour:
        reasons.append(f"usually opens {channel} around {hour}")
    if request.trigger.name == "win_back":
        reasons.append("we have missed you")
    return reasons or [f"new {offer.kind} for {profile.tier} members"]


@dataclass(frozen=True)
class CandidateBatch:
    """Every allowed candidate of a batch of requests with its feature rows, one row per
    candidate, members in request order: what the engine scores and chooses among (and where
    another scorer or chooser, e.g. a benchmark's peer, plugs into the same engine)."""

    members: list[AllowedCandidates]
    windows: list[slice]  # each member's rows
    hour_affinity: list[np.ndarray | None]  # each member's, None when it has no candidate
    offer_index: np.ndarray
    channel_index: np.ndarray
    send_at: np.ndarray
    member_index: np.ndarray  # row -> position among the members that have candidates
    vectors: np.ndarray  # member features of the members that have candidates
    transactional: list[bool]  # of the members that have candidates
    rows: np.ndarray


def candidate_batch(requests: Sequence[DecisionRequest], profiles: dict[str, MemberProfile],
                    catalog: ft.CatalogArrays, now: datetime, config: PolicyConfig,
                    budget_left: dict[str, int] | None = None) -> CandidateBatch:
    """Guardrails per member (an unknown member gets an empty profile), then the feature rows
    of every allowed candidate of the batch in one pass."""
    slots = send_slots(now, config.slot_hours)
    terms = _offer_terms(catalog)
    quiet_by_zone: dict[str, list[bool]] = {}
    members: list[AllowedCandidates] = []
    for request in requests:
        profile = profiles.get(request.member_id)
        if profile is None:
            profile = MemberProfile(member_id=request.member_id)
        members.append(_allowed_candidates(request, profile, terms, slots, now, config, budget_left, quiet_by_zone))
    counts = [m.count for m in members]
    scored = [m for m, c in zip(members, counts, strict=True) if c]
    pair_sizes = [len(p) for m in scored for p in m.slots]
    offer_index = np.repeat(np.asarray([o for m in scored for o in m.offers], dtype=np.int64), pair_sizes)
    channel_index = np.repeat(np.asarray([c for m in scored for c in m.channels], dtype=np.int64), pair_sizes)
    send_at = slots[np.asarray([i for m in scored for p in m.slots for i in p], dtype=np.int64)]
    member_index = np.repeat(np.arange(len(scored), dtype=np.int64), [c for c in counts if c])
    vectors = (np.stack([ft.member_features(m.profile, now) for m in scored]) if scored
               else np.zeros((0, ft.N_MEMBER), dtype=np.float32))
    affinity = ft.hour_affinity_matrix([m.profile for m in scored])
    rows = ft.candidate_features_batch([m.profile for m in scored], vectors, catalog, member_index, offer_index,
                                       channel_index, send_at, now, hour_affinity=affinity)
    windows: list[slice] = []
    by_member: list[np.ndarray | None] = []
    offset, k = 0, 0
    for n in counts:
        windows.append(slice(offset, offset + n))
        offset += n
        by_member.append(affinity[k] if n else None)
        k += 1 if n else 0
    return CandidateBatch(members=members, windows=windows, hour_affinity=by_member, offer_index=offer_index,
                          channel_index=channel_index, send_at=send_at, member_index=member_index, vectors=vectors,
                          transactional=[m.request.trigger.transactional for m in scored], rows=rows)


def decide_batch(requests: Sequence[DecisionRequest], profiles: dict[str, MemberProfile],
                 catalog: ft.CatalogArrays, scorer: Scorer, now: datetime, config: PolicyConfig,
                 budget_left: dict[str, int] | None = None, variant: str = "champion") -> list[Decision]:
    """Decide for a batch: the candidates and their features, one scoring call and the expected
    values vectorized over every candidate of every member; the choice, reasons and record per
    member."""
    batch = candidate_batch(requests, profiles, catalog, now, config, budget_left)
    probability = scorer.predict(batch.rows) if len(batch.rows) else np.zeros(0)
    worth = _conversion_values(batch.vectors, batch.member_index, catalog, batch.offer_index, config)
    expected = _expected_values(probability, worth, batch.vectors, batch.member_index, batch.channel_index,
                                batch.send_at, now.timestamp(), batch.transactional, config)
    decisions = []
    for member, window, affinity in zip(batch.members, batch.windows, batch.hour_affinity, strict=True):
        scored = ScoredCandidates(batch.offer_index[window], batch.channel_index[window], batch.send_at[window],
                         probability[window], worth[window], expected[window])
        decision_id = decision_id_for(member.profile.member_id, member.request.cause_id, member.request.trigger.name)
        chosen, probabilities, explored = choose(scored.expected, config, _rng(config, decision_id))
        decisions.append(decision_record(member, scored, decision_id, chosen, probabilities, explored, affinity,
                                         catalog, scorer.version, now, config, variant))
    return decisions


@dataclass(frozen=True)
class ScoredCandidates:
    """One member's slice of the batch arrays, scored."""

    offer_index: np.ndarray
    channel_index: np.ndarray
    send_at: np.ndarray
    probability: np.ndarray
    worth: np.ndarray
    expected: np.ndarray


def _conversion_values(vectors: np.ndarray, member_index: np.ndarray, catalog: ft.CatalogArrays,
                       offer_index: np.ndarray, config: PolicyConfig) -> np.ndarray:
    """`conversion_value` for every row of the batch (the same values, one gather)."""
    if config.objective == "offer_value":
        return catalog.value[offer_index]
    basket = np.array([float(v) or config.default_basket for v in vectors[:, _MONETARY_AVG].tolist()],
                      dtype=np.float64)
    return basket[member_index]


def _expected_values(probability: np.ndarray, value: np.ndarray, vectors: np.ndarray, member_index: np.ndarray,
                     channel_index: np.ndarray, send_at: np.ndarray, t: float, transactional: list[bool],
                     config: PolicyConfig) -> np.ndarray:
    """Expected net value of every candidate row: P(convert) × value, discounted for waiting,
    minus the send cost and the fatigue cost (unsubscribe risk, growing with recent sends and
    churn risk; none for transactional messages) — one array expression over the whole batch."""
    if not len(probability):
        return np.zeros(0)
    cost = np.array([config.channel_cost[c] for c in ft.CHANNELS])[channel_index]
    delay_h = (send_at - t) / 3600.0
    growth = 1.0 + config.fatigue_growth * vectors[:, _SENDS_7D].astype(np.float64)
    churn_factor = 1.0 + np.maximum(0.0, vectors[:, _CHURN_RISK].astype(np.float64))
    base = np.array([config.base_unsubscribe_risk[c] for c in ft.CHANNELS])[channel_index]
    fatigue = base * growth[member_index] * churn_factor[member_index] * config.unsubscribe_cost
    if any(transactional):
        fatigue[np.asarray(transactional, dtype=bool)[member_index]] = 0.0
    return probability * value * (1.0 - config.delay_cost_per_hour * delay_h) - cost - fatigue


def decision_record(member: AllowedCandidates, scored: ScoredCandidates, decision_id: str, chosen: int, probabilities: np.ndarray,
                    explored: bool, hour_affinity: np.ndarray | None, catalog: ft.CatalogArrays, model_version: str,
                    now: datetime, config: PolicyConfig, variant: str) -> Decision:
    """The Decision for a member once an action is chosen (`chosen` 0 = send nothing, i + 1 =
    candidate i; `probabilities` over the same actions): reasons for the chosen candidate
    only, the five best candidates by expected value, the rejection counts."""
    request, profile = member.request, member.profile
    expected, probability, worth = scored.expected, scored.probability, scored.worth
    nothing = ChosenAction(kind="none")
    intended = nothing
    reasons: list[str] = []
    if chosen > 0:
        i = chosen - 1
        offer = catalog.offers[int(scored.offer_index[i])]
        channel = ft.CHANNELS[int(scored.channel_index[i])]
        intended = ChosenAction(
            kind="send", offer_id=offer.offer_id, channel=channel, topic=offer.topic.value,
            send_at=float(scored.send_at[i]), probability=float(probability[i]),
            expected_value=float(expected[i]),
        )
        reasons = reasons_for(profile, offer, channel, request, now, hour_affinity=hour_affinity)
    order = top_order(expected)
    top = [
        {
            "offer_id": catalog.offers[int(scored.offer_index[i])].offer_id,
            "channel": ft.CHANNELS[int(scored.channel_index[i])],
            "send_at": float(scored.send_at[i]),
            "p": round(float(probability[i]), 6),
            "value": round(float(worth[i]), 4),  # what one conversion is worth (objective)
            "ev": round(float(expected[i]), 6),
            "propensity": round(float(probabilities[i + 1]), 6),
        }
        for i in order
    ]
    # Validated construction on purpose: model_construct measured slower here (pydantic 2.14).
    return Decision(
        decision_id=decision_id, member_id=profile.member_id, trigger=request.trigger.name,
        cause_id=request.cause_id, decided_at=now.timestamp(), model_version=model_version,
        variant=variant, holdout=member.holdout, transactional=request.trigger.transactional,
        time_zone=profile.time_zone,
        action=nothing if member.holdout else intended, intended=intended,
        propensity=float(probabilities[chosen]),
        exploration={"policy": config.exploration, "epsilon": config.epsilon,
                     "temperature": config.temperature, "explored": explored,
                     "actions": len(probabilities), "p_nothing": float(probabilities[0])},
        candidates_considered=member.considered, candidates_allowed=len(scored.offer_index),
        rejected=dict(member.rejected), top=top, reasons=reasons,
    )
