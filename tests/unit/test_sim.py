"""The member simulator: reproducible, speaks the event contract, and reacts the way the
evaluation relies on (rates in published ranges, fatigue, relevance, churn, violations)."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fidelio.sim import (
    CATEGORIES,
    CITED_RANGES,
    SimConfig,
    World,
    load_offers,
    run_daily_protocol,
)
from fidelio.sim.__main__ import main as sim_main
from fidelio.sim.config import EMAIL_RATES
from fidelio.sim.world import Message, UnknownMember, UnknownOffer
from functions.domain.events import event_type_of, parse_event, to_detail

SIM_DIR = Path(__file__).resolve().parents[2] / "fidelio" / "sim"
OFFERS = load_offers()
FAST: dict[str, Any] = {
    "history_days": 14
}  # the history only warms up the engine; most tests don't need 90 days


def _dump(events) -> list[str]:
    return [json.dumps([event_type_of(e), to_detail(e)], sort_keys=True) for e in events]


def _closed_loop(config: SimConfig, days: int | None = None) -> list[str]:
    """A fixed toy policy: every 3rd member gets the produce coupon by email at 09:00 UTC."""
    world = World(config, OFFERS)
    stream = []
    for day in range(days or config.days):
        events = world.events_for_day(day)
        stream += _dump(events)
        sent_at = world.day_start(day) + timedelta(hours=9)
        for member_id in world.member_ids[::3]:
            message = Message(member_id, f"d-{member_id}-{day}", "email", "produce-20-off", "offers", sent_at)
            stream += _dump(world.deliver(message))
    return stream


def test_same_seed_gives_byte_identical_event_streams():
    # Given two worlds built from the same config
    config = SimConfig(members=150, days=4, seed=7, **FAST)
    # When both run the same closed loop
    first, second = _closed_loop(config), _closed_loop(config)
    # Then every event, feedback included, is byte-identical
    assert first == second
    assert len(first) > 1000


def test_different_seeds_give_different_worlds():
    # Given two seeds
    a = _closed_loop(SimConfig(members=150, days=2, seed=1, **FAST))
    b = _closed_loop(SimConfig(members=150, days=2, seed=2, **FAST))
    # Then the streams differ
    assert a != b


def test_a_member_is_the_same_person_whatever_the_population_size():
    # Given the same seed and two population sizes
    small, large = (World(SimConfig(members=n, days=3, seed=3, **FAST), OFFERS) for n in (20, 80))
    # When both simulate three days
    mine = []
    for world in (small, large):
        events = [e for day in range(3) for e in world.events_for_day(day)]
        mine.append(_dump(e for e in events if getattr(e, "member_id", None) == "sim-000011"))
    # Then member 11's life is identical
    assert mine[0] == mine[1] and mine[0]


PROTOCOLS = {"email": 1, "push": 1, "sms": 3}  # channel: send every n days (SMS programmes send less)
# Everyone reachable on push / SMS: opting in is drawn independently of how members respond, so
# the rates among recipients are those of the default world, for a fraction of the members.
REACHABLE: dict[str, dict[str, Any]] = {
    "email": {},
    "push": {"app_share": 1.0, "push_opt_in": 1.0},
    "sms": {"phone_share": 1.0, "sms_opt_in": 1.0},
}


@pytest.fixture(scope="module")
def protocol_runs():
    """Each channel's measurement protocol, run once: a few thousand sends per channel, with
    every event kept."""
    runs = {}
    for channel, every_days in PROTOCOLS.items():
        events: list = []
        config = SimConfig(members=700, days=7, seed=11, history_days=30, **REACHABLE[channel])
        rates, world = run_daily_protocol(config, OFFERS, channel, every_days=every_days, collect=events)
        runs[channel] = (rates, world, events)
    return runs


def test_every_emitted_event_validates_through_the_contract(protocol_runs):
    # Given worlds messaged on every channel, with existing and new members
    for channel, (_, _, events) in protocol_runs.items():
        kinds = {event_type_of(e) for e in events}
        # Then every event is a contract event that survives serialization and parsing (behaviour
        # events come from the same code in every world: check them once, in the email world)
        checked = events if channel == "email" else [e for e in events if getattr(e, "decision_id", None)]
        for event in checked:
            detail = json.loads(json.dumps(to_detail(event)))
            assert parse_event(event_type_of(event), detail) == event
            assert event.member_id.startswith("sim-")
        # And event ids are unique
        assert len({e.event_id for e in events}) == len(events)
        # And the world produces every kind of event the engine relies on
        assert {
            "member.enrolled",
            "consent.changed",
            "purchase.completed",
            "points.earned",
            "points.expiring",
            "points.redeemed",
            "tier.changed",
            "cart.abandoned",
            "app.opened",
            "offer.redeemed",
            "notification.delivered",
            "notification.clicked",
            "notification.bounced",
            "notification.unsubscribed",
        } <= kinds, channel
        assert ("notification.opened" in kinds) == (channel != "sms")  # SMS has no open tracking


@pytest.mark.parametrize("channel", PROTOCOLS)
def test_default_rates_land_in_the_published_ranges(protocol_runs, channel):
    # Given the default rates and a few thousand sends
    # When every consenting member gets one relevant message at 10:00 local
    rates = protocol_runs[channel][0]
    assert rates.sends > 1000
    for cited in (c for c in CITED_RANGES if c.channel == channel):
        metric = cited.metric
        # Then the rate the members sample from is inside the range the docs cite
        assert cited.low <= rates.expected_rate(metric) <= cited.high, (metric, rates.expected_rate(metric))
        # And the measured count agrees with it; common events are measured inside the range too
        if metric == "bounce_rate":
            assert cited.low <= rates.bounce_rate <= cited.high
            continue
        count_name = {
            "open_rate": "opens",
            "click_rate": "clicks",
            "unsubscribe_rate": "unsubscribes",
            "complaint_rate": "complaints",
        }[metric]
        observed, expected = getattr(rates, count_name), rates.expected[count_name]
        assert abs(observed - expected) <= 4 * expected**0.5 + 3, (metric, observed, expected)
        if expected >= 25:
            assert cited.low <= rates.rate(metric) <= cited.high, (metric, rates.rate(metric))


def test_more_messages_per_week_raise_the_unsubscribe_rate():
    # Given the same world sent one email a week or three emails a day
    config = SimConfig(members=400, days=8, seed=13, history_days=0)
    weekly, _ = run_daily_protocol(config, OFFERS, "email", every_days=7)
    heavy, _ = run_daily_protocol(config, OFFERS, "email", messages_per_day=3)
    # Then unsubscribes per delivered email rise clearly with the load
    assert heavy.unsubscribe_rate > 2 * weekly.unsubscribe_rate
    assert heavy.expected_rate("unsubscribe_rate") > 3 * weekly.expected_rate("unsubscribe_rate")
    assert heavy.open_rate < weekly.open_rate


def test_fatigue_is_scaled_by_fatigue_sensitivity_in_the_truth():
    # Given a member who already received 10 emails this week, in worlds of growing sensitivity
    probabilities = []
    for sensitivity in (0.0, 1.0, 3.0):
        world = World(SimConfig(members=10, days=1, seed=2, fatigue_sensitivity=sensitivity), OFFERS)
        world.events_for_day(0)
        member = world.member_ids[0]
        start = world.day_start(0)
        for n in range(10):
            world.deliver(
                Message(member, f"d{n}", "email", "dairy-2-for-1", "offers", start - timedelta(hours=n))
            )
        value = world.expected_value(member, "produce-20-off", "email", start + timedelta(hours=10))
        probabilities.append(value.p_unsubscribe)
    # Then the unsubscribe probability grows with the sensitivity
    assert probabilities[0] < probabilities[1] < probabilities[2]


def test_relevant_offers_convert_more_than_irrelevant_ones():
    # Given the same members sent their most or their least relevant offer every day
    config = SimConfig(members=500, days=5, seed=17, history_days=14)
    relevant, world = run_daily_protocol(config, OFFERS, "email")
    irrelevant, _ = run_daily_protocol(config, OFFERS, "email", pick="least_relevant")
    # Then relevance raises measured clicks and conversions
    assert relevant.clicks > 1.5 * irrelevant.clicks
    assert relevant.conversions > irrelevant.conversions
    # And in the truth, the best offer of each member converts several times better than the worst
    at = world.day_start(5) + timedelta(hours=10)
    coupons = [
        o.offer_id for o in OFFERS if o.categories and o.kind == "coupon" and not o.tiers and o.active_at(at)
    ]
    best = worst = 0.0
    for member in world.member_ids:
        ranked = sorted(coupons, key=lambda offer_id: world.relevance(member, offer_id, at))
        best += world.expected_value(member, ranked[-1], "email", at).p_convert
        worst += world.expected_value(member, ranked[0], "email", at).p_convert
    assert best > 3 * worst > 0


def test_messages_add_conversions_on_top_of_organic_ones():
    # Given a world where nobody is messaged (a holdout) and the same world messaged daily
    config = SimConfig(members=400, days=7, seed=19, history_days=0)
    holdout = World(config, OFFERS)
    for day in range(config.days):
        holdout.events_for_day(day)
    _, treated = run_daily_protocol(config, OFFERS, "email")
    base, lifted = holdout.stats(), treated.stats()
    # Then offers are redeemed without messages too, and messages add redemptions and revenue
    assert base.organic_redemptions > 0 and base.message_conversions == 0
    assert lifted.message_conversions > 0
    assert lifted.organic_redemptions + lifted.message_conversions > base.organic_redemptions
    assert lifted.revenue > base.revenue


def test_a_churned_member_never_reacts_to_messages():
    # Given a population that had entirely lapsed before the run
    config = SimConfig(members=300, days=5, seed=23, dormant_share=1.0, new_member_share=0.0, **FAST)
    events: list = []
    rates, world = run_daily_protocol(config, OFFERS, "email", collect=events)
    feedback = {event_type_of(e) for e in events if hasattr(e, "decision_id") and e.decision_id}
    # When they are emailed every day
    # Then messages are delivered (or bounce) and nothing else happens
    assert rates.sends > 500
    assert feedback <= {"notification.delivered", "notification.bounced"}
    assert rates.conversions == rates.clicks == rates.opens == 0
    assert world.stats().sends_to_churned == rates.delivered
    value = world.expected_value(world.member_ids[0], "produce-20-off", "email", world.day_start(5))
    assert value.p_convert == 0.0 and value.expected_revenue == 0.0


def test_messages_after_an_opt_out_or_without_consent_are_counted_as_violations():
    # Given a world where emails very often make members unsubscribe
    rates = EMAIL_RATES.model_copy(update={"unsubscribe": 1.0, "complaint": 0.0, "soft_bounce": 0.0})
    world = World(SimConfig(members=40, days=1, seed=29, email=rates, bad_email_share=0.0, **FAST), OFFERS)
    world.events_for_day(0)
    at = world.day_start(0) + timedelta(hours=12)
    verdicts = {m: world.expected_value(m, None, "email", at, "offers").violation for m in world.member_ids}
    member = next(m for m, v in verdicts.items() if v is None)
    refusing = next(m for m, v in verdicts.items() if v == "no_consent")
    # When a member is emailed until they unsubscribe, then emailed again
    sent = 0
    while True:
        kinds = {
            event_type_of(e)
            for e in world.deliver(
                Message(member, f"d{sent}", "email", "produce-20-off", "offers", at + timedelta(minutes=sent))
            )
        }
        sent += 1
        if "notification.unsubscribed" in kinds:
            break
        assert sent < 30
    assert world.stats().total_violations == 0
    world.deliver(Message(member, "again", "email", "produce-20-off", "offers", at + timedelta(hours=2)))
    # And a member who never consented is emailed, and one decision is delivered twice
    world.deliver(Message(refusing, "r1", "email", "produce-20-off", "offers", at))
    world.deliver(Message(refusing, "r1", "email", "produce-20-off", "offers", at))
    # Then each breach is counted
    stats = world.stats()
    assert stats.violations["unsubscribed"] == 1
    assert stats.violations["no_consent"] == 2
    assert stats.duplicates == 1
    # And transactional messages are never violations
    world.deliver(Message(member, "receipt", "email", None, "transactional", at + timedelta(hours=3)))
    assert world.stats().total_violations == 3


def test_expected_value_is_the_distribution_members_sample_from():
    # Given a world at day 0 and one message per consenting member
    world = World(SimConfig(members=1500, days=1, seed=31, history_days=0), OFFERS)
    world.events_for_day(0)
    at = world.day_start(0) + timedelta(hours=15)
    expected_clicks = expected_conversions = 0.0
    clicks = conversions = 0
    for member in world.member_ids:
        value = world.expected_value(member, "dairy-2-for-1", "email", at)
        if value.violation:
            continue
        expected_clicks += value.p_click
        expected_conversions += value.p_convert
        kinds = [
            event_type_of(e)
            for e in world.deliver(Message(member, "d", "email", "dairy-2-for-1", "offers", at))
        ]
        clicks += "notification.clicked" in kinds
        conversions += "offer.redeemed" in kinds
    # Then realised clicks and conversions agree with the truth within sampling error
    assert abs(clicks - expected_clicks) < 4 * expected_clicks**0.5
    assert abs(conversions - expected_conversions) < 4 * max(expected_conversions, 1.0) ** 0.5


def test_days_run_in_order_and_unknown_ids_are_refused():
    world = World(SimConfig(members=5, days=2, **FAST), OFFERS)
    with pytest.raises(ValueError, match="expected day 0"):
        world.events_for_day(1)
    world.events_for_day(0)
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with pytest.raises(UnknownMember):
        world.deliver(Message("sim-000099", "d", "email", None, "offers", at))
    with pytest.raises(UnknownOffer):
        world.deliver(Message("sim-000001", "d", "email", "no-such-offer", "offers", at))


def test_the_example_catalog_is_realistic_and_matches_the_simulator():
    # Given examples/offers.yaml, loaded through the Offer model
    offers = OFFERS
    # Then it holds 10-15 offers of the kinds a grocery programme runs
    assert 10 <= len(offers) <= 15
    assert {"coupon", "points", "reminder", "content"} <= {o.kind for o in offers}
    assert {"offers", "points", "tier"} <= {o.topic.value for o in offers}
    # And its categories are the simulator's, with an English template everywhere and French for some
    assert {c for o in offers for c in o.categories} <= set(CATEGORIES)
    assert all("en" in o.templates for o in offers)
    assert sum("fr" in o.templates for o in offers) >= 3


def test_the_simulator_never_imports_engine_code():
    # Given every module of the simulator
    allowed = {"functions.domain.events", "functions.domain.offers"}
    for path in SIM_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "functions.domain":  # from functions.domain import events
                    imported |= {f"functions.domain.{a.name}" for a in node.names}
                else:
                    imported.add(node.module)
        # Then it only reaches into functions/ for the event and offer models
        assert {m for m in imported if m.startswith("functions")} <= allowed, path.name


def test_the_command_line_prints_a_summary_and_refuses_bad_flags(capsys, tmp_path):
    out = tmp_path / "events.jsonl"
    # When run on a small world
    assert sim_main(["--members", "120", "--days", "2", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # Then it prints events by type and the measured rates against the cited ranges
    assert "purchase.completed" in printed and "open_rate" in printed and "Mailchimp" in printed
    first = json.loads(out.read_text().splitlines()[0])
    assert parse_event(first["detail-type"], first["detail"])
    # And a bad flag is one clear line and exit status 2
    for bad in (["--members", "0"], ["--fatigue-sensitivity", "x"], ["--start", "2026-03-02"]):
        with pytest.raises(SystemExit) as exit_:
            sim_main(bad)
        assert exit_.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
