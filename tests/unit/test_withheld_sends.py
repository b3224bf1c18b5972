"""The global holdout's would-be sends (ghost sends): a withheld message counts for the caps like
a send, and as nothing the member received; a holdout decision dispatches its intended action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.domain import events as ev
from functions.domain.decision import PolicyConfig, cap_guardrail
from functions.domain.decision_record import ChosenAction, Decision
from functions.domain.profile import MemberProfile, apply_event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _profile_after(kind: type[ev.NotificationSent] | type[ev.NotificationWithheld]) -> MemberProfile:
    profile = MemberProfile(member_id="m1")
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id="m1", occurred_at=NOW - timedelta(days=30),
                                           time_zone="Europe/Paris", email="m1@example.com"))
    for k, hours in enumerate((50, 2)):
        apply_event(profile, kind(event_id=f"x{k}", member_id="m1", occurred_at=NOW - timedelta(hours=hours),
                                  decision_id=f"d{k}", channel=ev.Channel.EMAIL, offer_id=f"o{k}",
                                  topic=ev.Topic.OFFERS))
    return profile


def test_a_withheld_send_binds_the_caps_like_a_send_and_is_not_a_message_received():
    # Given two marketing messages in the last 3 days, sent to one member and withheld from another
    sent, withheld = _profile_after(ev.NotificationSent), _profile_after(ev.NotificationWithheld)
    # Then the caps and the offer-repeat rule see the same history for both
    assert withheld.recent_sends == sent.recent_sends and len(withheld.recent_sends) == 2
    assert withheld.last_send_by_topic == sent.last_send_by_topic
    assert withheld.last_send_by_offer == sent.last_send_by_offer == {
        "o0": (NOW - timedelta(hours=50)).timestamp(), "o1": (NOW - timedelta(hours=2)).timestamp()}
    config = PolicyConfig()
    for topic in ("offers", "points"):
        assert cap_guardrail(withheld, topic, NOW.timestamp(), config) == cap_guardrail(sent, topic, NOW.timestamp(), config)
    assert cap_guardrail(withheld, "offers", NOW.timestamp(), config) == "daily_cap"  # one 2 h ago
    assert cap_guardrail(withheld, "offers", NOW.timestamp() + 86400, config) == "weekly_cap"
    # ... but only the member who was sent them has received anything
    assert sent.engagement["email"].sent_total == 2 and sent.offers_received_total == 2
    assert "email" not in withheld.engagement and withheld.offers_received_total == 0


def _decision(holdout: bool, intended_kind: str = "send") -> Decision:
    intended = ChosenAction(kind=intended_kind, offer_id="o1", channel="email", topic="offers",
                            send_at=NOW.timestamp()) if intended_kind == "send" else ChosenAction(kind="none")
    return Decision(decision_id="d1", member_id="m1", trigger="purchase", cause_id="c", decided_at=NOW.timestamp(),
                    model_version="v", holdout=holdout, action=ChosenAction(kind="none") if holdout else intended,
                    intended=intended, propensity=1.0)


def test_a_holdout_decision_that_would_send_is_dispatched_on_its_intended_action():
    ghost, treated = _decision(holdout=True), _decision(holdout=False)
    assert ghost.withheld and ghost.dispatched and not ghost.sends and ghost.outgoing == ghost.intended
    assert treated.sends and treated.dispatched and not treated.withheld and treated.outgoing == treated.action
    assert not _decision(holdout=True, intended_kind="none").dispatched
    # When dispatch moves it out of quiet hours, the intended action moves, and the action stays "none"
    later = NOW.timestamp() + 3600
    moved = ghost.with_send_at(later)
    assert moved.intended.send_at == later and moved.action.kind == "none" and moved.withheld
    assert treated.with_send_at(later).action.send_at == later
