"""In-app placements: a member's offers ranked by expected value when the app asks for them.

The same engine as a message decision — offer guardrails (dates, tier, budget, repeat), the
features of `features.candidate_features` and the same scorer — without what only a message
needs: no "send nothing" action, no channel, consent, suppression, quiet hours or frequency
caps, and no exploration (the ranking is deterministic, so its propensity is 1.0).

Members of the messaging holdout get placements too: the holdout measures what *messages*
add, and an in-app placement is a pull by the member's own app, not a marketing message.
Both groups see placements alike, so the holdout still measures the lift of messages.

Pure: takes a profile, the catalog, a scorer and `now`; returns a Placement. No I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from functions.domain import features as ft
from functions.domain.decision import (
    ChosenAction,
    Decision,
    PolicyConfig,
    Scorer,
    in_holdout,
    offer_guardrail,
    reasons_for,
)
from functions.domain.profile import MemberProfile
from functions.domain.triggers import DecisionRequest, Trigger

# What an in-app placement may show: offers a member can act on for value. Reminders and
# content are messages about the account, not offers to place.
IN_APP_TRIGGER = Trigger(
    name="in_app_offers",
    on="api:in_app_offers",
    offer_kinds=("coupon", "points"),
    topics=("offers", "points", "tier", "reminders"),
)
# The channel whose features stand for an in-app placement in the model's rows. There is no
# in-app channel among the features (adding one means a new FEATURE_VERSION and a model trained
# on logged placements, which this API starts to record). The shipped offers model was trained
# on email targetings only (channel_email = 1 in every training row), so email is the one
# representation it has seen; push or SMS rows would be out of its training distribution. The
# channel columns (flags, the member's open and click rates on it) are the same for every offer
# of one ranking: what orders the offers is the offer and member-offer features.
SCORING_CHANNEL = "email"
PLACEMENT_CHANNEL = "in_app"  # what the decision record says was used


@dataclass(frozen=True)
class RankedOffer:
    offer_id: str
    title: str
    probability: float  # the model's P(redeem)
    expected_value: float  # probability × the offer's value to the business
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    """The offers shown to one member, best first, with what is needed to log and join them."""

    decision_id: str
    member_id: str
    decided_at: float
    day: str  # the member's local date (YYYY-MM-DD)
    catalog_version: str
    model_version: str
    time_zone: str
    holdout: bool  # the member is in the messaging holdout (shown offers all the same)
    offers: tuple[RankedOffer, ...]
    considered: int  # offers of the kinds a placement may show
    allowed: int  # of those, offers no guardrail removed
    rejected: dict[str, int] = field(default_factory=dict)
    propensity: float = 1.0  # deterministic ranking

    def as_decision(self) -> Decision:
        """The placement as a decision record: no message (`action` is "none"), the ranked
        offers in `top` with their rank, P, EV and reasons, propensity 1.0."""
        nothing = ChosenAction(kind="none")
        return Decision(
            decision_id=self.decision_id, member_id=self.member_id, trigger=IN_APP_TRIGGER.name,
            cause_id=f"{self.day}:{self.catalog_version}", decided_at=self.decided_at,
            model_version=self.model_version, holdout=self.holdout, time_zone=self.time_zone,
            action=nothing, intended=nothing, propensity=self.propensity,
            exploration={"policy": "none", "explored": False, "ranking": "deterministic",
                         "scoring_channel": SCORING_CHANNEL},
            candidates_considered=self.considered, candidates_allowed=self.allowed,
            rejected=dict(self.rejected),
            top=[
                {"rank": rank, "offer_id": o.offer_id, "channel": PLACEMENT_CHANNEL,
                 "send_at": self.decided_at, "p": round(o.probability, 6),
                 "ev": round(o.expected_value, 6), "propensity": self.propensity,
                 "reasons": list(o.reasons)}
                for rank, o in enumerate(self.offers, start=1)
            ],
            reasons=list(self.offers[0].reasons) if self.offers else [],
        )


def placement_id_for(member_id: str, day: str, catalog_version: str) -> str:
    """Deterministic: one placement id per member, local day and catalog version."""
    digest = hashlib.sha256(f"{member_id}|{IN_APP_TRIGGER.name}|{day}|{catalog_version}".encode()).hexdigest()
    return f"p-{digest[:32]}"


def rank_offers(profile: MemberProfile, catalog: ft.CatalogArrays, scorer: Scorer, now: datetime,
                limit: int, config: PolicyConfig, *, catalog_version: str,
                budget_left: dict[str, int] | None = None) -> Placement:
    """The member's `limit` best offers by expected value (P × value), ties by offer id."""
    if limit < 1:
        raise ValueError(f"a placement shows at least one offer, asked for {limit}")
    day = now.astimezone(ZoneInfo(profile.time_zone)).date().isoformat()
    decision_id = placement_id_for(profile.member_id, day, catalog_version)
    rejected: Counter[str] = Counter()
    eligible: list[int] = []
    considered = 0
    for index, offer in enumerate(catalog.offers):
        if offer.kind not in IN_APP_TRIGGER.offer_kinds or offer.topic.value not in IN_APP_TRIGGER.topics:
            continue
        considered += 1
        reason = offer_guardrail(profile, offer, now, config, budget_left)
        if reason:
            rejected[reason] += 1
        else:
            eligible.append(index)
    ranked: list[RankedOffer] = []
    if eligible:
        offer_index = np.asarray(eligible, dtype=np.int64)
        channel_index = np.full(len(eligible), ft.CHANNELS.index(SCORING_CHANNEL), dtype=np.int64)
        send_at = np.full(len(eligible), now.timestamp(), dtype=np.float64)
        rows = ft.candidate_features(profile, ft.member_features(profile, now), catalog, offer_index,
                                     channel_index, send_at, now)
        probability = np.asarray(scorer.predict(rows), dtype=np.float64)
        expected = probability * catalog.value[offer_index].astype(np.float64)
        order = sorted(range(len(eligible)),
                       key=lambda i: (-expected[i], catalog.offers[eligible[i]].offer_id))[:limit]
        request = DecisionRequest(member_id=profile.member_id, trigger=IN_APP_TRIGGER,
                                  cause_id=decision_id, occurred_at=now)
        for i in order:
            offer = catalog.offers[eligible[i]]
            ranked.append(RankedOffer(
                offer_id=offer.offer_id, title=offer.title, probability=float(probability[i]),
                expected_value=float(expected[i]),
                reasons=tuple(reasons_for(profile, offer, PLACEMENT_CHANNEL, request, now, timing=False)),
            ))
    return Placement(
        decision_id=decision_id, member_id=profile.member_id, decided_at=now.timestamp(), day=day,
        catalog_version=catalog_version, model_version=scorer.version, time_zone=profile.time_zone,
        holdout=in_holdout(profile.member_id, config.holdout_share, config.holdout_salt),
        offers=tuple(ranked), considered=considered, allowed=len(eligible), rejected=dict(rejected),
    )
