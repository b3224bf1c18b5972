"""Consent history in the ledger table: one immutable item per change, kept without TTL.

Key: pk "member#<member_id>", sk "consent#<epoch ms, 13 digits>#<channel>:<topic>#<event id>".
The sort key is derived from the event alone, and the item is put only if it does not exist
yet, so a redelivered event adds nothing and an item, once written, is never overwritten.
Sort keys order by time, so a query reads the history newest first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pynamodb.exceptions import PutError

from functions.dal.tables import LedgerRecord
from functions.domain.consent import ConsentEntry

SK_PREFIX = "consent#"


def member_key(member_id: str) -> str:
    return f"member#{member_id}"


def history_key(entry: ConsentEntry) -> str:
    millis = round(entry.at.timestamp() * 1000)
    return f"{SK_PREFIX}{millis:013d}#{entry.channel}:{entry.topic}#{entry.event_id}"


def record_consent(entries: Iterable[ConsentEntry]) -> int:
    """Append each entry to its member's history unless already there. Returns how many were new."""
    added = 0
    for entry in entries:
        item = LedgerRecord(
            member_key(entry.member_id), history_key(entry),
            body={"member_id": entry.member_id, "channel": entry.channel, "topic": entry.topic,
                  "granted": entry.granted, "source": entry.source, "at": entry.at.isoformat(),
                  "event_id": entry.event_id},
            created_at=round(entry.at.timestamp()),
        )
        try:
            item.save(condition=LedgerRecord.sk.does_not_exist())
            added += 1
        except PutError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
    return added


def consent_history(member_id: str, limit: int | None = None) -> list[ConsentEntry]:
    """A member's consent changes, newest first."""
    found = []
    for item in LedgerRecord.query(member_key(member_id), LedgerRecord.sk.startswith(SK_PREFIX),
                                   scan_index_forward=False, consistent_read=True, limit=limit):
        body = item.body or {}
        found.append(ConsentEntry(
            member_id=str(body["member_id"]), channel=str(body["channel"]), topic=str(body["topic"]),
            granted=bool(body["granted"]), source=str(body["source"]),
            at=datetime.fromisoformat(body["at"]).astimezone(UTC), event_id=str(body["event_id"]),
        ))
    return found
