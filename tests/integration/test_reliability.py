"""At-least-once in, exactly one message out — on the local stand-in.

Duplicate events, duplicate and redelivered SQS messages, handlers killed between their
steps and providers that throttle or refuse: no trigger is lost, no decision is made twice
and no message is sent twice. The one window that remains (a crash between the send claim
and the recorded send) loses the message rather than sending it twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist

from fidelio import dead_letters
from fidelio.local.runner import LocalRunner
from functions import clock, faults
from functions.dal.bus import publish
from functions.dal.members import applied_events
from functions.dal.offers import replace_catalog
from functions.dal.tables import DecisionRecord, LedgerRecord, MemberRecord
from functions.domain import events as ev
from functions.domain.offers import Offer
from functions.domain.triggers import triggers_for
from functions.handlers import deps
from tests.integration.helpers import archived_decisions

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # the local_stack fixture's clock
REPO = Path(__file__).resolve().parents[2]


# ---- the world and what came out of it -------------------------------------------------

def _offer() -> Offer:
    return Offer(offer_id="coffee-10", title="10% off coffee", categories=["coffee"], value=4,
                 channels=[ev.Channel.EMAIL])


def _member(member_id: str, prefix: str) -> list[ev.MemberEvent]:
    joined = NOW - timedelta(days=40)
    return [
        ev.MemberEnrolled(event_id=f"{member_id}-enrol", member_id=member_id, occurred_at=joined,
                          time_zone="Europe/Paris", email=_address(prefix, member_id), first_name="Ann"),
        ev.ConsentChanged(event_id=f"{member_id}-consent", member_id=member_id, occurred_at=joined,
                          channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
    ]


def _address(prefix: str, member_id: str) -> str:
    """Member ids are the same in every test (so are their decisions, which hash them);
    addresses carry the test's prefix, since moto's SES outbox is shared."""
    return f"{prefix}-{member_id}@example.com"


def _purchase(member_id: str) -> ev.PurchaseCompleted:
    return ev.PurchaseCompleted(event_id=f"{member_id}-buy", member_id=member_id, occurred_at=NOW,
                                order_id=f"{member_id}-o", amount=12.0,
                                line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=12)])


def _publish(stack: Any, events: list[ev.MemberEvent]) -> None:
    for start in range(0, len(events), 10):
        publish(stack.client("events"), stack.names.bus, events[start : start + 10], "test")


def _members_ready(stack: Any, runner: LocalRunner, members: list[str]) -> None:
    # every member is treated, and sent to now rather than at their hour: sends to count
    runner.update_settings("decide", holdout_share=0.0, send_window_hours=1)
    deps.use(runner._deps["decide"])
    replace_catalog([_offer()])
    _publish(stack, [e for m in members for e in _member(m, stack.names.prefix)])
    runner.pump()


def emails_by_recipient(stack: Any) -> Counter:
    """Emails SES accepted, per recipient (moto lists a raw message's recipient once for the
    Destination parameter and once for the To header: each message counts once)."""
    data = requests.get(f"{stack.endpoint}/moto-api/data.json", timeout=10).json()
    return Counter(d for m in data["ses"].get("RawMessage", []) for d in set(m.get("destinations", []))
                   if d.split("@")[0].startswith(f"{stack.names.prefix}-"))


def decisions_on(trigger_event_id: str) -> list[DecisionRecord]:
    return [d for d in DecisionRecord.scan() if d.trigger_event_id == trigger_event_id]


def claim_exists(decision_id: str) -> bool:
    try:
        LedgerRecord.get(f"claim#{decision_id}", "send")
        return True
    except DoesNotExist:
        return False


def expected_decisions(detail_type: str) -> int:
    return len(triggers_for(detail_type))


# ---- 1. a storm of duplicates ---------------------------------------------------------

class RedeliveringRunner(LocalRunner):
    """Delivers every batch twice at once (two concurrent invocations of the same records),
    and drops the first acknowledgment of every message so SQS redelivers it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._seen: set[str] = set()

    def _handler(self, fn: Any) -> Any:
        inner = super()._handler(fn)

        def twice_then_unacked(event: dict[str, Any], context: Any) -> Any:
            inner(event, context)
            response = inner(event, context) or {}
            first_time = [r["messageId"] for r in event["Records"] if r["messageId"] not in self._seen]
            self._seen.update(first_time)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} | set(first_time)
            return {"batchItemFailures": [{"itemIdentifier": i} for i in sorted(failed)]}

        return twice_then_unacked


