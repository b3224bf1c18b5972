"""How a member reacts to one message: pure functions of hidden traits and state.

`World.deliver` draws outcomes from these probabilities and `World.expected_value` returns
them, so the truth used to score an oracle or an off-policy estimate is exactly the
distribution the simulated members sample from.

Funnel of one message, each step conditional on the previous one:
    bounce -> delivered -> (complaint | unsubscribe | neither) ; open (independent of annoyance)
    -> click (only if opened and not annoyed) -> conversion (offer redeemed + purchase)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from fidelio.sim.config import SimConfig
from fidelio.sim.traits import CATEGORIES, CATEGORY_INDEX, TIER_THRESHOLDS, TIERS, MemberTraits, tier_of
from functions.domain.offers import Offer

GENERIC_RELEVANCE = 0.3  # a message with no offer (newsletter, announcement)
CONVERSION_BASKET = 1.15  # a redeemed offer comes with a slightly bigger basket than usual
KIND_CONVERSION = {"coupon": 1.0, "points": 0.8, "reminder": 0.9, "content": 0.4}
NIGHT_HOURS = frozenset((22, 23, 0, 1, 2, 3, 4, 5, 6))
VIOLATION_COMPLAINT_FLOOR = 0.01  # someone who opted out and still gets messages complains more


@dataclass(frozen=True)
class LoyaltyView:
    """The parts of a member's changing state that relevance depends on."""

    qualifying_points: float
    points_balance: int
    expiring_points: int
    expiring_on: date | None
    last_seen_at: datetime | None  # last purchase, or enrolment if none yet


@dataclass(frozen=True)
class ResponseProbabilities:
    hard_bounce: bool
    p_bounce: float
    p_open: float  # given delivered; SMS: read (no event)
    p_click_given_open: float
    p_convert_given_click: float
    p_unsubscribe: float  # given delivered
    p_complaint: float  # given delivered
    relevance: float
    eligible: bool  # tier and dates allow redeeming the offer

    @property
    def p_delivered(self) -> float:
        return 1.0 - self.p_bounce

    @property
    def p_click(self) -> float:
        """Unconditional P(click) for one send."""
        calm = max(0.0, 1.0 - self.p_unsubscribe - self.p_complaint)
        return self.p_delivered * calm * self.p_open * self.p_click_given_open

    @property
    def p_convert(self) -> float:
        return self.p_click * self.p_convert_given_click


def category_relevance(prefs: np.ndarray, categories: list[str]) -> float:
    """Affinity of the member for the offer's categories vs an average member, mapped to 0..1
    (0.5 = average). Unknown categories count as average."""
    unique = sorted(set(categories))
    uniform = 1.0 / len(CATEGORIES)
    share = sum(float(prefs[CATEGORY_INDEX[c]]) if c in CATEGORY_INDEX else uniform for c in unique)
    affinity = share / (len(unique) * uniform)
    return affinity / (affinity + 1.0)


def state_relevance(traits: MemberTraits, offer: Offer, at: datetime, loyalty: LoyaltyView) -> float:
    """Relevance of an offer without categories: it depends on the member's loyalty state."""
    topic = offer.topic.value
    if topic == "points":  # e.g. points-expiry reminder: urgent when a lot expires soon
        if loyalty.expiring_points > 0 and loyalty.expiring_on is not None:
            days_left = (loyalty.expiring_on - at.date()).days
            if 0 <= days_left <= 45:
                size = min(1.0, loyalty.expiring_points / 300.0)
                return 0.2 + 0.7 * (1.0 - days_left / 45.0) * (0.5 + 0.5 * size)
        return 0.08 + 0.15 * min(1.0, loyalty.points_balance / 3000.0)
    if topic == "tier":  # tier nudge: relevant when the next tier is within reach
        rank = tier_of(loyalty.qualifying_points)
        if rank + 1 >= len(TIERS):
            return 0.05
        low, high = TIER_THRESHOLDS[rank], TIER_THRESHOLDS[rank + 1]
        closeness = min(1.0, max(0.0, (loyalty.qualifying_points - low) / (high - low)))
        return 0.08 + 0.77 * closeness**2
    # generic coupon (win-back and the like): the more overdue the member's next shop, the better
    seen = loyalty.last_seen_at
    days_since = 0.0 if seen is None else (at - seen).total_seconds() / 86400
    expected_gap = 1.0 / max(traits.purchases_per_day, 1e-3)
    lapse = min(1.0, max(0.0, (days_since - expected_gap) / (3.0 * expected_gap)))
    return 0.25 + 0.5 * lapse


