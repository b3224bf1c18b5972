"""Data-subject requests (export, erasure) as received, in the ledger table: the record that a
member asked, when and through what. Processing them is another part's job (it reads the
`privacy.requested` event); this record is the proof the request was received.

Key: pk "member#<member_id>", sk "privacy#<epoch ms, 13 digits>#<kind>#<event id>"; no TTL."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from functions.dal.consent import member_key
from functions.dal.tables import LedgerRecord
from functions.domain.events import PrivacyRequested

SK_PREFIX = "privacy#"


def record_privacy_request(request: PrivacyRequested) -> bool:
    """Store the request once (False if this event was recorded already)."""
    millis = round(request.occurred_at.timestamp() * 1000)
    item = LedgerRecord(
        member_key(request.member_id), f"{SK_PREFIX}{millis:013d}#{request.kind}#{request.event_id}",
        body={"member_id": request.member_id, "kind": request.kind, "source": request.source,
              "requested_at": request.occurred_at.isoformat(), "event_id": request.event_id,
              "status": "received"},
        created_at=round(request.occurred_at.timestamp()),
    )
    try:
        item.save(condition=LedgerRecord.sk.does_not_exist())
        return True
    except PutError as error:
        if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        return False


def privacy_requests(member_id: str) -> list[dict]:
    """A member's recorded requests, newest first."""
    return [dict(item.body or {}) for item in LedgerRecord.query(
        member_key(member_id), LedgerRecord.sk.startswith(SK_PREFIX), scan_index_forward=False,
        consistent_read=True)]
