"""Small helpers for integration tests on moto."""

from __future__ import annotations

import json
from typing import Any

import requests


def moto_data(endpoint: str) -> dict[str, Any]:
    return requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()


def raw_emails_to(endpoint: str, address: str) -> list[str]:
    raw = moto_data(endpoint)["ses"].get("RawMessage", [])
    return [m["raw_data"] for m in raw if address in m.get("destinations", [])]


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return found
        found.extend(got)
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def put_raw(events_client: Any, bus: str, detail_type: str, detail: Any) -> None:
    body = detail if isinstance(detail, str) else json.dumps(detail)
    response = events_client.put_events(Entries=[{"EventBusName": bus, "Source": "test",
                                                  "DetailType": detail_type, "Detail": body}])
    assert response["FailedEntryCount"] == 0


def archived_decisions(stack: Any) -> list[dict[str, Any]]:
    """Every decision in the S3 archive (each id once): decide archives every decision, and
    stores in the decisions table only those that send or would have (holdout)."""
    from functions.dal.archive import read_archived_decisions

    s3 = stack.client("s3")
    days = {key.split("/")[1].removeprefix("date=")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.data_bucket, Prefix="decisions/")
            for key in (item["Key"] for item in page.get("Contents", []))}
    return [d for day in sorted(days) for d in read_archived_decisions(s3, stack.data_bucket, day)]
