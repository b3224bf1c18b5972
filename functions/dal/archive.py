"""Decisions archived to S3 as JSON lines partitioned by date, for training and analysis."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from functions.domain.decision_record import Decision


def archive_key(now: datetime, decisions: Sequence[Decision]) -> str:
    digest = hashlib.sha256("|".join(d.decision_id for d in decisions).encode()).hexdigest()[:20]
    return f"decisions/date={now.strftime('%Y-%m-%d')}/{digest}.jsonl"


def archive_decisions(s3: Any, bucket: str, decisions: Sequence[Decision], now: datetime,
                      extra: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """One JSON line per decision; `extra[decision_id]` adds fields to its line (decide adds
    `top_features`, the feature rows of its top candidates, for drift and training)."""
    extra = extra or {}
    body = "\n".join(json.dumps({**d.model_dump(mode="json"), **extra.get(d.decision_id, {})},
                                separators=(",", ":")) for d in decisions)
    key = archive_key(now, decisions)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson")
    return key


def read_archived_decisions(s3: Any, bucket: str, day: str) -> list[dict[str, Any]]:
    """Every decision archived on one day (YYYY-MM-DD), as dicts, each once: a redelivered
    trigger batch archives its decisions again (same ids, same content) — the first is kept."""
    found: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"decisions/date={day}/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    decision = json.loads(line)
                    found.setdefault(decision.get("decision_id", item["Key"] + line[:64]), decision)
    return list(found.values())
