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
class _MemberCandidates:
    request: DecisionRequest
    profile: MemberProfile
    holdout: bool
    offer_index: np.ndarray
    channel_index: np.ndarray
    send_at: np.ndarray
    rejected: Counter
    considered: int
    rows: np.ndarray | None = None


def _member_candidates(request: DecisionRequest, profile: MemberProfile, catalog: ft.CatalogArrays,
                       now: datetime, config: PolicyConfig, budget_left: dict[str, int] | None) -> _MemberCandidates:
    trigger = request.trigger
    holdout = in_holdout(profile.member_id, config.holdout_share, config.holdout_salt) and not trigger.transactional
    rejected: Counter = Counter()
    slots = send_slots(now, config.slot_hours)
    local_hours = ft.local_hour_of_week(slots, profile.time_zone) % 24
    quiet = np.array([is_quiet_hour(int(h), config) for h in local_hours])
    offers_idx: list[np.ndarray] = []
    channels_idx: list[np.ndarray] = []
    times: list[np.ndarray] = []
    considered = 0
    # Quiet hours and caps depend on the slot and topic only: one mask per topic.
    allowed_by_topic: dict[str, np.ndarray] = {}
    n_slots = len(slots)
    if not conditions_hold(trigger, profile, now):
        rejected["trigger_conditions"] += 1
    else:
        for o_index, offer in enumerate(catalog.offers):
            if offer.kind not in trigger.offer_kinds or offer.topic.value not in trigger.topics:
                continue
            reason = offer_guardrail(profile, offer, now, config, budget_left)
            channels = [c.value for c in offer.channels]
            considered += len(channels) * n_slots
            if reason:
                rejected[reason] += len(channels) * n_slots
                continue
            topic = offer.topic.value
            if trigger.transactional:
                mask = np.ones(n_slots, dtype=bool)
            else:
                if topic not in allowed_by_topic:
                    caps = [None if quiet[i] else cap_guardrail(profile, topic, float(slots[i]), config)
                            for i in range(n_slots)]
                    allowed_by_topic[topic] = np.array([not quiet[i] and caps[i] is None for i in range(n_slots)])
                    allowed_by_topic[f"{topic}:reasons"] = np.array(
                        ["quiet_hours" if quiet[i] else (caps[i] or "") for i in range(n_slots)])
                mask = allowed_by_topic[topic]
            for channel in channels:
                reason = channel_guardrail(profile, channel, topic, trigger.transactional)
                if reason:
                    rejected[reason] += n_slots
                    continue
                if not trigger.transactional:
                    for slot_reason in allowed_by_topic[f"{topic}:reasons"][~mask]:
                        rejected[str(slot_reason)] += 1
                allowed = slots[mask]
                offers_idx.append(np.full(len(allowed), o_index, dtype=np.int64))
                channels_idx.append(np.full(len(allowed), ft.CHANNELS.index(channel), dtype=np.int64))
                times.append(allowed)
    return _MemberCandidates(
        request=request, profile=profile, holdout=holdout,
        offer_index=np.concatenate(offers_idx) if offers_idx else np.zeros(0, dtype=np.int64),
        channel_index=np.concatenate(channels_idx) if channels_idx else np.zeros(0, dtype=np.int64),
        send_at=np.concatenate(times) if times else np.zeros(0, dtype=np.float64),
        rejected=rejected, considered=considered,
    )


# Member-vector positions read once per member on the hot path.
_SENDS_7D = ft.MEMBER_FEATURES.index("sends_7d")
_CHURN_RISK = ft.MEMBER_FEATURES.index("churn_risk")
_MONETARY_AVG = ft.MEMBER_FEATURES.index("monetary_avg")


def _fatigue_cost(member_vector: np.ndarray, channel_index: np.ndarray, config: PolicyConfig) -> np.ndarray:
    sends_7d = float(member_vector[_SENDS_7D])
    churn = float(member_vector[_CHURN_RISK])
    churn_factor = 1.0 + max(0.0, churn)
    base = np.array([config.base_unsubscribe_risk[c] for c in ft.CHANNELS])[channel_index]
    risk = base * (1.0 + config.fatigue_growth * sends_7d) * churn_factor
    return risk * config.unsubscribe_cost


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
    chosen = int(rng.choice(n, p=probabilities))
    return chosen, probabilities, chosen != greedy


def _local_hour_text(profile: MemberProfile) -> str | None:
    affinity = ft.hour_affinity_vector(profile).reshape(7, 24).mean(axis=0)
    best = int(np.argmax(affinity))
    if affinity[best] < 1.6:
        return None
    return f"{best:02d}:00"


