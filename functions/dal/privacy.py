"""GDPR access and erasure across every store Fidelio writes: the members, decisions, ledger
and idempotency tables, the data bucket's archives and training exports, and pending
EventBridge Scheduler sends. See docs/privacy.md for the data map this code follows.

Erasure order matters: the suppression tombstone is written first, so an event delivered while
the erasure runs cannot re-create the profile (ingest and decide check it); then schedules,
DynamoDB items, S3 rows; then the erasure list the next training reads; the receipt last.
Every step is idempotent: running the erasure again removes what a concurrent write added.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pynamodb.exceptions import DoesNotExist

from functions.dal.tables import DecisionRecord, LedgerRecord, MemberRecord
from functions.domain import privacy as pv
from functions.settings import Settings

# Prefixes of the data bucket that may hold member rows (decision archive, event/outcome
# archives, training exports as JSON lines or Parquet).
ARCHIVE_PREFIXES: tuple[str, ...] = ("decisions/", "events/", "outcomes/", "training/")
MODELS_PREFIX = "models/"  # the model registry: <prefix>/<version>/metadata.json
EXPORTS_PREFIX = "privacy/exports/"
ERASURE_LIST_PREFIX = "privacy/erased/"
# JSON lines (or one JSON document); any other format naming the member stops the erasure.
TEXT_SUFFIXES = (".jsonl", ".ndjson", ".json")
LEDGER_MEMBER_PK = "member#{member_id}"  # consent history, privacy requests (functions/dal/consent.py)


class ErasureIncomplete(RuntimeError):
    """An object could not be cleaned; the erasure must be re-run once the cause is fixed."""


@dataclass(frozen=True)
class PrivacyStores:
    """What the privacy operations read and write (tables are bound through pynamodb)."""

    settings: Settings
    s3: Any
    scheduler: Any
    dynamodb: Any  # low-level client, for the idempotency table (not a pynamodb model)
    salt: str
    model_dirs: tuple[Path, ...] = ()  # local model directories (bundled models) for lineage


def model_dirs_near(model_dir: str | Path) -> tuple[Path, ...]:
    """Every model directory beside the configured one (model_artifacts/*/metadata.json)."""
    root = Path(model_dir)
    if not root.is_absolute():
        root = Path(__file__).resolve().parents[2] / root
    return tuple(sorted(p.parent for p in root.parent.glob("*/metadata.json")))


def read_privacy_salt(settings: Settings, secrets: Any | None) -> str:
    """The pseudonym salt: from Secrets Manager when configured, else settings.pseudonym_salt
    (the same salt the training export pseudonymizes with, so its rows match the erasure list)."""
    if settings.pseudonym_salt_secret:
        if secrets is None:
            raise pv.PrivacyRequestError("pseudonym_salt_secret is set but no Secrets Manager client was given")
        value = str(secrets.get_secret_value(SecretId=settings.pseudonym_salt_secret)["SecretString"]).strip()
        if not value:
            raise pv.PrivacyRequestError(f"the pseudonym salt secret {settings.pseudonym_salt_secret} is empty")
        return value
    return settings.pseudonym_salt


_salts: dict[tuple[str, str], str] = {}


def privacy_salt(settings: Settings, clients: Any) -> str:
    """The salt, read once per container (it never changes: see settings.pseudonym_salt_secret)."""
    key = (settings.pseudonym_salt_secret, settings.pseudonym_salt)
    if key not in _salts:
        secrets = clients.client("secretsmanager") if settings.pseudonym_salt_secret else None
        _salts[key] = read_privacy_salt(settings, secrets)
    return _salts[key]


# --- suppression: what ingest and decide check --------------------------------------------


def erased_members(member_ids: Iterable[str], salt: str) -> set[str]:
    """The ids among `member_ids` that have been erased (one BatchGet per 100)."""
    by_key = {pv.tombstone_key(pv.pseudonym(m, salt)): m for m in set(member_ids)}
    keys = list(by_key)
    found: set[str] = set()
    for start in range(0, len(keys), 100):
        # Consistent: an erasure that has just begun must be seen by the next event.
        for item in LedgerRecord.batch_get(keys[start : start + 100], consistent_read=True):
            found.add(by_key[(item.pk, item.sk)])
    return found


def is_erased(member_id: str, salt: str) -> bool:
    return bool(erased_members([member_id], salt))


# --- reading --------------------------------------------------------------------------------


def _iso(epoch: Any) -> Any:
    if isinstance(epoch, int | float) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(float(epoch), tz=UTC).isoformat()
    return epoch


def _with_iso_times(value: Any, key: str = "") -> Any:
    """Epoch-second fields as ISO 8601 (names ending in _at, send lists, last_send_by_*)."""
    if isinstance(value, Mapping):
        if key.startswith("last_send_by_"):
            return {k: _iso(v) for k, v in value.items()}
        return {k: _with_iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key in {"recent_sends"}:
            return [_iso(v) for v in value]
        return [_with_iso_times(v) for v in value]
    if key.endswith("_at") or key == "t":
        return _iso(value)
    return value


def member_decisions(member_id: str) -> list[DecisionRecord]:
    """Every decision item of the member: keys from the KEYS_ONLY `by_member` index (0.5 RRU
    per 4 KB of keys), then the items by key, strongly consistent (1 RRU per item up to 4 KB)."""
    ids = [key.decision_id for key in DecisionRecord.by_member.query(member_id)]
    found: list[DecisionRecord] = []
    for start in range(0, len(ids), 100):
        found.extend(DecisionRecord.batch_get(ids[start : start + 100], consistent_read=True))
    return found


def _ledger_items(member_id: str) -> list[LedgerRecord]:
    return list(LedgerRecord.query(LEDGER_MEMBER_PK.format(member_id=member_id), consistent_read=True))


def _profile(member_id: str) -> MemberRecord | None:
    try:
        return MemberRecord.get(member_id, consistent_read=True)
    except DoesNotExist:
        return None


def _claims(decision_ids: Sequence[str]) -> dict[str, LedgerRecord]:
    keys = [(f"claim#{d}", "send") for d in decision_ids]
    found: dict[str, LedgerRecord] = {}
    for start in range(0, len(keys), 100):
        for item in LedgerRecord.batch_get(keys[start : start + 100]):
            found[item.pk.removeprefix("claim#")] = item
    return found


def _pending_schedules(scheduler: Any, group: str, decision_ids: Iterable[str]) -> list[dict[str, Any]]:
    from functions.dal.schedules import schedule_name  # pydantic models: only when an erasure runs

    found = []
    for decision_id in decision_ids:
        try:
            found.append(scheduler.get_schedule(Name=schedule_name(decision_id), GroupName=group))
        except scheduler.exceptions.ResourceNotFoundException:
            continue
    return found


def _objects(s3: Any, bucket: str, prefixes: Iterable[str]) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])