def test_a_storm_of_duplicates_makes_one_decision_and_one_message_per_trigger(local_stack):
    # Given ready members
    members = [f"m{i}" for i in range(4)]
    runner = RedeliveringRunner(local_stack)
    _members_ready(local_stack, runner, members)
    assert sum(emails_by_recipient(local_stack).values()) == 0  # nothing to say yet
    # When each purchase is published four times, its SQS message copied onto every queue
    # it passes through, every batch invoked twice and every message delivered twice
    purchases = [_purchase(m) for m in members]
    _publish(local_stack, [p for p in purchases for _ in range(4)])
    sqs = local_stack.client("sqs")
    for purchase in purchases:
        body = json.dumps({"version": "0", "id": f"copy-{purchase.event_id}", "source": "test",
                           "detail-type": "purchase.completed", "time": NOW.isoformat(),
                           "region": "eu-west-1", "resources": [], "account": "123456789012",
                           "detail": ev.to_detail(purchase)})
        for queue in ("ingest", "decide"):
            sqs.send_message(QueueUrl=local_stack.queue_urls[queue], MessageBody=body)
    runner.pump()
    clock.set_clock(lambda: NOW + timedelta(days=3))  # sends planned for later fall due
    runner.pump()
    deps.use(runner._deps["decide"])
    # Then each purchase made exactly its decisions, once
    decisions = list(DecisionRecord.scan())
    archived = archived_decisions(local_stack)
    for purchase in purchases:
        made = [d for d in archived if d["cause_id"] == purchase.event_id]
        assert len(made) == expected_decisions("purchase.completed")
        # stored once each: exactly the decisions that send or would have
        assert sorted(d.decision_id for d in decisions_on(purchase.event_id)) == sorted(
            d["decision_id"] for d in made if d["intended"]["kind"] == "send")
    # and every decision reached its end, and each sent decision is one email: no more
    assert {d.status for d in decisions} <= {"sent", "suppressed", "holdout", "no_send"}
    sent = Counter(_address(local_stack.names.prefix, d.member_id) for d in decisions if d.status == "sent")
    emails = emails_by_recipient(local_stack)
    assert emails == sent
    assert sum(emails.values()) >= len(members) // 2  # not vacuous: most members got their email
    # and the duplicates were really delivered (the storm happened)
    assert runner.stats.records["dispatch"] >= 4 * len(members)
    assert runner.stats.records["ingest"] >= 8 * len(members)
    # and the profile counted each purchase once
    deps.use(runner._deps["ingest"])
    for member in members:
        record = MemberRecord.get(member)
        applied = applied_events(record).ids
        assert f"{member}-buy" in applied and len(applied) == len(set(applied)) == record.version


# ---- 2. crashes between steps ---------------------------------------------------------

