"""The SQS batch loop (functions/handlers/sqs_batch.run_batch) answers as Powertools'
BatchProcessor + process_partial_response did, which it replaced to keep Powertools' parser
models out of every cold start; and the S3 client keeps boto3's managed transfers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError, UnexpectedBatchTypeError

from functions.domain.events import InvalidEvent
from functions.handlers.sqs_batch import SQSRecord, run_batch


class Sqs:
    """A fake SQS client: what was put on the dead-letter queue."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q", "awsRegion": "eu-west-1"}
                        for i, body in enumerate(bodies)]}


def handle(record: Any) -> str:
    """ok → done; invalid → InvalidEvent (dead-lettered); anything else → a transient error."""
    if record.body == "ok":
        return "done"
    if record.body == "invalid":
        raise InvalidEvent("not an event")
    raise RuntimeError(f"throttled on {record.message_id}")


def powertools_response(event: dict[str, Any]) -> dict[str, Any]:
    """What the previous code returned: Powertools' loop around the same record handler."""

    def guarded(record: Any) -> str:
        try:
            return handle(record)
        except InvalidEvent:
            return "dead_lettered"

    return dict(process_partial_response(event=event, record_handler=guarded,
                                         processor=BatchProcessor(event_type=EventType.SQS), context=None))


@pytest.mark.parametrize("bodies", [
    ("ok", "ok"),
    ("ok", "boom", "ok", "boom"),
    ("invalid", "ok", "boom"),
    ("invalid",),
])
def test_a_batch_reports_the_same_failures_as_powertools(bodies: tuple[str, ...]) -> None:
    # Given an SQS batch mixing successes, transient failures and invalid records
    event = sqs_event(*bodies)
    # When it runs through our loop
    sqs = Sqs()
    response = run_batch(event, None, handle, sqs, "https://dlq", "ingest")
    # Then the failed records are the ones Powertools reports, in order, and the invalid ones
    # went to the dead-letter queue instead of being retried
    assert response == powertools_response(event)
    assert response["batchItemFailures"] == [{"itemIdentifier": f"m{i}"} for i, b in enumerate(bodies) if b == "boom"]
    assert [m["MessageBody"] for m in sqs.sent] == [b for b in bodies if b == "invalid"]


def test_a_batch_whose_every_record_failed_raises_like_powertools() -> None:
    # Given a batch where every record fails transiently
    event = sqs_event("boom", "boom")
    # When it runs, through our loop and through Powertools'
    with pytest.raises(BatchProcessingError) as ours:
        run_batch(event, None, handle, Sqs(), "https://dlq", "ingest")
    with pytest.raises(BatchProcessingError) as theirs:
        powertools_response(event)
    # Then both raise the same error (the whole batch is retried), naming each record's error
    assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]
    assert [str(e[1]) for e in ours.value.child_exceptions] == ["throttled on m0", "throttled on m1"]


def test_an_event_without_records_is_refused_like_powertools() -> None:
    with pytest.raises(UnexpectedBatchTypeError):
        run_batch({"Records": []}, None, handle, Sqs(), "https://dlq", "ingest")
    with pytest.raises(UnexpectedBatchTypeError):
        powertools_response({"Records": []})


def test_a_record_that_cannot_be_dead_lettered_is_retried() -> None:
    # Given an invalid record and a dead-letter queue that cannot be written to
    class BrokenSqs(Sqs):
        def send_message(self, **kwargs: Any) -> None:
            raise RuntimeError("SQS unavailable")

    # When the batch runs
    response = run_batch(sqs_event("invalid", "ok"), None, handle, BrokenSqs(), "https://dlq", "ingest")
    # Then the record is reported failed, so SQS delivers it again
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_the_record_view_reads_like_powertools_sqs_record() -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord as PowertoolsSQSRecord

    raw = sqs_event(json.dumps({"detail-type": "x", "detail": {}}))["Records"][0]
    ours, theirs = SQSRecord(raw), PowertoolsSQSRecord(raw)
    assert (ours.body, ours.message_id, ours.raw_event) == (theirs.body, theirs.message_id, theirs.raw_event)


def test_the_s3_client_keeps_boto3_managed_transfers(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from functions.dal.clients import AwsClients
    from functions.settings import Settings

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        # Given the container's S3 client (a botocore client: boto3 is not imported to make it)
        s3 = AwsClients(Settings(region="eu-west-1")).s3
        s3.create_bucket(Bucket="fidelio-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        source = tmp_path / "model.onnx"
        source.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: a multipart transfer
        # When a file goes up and comes back through boto3's managed transfers
        s3.upload_file(str(source), "fidelio-data", "models/offers/v1/model.onnx")
        s3.download_file("fidelio-data", "models/offers/v1/model.onnx", str(tmp_path / "copy.onnx"))
        # Then it arrives whole
        assert (tmp_path / "copy.onnx").read_bytes() == source.read_bytes()
