"""SES event publishing records (shapes from the SES developer guide) → feedback events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from functions.domain import events as ev
from functions.domain.ses_events import UnreadableSesRecord, feedback_events, unwrap

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MAIL = {"timestamp": "2026-03-02T10:00:00.000Z", "source": "rewards@example.com", "messageId": "0102-abc",
        "destination": ["ann@example.com"],
        "tags": {"ses:configuration-set": ["fidelio-messages"], "decision_id": ["d-1"], "member_id": ["m-1"]}}
RECORDS = {
    "Delivery": {"eventType": "Delivery", "mail": MAIL, "delivery": {"timestamp": "2026-03-02T10:00:02.000Z",
                 "processingTimeMillis": 546, "recipients": ["ann@example.com"], "smtpResponse": "250 ok"}},
    "Bounce": {"eventType": "Bounce", "mail": MAIL, "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
               "bouncedRecipients": [{"emailAddress": "ann@example.com"}], "timestamp": "2026-03-02T10:00:03.000Z",
               "feedbackId": "fb-1"}},
    "Complaint": {"eventType": "Complaint", "mail": MAIL, "complaint": {"complainedRecipients": [
                  {"emailAddress": "ann@example.com"}], "timestamp": "2026-03-02T11:00:00.000Z", "feedbackId": "fb-2",
                  "complaintFeedbackType": "abuse"}},
    "Open": {"eventType": "Open", "mail": MAIL, "open": {"ipAddress": "192.0.2.1", "timestamp": "2026-03-02T18:40:00.000Z",
             "userAgent": "Mozilla/5.0"}},
    "Click": {"eventType": "Click", "mail": MAIL, "click": {"ipAddress": "192.0.2.1", "link": "https://shop.example.com/o",
              "linkTags": {}, "timestamp": "2026-03-02T18:41:00.000Z", "userAgent": "Mozilla/5.0"}},
    "Reject": {"eventType": "Reject", "mail": MAIL, "reject": {"reason": "Bad content"}},
    "Subscription": {"eventType": "Subscription", "mail": MAIL, "subscription": {"contactList": "fidelio",
                     "timestamp": "2026-03-02T12:00:00.000Z", "source": "UnsubscribeHeader",
                     "newTopicPreferences": {"unsubscribeAll": True}, "oldTopicPreferences": {}}},
    "Rendering Failure": {"eventType": "Rendering Failure", "mail": MAIL, "failure": {"errorMessage": "x",
                          "templateName": "t"}},
    "DeliveryDelay": {"eventType": "DeliveryDelay", "mail": MAIL, "deliveryDelay": {"delayType": "MailboxFull"}},
    "Send": {"eventType": "Send", "mail": MAIL, "send": {}},
}
EXPECTED = {"Delivery": ev.NotificationDelivered, "Bounce": ev.NotificationBounced,
            "Complaint": ev.NotificationComplained, "Open": ev.NotificationOpened,
            "Click": ev.NotificationClicked, "Reject": ev.NotificationBounced,
            "Subscription": ev.NotificationUnsubscribed}


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_each_ses_event_type_maps_to_its_feedback_event_or_to_nothing(kind):
    body = json.dumps({"Type": "Notification", "Message": json.dumps(RECORDS[kind])})
    got_kind, events = feedback_events(unwrap(body), NOW)
    assert got_kind == kind
    if kind in EXPECTED:
        assert [type(e) for e in events] == [EXPECTED[kind]]
        assert events[0].decision_id == "d-1" and events[0].member_id == "m-1"
    else:
        assert events == []


def test_feedback_event_ids_are_stable_so_redeliveries_deduplicate():
    first = feedback_events(RECORDS["Open"], NOW)[1][0]
    second = feedback_events(RECORDS["Open"], datetime(2027, 1, 1, tzinfo=UTC))[1][0]
    assert first.event_id == second.event_id


@pytest.mark.parametrize("kind", ["Reject", "Open"])
def test_a_redelivered_record_maps_to_the_same_event_whenever_it_is_processed(kind):
    # Given a record without its own timestamp (Reject never has one), read twice a day apart
    record = {k: v for k, v in RECORDS[kind].items() if k != "open"}
    first = feedback_events(record, NOW)[1][0]
    later = feedback_events(record, datetime(2026, 3, 3, 12, tzinfo=UTC))[1][0]
    # Then both readings are the same event: same id and same occurrence (the send's time),
    # which ingest's exactly-once check relies on
    assert (first.event_id, first.occurred_at) == (later.event_id, later.occurred_at)
    assert first.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_permanent_bounce_keeps_its_type_and_an_unknown_type_is_skipped():
    assert feedback_events(RECORDS["Bounce"], NOW)[1][0].bounce_type == "Permanent"
    assert feedback_events({**RECORDS["Open"], "eventType": "Teleported"}, NOW) == ("Teleported", [])


def test_records_that_are_not_ses_events_are_refused_with_a_reason():
    with pytest.raises(UnreadableSesRecord, match="no 'mail'"):
        unwrap(json.dumps({"hello": "world"}))
    with pytest.raises(UnreadableSesRecord, match="not JSON"):
        unwrap("{{{")