def reasons_for(profile: MemberProfile, offer: Offer, channel: str, request: DecisionRequest,
                now: datetime, *, timing: bool = True) -> list[str]:
    """Reasons a person can read, most specific first (also usable in templates).

    `timing=False` leaves out when the member usually opens messages (an in-app placement is
    seen while the member is in the app: send time is not a reason there)."""
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
    hour = _local_hour_text(profile) if timing else None
    if hour:
        reasons.append(f"usually opens {channel} around {hour}")
    if request.trigger.name == "win_back":
        reasons.append("we have missed you")
    return reasons or [f"new {offer.kind} for {profile.tier} members"]


def decide_batch(requests: Sequence[DecisionRequest], profiles: dict[str, MemberProfile],
                 catalog: ft.CatalogArrays, scorer: Scorer, now: datetime, config: PolicyConfig,
                 budget_left: dict[str, int] | None = None, variant: str = "champion") -> list[Decision]:
    """Decide for a batch: one vectorized scoring call over every candidate of every member."""
    members: list[_MemberCandidates] = []
    for request in requests:
        profile = profiles.get(request.member_id)
        if profile is None:
            profile = MemberProfile(member_id=request.member_id)
        candidates = _member_candidates(request, profile, catalog, now, config, budget_left)
        if len(candidates.offer_index):
            vector = ft.member_features(profile, now)
            candidates.rows = ft.candidate_features(
                profile, vector, catalog, candidates.offer_index, candidates.channel_index,
                candidates.send_at, now,
            )
        members.append(candidates)
    blocks = [m.rows for m in members if m.rows is not None]
    scores = scorer.predict(np.vstack(blocks)) if blocks else np.zeros(0)
    decisions, offset = [], 0
    for member in members:
        n = 0 if member.rows is None else len(member.rows)
        member_scores = scores[offset : offset + n]
        offset += n
        decisions.append(_finish(member, member_scores, catalog, scorer, now, config, variant))
    return decisions


def _finish(member: _MemberCandidates, probability: np.ndarray, catalog: ft.CatalogArrays, scorer: Scorer,
            now: datetime, config: PolicyConfig, variant: str) -> Decision:
    request, profile = member.request, member.profile
    decision_id = decision_id_for(profile.member_id, request.cause_id, request.trigger.name)
    expected = np.zeros(0)
    worth = np.zeros(0)
    if len(probability):
        assert member.rows is not None
        value = worth = conversion_value(member.rows[0, : ft.N_MEMBER], catalog, member.offer_index, config)
        cost = np.array([config.channel_cost[c] for c in ft.CHANNELS])[member.channel_index]
        delay_h = (member.send_at - now.timestamp()) / 3600.0
        member_vector = member.rows[0, : ft.N_MEMBER]
        fatigue = _fatigue_cost(member_vector, member.channel_index, config)
        if request.trigger.transactional:
            fatigue = np.zeros_like(fatigue)
        expected = probability * value * (1.0 - config.delay_cost_per_hour * delay_h) - cost - fatigue
    chosen, probabilities, explored = choose(expected, config, _rng(config, decision_id))
    nothing = ChosenAction(kind="none")
    intended = nothing
    reasons: list[str] = []
    if chosen > 0:
        i = chosen - 1
        offer = catalog.offers[int(member.offer_index[i])]
        channel = ft.CHANNELS[int(member.channel_index[i])]
        intended = ChosenAction(
            kind="send", offer_id=offer.offer_id, channel=channel, topic=offer.topic.value,
            send_at=float(member.send_at[i]), probability=float(probability[i]),
            expected_value=float(expected[i]),
        )
        reasons = reasons_for(profile, offer, channel, request, now)
    order: list[int] = [int(i) for i in np.argsort(-expected)[:5]] if len(expected) else []
    top = [
        {
            "offer_id": catalog.offers[int(member.offer_index[i])].offer_id,
            "channel": ft.CHANNELS[int(member.channel_index[i])],
            "send_at": float(member.send_at[i]),
            "p": round(float(probability[i]), 6),
            "value": round(float(worth[i]), 4),  # what one conversion is worth (objective)
            "ev": round(float(expected[i]), 6),
            "propensity": round(float(probabilities[i + 1]), 6),
        }
        for i in order
    ]
    return Decision(
        decision_id=decision_id, member_id=profile.member_id, trigger=request.trigger.name,
        cause_id=request.cause_id, decided_at=now.timestamp(), model_version=scorer.version,
        variant=variant, holdout=member.holdout, transactional=request.trigger.transactional,
        time_zone=profile.time_zone,
        action=nothing if member.holdout else intended, intended=intended,
        propensity=float(probabilities[chosen]),
        exploration={"policy": config.exploration, "epsilon": config.epsilon,
                     "temperature": config.temperature, "explored": explored,
                     "actions": len(probabilities), "p_nothing": float(probabilities[0])},
        candidates_considered=member.considered, candidates_allowed=len(member.offer_index),
        rejected=dict(member.rejected), top=top, reasons=reasons,
    )
