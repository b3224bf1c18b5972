"""What a demo run records, as plain data: the input of every measurement and of the report.

The closed loop (fidelio/demo.py) fills a RunLog for Fidelio's run through the stack; the
baselines (fidelio/baselines.py) fill PolicyOutcome for blast, random and oracle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Segment:
    tier: str  # bronze | silver | gold | platinum (at enrolment)
    age_band: str  # "<25", "25-34", "35-49", "50-64", "65+", "unknown"
    new_member: bool  # enrolled during the run


@dataclass
class LoggedDecision:
    """One decision of the engine, joined with its outcome and with the simulator's truth."""

    decision_id: str
    member_id: str
    day: int
    decided_at: float  # epoch seconds
    trigger: str
    holdout: bool
    explored: bool
    action: dict[str, Any]  # ChosenAction: kind, offer_id, channel, topic, send_at, probability, expected_value
    intended: dict[str, Any]  # what the policy chose (differs from action only for holdout members)
    propensity: float  # P(logged action) under the logging policy, in (0, 1]
    p_nothing: float  # P("send nothing") under the logging policy
    # The best candidates (up to 5, by the engine's expected value), each with
    # offer_id, channel, send_at, p (model P(redeem)), ev (engine's expected value), propensity.
    top: list[dict[str, Any]]
    reward: float = 0.0  # value of the conversion attributed to this decision's message (0: none)
    converted: bool = False
    # target policy name -> expected reward of that policy's action in this context, from the
    # simulator's hidden truth (World.expected_value), evaluated at decision time.
    truth: dict[str, float] = field(default_factory=dict)
    # target policy name -> reward the engine's own model predicts for that policy's action
    # (for the doubly robust estimator's direct-method part)
    model_estimate: dict[str, float] = field(default_factory=dict)
    # target policy name -> the action that policy takes here: index into `top` (0..4), or -1
    # for "send nothing"
    target_action: dict[str, int] = field(default_factory=dict)
    segment: Segment | None = None


@dataclass
class MemberOutcome:
    member_id: str
    holdout: bool
    segment: Segment
    sends: int = 0
    marketing_sends: int = 0
    conversions: int = 0  # conversions attributed to messages
    organic_conversions: int = 0  # offer redemptions / purchases without a message
    purchases: int = 0  # all purchases during the run (the lift metric's numerator)
    revenue: float = 0.0  # all purchase revenue during the run
    unsubscribes: int = 0
    complaints: int = 0
    offer_value_received: float = 0.0  # sum of the values of the offers sent to this member


@dataclass
class PolicyOutcome:
    """Totals of one policy over the same world (same seed, same members)."""

    name: str  # fidelio | blast | random | oracle
    sends: int
    conversions: int  # attributed to messages
    revenue: float  # revenue attributed to messages
    unsubscribes: int
    complaints: int
    members: int
    send_cost: float = 0.0
    daily_conversions: list[int] = field(default_factory=list)  # per day, attributed conversions
    channel_mix: dict[str, int] = field(default_factory=dict)
    send_hour_vs_active_hour: list[float] = field(default_factory=list)  # |send local hour - member peak hour| per send
    through_stack: bool = False
    # The simulator's truth at each send (World.expected_value just before delivery), summed:
    # the same figures without the luck of the draw. None when the run did not record them.
    expected_revenue: float | None = None
    expected_unsubscribes: float | None = None  # P(unsubscribe), summed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Redemption:
    """An offer redeemed during the run: by a message (`decision_id` set) or organically."""

    member_id: str
    offer_id: str
    at: float  # epoch seconds
    decision_id: str | None = None


@dataclass
class Exposure:
    """A marketing message that went out to a treated member, or that dispatch withheld from a
    holdout member at the same point (`notification.sent` / `notification.withheld`)."""

    member_id: str
    decision_id: str
    offer_id: str | None
    at: float  # epoch seconds: when it was sent, or would have been
    holdout: bool


@dataclass
class RunLog:
    seed: int
    members: int
    days: int
    decisions: list[LoggedDecision] = field(default_factory=list)
    members_outcomes: list[MemberOutcome] = field(default_factory=list)
    policies: dict[str, PolicyOutcome] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)  # published, processed, dead_lettered
    model_versions: list[dict[str, Any]] = field(default_factory=list)  # retraining history with gate decisions
    parameters: dict[str, Any] = field(default_factory=dict)  # send costs, unsubscribe cost, ...
    redemptions: list[Redemption] = field(default_factory=list)  # every offer redeemed in the run
    exposures: list[Exposure] = field(default_factory=list)  # sends and withheld would-be sends