def relevance(traits: MemberTraits, offer: Offer | None, at: datetime, loyalty: LoyaltyView) -> float:
    if offer is None:
        return GENERIC_RELEVANCE
    if offer.categories:
        return category_relevance(traits.category_prefs, offer.categories)
    return state_relevance(traits, offer, at, loyalty)


def eligible(offer: Offer | None, at: datetime, loyalty: LoyaltyView) -> bool:
    if offer is None:
        return False
    tier = TIERS[tier_of(loyalty.qualifying_points)]
    return offer.active_at(at) and (not offer.tiers or tier in offer.tiers)


def incentive(traits: MemberTraits, offer: Offer | None) -> float:
    value = 0.0 if offer is None else offer.value
    return 0.75 + 0.5 * traits.price_sensitivity * math.tanh(value / 8.0)


def excess_load(config: SimConfig, traits: MemberTraits, messages_last_7d: int) -> float:
    """Messages beyond the comfort load, weighted by how much this member minds them."""
    return (
        config.fatigue_sensitivity
        * traits.fatigue
        * max(0.0, messages_last_7d - config.comfort_messages_per_week)
    )


def response_probabilities(
    config: SimConfig,
    traits: MemberTraits,
    offer: Offer | None,
    channel: str,
    topic: str,
    at: datetime,
    loyalty: LoyaltyView,
    *,
    messages_last_7d: int,
    same_offer_last_7d: int,
    churned: bool,
    violation: str | None,
    hard_bounce: bool,
) -> ResponseProbabilities:
    rates = config.rates(channel)
    rel = relevance(traits, offer, at, loyalty)
    can_redeem = eligible(offer, at, loyalty)
    if hard_bounce:
        return ResponseProbabilities(True, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, rel, can_redeem)
    if churned:  # delivered to a mailbox / phone nobody looks at for us any more
        return ResponseProbabilities(False, rates.soft_bounce, 0.0, 0.0, 0.0, 0.0, 0.0, rel, can_redeem)

    hour = at.astimezone(traits.zone).hour
    timing = 1.0 - rates.timing_weight + rates.timing_weight * float(traits.activity[hour])
    excess = excess_load(config, traits, messages_last_7d)
    p_open = rates.open * traits.responsiveness[channel] * timing * (0.8 + 0.4 * rel)
    p_open *= math.exp(-config.fatigue_open * excess)

    novelty = 0.6**same_offer_last_7d
    p_click = rates.click_given_open * (0.3 + 1.4 * rel) * incentive(traits, offer) * novelty
    kind = offer.kind if offer is not None else "content"
    p_convert = rates.convert_given_click * (0.4 + 1.2 * rel) * KIND_CONVERSION[kind] if can_redeem else 0.0

    annoyance = (1.0 + config.fatigue_unsubscribe * excess) * (1.5 - rel) * (1.0 + 0.5 * same_offer_last_7d)
    if hour in NIGHT_HOURS:
        annoyance *= 1.0 + rates.night_annoyance
    if topic == "transactional":
        annoyance *= 0.1
    p_unsubscribe = rates.unsubscribe * annoyance
    p_complaint = rates.complaint * annoyance
    if violation is not None:  # a message they refused: no goodwill, more complaints
        p_click = p_convert = 0.0
        p_complaint = max(VIOLATION_COMPLAINT_FLOOR, 10.0 * p_complaint)
    return ResponseProbabilities(
        hard_bounce=False,
        p_bounce=rates.soft_bounce,
        p_open=min(0.95, p_open),
        p_click_given_open=min(0.9, p_click),
        p_convert_given_click=min(0.95, p_convert),
        p_unsubscribe=min(0.4, p_unsubscribe),
        p_complaint=min(0.4, p_complaint),
        relevance=rel,
        eligible=can_redeem,
    )