def pyarrow_available() -> bool:
    """pyarrow is in the CLI's environment, not in the Lambda bundle (it is ~140 MB)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


_PARTITION_DATE = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


def partition_date(key: str) -> str | None:
    found = _PARTITION_DATE.search(key)
    return found.group(1) if found else None


def _parquet_rows(data: bytes) -> tuple[Any, list[dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ErasureIncomplete("a Parquet object needs pyarrow to be read and rewritten; run the erasure "
                                "where pyarrow is installed (`fidelio privacy erase`)") from error
    table = pq.read_table(io.BytesIO(data))
    return table, table.to_pylist()


def _rows_of_member(key: str, data: bytes, ids: pv.MemberIdentifiers) -> list[dict[str, Any]]:
    if key.endswith(".parquet"):
        if not pyarrow_available():
            return []  # training rows derive from the decision rows the export holds already
        _, rows = _parquet_rows(data)
        return [r for r in rows if pv.row_is_members(r, ids)]
    if key.endswith(TEXT_SUFFIXES):
        return pv.rows_mentioning(data, ids)
    return []


def model_cards(stores: PrivacyStores) -> list[tuple[str, dict[str, Any]]]:
    """Every model card Fidelio can see: bundled model directories and the S3 registry."""
    cards: list[tuple[str, dict[str, Any]]] = []
    for directory in stores.model_dirs:
        path = directory / "metadata.json"
        if path.exists():
            cards.append((str(path), json.loads(path.read_text())))
    bucket = stores.settings.data_bucket
    if bucket:
        for key in _objects(stores.s3, bucket, [MODELS_PREFIX]):
            if key.endswith("/metadata.json"):
                body = stores.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                cards.append((f"s3://{bucket}/{key}", json.loads(body)))
    return cards


def _decision_summary(record: DecisionRecord) -> dict[str, Any]:
    body = dict(record.body or {})
    return {
        "decision_id": record.decision_id,
        "decided_at": _iso(record.decided_at),
        "trigger": record.trigger,
        "status": record.status,
        "holdout": record.holdout,
        "model_version": body.get("model_version"),
        "variant": body.get("variant"),
        "action": _with_iso_times(body.get("action")),
        "reasons": body.get("reasons", []),
        "outcomes": list(record.outcomes or []),
        "message_id": record.message_id,
        "send_at": _iso(record.send_at),
        "detail": _with_iso_times(body),
    }


def export_member(member_id: str, stores: PrivacyStores, now: datetime) -> dict[str, Any]:
    """Everything Fidelio holds on the member, as JSON-ready data (GDPR Art. 15)."""
    member_pseudonym = pv.pseudonym(member_id, stores.salt)
    record = _profile(member_id)
    profile = dict(record.profile) if record is not None else None
    ids = pv.identifiers_from_profile(member_id, member_pseudonym, profile)
    decisions = sorted(member_decisions(member_id), key=lambda r: r.decided_at)
    decision_ids = [d.decision_id for d in decisions]
    claims = _claims(decision_ids)
    ledger = _ledger_items(member_id)
    consent = [dict(i.body or {}) for i in ledger if i.sk.startswith("consent#")]
    requests = [dict(i.body or {}) for i in ledger if i.sk.startswith("privacy#")]
    other = [{"key": i.sk, **dict(i.body or {})} for i in ledger
             if not i.sk.startswith(("consent#", "privacy#"))]
    summaries = [_decision_summary(d) for d in decisions]
    sent = [
        {"decision_id": s["decision_id"], "channel": (s["action"] or {}).get("channel"),
         "offer_id": (s["action"] or {}).get("offer_id"), "topic": (s["action"] or {}).get("topic"),
         "status": s["status"], "message_id": s["message_id"],
         "claimed_at": _iso(claims[s["decision_id"]].created_at) if s["decision_id"] in claims else None}
        for s in summaries if s["status"] == "sent" or s["decision_id"] in claims
    ]
    outcomes = [{"decision_id": s["decision_id"], "outcome": o} for s in summaries for o in s["outcomes"]]
    schedules = [
        {"decision_id": json.loads(s["Target"].get("Input", "{}")).get("decision_id"),
         "expression": s["ScheduleExpression"], "time_zone": s.get("ScheduleExpressionTimezone", "UTC")}
        for s in _pending_schedules(stores.scheduler, stores.settings.schedule_group, decision_ids)
    ]
    archive: list[dict[str, Any]] = []
    bucket = stores.settings.data_bucket
    if bucket:
        for key in _objects(stores.s3, bucket, ARCHIVE_PREFIXES):
            data = stores.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            archive.extend({"object": key, "row": row} for row in _rows_of_member(key, data, ids))
    export = {
        "format": "fidelio-member-export/1",
        "member_id": member_id,
        "exported_at": now.astimezone(UTC).isoformat(),
        "profile": _with_iso_times(profile) if profile is not None else None,
        "profile_updated_at": _iso(record.updated_at) if record is not None else None,
        "consent_history": consent,
        "privacy_requests": requests,
        "other_records": other,
        "decisions": summaries,
        "messages_sent": sent,
        "outcomes": outcomes,
        "scheduled_sends": schedules,
        "archive_rows": archive,
    }
    export["counts"] = {k: (len(v) if isinstance(v, list) else int(v is not None))
                        for k, v in export.items() if k in {
                            "profile", "consent_history", "privacy_requests", "other_records", "decisions",
                            "messages_sent", "outcomes", "scheduled_sends", "archive_rows"}}
    return export


def export_key(member_pseudonym: str, request_id: str) -> str:
    return f"{EXPORTS_PREFIX}{member_pseudonym}/{request_id}.json"


def mark_export_completed(request: Any, key: str, now: datetime) -> None:
    """Mark the member's export request (a PrivacyRequested) completed in its ledger record."""
    from functions.dal import privacy_requests

    privacy_requests.record_privacy_request(request)  # a no-op when the preference center recorded it
    millis = round(request.occurred_at.timestamp() * 1000)
    item = LedgerRecord.get(LEDGER_MEMBER_PK.format(member_id=request.member_id),
                            f"{privacy_requests.SK_PREFIX}{millis:013d}#{request.kind}#{request.event_id}",
                            consistent_read=True)
    item.body = {**(item.body or {}), "status": "completed", "completed_at": now.isoformat(), "export_key": key}
    item.save()


