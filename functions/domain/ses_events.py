"""SES event publishing records (as documented in the SES developer guide) → Fidelio's
notification.* feedback events. Unknown or uninteresting types map to nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from functions.domain import events as ev

# eventType -> (model, extra fields builder)
_KNOWN = {"Send", "Delivery", "Bounce", "Complaint", "Reject", "Open", "Click", "Rendering Failure",
          "DeliveryDelay", "Subscription"}


class UnreadableSesRecord(ev.InvalidEvent):
    pass


def unwrap(body: str) -> dict[str, Any]:
    """The SES event inside an SQS body (an SNS notification, or raw delivery)."""
    try:
        outer = json.loads(body)
    except ValueError as error:
        raise UnreadableSesRecord(f"not JSON: {error}") from error
    if isinstance(outer, dict) and outer.get("Type") == "Notification" and "Message" in outer:
        try:
            outer = json.loads(outer["Message"])
        except (ValueError, TypeError) as error:
            raise UnreadableSesRecord(f"SNS Message is not JSON: {error}") from error
    if not isinstance(outer, dict) or "mail" not in outer:
        raise UnreadableSesRecord("not an SES event publishing record (no 'mail')")
    return outer


def _tag(mail: dict[str, Any], name: str) -> str | None:
    values = (mail.get("tags") or {}).get(name) or []
    return str(values[0]) if values else None


def _parse_time(value: str | None, fallback: datetime) -> datetime:
    if not value:
        return fallback
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return fallback


def feedback_events(record: dict[str, Any], now: datetime) -> tuple[str, list[ev.NotificationEvent]]:
    """(event type, Fidelio events) for one SES record; [] for types Fidelio does not act on.
    Raises UnreadableSesRecord when the record's fields have the wrong shape or values."""
    try:
        return _feedback_events(record, now)
    except (TypeError, AttributeError, LookupError, ValueError) as error:  # ValidationError is a ValueError
        raise UnreadableSesRecord(f"SES record has unusable fields: {type(error).__name__}: "
                                  f"{' '.join(str(error).split())[:300]}") from error


def _feedback_events(record: dict[str, Any], now: datetime) -> tuple[str, list[ev.NotificationEvent]]:
    kind = str(record.get("eventType") or record.get("notificationType") or "")
    mail = record.get("mail") or {}
    decision_id, member_id = _tag(mail, "decision_id"), _tag(mail, "member_id")
    if kind not in _KNOWN or not decision_id or not member_id:
        return kind, []
    message_id = str(mail.get("messageId", ""))
    # When a record lacks its own timestamp, the send's: a redelivered SES record then maps to
    # the same occurred_at (ingest's exactly-once check judges an event by it), unlike `now`.
    sent = _parse_time(mail.get("timestamp"), now)
    common: dict[str, Any] = {"member_id": member_id, "decision_id": decision_id, "channel": ev.Channel.EMAIL,
              "message_id": message_id or None}

    def event_id(suffix: str) -> str:
        digest = hashlib.sha256(f"{message_id}|{kind}|{suffix}".encode()).hexdigest()[:24]
        return f"ses-{digest}"

    if kind == "Delivery":
        at = _parse_time((record.get("delivery") or {}).get("timestamp"), sent)
        return kind, [ev.NotificationDelivered(event_id=event_id(""), occurred_at=at, **common)]
    if kind == "Bounce":
        bounce = record.get("bounce") or {}
        at = _parse_time(bounce.get("timestamp"), sent)
        bounce_type: Any = bounce.get("bounceType") if bounce.get("bounceType") in {"Permanent", "Transient"} \
            else "Undetermined"
        return kind, [ev.NotificationBounced(event_id=event_id(bounce.get("feedbackId", "")), occurred_at=at,
                                             bounce_type=bounce_type, **common)]
    if kind == "Complaint":
        complaint = record.get("complaint") or {}
        at = _parse_time(complaint.get("timestamp"), sent)
        return kind, [ev.NotificationComplained(event_id=event_id(complaint.get("feedbackId", "")),
                                                occurred_at=at, **common)]
    if kind == "Open":
        at = _parse_time((record.get("open") or {}).get("timestamp"), sent)
        return kind, [ev.NotificationOpened(event_id=event_id(at.isoformat()), occurred_at=at, **common)]
    if kind == "Click":
        click = record.get("click") or {}
        at = _parse_time(click.get("timestamp"), sent)
        link = str(click.get("link", ""))[:2048] or None
        return kind, [ev.NotificationClicked(event_id=event_id(f"{at.isoformat()}|{link}"), occurred_at=at,
                                             link=link, **common)]
    if kind == "Reject":
        return kind, [ev.NotificationBounced(event_id=event_id(""), occurred_at=sent,
                                             bounce_type="Undetermined", **common)]
    if kind == "Subscription":
        sub = record.get("subscription") or {}
        at = _parse_time(sub.get("timestamp"), sent)
        return kind, [ev.NotificationUnsubscribed(event_id=event_id(at.isoformat()), occurred_at=at,
                                                  all_topics=True, **common)]
    return kind, []  # Send (dispatch announces it), Rendering Failure, DeliveryDelay
