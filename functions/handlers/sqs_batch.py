"""The SQS batch loop every handler shares: parse each record, set aside the ones that can
never succeed (to the DLQ, with their reason), let transient failures be retried by SQS, and
report partial batch failures so the rest of the batch goes on.

The loop is our own rather than Powertools' `BatchProcessor` + `process_partial_response`:
same semantics (every record's handler runs; a record whose handler raises is reported in
`batchItemFailures`; a batch where every record failed raises Powertools' `BatchProcessingError`),
but the batch utility imports Powertools' parser models (every event source as a pydantic
model) once pydantic is loaded: 20-35 ms of CPU at every cold start for a ten-line loop
(docs/performance.md, cold start third pass)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from functions.dal.dead_letters import dead_letter
from functions.domain.events import MAX_DETAIL_BYTES, InvalidEvent, parse_event
from functions.observability import logger, mask_pii

# An event's detail may hold up to MAX_DETAIL_BYTES; the EventBridge envelope around it is small.
MAX_BODY_BYTES = MAX_DETAIL_BYTES + 8 * 1024


class PoisonRecord(InvalidEvent):
    """A record that no retry can fix."""


class SQSRecord:
    """One record of an SQS event, read-only: the attributes of Powertools' `SQSRecord` data
    class that the handlers use, named alike (its module imports every event data class)."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: dict[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        message_id: str = self.raw_event["messageId"]
        return message_id

    @property
    def body(self) -> str:
        body: str = self.raw_event["body"]
        return body


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
    """Process an SQS event; InvalidEvent → DLQ with reason; any other error → retried.

    As Powertools' `process_partial_response` with `BatchProcessor(EventType.SQS)`: an event
    without records is refused, each record's handler runs in order, the records whose handler
    raised are returned as `{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`, and
    when every record failed, Powertools' `BatchProcessingError` is raised (so SQS retries the
    batch and the invocation counts as an error)."""
    records = event.get("Records", [])
    if not records or not isinstance(records, list):
        from aws_lambda_powertools.utilities.batch.exceptions import UnexpectedBatchTypeError

        raise UnexpectedBatchTypeError(
            "Unexpected batch event type. Possible values are: SQS, KinesisDataStreams, DynamoDBStreams, Kafka")
    failed: list[dict[str, str]] = []
    errors: list[tuple[type[BaseException] | None, BaseException | None, TracebackType | None]] = []
    for raw in records:
        record = SQSRecord(raw)
        try:
            try:
                record_handler(record)
            except InvalidEvent as error:
                logger.warning("dead-lettering invalid record", extra={
                    "reason": mask_pii(error.reason), "message_id": record.message_id, "source": source})
                dead_letter(sqs, dlq_url, record.body, error.reason, source)
        except Exception:
            # Transient (or unknown): SQS redelivers it, and after maxReceiveCount the DLQ keeps it.
            logger.warning("record failed, left for SQS to retry", exc_info=True,
                           extra={"message_id": record.message_id, "source": source})
            errors.append(sys.exc_info())
            failed.append({"itemIdentifier": record.message_id})
    if failed and len(failed) == len(records):
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        raise BatchProcessingError(
            msg=f"All records failed processing. {len(errors)} individual errors logged separately below.",
            child_exceptions=errors)
    return {"batchItemFailures": failed}