# --- erasing --------------------------------------------------------------------------------


def _tombstone(member_pseudonym: str) -> LedgerRecord | None:
    pk, sk = pv.tombstone_key(member_pseudonym)
    try:
        return LedgerRecord.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


def erasure_receipt(member_id: str, salt: str) -> pv.ErasureReceipt | None:
    """The receipt of a past erasure of this member id, if any."""
    item = _tombstone(pv.pseudonym(member_id, salt))
    if item is None or not item.body or "receipt" not in item.body:
        return None
    return pv.ErasureReceipt.model_validate(item.body["receipt"])


def _delete_old_versions(s3: Any, bucket: str, key: str) -> int:
    """Delete every non-current version of `key` (the data bucket is versioned: a rewritten
    object keeps its old bytes as a previous version until deleted)."""
    removed = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if version["Key"] == key and not version.get("IsLatest") and version.get("VersionId") not in {None, "null"}:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                removed += 1
    return removed


def _delete_object_everywhere(s3: Any, bucket: str, key: str) -> None:
    s3.delete_object(Bucket=bucket, Key=key)
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if version["Key"] == key and version.get("VersionId") not in {None, "null"}:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])


def _without_member(data: bytes, ids: pv.MemberIdentifiers) -> tuple[bytes, int]:
    """JSON lines without the member's lines; a whole JSON document (e.g. pretty-printed) is
    filtered element by element when it is a list, and dropped whole when it is theirs."""
    try:
        document = json.loads(data)
    except ValueError:
        return pv.without_member_lines(data, ids)
    if isinstance(document, list):
        kept = [row for row in document if not pv.row_is_members(row, ids)]
        return (json.dumps(kept).encode() if kept else b""), len(document) - len(kept)
    if isinstance(document, dict):  # one JSON line, or one document
        return (b"", 1) if pv.row_is_members(document, ids) else (data, 0)
    return pv.without_member_lines(data, ids)


