"""dispatch: send a decided message — after re-checking consent, suppression, quiet hours
and caps at send time — exactly once (a conditional claim precedes every send)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError, EndpointConnectionError

from functions import clock
from functions.dal import decisions as decision_store
from functions.dal.bus import publish
from functions.dal.members import load_profile
from functions.dal.offers import load_catalog
from functions.dal.schedules import schedule_dispatch
from functions.domain.decision import (
    ChosenAction,
    Decision,
    PolicyConfig,
    cap_guardrail,
    channel_guardrail,
    is_quiet_hour,
    local_time,
    next_allowed,
)
from functions.domain.events import Channel, InvalidEvent, NotificationSent, Topic
from functions.domain.messages import build_email, render
from functions.domain.tokens import LinkClaims, parse_keys, sign
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import run_batch
from functions.observability import count, logger, metrics, tracer

LINK_VALIDITY_S = 60 * 86400
PERMANENT_SES_ERRORS = {"MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException",
                        "BadRequestException", "NotFoundException"}
PERMANENT_SNS_ERRORS = {"EndpointDisabled", "InvalidParameter", "InvalidParameterValue", "NotFound"}

deps()


class PermanentSendFailure(InvalidEvent):
    """The provider refused the message for a reason no retry fixes."""


def send_time_check(decision: Decision, profile: Any, now: datetime, config: PolicyConfig) -> str | None:
    action = decision.action
    assert action.channel and action.topic
    reason = channel_guardrail(profile, action.channel, action.topic, decision.transactional)
    if reason or decision.transactional:
        return reason
    if is_quiet_hour(local_time(now.timestamp(), profile.time_zone).hour, config):
        return "quiet_hours"
    return cap_guardrail(profile, action.topic, now.timestamp(), config)


def _send(decision: Decision, profile: Any, now: datetime) -> str:
    d = deps()
    action = decision.action
    catalog = load_catalog()
    offer = catalog.offers[catalog.index[action.offer_id]] if action.offer_id in catalog.index else None
    if offer is None:
        raise PermanentSendFailure(f"offer {action.offer_id} is no longer in the catalog")
    message = render(offer, profile, decision, action.channel or "email")
    if action.channel == "email":
        keys = parse_keys(d.settings.link_signing_keys)
        token = sign(LinkClaims(profile.member_id, "unsubscribe", "email", action.topic,
                                int(now.timestamp()) + LINK_VALIDITY_S), keys)
        raw = build_email(message, d.settings.sender_email, profile.email,
                          f"{d.settings.unsubscribe_base_url}?token={token}")
        try:
            response = d.clients.ses.send_email(
                FromEmailAddress=d.settings.sender_email,
                Destination={"ToAddresses": [profile.email]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=d.settings.ses_configuration_set,
                EmailTags=[{"Name": "decision_id", "Value": decision.decision_id},
                           {"Name": "member_id", "Value": profile.member_id}],
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in PERMANENT_SES_ERRORS:
                raise PermanentSendFailure(f"SES refused the email: {code}") from error
            raise
        return str(response["MessageId"])
    if action.channel == "push":
        payload = {"notification": {"title": message.subject, "body": message.text},
                   "data": {"decision_id": decision.decision_id, "offer_id": action.offer_id}}
        body = json.dumps({"default": message.text, "GCM": json.dumps(payload),
                           "APNS": json.dumps({"aps": {"alert": {"title": message.subject,
                                                                 "body": message.text}},
                                               "decision_id": decision.decision_id})})
        try:
            response = d.clients.sns.publish(TargetArn=profile.push_endpoint_arn, MessageStructure="json",
                                             Message=body)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in PERMANENT_SNS_ERRORS:
                raise PermanentSendFailure(f"SNS refused the push: {code}") from error
            raise
        return str(response["MessageId"])
    try:
        response = d.clients.sns.publish(PhoneNumber=profile.phone, Message=f"{message.text} STOP to opt out")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in PERMANENT_SNS_ERRORS:
            raise PermanentSendFailure(f"SNS refused the SMS: {code}") from error
        raise
    return str(response["MessageId"])


def _announce_sent(decision: Decision, message_id: str | None, now: datetime) -> None:
    d = deps()
    action = decision.action
    sent = NotificationSent(
        event_id=f"sent-{decision.decision_id}", member_id=decision.member_id, occurred_at=now,
        decision_id=decision.decision_id, channel=Channel(action.channel or "email"),
        offer_id=action.offer_id, topic=Topic(action.topic or "offers"), message_id=message_id,
    )
    publish(d.clients.events, d.settings.bus_name, [sent], "fidelio.dispatch")


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    now = clock.now()
    try:
        decision_id = str(json.loads(record.body)["decision_id"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidEvent(f"dispatch record must be {{\"decision_id\": ...}}: {error}") from error
    found = decision_store.load_decision(decision_id)
    if found is None:
        raise InvalidEvent(f"decision {decision_id} does not exist (expired or erased)")
    decision, stored = found
    if not decision.sends or stored.status in {"sent", "suppressed", "failed"}:
        return "nothing_to_do"
    profile = load_profile(decision.member_id)
    if profile is None:
        decision_store.set_status(decision_id, "suppressed")
        return "member_gone"
    config = PolicyConfig()
    reason = send_time_check(decision, profile, now, config)
    if reason == "quiet_hours":
        later = next_allowed(now, profile.time_zone, config)
        moved = decision.model_copy(update={"action": ChosenAction(
            **{**decision.action.model_dump(), "send_at": later.timestamp()})})
        schedule_dispatch(deps().clients.scheduler, deps().settings, moved)
        return "rescheduled"
    if reason:
        decision_store.set_status(decision_id, "suppressed")
        count("SendsSuppressedAtSendTime")
        logger.info("send suppressed at send time", extra={"decision_id": decision_id, "reason": reason})
        return f"suppressed:{reason}"
    if not decision_store.claim_send(decision_id):
        # Claimed before: either sent, or the sender crashed between claim and send (the
        # message is then lost rather than sent twice). Re-announce so fatigue counts it.
        if stored.status != "sent":
            _announce_sent(decision, stored.message_id, now)
        count("DuplicateSendsAvoided")
        return "already_claimed"
    try:
        message_id = _send(decision, profile, now)
    except PermanentSendFailure:
        decision_store.set_status(decision_id, "failed")
        raise
    except (ClientError, EndpointConnectionError):
        # The provider answered with an error, or was never reached: nothing went out, so
        # the claim is given back and SQS retries. A timeout after the request left keeps
        # the claim: the message may have gone, and a duplicate is worse than a loss.
        decision_store.release_claim(decision_id)
        raise
    decision_store.set_status(decision_id, "sent", message_id)
    _announce_sent(decision, message_id, now)
    count(f"Sent_{decision.action.channel}")
    return "sent"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    d = deps()
    return run_batch(event, context, record_handler, d.clients.sqs, d.settings.dlq_url, "dispatch")


__all__ = ["UTC", "handler", "send_time_check"]
