"""Moving a record that can never succeed to its dead-letter queue, with the reason."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

MAX_REASON = 1000
MAX_KEPT_BODY_BYTES = 200_000


@cache
def _not_sqs_text() -> re.Pattern[str]:
    """Characters SQS refuses in a message or attribute (reasons may quote hostile input).
    Compiled on the first dead letter: the Unicode ranges cost ~3.5 ms, at every cold start of
    every SQS-fed function if compiled at import, for a path most containers never take."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _sqs_text(text: str) -> str:
    return _not_sqs_text().sub("?", text)


def _kept_body(body: str) -> str:
    """The body, cut to what a DLQ message can carry (cut on bytes, not characters)."""
    data = body.encode("utf-8", "replace")
    if len(data) <= MAX_KEPT_BODY_BYTES:
        return _sqs_text(body) or "(empty)"
    return _sqs_text(data[:MAX_KEPT_BODY_BYTES].decode("utf-8", "ignore"))


def dead_letter(sqs: Any, dlq_url: str, body: str, reason: str, source: str) -> None:
    """Put `body` on the DLQ with a `reason` attribute a person can act on."""
    if not dlq_url:
        raise RuntimeError(f"no dead-letter queue configured; cannot set aside a record: {reason}")
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=_kept_body(body),
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": _sqs_text(reason[:MAX_REASON]) or "unknown"},
            "source": {"DataType": "String", "StringValue": source},
        },
    )
