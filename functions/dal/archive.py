"""Decisions archived to S3 as JSON lines partitioned by date, for training and analysis."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from functions.domain.decision import Decision


def archive_key(now: datetime, decisions: Sequence[Decision]) -> str:
    digest = hashlib.sha256("|".join(d.decision_id for d in decisions).encode()).hexdigest()[:20]
    return f"decisions/date={now.strftime('%Y-%m-%d')}/{digest}.jsonl"


def archive_decisions(s3: Any, bucket: str, decisions: Sequence[Decision], now: datetime) -> str:
    body = "\n".join(json.dumps(d.model_dump(mode="json"), separators=(",", ":")) for d in decisions)
    key = archive_key(now, decisions)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson")
    return key
