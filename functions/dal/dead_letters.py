"""Moving a record that can never succeed to its dead-letter queue, with the reason."""

from __future__ import annotations

from typing import Any

MAX_REASON = 1000


def dead_letter(sqs: Any, dlq_url: str, body: str, reason: str, source: str) -> None:
    """Put `body` on the DLQ with a `reason` attribute a person can act on."""
    if not dlq_url:
        raise RuntimeError(f"no dead-letter queue configured; cannot set aside a record: {reason}")
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=body if len(body.encode()) < 250_000 else body[:200_000],
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:MAX_REASON] or "unknown"},
            "source": {"DataType": "String", "StringValue": source},
        },
    )