def _clean_object(s3: Any, bucket: str, key: str, ids: pv.MemberIdentifiers) -> int:
    """Rewrite one object without the member's rows; returns the rows removed."""
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table, rows = _parquet_rows(data)
        kept = [r for r in rows if not pv.row_is_members(r, ids)]
        removed = len(rows) - len(kept)
        if removed == 0:
            return 0
        if not kept:
            _delete_object_everywhere(s3, bucket, key)
            return removed
        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(kept, schema=table.schema), out)
        body = out.getvalue()
    elif key.endswith(TEXT_SUFFIXES):
        if not any(n.encode() in data for n in ids.raw_forms):
            return 0
        body, removed = _without_member(data, ids)
        if removed == 0:
            return 0
        if not body.strip():
            _delete_object_everywhere(s3, bucket, key)
            return removed
    else:
        if any(n.encode() in data for n in ids.raw_forms):
            raise ErasureIncomplete(f"s3://{bucket}/{key} mentions the member and is neither JSON lines nor "
                                    "Parquet: remove it by hand, then re-run the erasure")
        return 0
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    _delete_old_versions(s3, bucket, key)
    return removed


def _attribute_values(item: Mapping[str, Any]) -> list[Any]:
    """String values of a low-level DynamoDB item, JSON strings decoded (Powertools saves the
    function's result as a JSON string)."""
    values: list[Any] = []
    for attribute in item.values():
        for kind, value in attribute.items():
            if kind != "S":
                continue
            values.append(value)
            try:
                values.append(json.loads(value))
            except ValueError:
                pass
    return values


