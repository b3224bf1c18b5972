"""Fuzzing the SQS-batch handlers on the local stand-in: batches mixing malformed, oversized,
wrong-typed, unknown-version and hostile records with valid ones. Whatever the mix, the batch
completes: every bad record is on the DLQ with a reason, every valid partner succeeds, and no
record is left for SQS to retry."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fidelio.local.runner import LambdaContext, LocalRunner
from functions.dal.members import applied_events
from functions.dal.tables import MemberRecord
from functions.handlers import deps
from functions.handlers.sqs_batch import MAX_BODY_BYTES
from infra import spec
from tests.integration.helpers import drain

pytestmark = pytest.mark.integration
FUZZ = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CANONICAL = {p.stem: json.loads(p.read_text())
             for p in sorted((Path(__file__).parents[1] / "events").glob("*.json"))}
SQS_TEXT = st.characters(blacklist_categories=("Cs",), min_codepoint=0x20) | st.sampled_from("\t\n\r")
HOSTILE_TEXT = st.sampled_from([
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'; DROP TABLE members; --",
    "Zoë \u202eevil", "名前", "👾" * 20, "{{ first_name }}", "${jndi:ldap://x}",
])
WRONG_TYPES = st.sampled_from([None, 42, -1.5, True, [], {}, ["m"], {"id": "m"}])


def envelope(detail_type: Any, detail: Any) -> str:
    return json.dumps({"version": "0", "id": "fuzz", "source": "fuzz", "account": "123456789012",
                       "time": "2026-03-02T14:00:00Z", "region": "eu-west-1", "resources": [],
                       "detail-type": detail_type, "detail": detail})


# ---- records that can never succeed, whatever the handler ------------------------------

def not_json_object() -> st.SearchStrategy[str]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(SQS_TEXT, max_size=40)
    return st.one_of(
        st.text(SQS_TEXT, min_size=1, max_size=300).filter(lambda t: not t.lstrip().startswith("{")),
        st.lists(scalars, max_size=5).map(json.dumps),
        scalars.map(json.dumps),
        HOSTILE_TEXT,
    )


@st.composite
def bad_events(draw: Any) -> str:
    """EventBridge envelopes whose event breaks the contract."""
    name = draw(st.sampled_from(sorted(n for n in CANONICAL if n != "sweep.requested")))
    detail = dict(CANONICAL[name]["detail"])
    kind = draw(st.sampled_from(["version", "wrong_type", "long_id", "hostile_id", "missing", "unknown_type",
                                 "oversized", "no_detail", "not_object"]))
    if kind == "version":
        detail["schema_version"] = draw(st.integers(2, 10_000) | st.integers(-100, 0) | st.text(max_size=5))
    elif kind == "wrong_type":
        field = draw(st.sampled_from(["member_id", "event_id", "occurred_at"]))
        # (a number is a valid occurred_at: epoch seconds)
        detail[field] = draw(WRONG_TYPES.filter(lambda v: not isinstance(v, int | float))
                             if field == "occurred_at" else WRONG_TYPES)
    elif kind == "long_id":
        detail["member_id"] = "m" * draw(st.integers(129, 20_000))
    elif kind == "hostile_id":
        detail["member_id"] = draw(HOSTILE_TEXT)
    elif kind == "missing":
        detail.pop(draw(st.sampled_from(["member_id", "event_id", "occurred_at"])))
    elif kind == "unknown_type":
        return envelope(draw(st.text(SQS_TEXT, min_size=1, max_size=60).filter(lambda t: t not in CANONICAL)),
                        detail)
    elif kind == "oversized":
        detail["first_name"] = "x" * draw(st.integers(MAX_BODY_BYTES, 2 * MAX_BODY_BYTES))
    elif kind == "no_detail":
        return json.dumps({"detail-type": name})
    else:
        return draw(not_json_object())
    return envelope(CANONICAL[name]["detail-type"], detail)


@st.composite
def bad_dispatches(draw: Any) -> str:
    kind = draw(st.sampled_from(["text", "no_id", "wrong_type", "long_id", "hostile_id", "unknown_id"]))
    if kind == "text":
        return draw(not_json_object())
    if kind == "no_id":
        return json.dumps({"decision": "d-1"})
    if kind == "wrong_type":
        return json.dumps({"decision_id": draw(WRONG_TYPES)})
    if kind == "long_id":
        return json.dumps({"decision_id": "d" * draw(st.integers(129, 50_000))})
    if kind == "hostile_id":
        return json.dumps({"decision_id": draw(HOSTILE_TEXT)})
    return json.dumps({"decision_id": f"d-{draw(st.integers(0, 2**64)):032x}"})  # never decided


@st.composite
def bad_ses_records(draw: Any) -> str:
    good = json.loads(GOOD_SES)
    kind = draw(st.sampled_from(["text", "no_mail", "mail_type", "tags_type", "sns_not_json", "hostile_tag"]))
    if kind == "text":
        return draw(not_json_object())
    if kind == "no_mail":
        good.pop("mail")
    elif kind == "mail_type":
        # not a dict (a dict without Fidelio's tags is another sender's mail: skipped, not bad)
        good["mail"] = draw(WRONG_TYPES.filter(lambda v: not isinstance(v, dict) and v not in (None, []))
                            | HOSTILE_TEXT)
    elif kind == "tags_type":
        good["mail"]["tags"] = {"decision_id": draw(st.sampled_from([True, 5, {"a": 1}])), "member_id": ["m"]}
    elif kind == "hostile_tag":
        good["mail"]["tags"]["decision_id"] = [draw(HOSTILE_TEXT)]
    else:
        return json.dumps({"Type": "Notification", "Message": draw(st.text(SQS_TEXT, min_size=1, max_size=50)
                                                                    .filter(lambda t: not t.startswith("{")))})
    return json.dumps(good)


# ---- valid partners ---------------------------------------------------------------------

GOOD_SES = json.dumps({"eventType": "Delivery", "mail": {"messageId": "msg-1", "tags": {
    "decision_id": ["d-0123456789abcdef0123456789abcdef"], "member_id": ["m-fuzz"]}},
    "delivery": {"timestamp": "2026-03-02T15:00:00Z"}})


@st.composite
def good_events(draw: Any) -> tuple[str, str]:
    """(member id, envelope) of a valid event, its free text hostile but within the contract."""
    n = draw(st.integers(0, 10**6))
    member, event_id = f"m-fuzz-{n}", f"e-fuzz-{n}-{draw(st.integers(0, 10**6))}"
    detail = {**CANONICAL["member.enrolled"]["detail"], "member_id": member, "event_id": event_id,
              "first_name": draw(HOSTILE_TEXT)}
    return event_id, envelope("member.enrolled", detail)


# ---- the property ----------------------------------------------------------------------

def _records(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": f"msg-{i}", "receiptHandle": f"rh-{i}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1772460000000",
                       "SenderId": "fuzz", "ApproximateFirstReceiveTimestamp": "1772460000000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "eu-west-1"} for i, body in enumerate(bodies)]}


def run_mixed_batch(stack: Any, runner: LocalRunner, function: str, bad: list[str], good: list[str],
                    seed: int) -> list[dict[str, Any]]:
    """Invoke `function` on the shuffled batch; check the batch contract; return the dead letters."""
    bodies = bad + good
    random.Random(seed).shuffle(bodies)
    fn = next(f for f in spec.FUNCTIONS if f.logical_name == function)
    handler = runner._handler(fn)
    deps.use(runner._deps[function])
    response = handler(_records(bodies, stack.queue_arns[fn.queue]), LambdaContext(function))
    # Then no record is left for SQS to retry: bad ones were set aside, good ones succeeded
    assert response == {"batchItemFailures": []}
    dead = drain(stack.client("sqs"), stack.dlq_urls[fn.queue])
    # and exactly the bad records are on the DLQ, each with a reason and its source
    assert sorted(m["Body"] for m in dead) == sorted(bad)
    for message in dead:
        reason = message["MessageAttributes"]["reason"]["StringValue"]
        assert reason.strip() and len(reason) <= 1000
        assert message["MessageAttributes"]["source"]["StringValue"] == function
    return dead


@pytest.fixture
def runner(local_stack):
    return LocalRunner(local_stack)


@FUZZ
@given(bad=st.lists(bad_events(), min_size=1, max_size=6), good=st.lists(good_events(), min_size=1, max_size=3),
       seed=st.integers(0, 1000))
def test_ingest_sets_aside_bad_records_and_applies_their_partners(local_stack, runner, bad, good, seed):
    run_mixed_batch(local_stack, runner, "ingest", bad, [body for _, body in good], seed)
    # valid partners were applied, hostile text and all
    for event_id, body in good:
        member = json.loads(body)["detail"]["member_id"]
        assert event_id in applied_events(MemberRecord.get(member)).ids


@FUZZ
@given(bad=st.lists(bad_events(), min_size=1, max_size=6), good=st.lists(good_events(), min_size=1, max_size=3),
       seed=st.integers(0, 1000))
def test_decide_sets_aside_bad_records_and_decides_for_their_partners(local_stack, runner, bad, good, seed):
    purchase = CANONICAL["purchase.completed"]
    partners = [envelope("purchase.completed", {**purchase["detail"], "event_id": f"e-{i}-{seed}"})
                for i in range(len(good))]
    run_mixed_batch(local_stack, runner, "decide", bad, partners, seed)


@FUZZ
@given(bad=st.lists(bad_dispatches(), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_dispatch_sets_aside_bad_records_and_handles_their_partners(local_stack, runner, bad, seed):
    from functions.dal.decisions import record_decision
    from functions.domain.decision import ChosenAction, Decision

    deps.use(runner._deps["dispatch"])
    # Given a stored decision to send nothing: a valid record with nothing to do
    nothing = ChosenAction(kind="none")
    record_decision(Decision(decision_id="d-fuzzpartner", member_id="m-fuzz", trigger="cross_sell",
                             cause_id="e-1", decided_at=1772460000.0, model_version="prior", action=nothing,
                             intended=nothing, propensity=1.0), 30)
    run_mixed_batch(local_stack, runner, "dispatch", bad, [json.dumps({"decision_id": "d-fuzzpartner"})], seed)


@FUZZ
@given(bad=st.lists(bad_ses_records(), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_feedback_sets_aside_bad_records_and_maps_their_partners(local_stack, runner, bad, seed):
    run_mixed_batch(local_stack, runner, "feedback", bad, [GOOD_SES], seed)
