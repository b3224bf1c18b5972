"""dispatch: send a decided message — after re-checking consent, suppression, quiet hours
and caps at send time — exactly once (a conditional claim precedes every send)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from functions import clock
from functions.dal import decisions as decision_store
from functions.dal.bus import publish
from functions.dal.members import load_profile
from functions.dal.offers import load_offers
from functions.dal.retry import RetriesExhausted, call_with_backoff, error_code
from functions.dal.schedules import schedule_dispatch
from functions.dal.signing_keys import link_signing_keys
from functions.domain.decision_record import Decision
from functions.domain.events import Channel, InvalidEvent, NotificationSent, NotificationWithheld, Topic
from functions.domain.guardrails import (
    PolicyConfig,
    cap_guardrail,
    channel_guardrail,
    is_quiet_hour,
    local_time,
    next_allowed,
)
from functions.domain.messages import build_email, render
from functions.domain.tokens import LinkClaims, sign
from functions.faults import crash_point
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import SQSRecord, run_batch
from functions.observability import count, logger, metrics, tracer

LINK_VALIDITY_S = 60 * 86400
DEADLINE_MARGIN_S = 5.0
DECISION_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_invocation_deadline: float | None = None

deps()


class PermanentSendFailure(InvalidEvent):
    """The provider refused the message for a reason no retry fixes."""


def send_time_check(decision: Decision, profile: Any, now: datetime, config: PolicyConfig) -> str | None:
    action = decision.outgoing
    assert action.channel and action.topic
    reason = channel_guardrail(profile, action.channel, action.topic, decision.transactional)
    if reason or decision.transactional:
        return reason
    if is_quiet_hour(local_time(now.timestamp(), profile.time_zone).hour, config):
        return "quiet_hours"
    return cap_guardrail(profile, action.topic, now.timestamp(), config)


@dataclass(frozen=True)
class Outgoing:
    """A message ready to go: everything that may fail for reasons of its own (catalog,
    rendering, signing) is done before the send is claimed; only the provider call is left."""

    channel: str
    provider: str  # "SES" or "SNS", for reasons
    call: Callable[[], dict[str, Any]]


def _prepare(decision: Decision, profile: Any, now: datetime) -> Outgoing:
    d = deps()
    action = decision.action
    offer = load_offers().get(action.offer_id or "")
    if offer is None:
        raise PermanentSendFailure(f"offer {action.offer_id} is no longer in the catalog")
    message = render(offer, profile, decision, action.channel or "email")
    if action.channel == "email":
        keys = link_signing_keys(d.settings, lambda: d.clients.client("secretsmanager"))
        token = sign(LinkClaims(profile.member_id, "unsubscribe", "email", action.topic,
                                int(now.timestamp()) + LINK_VALIDITY_S), keys)
        raw = build_email(message, d.settings.sender_email, profile.email,
                          f"{d.settings.unsubscribe_base_url}?token={token}")
        return Outgoing("email", "SES", partial(
            d.clients.ses.send_email,
            FromEmailAddress=d.settings.sender_email,
            Destination={"ToAddresses": [profile.email]},
            Content={"Raw": {"Data": raw}},
            ConfigurationSetName=d.settings.ses_configuration_set,
            EmailTags=[{"Name": "decision_id", "Value": decision.decision_id},
                       {"Name": "member_id", "Value": profile.member_id}],
        ))
    if action.channel == "push":
        payload = {"notification": {"title": message.subject, "body": message.text},
                   "data": {"decision_id": decision.decision_id, "offer_id": action.offer_id}}
        body = json.dumps({"default": message.text, "GCM": json.dumps(payload),
                           "APNS": json.dumps({"aps": {"alert": {"title": message.subject,
                                                                 "body": message.text}},
                                               "decision_id": decision.decision_id})})
        return Outgoing("push", "SNS", partial(d.clients.sns.publish, TargetArn=profile.push_endpoint_arn,
                                               MessageStructure="json", Message=body))
    return Outgoing("sms", "SNS", partial(d.clients.sns.publish, PhoneNumber=profile.phone,
                                          Message=f"{message.text} STOP to opt out"))


def _deliver(outgoing: Outgoing) -> str:
    """Make the provider call (retried while it certainly did not go out). Raises
    PermanentSendFailure when the provider refuses the message, RetriesExhausted when it
    kept failing transiently, and the ambiguous error (e.g. a read timeout) as is."""
    try:
        response = call_with_backoff(outgoing.call, deadline=_invocation_deadline)
    except ClientError as error:  # classified permanent: the same request would be refused again
        raise PermanentSendFailure(f"{outgoing.provider} refused the {outgoing.channel}: {error_code(error)} "
                                   f"({error.response.get('Error', {}).get('Message', '')[:200]})") from error
    return str(response["MessageId"])


def _announce_sent(decision: Decision, message_id: str | None, now: datetime) -> None:
    _announce(NotificationSent, "sent", decision, message_id, now)


def _announce(kind: type[NotificationSent] | type[NotificationWithheld], prefix: str, decision: Decision,
              message_id: str | None, now: datetime) -> None:
    d = deps()
    action = decision.outgoing
    event = kind(
        event_id=f"{prefix}-{decision.decision_id}", member_id=decision.member_id, occurred_at=now,
        decision_id=decision.decision_id, channel=Channel(action.channel or "email"),
        offer_id=action.offer_id, topic=Topic(action.topic or "offers"), message_id=message_id,
    )
    publish(d.clients.events, d.settings.bus_name, [event], "fidelio.dispatch")


def _decision_id_of(body: str) -> str:
    try:
        decision_id = json.loads(body)["decision_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidEvent(f"dispatch record must be {{\"decision_id\": ...}}: {str(error)[:200]}") from error
    if not isinstance(decision_id, str) or not DECISION_ID.match(decision_id):
        raise InvalidEvent("dispatch record's decision_id must be a string of 1-128 letters, digits, '-' or '_'")
    return decision_id


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    now = clock.now()
    decision_id = _decision_id_of(record.body)
    found = decision_store.load_decision(decision_id)
    if found is None:
        raise InvalidEvent(f"decision {decision_id} does not exist (expired or erased)")
    decision, stored = found
    # "failed" is not final: the claim was given back, and a redelivery or a redrive retries it.
    if not decision.dispatched or stored.status in {"sent", "suppressed", "withheld"}:
        return "nothing_to_do"
    profile = load_profile(decision.member_id)
    if profile is None:
        decision_store.set_status(decision_id, "suppressed")
        return "member_gone"
    config = PolicyConfig()
    reason = send_time_check(decision, profile, now, config)
    if reason == "quiet_hours":
        later = next_allowed(now, profile.time_zone, config)
        schedule_dispatch(deps().clients.scheduler, deps().settings, decision.with_send_at(later.timestamp()))
        return "rescheduled"
    if reason:
        decision_store.set_status(decision_id, "suppressed")
        count("SendsSuppressedAtSendTime")
        logger.info("send suppressed at send time", extra={"decision_id": decision_id, "reason": reason})
        return f"suppressed:{reason}"
    if decision.withheld:
        # The global holdout: everything a send goes through, except the send. The event first
        # (a redelivery republishes the same event id, which ingest applies once), then the status.
        _announce(NotificationWithheld, "withheld", decision, None, now)
        decision_store.set_status(decision_id, "withheld")
        count("SendsWithheld")
        return "withheld"
    try:
        outgoing = _prepare(decision, profile, now)  # before the claim: its failures are retried freely
    except PermanentSendFailure:
        decision_store.set_status(decision_id, "failed")
        raise
    if not decision_store.claim_send(decision_id):
        # Claimed before: either sent, or the sender died between claim and status (the
        # message went out once or not at all; it is never sent twice). Say so on the
        # decision, and re-announce so fatigue counts it.
        if stored.status != "sent":
            decision_store.mark_unconfirmed(decision_id)
            _announce_sent(decision, stored.message_id, now)
        count("DuplicateSendsAvoided")
        return "already_claimed"
    crash_point("dispatch.after_claim")
    try:
        message_id = _deliver(outgoing)
    except (PermanentSendFailure, RetriesExhausted):
        # Nothing went out: give the claim back, so a redelivery (transient) or a redrive
        # from the DLQ after a fix (permanent) can send it.
        # (status first: once the claim is free, a concurrent redelivery may send and say "sent")
        decision_store.set_status(decision_id, "failed")
        decision_store.release_claim(decision_id)
        count("SendsFailed")
        raise
    # Any other error (a read timeout, a dropped connection) is ambiguous: the message may
    # have gone, so the claim is kept and no retry will send it; a duplicate is worse than a loss.
    crash_point("dispatch.after_send")
    decision_store.set_status(decision_id, "sent", message_id)
    _announce_sent(decision, message_id, now)
    count(f"Sent_{decision.action.channel}")
    return "sent"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _invocation_deadline
    d = deps()
    # Retries stop early enough to leave the batch time to report its failures.
    _invocation_deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_S
    response = run_batch(event, context, record_handler, d.clients.sqs, d.settings.dlq_url, "dispatch")
    crash_point("dispatch.before_ack")
    return response


__all__ = ["UTC", "handler", "send_time_check"]


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
