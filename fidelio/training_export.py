"""Training data export: the decision archive (S3 JSON lines, with the feature rows decide
logged) joined by decision id to the outcomes on the decision records (DynamoDB), written as
date-partitioned Parquet under `training/decisions/date=YYYY-MM-DD/part-<digest>.parquet`.

Member ids are pseudonymized with a salted HMAC (settings.pseudonym_salt) before anything is
written; `exclude_ids` (pseudonyms, e.g. from the erasure list) are left out. One row per
decision: variant, model version, propensity, the logged action and its feature row (one
column per feature name, null when nothing was sent), the top candidates (JSON) and their
feature rows, and the outcome labels. pyarrow runs here (CLI / pipeline), never in a Lambda.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from functions.domain.features import FEATURE_NAMES

TRAINING_PREFIX = "training/decisions"
OUTCOMES = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed", "redeemed")
FEATURE_PREFIX = "f_"
# A conversion: the member redeemed the offer (when joined) or clicked through.
CONVERSION_OUTCOMES = frozenset({"redeemed", "clicked"})


def pseudonymize(member_id: str, salt: str) -> str:
    """Stable, not reversible without the salt: HMAC-SHA256(salt, member id), 32 hex chars."""
    return "p-" + hmac.new(salt.encode(), member_id.encode(), hashlib.sha256).hexdigest()[:32]


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"export window ends ({end}) before it starts ({start})")
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


def read_archive(s3: Any, bucket: str, days: Iterable[date]) -> Iterator[dict[str, Any]]:
    """Archived decisions of each day (JSON objects), in key order; each decision once."""
    from functions.dal.archive import read_archived_decisions

    seen: set[str] = set()
    for day in days:
        for decision in read_archived_decisions(s3, bucket, day.isoformat()):
            if decision["decision_id"] not in seen:
                seen.add(decision["decision_id"])
                yield decision


def load_outcomes(decision_ids: Iterable[str]) -> dict[str, tuple[str, list[str]]]:
    """(status, outcomes) of each stored decision record (those past their TTL are absent)."""
    from functions.dal.tables import DecisionRecord

    ids = sorted(set(decision_ids))
    found: dict[str, tuple[str, list[str]]] = {}
    for start in range(0, len(ids), 100):
        for record in DecisionRecord.batch_get(ids[start : start + 100],
                                               attributes_to_get=["decision_id", "status", "outcomes"]):
            found[record.decision_id] = (str(record.status or ""), [str(o) for o in (record.outcomes or [])])
    return found


def logged_index(decision: Mapping[str, Any]) -> int:
    """Index of the logged action among the top candidates; -1 nothing sent; -2 outside top."""
    from fidelio.report.log import LoggedDecision
    from fidelio.report.ope import logged_index as ope_logged_index

    stub = LoggedDecision(decision_id="", member_id="", day=0, decided_at=0.0, trigger="", holdout=False,
                          explored=False, action=decision["action"], intended=decision["intended"],
                          propensity=1.0, p_nothing=0.0, top=decision.get("top", []))
    return ope_logged_index(stub)


def export_row(decision: Mapping[str, Any], status: str, outcomes: list[str], salt: str) -> dict[str, Any]:
    action = decision["action"]
    index = logged_index(decision)
    top_features = decision.get("top_features") or []
    features = decision.get("action_features") if action.get("kind") == "send" else None
    row: dict[str, Any] = {
        "decision_id": decision["decision_id"],
        "date": datetime.fromtimestamp(decision["decided_at"], tz=UTC).date().isoformat(),
        "decided_at": float(decision["decided_at"]),
        "member": pseudonymize(decision["member_id"], salt),
        "variant": decision.get("variant", "champion"),
        "model_version": decision.get("model_version", ""),
        "feature_version": decision.get("feature_version", ""),
        "trigger": decision.get("trigger", ""),
        "holdout": bool(decision.get("holdout", False)),
        "explored": bool((decision.get("exploration") or {}).get("explored", False)),
        "p_nothing": float((decision.get("exploration") or {}).get("p_nothing", 0.0)),
        "action_kind": action.get("kind", "none"),
        "offer_id": action.get("offer_id"),
        "channel": action.get("channel"),
        "send_at": action.get("send_at"),
        "intended": json.dumps(decision.get("intended", {}), separators=(",", ":")),
        "propensity": float(decision["propensity"]),
        "logged_index": index,
        "top": json.dumps(decision.get("top", []), separators=(",", ":")),
        "top_features": top_features,
        "status": status,
        "converted": bool(CONVERSION_OUTCOMES & set(outcomes)),
    }
    row |= {f"outcome_{name}": name in outcomes for name in OUTCOMES}
    row |= {f"{FEATURE_PREFIX}{name}": (None if features is None else float(features[i]))
            for i, name in enumerate(FEATURE_NAMES)}
    return row


@dataclass
class ExportResult:
    keys: list[str] = field(default_factory=list)
    rows: int = 0
    excluded: int = 0
    without_record: int = 0  # archived decisions whose record (and outcomes) is gone


def export_training_data(s3: Any, bucket: str, start: date, end: date, salt: str,
                         exclude_ids: set[str] | frozenset[str] = frozenset()) -> ExportResult:
    """Write one Parquet file per day of [start, end] that has decisions; returns what was written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from functions.dal.decisions import stored_in_table

    result = ExportResult()
    for day in days_between(start, end):
        decisions = [d for d in read_archive(s3, bucket, [day])]
        if not decisions:
            continue
        # Only decisions that sent or would have (holdout) have a record; a decision to send
        # nothing lives in the archive alone and has no outcome to join.
        stored = [d for d in decisions if stored_in_table((d.get("intended") or {}).get("kind"))]
        outcomes = load_outcomes(d["decision_id"] for d in stored)
        rows = []
        for decision in decisions:
            if pseudonymize(decision["member_id"], salt) in exclude_ids:
                result.excluded += 1
                continue
            if not stored_in_table((decision.get("intended") or {}).get("kind")):
                rows.append(export_row(decision, "no_send", [], salt))
                continue
            status, joined = outcomes.get(decision["decision_id"], ("", []))
            result.without_record += decision["decision_id"] not in outcomes
            rows.append(export_row(decision, status, joined, salt))
        if not rows:
            continue
        table = pa.Table.from_pylist(rows)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        digest = hashlib.sha256("|".join(r["decision_id"] for r in rows).encode()).hexdigest()[:16]
        key = f"{TRAINING_PREFIX}/date={day.isoformat()}/part-{digest}.parquet"
        # Re-exporting a day replaces its earlier parts (an erasure must not survive in an old part).
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{TRAINING_PREFIX}/date={day.isoformat()}/"):
            for item in page.get("Contents", []):
                if item["Key"] != key:
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue(), ContentType="application/vnd.apache.parquet")
        result.keys.append(key)
        result.rows += len(rows)
    return result


