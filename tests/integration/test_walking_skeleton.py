"""The walking skeleton on moto: bus → ingest → decide → dispatch → an email readable back."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta

import pytest

from fidelio.local.runner import LocalRunner
from functions import clock
from functions.dal.members import load_profile
from functions.dal.offers import replace_catalog
from functions.dal.tables import DecisionRecord, MemberRecord
from functions.domain import events as ev
from functions.domain.offers import Offer
from functions.handlers import deps
from tests.conftest import canonical_event, canonical_events, invalid_events
from tests.integration.helpers import drain, put_raw, raw_emails_to

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _member_events(member_id: str, email: str) -> list[ev.MemberEvent]:
    return [
        ev.MemberEnrolled(event_id=f"{member_id}-enrol", member_id=member_id, occurred_at=NOW - timedelta(days=40),
                          time_zone="Europe/Paris", email=email, first_name="Ann"),
        ev.ConsentChanged(event_id=f"{member_id}-consent", member_id=member_id,
                          occurred_at=NOW - timedelta(days=40), channel=ev.Channel.EMAIL,
                          topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
        ev.PurchaseCompleted(event_id=f"{member_id}-buy", member_id=member_id, occurred_at=NOW, order_id="o-1",
                             amount=12.0, line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=12)]),
    ]


def _publish(stack, events: list[ev.MemberEvent]) -> None:
    from functions.dal.bus import publish

    publish(stack.client("events"), stack.names.bus, events, "test")


def test_events_reach_only_the_queue_their_rule_routes_them_to(local_stack):
    # Given one event of every type
    events_client = local_stack.client("events")
    for event in canonical_events().values():
        put_raw(events_client, local_stack.names.bus, event["detail-type"], event["detail"])
    # When the queues are read
    sqs = local_stack.client("sqs")
    got = {q: [json.loads(m["Body"])["detail-type"] for m in drain(sqs, url)]
           for q, url in local_stack.queue_urls.items()}
    # Then profile events went to ingest, sweeps to decide, privacy requests to privacy,
    # nothing to dispatch or feedback
    assert sorted(got["ingest"]) == sorted(n for n in canonical_events()
                                           if n not in {"sweep.requested", "privacy.requested"})
    assert got["decide"] == ["sweep.requested"]
    assert got["privacy"] == ["privacy.requested"]
    assert got["dispatch"] == [] and got["feedback"] == []


def test_a_purchase_travels_to_an_email_with_one_click_unsubscribe(local_stack):
    # Given a consenting member and a catalog with a matching offer
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["decide"])
    replace_catalog([Offer(offer_id="coffee-10", title="10% off coffee", categories=["coffee"], value=4,
                           channels=[ev.Channel.EMAIL])])
    # When their purchase is published and the stack runs
    _publish(local_stack, _member_events("m-walk", "ann@example.com"))
    runner.pump()
    # (the engine may pick a later hour: let the afternoon pass so that a scheduled send fires)
    clock.set_clock(lambda: NOW + timedelta(hours=4))
    try:
        runner.pump()
    finally:
        clock.set_clock(lambda: NOW)
    # Then exactly one email reached them, with RFC 8058 headers, and the decision says sent
    emails = raw_emails_to(local_stack.endpoint, "ann@example.com")
    assert len(emails) == 1
    headers = email.message_from_string(emails[0])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "".join(headers["List-Unsubscribe"].split()).startswith("<https://")
    decisions = list(DecisionRecord.scan())
    assert [d.status for d in decisions] == ["sent"]
    assert decisions[0].body["action"]["offer_id"] == "coffee-10"


def test_the_same_event_delivered_twice_changes_the_profile_once(local_stack):
    # Given a member
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["ingest"])
    _publish(local_stack, _member_events("m-dup", "dup@example.com")[:1])
    runner.pump()
    purchase = ev.PointsEarned(event_id="pts-1", member_id="m-dup", occurred_at=NOW, points=100)
    # When the same points event arrives twice
    _publish(local_stack, [purchase, purchase])
    runner.pump()
    # Then the balance moved once and the item was written once for it
    profile = load_profile("m-dup")
    assert profile is not None and profile.points_balance == 100
    assert MemberRecord.get("m-dup").version == 2


def test_a_poison_event_goes_to_the_dlq_with_its_reason_and_its_batch_partners_succeed(local_stack):
    # Given valid events and malformed ones in the same batch
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["ingest"])
    events_client = local_stack.client("events")
    bad = invalid_events()
    for event in bad.values():
        put_raw(events_client, local_stack.names.bus, event["detail-type"], event["detail"])
    good = canonical_event("app.opened")
    put_raw(events_client, local_stack.names.bus, good["detail-type"], good["detail"])
    # When ingest processes the batch
    runner.pump()
    # Then every malformed event is on the DLQ with a reason, and the valid one was applied
    dead = drain(local_stack.client("sqs"), local_stack.dlq_urls["ingest"])
    assert len(dead) == len(bad)
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)
    assert any("member_id" in r for r in reasons)
    assert any("v3; supported: 1" in r for r in reasons)
    assert any("Mars/Olympus" in r for r in reasons)
    profile = load_profile("m-0001")
    assert profile is not None and profile.app_opens.v > 0
