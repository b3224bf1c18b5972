"""`fidelio dlq list|show|redrive QUEUE`: inspect dead letters and replay them after a fix.

list: how many messages each DLQ holds, by reason. show: the messages of one DLQ (reason,
source, receive count, body), left in place. redrive: move them back to their source queue
(SQS's own message-move task where the endpoint supports it, else receive → send → delete)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fidelio.errors import UsageError

MAX_SCAN = 10_000


def _peek(sqs: Any, url: str, limit: int = MAX_SCAN) -> list[dict[str, Any]]:
    """Messages of a queue, received with a zero visibility timeout so they stay in place."""
    seen: dict[str, dict[str, Any]] = {}
    empty_rounds = 0
    while len(seen) < limit and empty_rounds < 3:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  AttributeNames=["All"], MessageAttributeNames=["All"],
                                  WaitTimeSeconds=0).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in seen]
        empty_rounds = empty_rounds + 1 if not new else 0
        for message in new:
            seen[message["MessageId"]] = message
    return list(seen.values())


def _reason(message: dict[str, Any]) -> str:
    attribute = message.get("MessageAttributes", {}).get("reason")
    return attribute["StringValue"] if attribute else "retries exhausted (redrive policy)"


def _queue(stack: Any, name: str) -> tuple[str, str]:
    if name not in stack.dlq_urls:
        raise UsageError(f"unknown queue {name!r}; choose one of: {', '.join(sorted(stack.dlq_urls))}")
    return stack.dlq_urls[name], stack.queue_urls[name]


def list_dead_letters(stack: Any) -> dict[str, Counter]:
    sqs = stack.client("sqs")
    return {name: Counter(_reason(m) for m in _peek(sqs, url)) for name, url in sorted(stack.dlq_urls.items())}


def show_dead_letters(stack: Any, name: str) -> list[dict[str, Any]]:
    dlq_url, _ = _queue(stack, name)
    return [{"message_id": m["MessageId"], "reason": _reason(m),
             "source": m.get("MessageAttributes", {}).get("source", {}).get("StringValue"),
             "receive_count": m.get("Attributes", {}).get("ApproximateReceiveCount"),
             "body": m["Body"]} for m in _peek(stack.client("sqs"), dlq_url)]


def redrive(stack: Any, name: str) -> int:
    """Move every message of `name`'s DLQ back to `name`'s queue. Returns how many moved."""
    dlq_url, url = _queue(stack, name)
    sqs = stack.client("sqs")
    moved = 0
    while True:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                  MessageAttributeNames=["All"], WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return moved
        for message in got:
            # Sent before deleted: a crash between the two leaves a copy, never a loss.
            sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
