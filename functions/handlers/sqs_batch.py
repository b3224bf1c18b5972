"""The SQS batch loop every handler shares: parse each record, set aside the ones that can
never succeed (to the DLQ, with their reason), let transient failures be retried by SQS, and
report partial batch failures so the rest of the batch goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.dal.dead_letters import dead_letter
from functions.domain.events import MAX_DETAIL_BYTES, InvalidEvent, parse_event
from functions.observability import logger, mask_pii

# An event's detail may hold up to MAX_DETAIL_BYTES; the EventBridge envelope around it is small.
MAX_BODY_BYTES = MAX_DETAIL_BYTES + 8 * 1024


class PoisonRecord(InvalidEvent):
    """A record that no retry can fix."""


def parse_envelope(body: str) -> tuple[str, Any, dict[str, Any]]:
    """(detail-type, validated detail, envelope) of an EventBridge event delivered by SQS."""
    if len(body.encode("utf-8", "replace")) > MAX_BODY_BYTES:
        raise PoisonRecord(f"record body exceeds {MAX_BODY_BYTES} bytes")
    try:
        envelope = json.loads(body)
    except ValueError as error:
        raise PoisonRecord(f"record body is not JSON: {error}") from error
    if not isinstance(envelope, dict) or "detail-type" not in envelope or "detail" not in envelope:
        raise PoisonRecord("record body is not an EventBridge event (needs 'detail-type' and 'detail')")
    detail_type = envelope["detail-type"]
    if not isinstance(detail_type, str):
        raise PoisonRecord("detail-type must be a string")
    return detail_type, parse_event(detail_type, envelope["detail"]), envelope


def run_batch(event: dict[str, Any], context: Any, record_handler: Callable[[SQSRecord], Any],
              sqs: Any, dlq_url: str, source: str) -> dict[str, Any]:
    """Process an SQS event; InvalidEvent → DLQ with reason; any other error → retried."""

    def guarded(record: SQSRecord) -> Any:
        try:
            return record_handler(record)
        except InvalidEvent as error:
            logger.warning("dead-lettering invalid record", extra={
                "reason": mask_pii(error.reason), "message_id": record.message_id, "source": source})
            dead_letter(sqs, dlq_url, record.body, error.reason, source)
            return "dead_lettered"

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(event=event, record_handler=guarded, processor=processor, context=context)
    return dict(response)
