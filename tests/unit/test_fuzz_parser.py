"""Fuzzing the parsers every record goes through: whatever arrives, the answer is a parsed
event or an InvalidEvent whose reason a person can read (and SQS can carry) — never another
exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.dal.dead_letters import MAX_REASON, _kept_body, _not_sqs_text
from functions.domain.events import EVENT_MODELS, InvalidEvent, parse_event
from functions.domain.ses_events import feedback_events, unwrap
from functions.handlers.sqs_batch import MAX_BODY_BYTES, parse_envelope

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# What an SQS message body can hold (SQS refuses other characters).
SQS_TEXT = st.characters(blacklist_categories=("Cs",), min_codepoint=0x20) | st.sampled_from("\t\n\r")
HOSTILE = st.sampled_from([
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'; DROP TABLE members; --",
    "\u202egnp.exe", "\u0000\u0001\u001f", "A" * 5000, "é" * 300, "👾" * 200, "../../etc/passwd",
    "{{ first_name }}", "${jndi:ldap://x}", "\ud800", "NaN", "-1e309",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(SQS_TEXT, max_size=30)
    | HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(SQS_TEXT, max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Read directly (not from tests.conftest: a wheel in the environment ships a top-level `tests`).
CANONICAL = {p.stem: json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "events").glob("*.json"))}
TYPES = sorted(EVENT_MODELS)


def mutated_detail(draw: Any) -> tuple[str, Any]:
    """A canonical event with fields replaced, removed or added (wrong types, hostile text,
    unknown versions, very long ids)."""
    name = draw(st.sampled_from(sorted(CANONICAL)))
    detail = dict(CANONICAL[name]["detail"])
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "remove", "add", "version", "long_id"]))
        key = draw(st.sampled_from(sorted(detail))) if detail else "member_id"
        if action == "replace":
            detail[key] = draw(JSON_VALUES)
        elif action == "remove":
            detail.pop(key, None)
        elif action == "add":
            detail[draw(st.text(SQS_TEXT, min_size=1, max_size=20))] = draw(JSON_VALUES)
        elif action == "version":
            detail["schema_version"] = draw(st.integers(-5, 10) | st.text(max_size=5) | st.floats(allow_nan=False))
        else:
            detail[draw(st.sampled_from(["member_id", "event_id"]))] = "m" * draw(st.integers(129, 100_000))
    return CANONICAL[name]["detail-type"], detail


@st.composite
def hostile_details(draw: Any) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["mutated", "random", "string", "type"]))
    if kind == "mutated":
        return mutated_detail(draw)
    if kind == "random":
        return draw(st.sampled_from(TYPES)), draw(JSON_VALUES)
    if kind == "string":
        return draw(st.sampled_from(TYPES)), draw(st.text(SQS_TEXT, max_size=200) | HOSTILE)
    return draw(st.text(SQS_TEXT, max_size=300) | HOSTILE), CANONICAL["app.opened"]["detail"]


def _readable(reason: str) -> bool:
    return bool(reason.strip()) and len(reason) < 5_000


@FUZZ
@given(hostile_details())
def test_parse_event_accepts_or_gives_a_reason(case: tuple[str, Any]) -> None:
    detail_type, detail = case
    try:
        event = parse_event(detail_type, detail)
    except InvalidEvent as error:
        assert _readable(error.reason)
        return
    # accepted: then it is one of the contract's models and round-trips
    assert type(event) is EVENT_MODELS[detail_type]


@st.composite
def hostile_bodies(draw: Any) -> str:
    kind = draw(st.sampled_from(["text", "json", "envelope", "oversized", "not_object"]))
    if kind == "text":
        return draw(st.text(SQS_TEXT, max_size=500) | HOSTILE)
    if kind == "json":
        return json.dumps(draw(JSON_VALUES))
    if kind == "not_object":
        return json.dumps({"detail-type": draw(JSON_VALUES), "detail": draw(JSON_VALUES)})
    detail_type, detail = draw(hostile_details())
    envelope = {"version": "0", "id": "e", "source": "test", "detail-type": detail_type, "detail": detail}
    if kind == "oversized":
        envelope["detail"] = {**CANONICAL["app.opened"]["detail"], "pad": "x" * draw(
            st.integers(MAX_BODY_BYTES, MAX_BODY_BYTES * 3))}
    return json.dumps(envelope)


@FUZZ
@given(hostile_bodies())
def test_parse_envelope_accepts_or_gives_a_reason_sqs_can_carry(body: str) -> None:
    try:
        detail_type, event, _ = parse_envelope(body)
    except InvalidEvent as error:
        assert _readable(error.reason)
        # the reason travels as an SQS message attribute: the DLQ writer cuts and cleans it
        assert not _not_sqs_text().search(_kept_body(error.reason[:MAX_REASON]))
        return
    assert len(body.encode()) <= MAX_BODY_BYTES
    assert type(event) is EVENT_MODELS[detail_type]


def test_an_oversized_record_is_refused_before_it_is_parsed() -> None:
    detail = {**CANONICAL["app.opened"]["detail"], "pad": "x" * MAX_BODY_BYTES}
    body = json.dumps({"detail-type": "app.opened", "detail": detail})
    try:
        parse_envelope(body)
    except InvalidEvent as error:
        assert f"exceeds {MAX_BODY_BYTES} bytes" in error.reason
    else:
        raise AssertionError("an oversized record was accepted")
    assert MAX_BODY_BYTES <= 80 * 1024  # the documented limit (docs/security.md)


@st.composite
def ses_bodies(draw: Any) -> str:
    good = {"eventType": "Delivery", "mail": {"messageId": "msg-1", "tags": {
        "decision_id": ["d-0123456789abcdef0123456789abcdef"], "member_id": ["m-0001"]}},
        "delivery": {"timestamp": "2026-03-02T15:00:00Z"}}
    kind = draw(st.sampled_from(["text", "mutated", "sns", "tags"]))
    if kind == "text":
        return draw(st.text(SQS_TEXT, max_size=300) | HOSTILE)
    if kind == "sns":
        return json.dumps({"Type": "Notification", "Message": draw(JSON_VALUES)})
    record: dict[str, Any] = json.loads(json.dumps(good))
    if kind == "tags":
        record["mail"]["tags"] = {"decision_id": draw(JSON_VALUES), "member_id": draw(JSON_VALUES)}
    else:
        path = draw(st.sampled_from(["eventType", "mail", "delivery", "bounce", "complaint", "click"]))
        record[path] = draw(JSON_VALUES)
    return json.dumps(record)


@FUZZ
@given(ses_bodies())
def test_ses_records_map_to_events_or_give_a_reason(body: str) -> None:
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    try:
        record = unwrap(body)
        _, events = feedback_events(record, now)
    except InvalidEvent as error:
        assert _readable(error.reason)
        return
    for event in events:
        assert event.decision_id and event.member_id


EMAILS = st.from_regex(r"[a-z0-9._+-]{1,16}@[a-z0-9-]{1,16}\.(com|fr|example|io)", fullmatch=True)
PHONES = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)


@st.composite
def log_payloads(draw: Any) -> tuple[Any, list[str]]:
    """A nested value with emails and phone numbers buried in free text, and the PII planted."""
    planted: list[str] = []

    def text_with_pii() -> str:
        pii = draw(EMAILS | PHONES)
        planted.append(pii)
        return draw(st.text(SQS_TEXT, max_size=20)) + " " + pii + " " + draw(st.text(SQS_TEXT, max_size=20))

    payload = {
        "reason": text_with_pii(),
        "email": draw(EMAILS), "phone": draw(PHONES), "first_name": draw(HOSTILE | st.text(min_size=1)),
        "nested": [{"detail": text_with_pii()}, draw(JSON_VALUES)],
    }
    planted += [payload["email"], payload["phone"]]
    return payload, planted


@FUZZ
@given(log_payloads())
def test_masked_log_payloads_keep_no_email_phone_or_name(case: tuple[Any, list[str]]) -> None:
    from functions.observability import mask_pii

    payload, planted = case
    masked = json.dumps(mask_pii(payload), ensure_ascii=False)
    for pii in planted:
        assert pii not in masked
    assert mask_pii(payload)["first_name"] == "*****"


def test_a_dead_lettered_record_is_logged_without_the_pii_in_its_reason(caplog: Any) -> None:
    from functions.handlers.sqs_batch import run_batch

    class Sqs:
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []

        def send_message(self, **kwargs: Any) -> None:
            self.sent.append(kwargs)

    # Given a record whose reason quotes member data (an unknown event type made of an email)
    body = json.dumps({"detail-type": "ann.smith@example.com +33612345678", "detail": {}})
    event = {"Records": [{"messageId": "1", "receiptHandle": "r", "body": body, "attributes": {},
                          "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q", "awsRegion": "eu-west-1"}]}
    sqs = Sqs()

    def record_handler(record: Any) -> None:
        parse_envelope(record.body)

    # When the batch runs
    response = run_batch(event, None, record_handler, sqs, "https://dlq", "ingest")
    # Then the record is on the DLQ with its reason, and the log line shows neither email nor phone
    assert response == {"batchItemFailures": []}
    assert "unknown event type" in sqs.sent[0]["MessageAttributes"]["reason"]["StringValue"]
    (record,) = [r for r in caplog.records if r.getMessage() == "dead-lettering invalid record"]
    logged = json.dumps(vars(record), default=str)
    assert "unknown event type" in logged
    assert "ann.smith@example.com" not in logged and "+33612345678" not in logged
