"""feedback: SES event records (via SNS → SQS) become notification.* events on the bus, and
are joined to their decision as outcomes. Unknown types are logged and skipped."""

from __future__ import annotations

from typing import Any

from functions import clock
from functions.dal import decisions as decision_store
from functions.dal.bus import publish
from functions.domain.events import event_type_of
from functions.domain.ses_events import feedback_events, unwrap
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import SQSRecord, run_batch
from functions.observability import count, logger, metrics, tracer

deps()


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    ses_record = unwrap(record.body)
    kind, events = feedback_events(ses_record, clock.now())
    if not events:
        logger.info("SES event skipped", extra={"event_type": kind[:40]})
        return "skipped"
    d = deps()
    publish(d.clients.events, d.settings.bus_name, events, "fidelio.feedback")
    for event in events:
        decision_store.add_outcome(event.decision_id, event_type_of(event).split(".", 1)[1])
    count(f"Feedback_{kind}")
    return kind


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    d = deps()
    return run_batch(event, context, record_handler, d.clients.sqs, d.settings.dlq_url, "feedback")


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
