"""The decision engine on moto with a few hundred members: decisions, sends scheduled for
the member's local hour and fired by the scheduler, emails and pushes read back, feedback
joined to decisions and applied to profiles."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from fidelio.local.runner import LocalRunner
from functions import clock
from functions.dal.bus import publish
from functions.dal.members import load_profiles
from functions.dal.offers import replace_catalog
from functions.dal.tables import DecisionRecord
from functions.domain import events as ev
from functions.domain.decision import PolicyConfig, is_quiet_hour, local_time
from functions.domain.offers import Offer
from functions.handlers import deps
from tests.integration.helpers import archived_decisions, moto_data

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # night in Europe, evening in Asia
N_MEMBERS = int(__import__("os").environ.get("FIDELIO_LOOP_MEMBERS", "200"))
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "America/Los_Angeles"]


def _members(n: int) -> list[ev.MemberEvent]:
    events: list[ev.MemberEvent] = []
    for i in range(n):
        m = f"loop-{i:04d}"
        enrolled = START - timedelta(days=60)
        push = i % 3 == 0
        events.append(ev.MemberEnrolled(
            event_id=f"{m}-e", member_id=m, occurred_at=enrolled, time_zone=ZONES[i % len(ZONES)],
            email=f"{m}@example.com", first_name=f"M{i}",
            push_endpoint_arn=None if not push else "PLACEHOLDER"))
        for channel in ("email", "push") if push else ("email",):
            events.append(ev.ConsentChanged(event_id=f"{m}-c-{channel}", member_id=m, occurred_at=enrolled,
                                            channel=channel, topic="offers", granted=i % 10 != 0, source="signup"))
        events.append(ev.PurchaseCompleted(event_id=f"{m}-p", member_id=m, occurred_at=START, order_id=f"{m}-o",
                                           amount=20.0, line_items=[ev.LineItem(
                                               product_id="sku", category=["coffee", "wine"][i % 2], unit_price=20)]))
    return events


def test_a_few_hundred_members_get_decisions_sends_at_their_local_hours_and_feedback(local_stack):
    # Given N_MEMBERS (default 200) members in four time zones, a third with a push endpoint, 10% without consent
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["decide"])
    sns = local_stack.client("sns")
    app = sns.create_platform_application(Name="fidelio-app", Platform="GCM",
                                          Attributes={"PlatformCredential": "key"})["PlatformApplicationArn"]
    events = _members(N_MEMBERS)
    for event in events:
        if isinstance(event, ev.MemberEnrolled) and event.push_endpoint_arn:
            arn = sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"tok-{event.member_id}")["EndpointArn"]
            events[events.index(event)] = event.model_copy(update={"push_endpoint_arn": arn})
    replace_catalog([
        Offer(offer_id="coffee-10", title="Coffee", categories=["coffee"], value=5,
              channels=[ev.Channel.EMAIL, ev.Channel.PUSH]),
        Offer(offer_id="wine-5", title="Wine", categories=["wine"], value=8, channels=[ev.Channel.EMAIL, ev.Channel.PUSH]),
    ])
    clock.set_clock(lambda: START)
    # When their purchases flow through the stack and a day passes, hour by hour
    publish(local_stack.client("events"), local_stack.names.bus, events, "test")
    runner.pump()
    for hour in range(1, 26):
        moment = START + timedelta(hours=hour)
        clock.set_clock(lambda moment=moment: moment)
        runner.pump()
    # Then every member has one decision for the purchase, holdout members send nothing
    archived = archived_decisions(local_stack)
    by_member = Counter(d["member_id"] for d in archived)
    assert len(by_member) == N_MEMBERS and set(by_member.values()) == {1}
    # ... stored in the table: the decisions that send or would have (holdout), and no other
    decisions = [d for d in DecisionRecord.scan()]
    assert {d.decision_id for d in decisions} == {d["decision_id"] for d in archived if d["intended"]["kind"] == "send"}
    assert all(d.status != "sent" for d in decisions if d.holdout)
    # ... a holdout member's would-be send went through dispatch like a send and was withheld
    # there: the profile counts it for the caps (the holdout keeps the treated members' caps),
    # not as a message received
    withheld = [d for d in decisions if d.status == "withheld"]
    assert withheld and all(d.holdout for d in withheld)
    ghosts = load_profiles(d.member_id for d in withheld)
    for d in withheld:
        profile = ghosts[d.member_id]
        assert profile.recent_sends and d.body["intended"]["offer_id"] in profile.last_send_by_offer
        assert all(e.sent_total == 0 for e in profile.engagement.values())
    sent = [d for d in decisions if d.status == "sent"]
    assert len(sent) > N_MEMBERS // 3
    # ... nobody without consent got anything, and no send left in a quiet hour
    for d in sent:
        index = int(d.member_id.split("-")[1])
        assert index % 10 != 0
        send_at = d.body["action"]["send_at"]
        assert not is_quiet_hour(local_time(send_at, ZONES[index % len(ZONES)]).hour, PolicyConfig())
    # ... sends for later were scheduled and fired at a later hour
    assert runner.stats.schedules_fired > 0
    assert any(d.body["action"]["send_at"] > START.timestamp() + 3600 for d in sent)
    # ... emails and pushes are readable back from moto
    data = moto_data(local_stack.endpoint)
    emails = data["ses"].get("RawMessage", [])
    pushes = [m for e in data["sns"].get("PlatformEndpoint", []) for m in e.get("messages", [])] \
        if "PlatformEndpoint" in data["sns"] else []
    by_channel = Counter(d.body["action"]["channel"] for d in sent)
    assert len([e for e in emails if any("loop-" in x for x in e["destinations"])]) >= by_channel["email"]
    assert not {f"{d.member_id}@example.com" for d in withheld} & {x for e in emails for x in e["destinations"]}
    assert by_channel["push"] == 0 or len(pushes) >= 1
    # When SES reports opens for the emails, Then they are joined to decisions and counted in profiles
    feedback_url = local_stack.queue_urls["feedback"]
    sqs = local_stack.client("sqs")
    opened = [d for d in sent if d.body["action"]["channel"] == "email"][:20]
    for d in opened:
        record = {"eventType": "Open", "mail": {"messageId": d.message_id, "tags": {
            "decision_id": [d.decision_id], "member_id": [d.member_id]}},
            "open": {"timestamp": (START + timedelta(hours=26)).isoformat().replace("+00:00", "Z")}}
        sqs.send_message(QueueUrl=feedback_url, MessageBody=json.dumps(record))
    runner.pump()
    for d in opened:
        assert "opened" in DecisionRecord.get(d.decision_id).outcomes
    profiles = load_profiles(d.member_id for d in opened)
    assert all(p.engagement["email"].opened_total == 1 and p.engagement["email"].sent_total == 1
               for p in profiles.values())
