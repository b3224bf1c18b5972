"""The cold-start policy (PriorScorer + the revenue objective): it reads when a member is about,
which channel they answer on and what they buy from their events alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from functions.domain import events as ev
from functions.domain import features as ft
from functions.domain.decision import PolicyConfig, PriorScorer, conversion_value, decide_batch, local_time
from functions.domain.features import CatalogArrays
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event
from functions.domain.triggers import DecisionRequest, triggers_for

NOW = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
ZONE = "Europe/Paris"
CHANNELS = [ev.Channel.EMAIL, ev.Channel.PUSH, ev.Channel.SMS]
DAILY = triggers_for("sweep:daily")[0]
GREEDY = PolicyConfig(exploration="none", holdout_share=0.0)


def _offer(offer_id: str, category: str, value: float = 4.0, channels=CHANNELS) -> Offer:
    return Offer(offer_id=offer_id, title=offer_id, categories=[category], value=value, channels=channels,
                 topic=ev.Topic.OFFERS)


def _member(member_id: str = "m1", *, shop_hour: int = 19, category: str = "pet", basket: float = 40.0,
            channels: tuple[str, ...] = ("email", "push", "sms"), opens: dict[str, int] | None = None) -> MemberProfile:
    """A member who shops at `shop_hour` local time twice a week for 10 weeks, mostly `category`."""
    profile = MemberProfile(member_id=member_id)
    zone = ZoneInfo(ZONE)
    apply_event(profile, ev.MemberEnrolled(event_id=f"{member_id}-e", member_id=member_id,
                                           occurred_at=NOW - timedelta(days=400), time_zone=ZONE,
                                           email="a@example.com", phone="+33612345678",
                                           push_endpoint_arn="arn:aws:sns:eu-west-1:1:endpoint/APNS/app/1"))
    for channel in channels:
        apply_event(profile, ev.ConsentChanged(event_id=f"{member_id}-c-{channel}", member_id=member_id,
                                               occurred_at=NOW - timedelta(days=300), channel=channel,
                                               topic=ev.Topic.OFFERS, granted=True, source="test"))
    for k in range(20):
        day = (NOW - timedelta(days=3 + 3.5 * k)).astimezone(zone)
        at = day.replace(hour=shop_hour, minute=10, second=0, microsecond=0)
        items = [ev.LineItem(product_id="p1", category=category, quantity=1, unit_price=basket * 0.8),
                 ev.LineItem(product_id="p2", category="produce", quantity=1, unit_price=basket * 0.2)]
        apply_event(profile, ev.PurchaseCompleted(event_id=f"{member_id}-b{k}", member_id=member_id,
                                                  occurred_at=at, order_id=f"{member_id}-o{k}", amount=basket,
                                                  line_items=items))
    for channel, count in (opens or {}).items():
        for k in range(count):
            at = NOW - timedelta(days=20 + k)
            common = dict(member_id=member_id, decision_id=f"{member_id}-{channel}-{k}", channel=channel,
                          topic=ev.Topic.OFFERS)
            apply_event(profile, ev.NotificationSent(event_id=f"{member_id}-s-{channel}-{k}", occurred_at=at,
                                                     **common))
            apply_event(profile, ev.NotificationOpened(event_id=f"{member_id}-o-{channel}-{k}",
                                                       occurred_at=at + timedelta(hours=1), **common))
    return profile


def _decide(profile: MemberProfile, offers: list[Offer], config: PolicyConfig = GREEDY):
    request = DecisionRequest(profile.member_id, DAILY, "sweep-1", NOW)
    [decision] = decide_batch([request], {profile.member_id: profile}, CatalogArrays.build(offers),
                              PriorScorer(), NOW, config)
    return decision


@pytest.mark.parametrize("shop_hour", [9, 13, 19])
def test_sends_when_the_member_is_usually_about(shop_hour):
    # Given a member who always shops around `shop_hour` local time (within the allowed hours)
    decision = _decide(_member(shop_hour=shop_hour), [_offer("pet-10", "pet")])
    # Then the message goes out at that local hour, give or take an hour
    assert decision.action.kind == "send"
    local = local_time(decision.action.send_at, ZONE)
    assert abs(local.hour + local.minute / 60 - (shop_hour + 10 / 60)) <= 1.0


def test_activity_hours_come_from_purchases():
    profile = _member(shop_hour=8)
    by_hour = ft.hour_affinity_vector(profile).reshape(7, 24).mean(axis=0)
    assert int(np.argmax(by_hour)) == 8 and by_hour[8] > 2 * by_hour[15]
    assert np.allclose(ft.hour_affinity_vector(MemberProfile(member_id="new")), 1.0)


def test_prefers_the_channel_the_member_answers_on():
    # Given two members with the same history, one who opens every push, one who opens every email
    offers = [_offer("pet-10", "pet", channels=[ev.Channel.EMAIL, ev.Channel.PUSH])]
    push_reader = _decide(_member("m-push", opens={"push": 8}), offers)
    email_reader = _decide(_member("m-mail", opens={"email": 8}), offers)
    # Then each gets the message where they read it
    assert push_reader.action.channel == "push"
    assert email_reader.action.channel == "email"


def test_offers_what_the_member_buys():
    offers = [_offer("pet-10", "pet"), _offer("wine-10", "wine_beer")]
    assert _decide(_member(category="pet"), offers).action.offer_id == "pet-10"
    assert _decide(_member(category="wine_beer"), offers).action.offer_id == "wine-10"


def test_a_conversion_is_worth_the_members_basket_or_the_offer_value():
    profile = _member(basket=55.0)
    catalog = CatalogArrays.build([_offer("a", "pet", value=4.0), _offer("b", "pet", value=9.0)])
    vector = ft.member_features(profile, NOW)
    index = np.array([0, 1])
    assert conversion_value(vector, catalog, index, PolicyConfig()).tolist() == pytest.approx([55.0, 55.0])
    assert conversion_value(vector, catalog, index, PolicyConfig(objective="offer_value")).tolist() == [4.0, 9.0]
    newcomer = ft.member_features(MemberProfile(member_id="n"), NOW)
    assert conversion_value(newcomer, catalog, index, PolicyConfig()).tolist() == [30.0, 30.0]


def test_scores_are_probabilities_that_grow_with_engagement_and_relevance():
    profile = _member(opens={"email": 6})
    catalog = CatalogArrays.build([_offer("pet-10", "pet"), _offer("wine-10", "wine_beer")])
    vector = ft.member_features(profile, NOW)
    slots = np.array([NOW.timestamp()] * 4)
    rows = ft.candidate_features(profile, vector, catalog, np.array([0, 1, 0, 0]), np.array([0, 0, 1, 2]),
                                 slots, NOW)
    p = PriorScorer().predict(rows)
    assert np.all((p > 0) & (p < 0.2))
    assert p[0] > p[1]  # the category they buy
    assert p[0] > p[1] and p[2] != p[0]  # channels are told apart