def read_export(s3: Any, bucket: str, start: date, end: date) -> list[dict[str, Any]]:
    """Rows of the exported Parquet files for [start, end], as dicts (decided_at order)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for day in days_between(start, end):
        prefix = f"{TRAINING_PREFIX}/date={day.isoformat()}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                rows.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return sorted(rows, key=lambda r: (r["decided_at"], r["decision_id"]))


def training_set(rows: Iterable[Mapping[str, Any]]) -> Any:
    """The offer model's examples from exported rows: every logged send with its feature row
    (holdout decisions sent nothing); label = converted."""
    from fidelio.models.offers import Targeting, TrainingSet

    sends = [r for r in rows if r["action_kind"] == "send" and r[f"{FEATURE_PREFIX}{FEATURE_NAMES[0]}"] is not None]
    matrix = np.array([[r[f"{FEATURE_PREFIX}{n}"] for n in FEATURE_NAMES] for r in sends], dtype=np.float32)
    labels = np.array([int(r["converted"]) for r in sends], dtype=np.int8)
    targetings = [Targeting(r["member"], r["offer_id"], r["channel"], float(r["send_at"] or r["decided_at"]))
                  for r in sends]
    return TrainingSet(matrix.reshape(-1, len(FEATURE_NAMES)), labels, targetings)
