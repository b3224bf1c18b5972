"""The simulator's knobs: one frozen pydantic model, every figure documented in docs/simulator.md.

Base response rates are calibrated so that the measurement protocol in `fidelio.sim.measure`
(one relevant message per member per day at 10:00 local) lands inside the published ranges
listed in `fidelio.sim.measure.CITED_RANGES`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class ChannelRates(BaseModel):
    """Base probabilities of one channel, for an average member, an average-relevance offer,
    a send at the member's peak hour and no fatigue. Member traits, relevance, timing and
    load multiply them (see `fidelio.sim.response`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    open: Rate  # P(open | delivered); for SMS it is "read", which emits no event
    click_given_open: Rate
    convert_given_click: Rate  # P(offer redeemed | clicked), before relevance and eligibility
    unsubscribe: Rate  # per delivered message
    complaint: Rate  # per delivered message
    soft_bounce: Rate  # per send; hard bounces come from bad addresses / missing endpoints
    timing_weight: Annotated[float, Field(ge=0.0, le=1.0)]  # 0: send hour irrelevant, 1: only peak works
    reaction_hours: Annotated[float, Field(gt=0.0, le=72.0)]  # time scale of the first look
    night_annoyance: NonNegative  # extra unsubscribe/complaint multiplier for 22:00-07:00 local


EMAIL_RATES = ChannelRates(
    open=0.355,
    click_given_open=0.14,
    convert_given_click=0.15,
    unsubscribe=0.0012,
    complaint=0.00006,
    soft_bounce=0.004,
    timing_weight=0.35,
    reaction_hours=8.0,
    night_annoyance=0.0,
)
PUSH_RATES = ChannelRates(
    open=0.12,
    click_given_open=0.55,
    convert_given_click=0.12,
    unsubscribe=0.0012,
    complaint=0.0,
    soft_bounce=0.01,
    timing_weight=0.7,
    reaction_hours=1.5,
    night_annoyance=2.0,
)
SMS_RATES = ChannelRates(
    open=0.85,
    click_given_open=0.2,
    convert_given_click=0.15,
    unsubscribe=0.005,
    complaint=0.0002,
    soft_bounce=0.005,
    timing_weight=0.5,
    reaction_hours=1.0,
    night_annoyance=3.0,
)

DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)


class SimConfig(BaseModel):
    """A world: who the members are and how they react. Same config (seed included) ->
    byte-identical event streams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    days: Annotated[int, Field(ge=1, le=3650)] = 30
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    start: AwareDatetime = DEFAULT_START
    fatigue_sensitivity: Annotated[float, Field(ge=0.0, le=20.0)] = 1.0
    new_member_share: Share = 0.1  # members who enrol during the run rather than before it

    # population
    dormant_share: Share = 0.15  # existing members already lapsed at start: they never act again
    history_days: Annotated[int, Field(ge=0, le=730)] = 90  # purchase history replayed on day 0
    app_share: Share = 0.55  # members with the app installed (a push endpoint)
    push_opt_in: Share = 0.6  # of app users, who allowed notifications
    phone_share: Share = 0.7  # members who gave a mobile number
    sms_opt_in: Share = 0.3  # of those, who opted in to SMS offers
    email_opt_in: Share = 0.85  # members who ticked "email me offers" at signup
    bad_email_share: Share = 0.005  # addresses that hard-bounce

    # behaviour
    purchases_per_week: Annotated[float, Field(gt=0.0, le=50.0)] = 0.9  # population mean
    basket_eur: Annotated[float, Field(gt=0.0, le=10_000.0)] = 38.0  # population mean basket
    app_opens_per_day: Annotated[float, Field(ge=0.0, le=50.0)] = 0.4  # mean, app users
    cart_abandon_per_day: Annotated[float, Field(ge=0.0, le=5.0)] = 0.02
    churn_per_month: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03  # mean hazard at a light load
    organic_redemption: Rate = 0.004  # P(a purchase uses a given eligible offer), average relevance

    # fatigue: "excess" = marketing messages received in the last 7 days beyond the comfort load,
    # scaled by fatigue_sensitivity x the member's fatigue trait
    comfort_messages_per_week: NonNegative = 2.0
    fatigue_open: NonNegative = 0.06  # open probability x exp(-fatigue_open * excess)
    fatigue_unsubscribe: NonNegative = 0.3  # unsubscribe/complaint x (1 + fatigue_unsubscribe * excess)
    fatigue_churn: NonNegative = 0.15  # churn hazard x (1 + fatigue_churn * excess)

    email: ChannelRates = EMAIL_RATES
    push: ChannelRates = PUSH_RATES
    sms: ChannelRates = SMS_RATES

    def rates(self, channel: str) -> ChannelRates:
        rates: ChannelRates = getattr(self, channel)
        return rates