def _purge_idempotency(dynamodb: Any, table: str, ids: pv.MemberIdentifiers) -> int:
    """Delete idempotency records whose saved data mentions the member. Their keys are hashes
    of event payloads, so they cannot be found by member: a scan (the table only holds records
    until their short expiry) is the only complete way."""
    removed = 0
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=table):
        for item in page.get("Items", []):
            if pv.row_is_members(_attribute_values(item), ids):
                dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
                removed += 1
    return removed


def erase_member(member_id: str, reason: str, stores: PrivacyStores, now: datetime) -> pv.ErasureReceipt:
    """Erase the member from every store (GDPR Art. 17) and return the receipt.

    Leaves behind only: the tombstone (pseudonym + receipt) that suppresses replayed events,
    and the erasure-list object the next training reads. Both hold the keyed pseudonym only."""
    settings = stores.settings
    member_pseudonym = pv.pseudonym(member_id, stores.salt)
    record = _profile(member_id)
    ids = pv.identifiers_from_profile(member_id, member_pseudonym, record.profile if record else None)
    reason = pv.check_reason(reason, ids)
    previous = _tombstone(member_pseudonym)
    earlier = (previous.body or {}).get("receipt") if previous is not None else None
    pk, sk = pv.tombstone_key(member_pseudonym)
    # 1. Suppress first: from here on, events for this member are dropped by ingest and decide.
    LedgerRecord(pk, sk, created_at=int(now.timestamp()),
                 body={"pseudonym": member_pseudonym, "status": "erasing",
                       "requested_at": now.isoformat(), "receipt": earlier}).save()
    removed: Counter[str] = Counter()
    decisions = member_decisions(member_id)
    decision_ids = [d.decision_id for d in decisions]
    # 2. Pending sends.
    for schedule in _pending_schedules(stores.scheduler, settings.schedule_group, decision_ids):
        try:
            stores.scheduler.delete_schedule(Name=schedule["Name"], GroupName=settings.schedule_group)
            removed["scheduled_sends"] += 1
        except stores.scheduler.exceptions.ResourceNotFoundException:
            pass
    # 3. Lineage, before anything else can fail half-way: which models saw the member.
    lineage = pv.lineage_of(model_cards(stores), member_pseudonym)
    # 4. DynamoDB.
    claims = _claims(decision_ids)
    ledger = _ledger_items(member_id)
    with LedgerRecord.batch_write() as batch:
        for claim in claims.values():
            batch.delete(claim)
        for item in ledger:
            batch.delete(item)
    removed["send_claims"] += len(claims)
    removed["ledger_records"] += len(ledger)
    with DecisionRecord.batch_write() as decision_batch:
        for decision in decisions:
            decision_batch.delete(decision)
    removed["decisions"] += len(decisions)
    if record is not None:
        MemberRecord(member_id).delete(add_version_condition=False)  # whatever version ingest wrote last
        removed["profile"] += 1
    removed["idempotency_records"] += _purge_idempotency(stores.dynamodb, settings.idempotency_table, ids)
    # 5. S3: archives and training exports rewritten without the member's rows; their exports deleted.
    bucket = settings.data_bucket
    if bucket:
        keys = list(_objects(stores.s3, bucket, ARCHIVE_PREFIXES))
        # Days the member was active on: their decisions, and archive partitions that held them.
        days = {datetime.fromtimestamp(float(d.decided_at), tz=UTC).date().isoformat() for d in decisions}
        for key in (k for k in keys if not k.endswith(".parquet")):
            rows = _clean_object(stores.s3, bucket, key, ids)
            removed["archive_rows"] += rows
            if rows and partition_date(key):
                days.add(str(partition_date(key)))
        for key in (k for k in keys if k.endswith(".parquet")):
            if pyarrow_available():
                removed["archive_rows"] += _clean_object(stores.s3, bucket, key, ids)
            elif partition_date(key) in days:
                # Without pyarrow (in Lambda) a Parquet file cannot be rewritten: a training export
                # partition of a day the member was active is dropped whole. It is derived data:
                # the next training re-exports it from the cleaned decision archive.
                _delete_object_everywhere(stores.s3, bucket, key)
                removed["training_objects_dropped"] += 1
        for key in list(_objects(stores.s3, bucket, [f"{EXPORTS_PREFIX}{member_pseudonym}/"])):
            _delete_object_everywhere(stores.s3, bucket, key)
            removed["exports"] += 1
        # 6. The erasure list the next training reads.
        stores.s3.put_object(Bucket=bucket, Key=f"{ERASURE_LIST_PREFIX}{member_pseudonym}",
                             Body=json.dumps({"pseudonym": member_pseudonym, "erased_at": now.isoformat()}).encode(),
                             ContentType="application/json")
    runs = int(earlier.get("runs", 0)) + 1 if isinstance(earlier, Mapping) else 1
    total: Counter[str] = Counter(earlier.get("removed", {})) if isinstance(earlier, Mapping) else Counter()
    total.update(removed)
    receipt = pv.ErasureReceipt(
        pseudonym=member_pseudonym,
        requested_at=datetime.fromisoformat(earlier["requested_at"]) if isinstance(earlier, Mapping) else now,
        completed_at=now, reason=reason, removed=dict(total), models=lineage, runs=runs)
    LedgerRecord(pk, sk, created_at=int(now.timestamp()),
                 body={"pseudonym": member_pseudonym, "status": "erased",
                       "receipt": receipt.model_dump(mode="json")}).save()
    return receipt


