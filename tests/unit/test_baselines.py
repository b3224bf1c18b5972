"""The demo's baselines (blast, random, oracle) on small simulated worlds: deterministic, within
their own rules and the engine's guardrails, and ranked the way the truth says they should be."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fidelio.baselines import (
    BLAST_PER_WEEK,
    BLAST_WEEKDAYS,
    BaselineRun,
    MissingSendsBudget,
    UnknownBaseline,
    run_baseline,
    simulate_baseline,
)
from fidelio.sim import SimConfig, load_offers
from fidelio.sim.traits import draw_traits
from functions.domain.decision import PolicyConfig, in_holdout, is_quiet_hour

OFFERS = load_offers()
# A large holdout so that many eligible members are in it; a short history (it only warms profiles).
POLICY = PolicyConfig(holdout_share=0.2)
SMALL: dict[str, Any] = {"members": 200, "days": 7, "history_days": 14}
CONFIG = SimConfig(seed=3, **SMALL)
RANDOM_BUDGET = 300


@pytest.fixture(scope="module")
def runs() -> dict[str, BaselineRun]:
    return {
        "blast": simulate_baseline("blast", CONFIG, OFFERS, POLICY),
        "random": simulate_baseline("random", CONFIG, OFFERS, POLICY, sends_budget=RANDOM_BUDGET, rng_seed=5),
        "oracle": simulate_baseline("oracle", CONFIG, OFFERS, POLICY),
    }


def test_same_seed_gives_the_same_outcome(runs):
    # Given the random baseline (the one that draws) already run on this world
    # When it runs again with the same world seed and the same rng seed
    again = simulate_baseline("random", CONFIG, OFFERS, POLICY, sends_budget=RANDOM_BUDGET, rng_seed=5)
    # Then every figure and every message is identical
    assert again.outcome.as_dict() == runs["random"].outcome.as_dict()
    assert again.messages == runs["random"].messages
    # ... and another rng seed picks other actions
    other = simulate_baseline("random", CONFIG, OFFERS, POLICY, sends_budget=RANDOM_BUDGET, rng_seed=6)
    assert other.messages != runs["random"].messages


def test_blast_is_deterministic_and_follows_the_newest_offer():
    # Given a tiny world spanning the start of spring-wine-fair (2026-03-09T00:00Z; produce-20-off
    # starts 2026-03-01, every other offer is undated)
    config = SimConfig(seed=9, members=60, days=10, history_days=7)
    # When blast runs twice
    first = simulate_baseline("blast", config, OFFERS, POLICY)
    again = simulate_baseline("blast", config, OFFERS, POLICY)
    # Then the outcomes are identical
    assert first.outcome.sends > 0
    assert again.outcome.as_dict() == first.outcome.as_dict()
    assert again.messages == first.messages
    # and each send carries the newest offer active at its send time
    fair = next(o for o in OFFERS if o.offer_id == "spring-wine-fair")
    assert fair.starts_at is not None
    sent = {(m.sent_at >= fair.starts_at, m.offer_id) for m in first.messages}
    assert sent == {(False, "produce-20-off"), (True, "spring-wine-fair")}


def test_blast_sends_only_by_email_to_consenting_members_on_its_calendar(runs):
    # Given blast's run
    run = runs["blast"]
    assert run.outcome.sends > 100
    traits = {t.member_id: t for t in (draw_traits(CONFIG, i) for i in range(CONFIG.members))}
    per_week: Counter[tuple[str, int, int]] = Counter()
    for message in run.messages:
        member = traits[message.member_id]
        local = message.sent_at.astimezone(ZoneInfo(member.time_zone))
        # Then every send is an email, to a member who consented to email for that topic,
        assert message.channel == "email"
        assert member.consents[("email", message.topic)]
        # at 10:00 local on Monday, Wednesday or Friday,
        assert (local.hour, local.minute) == (10, 0)
        assert local.weekday() in BLAST_WEEKDAYS
        per_week[(message.member_id, *local.isocalendar()[:2])] += 1
    # at most 3 times per calendar week,
    assert max(per_week.values()) <= BLAST_PER_WEEK
    # and the simulator saw no violation (consent, opt-out, complaint, bounce, not enrolled)
    assert run.stats.total_violations == 0


def test_random_matches_the_requested_volume_within_the_guardrails(runs):
    # Given the random baseline asked for Fidelio's volume
    run = runs["random"]
    # Then it sends that volume (within 2 %)
    assert abs(run.outcome.sends - RANDOM_BUDGET) <= 0.02 * RANDOM_BUDGET
    # spread over the days,
    per_day = Counter(m.day for m in run.messages)
    assert len(per_day) == CONFIG.days
    assert max(per_day.values()) <= 2 * RANDOM_BUDGET / CONFIG.days
    # over several channels and offers,
    assert len(run.outcome.channel_mix) >= 2
    assert len({m.offer_id for m in run.messages}) >= 5
    # never in the member's quiet hours and within the engine's caps
    _assert_engine_guardrails(run)
    # and the simulator saw no violation
    assert run.stats.total_violations == 0


def test_oracle_respects_the_engine_guardrails(runs):
    run = runs["oracle"]
    assert run.outcome.sends > 50
    _assert_engine_guardrails(run)
    assert run.stats.total_violations == 0


def test_holdout_members_get_nothing_from_any_baseline(runs):
    holdout = {
        f"sim-{i:06d}"
        for i in range(CONFIG.members)
        if in_holdout(f"sim-{i:06d}", POLICY.holdout_share, POLICY.holdout_salt)
    }
    # Given a holdout with members who consented to email (they would be blasted otherwise)
    consenting = {
        t.member_id
        for t in (draw_traits(CONFIG, i) for i in range(CONFIG.members))
        if t.consents[("email", "offers")]
    }
    assert len(holdout & consenting) >= 10
    # Then no baseline sends them anything
    for run in runs.values():
        assert not holdout & {m.member_id for m in run.messages}


@pytest.mark.parametrize("seed", [1, 2, 4])
def test_oracle_earns_more_net_value_than_random_at_the_same_volume(seed):
    # Given a world, the oracle's run, and random at the oracle's volume
    config = SimConfig(seed=seed, **SMALL)
    oracle = simulate_baseline("oracle", config, OFFERS, POLICY)
    random = simulate_baseline(
        "random", config, OFFERS, POLICY, sends_budget=oracle.outcome.sends, rng_seed=seed
    )
    # Then the oracle's sends are worth far more, by the truth at send time
    # (expected revenue - send cost - unsubscribe cost x P(opt-out))
    assert oracle.expected_net_value > 1.5 * max(random.expected_net_value, 0.0) > 0
    # and in expected revenue alone (a world this small converts a handful of times: what
    # actually happened is a draw, compared at demo size in the report instead)
    assert oracle.outcome.expected_revenue > 1.5 * random.outcome.expected_revenue


def test_outcomes_are_consistent_with_the_simulator(runs):
    for name, run in runs.items():
        outcome, stats = run.outcome, run.stats
        assert outcome.name == name and not outcome.through_stack
        assert outcome.members == CONFIG.members
        # Figures of PolicyOutcome agree with World.stats() (the run also checks it itself)
        assert outcome.sends == stats.messages == len(run.messages)
        assert outcome.conversions == stats.message_conversions == sum(outcome.daily_conversions)
        assert outcome.revenue == pytest.approx(stats.message_revenue, abs=0.05)
        assert outcome.unsubscribes == stats.unsubscribes
        assert outcome.channel_mix == stats.messages_by_channel
        assert len(outcome.daily_conversions) == CONFIG.days
        assert len(outcome.send_hour_vs_active_hour) == outcome.sends
        assert all(0.0 <= gap <= 12.0 for gap in outcome.send_hour_vs_active_hour)
        cost = sum(POLICY.channel_cost[c] * n for c, n in outcome.channel_mix.items())
        assert outcome.send_cost == pytest.approx(cost, abs=1e-6)
    # The oracle sends near the member's peak hour; blast's fixed 10:00 misses evening people
    gaps = {name: sum(r.outcome.send_hour_vs_active_hour) / r.outcome.sends for name, r in runs.items()}
    assert gaps["oracle"] < 1.5 < gaps["blast"]


def test_bad_requests_get_clear_errors():
    with pytest.raises(UnknownBaseline, match="blast, random, oracle"):
        run_baseline("greedy", CONFIG, OFFERS)
    with pytest.raises(MissingSendsBudget, match="sends_budget"):
        run_baseline("random", CONFIG, OFFERS)


def _assert_engine_guardrails(run: BaselineRun) -> None:
    """No send in quiet hours; at most max_per_day per 24 h and max_per_week per 7 days; topic gaps;
    no offer repeated within offer_repeat_days; every send consented (truth at signup; opt-outs
    are checked by the simulator's violation counters)."""
    traits = {t.member_id: t for t in (draw_traits(CONFIG, i) for i in range(CONFIG.members))}
    by_member = defaultdict(list)
    for message in run.messages:
        member = traits[message.member_id]
        assert member.consents.get((message.channel, message.topic), False)
        assert not is_quiet_hour(message.sent_at.astimezone(ZoneInfo(member.time_zone)).hour, POLICY)
        by_member[message.member_id].append(message)
    for messages in by_member.values():
        times = sorted(m.sent_at.timestamp() for m in messages)
        for t in times:
            assert sum(1 for s in times if t - 86400 < s <= t) <= POLICY.max_per_day
            assert sum(1 for s in times if t - 7 * 86400 < s <= t) <= POLICY.max_per_week
        for a in messages:
            for b in messages:
                gap = b.sent_at.timestamp() - a.sent_at.timestamp()
                if gap <= 0:
                    continue
                if a.topic == b.topic:
                    assert gap >= POLICY.topic_gap_hours[a.topic] * 3600
                if a.offer_id == b.offer_id:
                    assert gap >= POLICY.offer_repeat_days * 86400
