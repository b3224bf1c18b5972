"""Decision records and send claims.

A decision is written once (conditional on its deterministic id), so a redelivered trigger
cannot make a second decision. A send is claimed with a conditional write before the
message goes out, so a redelivered dispatch cannot send twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from functions.dal.tables import DecisionRecord, LedgerRecord

if TYPE_CHECKING:  # built only when a decision is loaded: keeps feedback's cold start short
    from functions.domain.decision_record import Decision


def stored_in_table(intended_kind: str | None) -> bool:
    """Whether a decision is kept in the decisions table: only one that sends or would have (a
    holdout member's); a decision to send nothing lives in the S3 archive alone."""
    return intended_kind == "send"


def _conditional_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def record_decision(decision: Decision, ttl_days: int) -> bool:
    """Store a new decision. False when the same decision was already stored."""
    record = DecisionRecord(
        decision.decision_id,
        member_id=decision.member_id,
        decided_at=decision.decided_at,
        expires_at=int(decision.decided_at + ttl_days * 86400),
        trigger=decision.trigger,
        trigger_event_id=decision.cause_id,
        body=decision.model_dump(mode="json"),
        holdout=decision.holdout,
        status="holdout" if decision.holdout and decision.intended.kind == "send"
        else ("decided" if decision.sends else "no_send"),
        send_at=decision.action.send_at,
    )
    try:
        record.save(condition=DecisionRecord.decision_id.does_not_exist())
        return True
    except PutError as error:
        if _conditional_failed(error):
            return False
        raise


def load_decision(decision_id: str) -> tuple[Decision, DecisionRecord] | None:
    from functions.domain.decision_record import Decision

    try:
        record = DecisionRecord.get(decision_id, consistent_read=True)
    except DoesNotExist:
        return None
    return Decision.model_validate(record.body), record


def set_status(decision_id: str, status: str, message_id: str | None = None) -> None:
    actions: list[Any] = [DecisionRecord.status.set(status)]
    if message_id is not None:
        actions.append(DecisionRecord.message_id.set(message_id))
    DecisionRecord(decision_id).update(actions=actions)


def add_outcome(decision_id: str, outcome: str) -> bool:
    """Join an outcome (delivered, opened, clicked, ...) to its decision, once each."""
    try:
        DecisionRecord(decision_id).update(
            actions=[DecisionRecord.outcomes.set(DecisionRecord.outcomes.append([outcome]))],
            condition=DecisionRecord.decision_id.exists() & ~DecisionRecord.outcomes.contains(outcome),
        )
        return True
    except Exception as error:  # UpdateError
        if _conditional_failed(error):
            return False
        raise


def claim_send(decision_id: str) -> bool:
    """Claim the right to send this decision's message. Only the first caller gets True."""
    claim = LedgerRecord(f"claim#{decision_id}", "send", created_at=int(time.time()),
                         expires_at=int(time.time()) + 90 * 86400)
    try:
        claim.save(condition=LedgerRecord.pk.does_not_exist())
        return True
    except PutError as error:
        if _conditional_failed(error):
            return False
        raise


def mark_unconfirmed(decision_id: str) -> None:
    """Say that a send was claimed but never recorded (the sender died after its claim, or is
    still sending): the message went out once or not at all, and will not be sent again.
    Leaves a recorded send alone."""
    try:
        DecisionRecord(decision_id).update(actions=[DecisionRecord.status.set("unconfirmed")],
                                           condition=DecisionRecord.status != "sent")
    except UpdateError as error:
        if not _conditional_failed(error):
            raise


def release_claim(decision_id: str) -> None:
    """Give the claim back when the provider certainly did not accept the message."""
    LedgerRecord(f"claim#{decision_id}", "send").delete()