def load_erasure_list(s3: Any, bucket: str, salt: str) -> pv.ErasureList:
    """The erased members' pseudonyms (one object each under privacy/erased/: no shared
    object to update, so concurrent erasures cannot lose each other's entries)."""
    pseudonyms = frozenset(key.removeprefix(ERASURE_LIST_PREFIX) for key in _objects(s3, bucket, [ERASURE_LIST_PREFIX]))
    return pv.ErasureList(salt=salt, pseudonyms=pseudonyms)


def reapply_erasures(stores: PrivacyStores, now: datetime) -> list[str]:
    """Erase again every member on the erasure list who has data in the tables (after a
    point-in-time restore brought them back). Returns the pseudonyms erased again."""
    bucket = stores.settings.data_bucket
    if not bucket:
        raise pv.PrivacyRequestError("no data bucket configured: the erasure list lives there")
    erased = load_erasure_list(stores.s3, bucket, stores.salt)
    found: dict[str, str] = {}
    member_ids = {r.member_id for r in MemberRecord.scan(attributes_to_get=["member_id"])}
    member_ids |= {r.member_id for r in DecisionRecord.scan(attributes_to_get=["member_id"])}
    for member_id in member_ids:
        if erased.excludes(member_id):
            found[pv.pseudonym(member_id, stores.salt)] = member_id
    for member_id in found.values():
        erase_member(member_id, "re-applied after a restore", stores, now)
    return sorted(found)

