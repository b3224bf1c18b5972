"""ingest: apply each member event to the member's profile exactly once, then hand the
events that may trigger a message to decide."""

from __future__ import annotations

from typing import Any

from functions.dal.consent import record_consent
from functions.dal.decisions import add_outcome
from functions.dal.members import ErasedMember, apply_to_stored_profile
from functions.dal.privacy import is_erased, privacy_salt
from functions.domain.consent import entries_of
from functions.domain.events import OfferRedeemed, SweepRequested
from functions.domain.triggers import DEFAULT_TRIGGERS
from functions.faults import crash_point
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import PoisonRecord, SQSRecord, parse_envelope, run_batch
from functions.observability import count, logger, mask_pii, metrics, tracer

TRIGGERING_TYPES = frozenset(t.on for t in DEFAULT_TRIGGERS if not t.on.startswith("sweep:"))

deps()  # build clients at cold start, reused by warm invocations


def _not_erased(member_id: str) -> bool:
    d = deps()
    return not is_erased(member_id, privacy_salt(d.settings, d.clients))


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    detail_type, event, _ = parse_envelope(record.body)
    if isinstance(event, SweepRequested):
        raise PoisonRecord("sweep.requested is for decide, not ingest (check the rule patterns)")
    skipped: list[str] = []
    try:
        changed = apply_to_stored_profile(event, admit_new_member=_not_erased, on_skip=skipped.append)
    except ErasedMember:
        count("EventsOfErasedMembers")  # a replay or a late event: nothing kept, nothing forwarded
        return "erased_member"
    crash_point("ingest.after_profile_write")
    if changed:
        count("EventsApplied")
    elif skipped == ["below_floor"]:
        # Older than the member's 24 most recent events: a replayed duplicate, or a genuine event
        # that arrived too late (not applied either way). Outside a replay, a rise means late events.
        count("EventsBelowFloor")
        logger.info("event older than the member's applied-event floor, not applied",
                    extra={"event_id": mask_pii(event.event_id), "event_type": detail_type})
    else:
        count("DuplicateEvents")
    # Proof of consent, written even for a duplicate: a crash after the profile write must not
    # lose the history, and the conditional put keeps a redelivery from adding a record.
    recorded = record_consent(entries_of(event))
    if recorded:
        count("ConsentRecorded", recorded)
    if isinstance(event, OfferRedeemed) and event.decision_id:
        # The conversion joins its decision as an outcome, like SES feedback does (once each;
        # a decision id Fidelio never made is ignored): the label calibration is judged on.
        add_outcome(event.decision_id, "redeemed")
    if detail_type in TRIGGERING_TYPES:
        # Forwarded even for a duplicate: decide's decision id is deterministic, so a
        # redelivery cannot cause a second message, and a crash after the profile write
        # cannot lose the trigger.
        d = deps()
        d.clients.sqs.send_message(QueueUrl=d.settings.decide_queue_url, MessageBody=record.body)
    return "applied" if changed else "duplicate"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    d = deps()
    return run_batch(event, context, record_handler, d.clients.sqs, d.settings.dlq_url, "ingest")


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
