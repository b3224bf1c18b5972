"""privacy: serve `privacy.requested` events (GDPR access and erasure requests from the
preference center, support or an API). An export is written to the data bucket under
privacy/exports/<pseudonym>/<event id>.json and its completion recorded in the ledger; an
erasure removes the member everywhere and leaves a receipt (docs/privacy.md)."""

from __future__ import annotations

import json
from typing import Any

from functions import clock
from functions.dal.privacy import (
    ErasureIncomplete,
    PrivacyStores,
    erase_member,
    export_key,
    export_member,
    mark_export_completed,
    model_dirs_near,
    privacy_salt,
)
from functions.domain.events import PrivacyRequested
from functions.domain.privacy import PrivacyRequestError, pseudonym
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import PoisonRecord, SQSRecord, parse_envelope, run_batch
from functions.observability import count, logger, metrics, tracer

deps()


def stores() -> PrivacyStores:
    d = deps()
    return PrivacyStores(settings=d.settings, s3=d.clients.s3, scheduler=d.clients.scheduler,
                         dynamodb=d.clients.client("dynamodb"), salt=privacy_salt(d.settings, d.clients),
                         model_dirs=model_dirs_near(d.settings.model_dir))


def serve_export(request: PrivacyRequested) -> str:
    """Write the export to S3 and mark the request completed in the ledger."""
    s, now = stores(), clock.now()
    if not s.settings.data_bucket:
        raise RuntimeError("no data bucket configured: exports are written there")
    export = export_member(request.member_id, s, now)
    key = export_key(pseudonym(request.member_id, s.salt), request.event_id)
    s.s3.put_object(Bucket=s.settings.data_bucket, Key=key, ContentType="application/json",
                    Body=json.dumps(export, indent=1).encode())
    mark_export_completed(request, key, now)
    return key


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    detail_type, event, _ = parse_envelope(record.body)
    if not isinstance(event, PrivacyRequested):
        raise PoisonRecord(f"{detail_type} is not a privacy request (check the rule patterns)")
    if event.kind == "export":
        serve_export(event)
        count("ExportsServed")
        logger.info("export written", extra={"event_id": event.event_id})
        return "exported"
    try:
        try:
            receipt = erase_member(event.member_id, f"privacy.requested via {event.source} (event {event.event_id})",
                                   stores(), clock.now())
        except PrivacyRequestError:  # the source or event id names the member: keep them out of the receipt
            receipt = erase_member(event.member_id, "privacy.requested event", stores(), clock.now())
    except ErasureIncomplete as error:
        # No retry fixes it (an object in an unknown format names the member): to the DLQ with the
        # reason at once; the member is already suppressed. Fix, then `fidelio dlq redrive privacy`.
        raise PoisonRecord(f"erasure incomplete: {error}") from error
    count("ErasuresServed")
    logger.info("member erased", extra={"event_id": event.event_id, "pseudonym": receipt.pseudonym,
                                        "removed": receipt.removed, "models": receipt.models.model_dump()})
    return "erased"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    d = deps()
    return run_batch(event, context, record_handler, d.clients.sqs, d.settings.dlq_url, "privacy")


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