class CrashingRunner(LocalRunner):
    """A handler that hits an armed crash point dies mid-invocation: nothing of its batch is
    acknowledged and, once the visibility timeout passes, SQS delivers the batch again."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.crashes: list[str] = []
        self._in_flight: list[tuple[str, str]] = []

    def _handler(self, fn: Any) -> Any:
        inner = super()._handler(fn)

        def mortal(event: dict[str, Any], context: Any) -> Any:
            try:
                return inner(event, context)
            except faults.InjectedCrash as crash:
                self.crashes.append(crash.point)
                url = self.stack.queue_urls[fn.queue]
                self._in_flight += [(url, r["receiptHandle"]) for r in event["Records"]]
                raise

        return mortal

    def pump_through_crashes(self) -> None:
        for _ in range(20):
            try:
                self.pump()
                return
            except faults.InjectedCrash:
                # the visibility timeout expires: the unacknowledged messages come back
                for url, handle in self._in_flight:
                    self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
                self._in_flight.clear()
        raise AssertionError("the stack did not drain")


@pytest.fixture
def disarmed():
    yield
    faults.disarm()


# point -> emails the member gets in the end, and the decision's final status
CRASHES = {
    "ingest.after_profile_write": (1, "sent"),
    "decide.after_record_decision": (1, "sent"),
    "dispatch.after_claim": (0, "unconfirmed"),  # the remaining window: lost, not doubled
    "dispatch.after_send": (1, "unconfirmed"),   # went out; the claim stops a second copy
    "dispatch.before_ack": (1, "sent"),
}


@pytest.mark.parametrize("point", sorted(CRASHES))
def test_a_handler_killed_at_any_step_loses_no_trigger_and_never_sends_twice(local_stack, disarmed, point):
    # Given a ready member, and a crash armed at one step of one handler
    member = "m-crash"
    runner = CrashingRunner(local_stack)
    _members_ready(local_stack, runner, [member])
    faults.arm(point)
    # When their purchase goes through, the handler dies there once, and SQS redelivers
    purchase = _purchase(member)
    _publish(local_stack, [purchase])
    runner.pump_through_crashes()
    clock.set_clock(lambda: NOW + timedelta(days=3))  # a send planned for later falls due
    runner.pump_through_crashes()
    # Then it did crash there, and the trigger was not lost: its decision exists, once
    deps.use(runner._deps["dispatch"])
    (decision,) = decisions_on(purchase.event_id)
    assert runner.crashes == [point], decision.status
    emails, status = CRASHES[point]
    # and the member got at most one email: exactly one, except in the documented window
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == emails
    assert decision.status == status
    assert claim_exists(decision.decision_id)
    # and nothing was dead-lettered
    assert all(not messages for messages in runner.dead_letters().values())
    # and once more through the whole stack changes nothing
    _publish(local_stack, [purchase])
    runner.pump()
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == emails


CHILD = """
import sys
from datetime import datetime
from fidelio.local.runner import LocalRunner
from fidelio.local.stack import LocalStack
from functions import clock
stack = LocalStack.from_json(sys.argv[1])
clock.set_clock(lambda: datetime.fromisoformat(sys.argv[2]))
LocalRunner(stack).pump()
print("drained without crashing")
"""


def test_a_dispatcher_process_killed_after_sending_never_sends_again(local_stack):
    # Given a decision waiting on the dispatch queue, whose visibility timeout is 2 s
    member = "m-kill"
    runner = LocalRunner(local_stack)
    _members_ready(local_stack, runner, [member])
    _publish(local_stack, [_purchase(member)])
    for name in ("ingest", "decide"):
        while runner.poll_once(next(f for f in runner._functions if f.logical_name == name)):
            pass
    sqs = local_stack.client("sqs")
    dispatch_url = local_stack.queue_urls["dispatch"]
    sqs.set_queue_attributes(QueueUrl=dispatch_url, Attributes={"VisibilityTimeout": "2"})
    # When a separate process runs dispatch and is killed (os._exit) right after SES accepted
    env = {**os.environ, faults.ENV_POINTS: "dispatch.after_send", faults.ENV_MODE: "exit",
           "PYTHONPATH": str(REPO)}
    later = NOW + timedelta(days=3)  # whenever the send was planned, it is due then
    child = subprocess.run([sys.executable, "-c", CHILD, local_stack.to_json(), later.isoformat()],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    # Then it died there, with the email out and nothing recorded after the claim
    assert child.returncode == faults.EXIT_CODE, child.stderr[-2000:]
    assert "drained" not in child.stdout
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 1
    # When the visibility timeout passes and this process takes the redelivered message
    time.sleep(2.2)
    clock.set_clock(lambda: later)
    runner.pump()
    # Then the claim held: still one email, and the decision says its send is unconfirmed
    deps.use(runner._deps["dispatch"])
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 1
    (decision,) = decisions_on(f"{member}-buy")
    assert decision.status == "unconfirmed"
    assert runner.stats.records["dispatch"] >= 1  # the redelivery did arrive


# ---- 3. throttling, outages and refusals ---------------------------------------------

class FlakySes:
    """SES answering with the given errors first, then the real (moto) SES."""

    def __init__(self, real: Any, errors: list[tuple[str, int]]):
        self.real = real
        self.errors = list(errors)
        self.calls = 0

    def send_email(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            code, status = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": f"{code} (injected)"},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail")
        return self.real.send_email(**kwargs)


def _flaky(runner: LocalRunner, errors: list[tuple[str, int]]) -> FlakySes:
    clients = runner._deps["dispatch"].clients
    flaky = FlakySes(clients.ses, errors)
    clients._cache["sesv2"] = flaky
    return flaky


def test_a_throttled_send_is_retried_with_backoff_and_goes_out_once(local_stack):
    member = "m-slow"
    runner = LocalRunner(local_stack)
    _members_ready(local_stack, runner, [member])
    flaky = _flaky(runner, [("Throttling", 400), ("ServiceUnavailable", 503)])
    # When SES throttles, then fails, then accepts
    _publish(local_stack, [_purchase(member)])
    runner.pump()
    # Then the send was retried inside the invocation and went out once
    assert flaky.calls == 3
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 1
    assert runner.stats.failed_records["dispatch"] == 0


def test_an_outage_is_left_to_sqs_then_the_dlq_and_a_redrive_sends_once(local_stack):
    member = "m-outage"
    runner = LocalRunner(local_stack)
    _members_ready(local_stack, runner, [member])
    flaky = _flaky(runner, [("InternalFailure", 500)] * 100)
    # When SES fails every attempt of every delivery
    _publish(local_stack, [_purchase(member)])
    runner.pump()
    # Then each delivery made its bounded attempts, the record failed back to SQS, and after
    # max_receive_count deliveries SQS moved it to the DLQ; the claim was given back
    deliveries = runner.stats.failed_records["dispatch"]
    assert deliveries == 3
    assert flaky.calls == 4 * deliveries
    deps.use(runner._deps["dispatch"])
    (decision,) = decisions_on(f"{member}-buy")
    assert decision.status == "failed" and not claim_exists(decision.decision_id)
    assert sum(dead_letters.list_dead_letters(local_stack)["dispatch"].values()) == 1
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 0
    # When SES recovers and the operator redrives the DLQ (twice, by mistake)
    flaky.errors.clear()
    assert dead_letters.redrive(local_stack, "dispatch") == 1
    runner.pump()
    dead_letters.redrive(local_stack, "dispatch")
    runner.pump()
    # Then the member got the email once
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 1
    assert DecisionRecord.get(decision.decision_id).status == "sent"


def test_a_refused_send_goes_to_the_dlq_with_its_reason_and_can_be_replayed_after_a_fix(local_stack):
    member = "m-refused"
    runner = LocalRunner(local_stack)
    _members_ready(local_stack, runner, [member])
    flaky = _flaky(runner, [("MailFromDomainNotVerifiedException", 400)])
    # When SES refuses the message
    _publish(local_stack, [_purchase(member)])
    runner.pump()
    # Then it was tried once, dead-lettered at once with a reason, and its claim given back
    assert flaky.calls == 1
    (shown,) = dead_letters.show_dead_letters(local_stack, "dispatch")
    assert shown["reason"].startswith("SES refused the email: MailFromDomainNotVerifiedException")
    assert shown["source"] == "dispatch"
    deps.use(runner._deps["dispatch"])
    (decision,) = decisions_on(f"{member}-buy")
    assert decision.status == "failed" and not claim_exists(decision.decision_id)
    # When the domain is verified and the DLQ redriven
    assert dead_letters.redrive(local_stack, "dispatch") == 1
    runner.pump()
    # Then the email went out once
    assert emails_by_recipient(local_stack)[_address(local_stack.names.prefix, member)] == 1
    assert DecisionRecord.get(decision.decision_id).status == "sent"
