"""Daily churn and CLV scoring on moto: every member scored in batches (segments cover the
table once), scores written beside the profile without clobbering a concurrent event, and a
win-back sweep only when a member's risk crosses the threshold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pynamodb.exceptions import PutError

from fidelio.local.runner import LocalRunner
from fidelio.sim import SimConfig, World, load_offers
from functions import clock
from functions.dal.members import applied_events, apply_to_stored_profile, import_history, load_profiles
from functions.dal.tables import MemberRecord
from functions.domain import events as ev
from functions.handlers import deps, score_members
from tests.integration.helpers import drain

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)


@pytest.fixture
def members(local_stack):
    """A few hundred members with purchase histories (the simulator's day 0)."""
    world = World(SimConfig(members=300, days=1, seed=11), load_offers())
    events = [e for e in world.events_for_day(0) if isinstance(e, ev.MemberEvent)]
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["decide"])
    import_history(events)
    clock.set_clock(lambda: NOW)
    score_members._model = None
    return sorted({e.member_id for e in events})


def test_segments_score_every_member_once_with_the_churn_model(local_stack, members):
    # When two segments of a parallel scan run
    results = [score_members.score_segment(NOW, segment, 2) for segment in (0, 1)]
    # Then together they scored every member exactly once
    assert sum(r["scored"] for r in results) == len(members)
    profiles = load_profiles(members)
    assert all(p.scores_at == NOW.timestamp() for p in profiles.values())
    # And the stored scores are the model's, for a sample of members
    sample = [profiles[m] for m in members[:20]]
    expected = {s.member_id: s for s in score_members.churn_model().score(sample, NOW)}
    for profile in sample:
        assert profile.churn_risk == pytest.approx(expected[profile.member_id].churn_risk, abs=1e-6)
        assert profile.clv == pytest.approx(expected[profile.member_id].clv, abs=1e-3)
    assert len({round(p.churn_risk or 0, 3) for p in profiles.values()}) > 10  # scores differ by member


def test_a_concurrent_event_is_not_lost_and_scores_survive_later_events(local_stack, members):
    member = members[0]
    # Given ingest has read the member's item, then the scores are written
    stale = MemberRecord.get(member, consistent_read=True)
    score_members.score_segment(NOW)
    # Then ingest's write of what it read is refused (it retries on a fresh read) ...
    with pytest.raises(PutError):
        stale.save()
    # ... and an event applied afterwards keeps both the event and the scores
    event = ev.AppOpened(event_id="late-open", member_id=member, occurred_at=NOW + timedelta(minutes=1))
    assert apply_to_stored_profile(event)
    profile = load_profiles([member])[member]
    assert profile.scores_at == NOW.timestamp() and profile.churn_risk is not None
    assert "late-open" in applied_events(MemberRecord.get(member)).ids


def test_win_back_is_requested_when_risk_crosses_the_threshold_only(local_stack, members):
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["decide"])
    # Given a threshold some members are above
    first = score_members.score_segment(NOW)
    risks = sorted((p.churn_risk or 0.0) for p in load_profiles(members).values())
    threshold = risks[len(risks) // 2]
    runner.update_settings("decide", churn_risk_threshold=threshold)
    deps.use(runner._deps["decide"])
    for record in MemberRecord.scan():  # forget the first scores: everyone "unscored"
        record.update(actions=[MemberRecord.churn_risk.remove(), MemberRecord.scores_at.remove()])
    drain(local_stack.client("sqs"), local_stack.queue_urls["decide"])
    # When members are scored, then scored again the next day
    crossing = score_members.score_segment(NOW)
    sweeps = drain(local_stack.client("sqs"), local_stack.queue_urls["decide"])
    before = {m: p.churn_risk for m, p in load_profiles(members).items()}
    again = score_members.score_segment(NOW + timedelta(days=1))
    after = {m: p.churn_risk for m, p in load_profiles(members).items()}
    later = drain(local_stack.client("sqs"), local_stack.queue_urls["decide"])
    # Then the members at or above the threshold crossed once, and one win-back sweep reached decide
    assert first["scored"] == crossing["scored"] == len(members)
    assert crossing["crossed"] == sum(1 for r in risks if r >= threshold)
    assert [json.loads(m["Body"])["detail"]["sweep"] for m in sweeps] == ["win_back"]
    # And the next day only members who went from below to above count (staying above does not)
    assert again["crossed"] == sum(1 for m in members if before[m] < threshold <= after[m])
    assert again["crossed"] < crossing["crossed"] // 2
    assert len(later) == (1 if again["crossed"] else 0)


def test_the_local_runner_plays_the_daily_schedules(local_stack, members):
    # Given a day on the local stand-in
    runner = LocalRunner(local_stack)
    # When the runner plays the scheduled functions of that day
    results = runner.fire_scheduled_functions(NOW.replace(hour=0), NOW.replace(hour=0) + timedelta(days=1))
    clock.set_clock(lambda: NOW)
    # Then the batch scorer scored every member at 04:30 and the drift monitor ran at 04:00
    (scored,) = results["score_members"]
    assert scored["scored"] == len(members)
    assert {p.scores_at for p in load_profiles(members).values()} == {NOW.replace(hour=4, minute=30).timestamp()}
    (drift,) = results["drift_monitor"]
    assert drift["rows"] == 0 and drift["retraining"] is None  # no traffic archived yet
