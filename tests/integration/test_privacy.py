"""GDPR access and erasure on moto: a member seeded in every store (profile, consent history,
decisions with outcomes, send claims, a pending scheduled send, the decision archive, an event
archive, a Parquet training export, an idempotency record, model cards), exported, erased, and
then searched for byte by byte in every table, every S3 object version and the scheduler."""

from __future__ import annotations

import io
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pynamodb.exceptions import DoesNotExist

from fidelio import cli, lifecycle
from fidelio.local.runner import LocalRunner
from functions.dal import decisions as decision_store
from functions.dal.bus import publish
from functions.dal.offers import replace_catalog
from functions.dal.privacy import erasure_receipt, load_erasure_list, member_decisions
from functions.dal.schedules import schedule_dispatch
from functions.dal.tables import DecisionRecord, MemberRecord
from functions.domain import events as ev
from functions.domain.decision import ChosenAction
from functions.domain.offers import Offer
from functions.domain.privacy import pseudonym, training_members_entry
from functions.handlers import deps
from tests.integration.helpers import raw_emails_to

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
GONE = {"member_id": "m-erase-7Q", "email": "zebulon.q@example.org", "phone": "+33612345678",
        "first_name": "Zebulon"}
KEPT = {"member_id": "m-keep-3X", "email": "kept.member@example.net", "phone": "+33698765432",
        "first_name": "Philippa"}


def _member_events(who: dict[str, str], suffix: str = "") -> list[ev.MemberEvent]:
    m = who["member_id"]
    return [
        ev.MemberEnrolled(event_id=f"{m}-enrol{suffix}", member_id=m, occurred_at=NOW - timedelta(days=40),
                          time_zone="Europe/Paris", email=who["email"], phone=who["phone"],
                          first_name=who["first_name"]),
        ev.ConsentChanged(event_id=f"{m}-consent{suffix}", member_id=m, occurred_at=NOW - timedelta(days=40),
                          channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
        ev.PurchaseCompleted(event_id=f"{m}-buy{suffix}", member_id=m, occurred_at=NOW, order_id=f"o-{m}{suffix}",
                             amount=12.0, line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=12)]),
    ]


def _object_bytes(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every version of every object in the bucket: key#version -> bytes."""
    found = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            found[f"{version['Key']}#{version['VersionId']}"] = body
    return found


def _readable(value: Any) -> Any:
    """A scanned attribute with its binary values opened: the member profile is stored
    zlib-compressed, and a byte search must see what is inside it."""
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    if isinstance(value, bytes):
        try:
            return zlib.decompress(value).decode("utf-8")
        except zlib.error:
            return value.decode("latin-1")
    return value


def _table_bytes(stack: Any) -> dict[str, bytes]:
    """Every item of every table of this stack, as raw JSON (compressed attributes opened)."""
    dynamodb = stack.client("dynamodb")
    found = {}
    tables = [t for page in dynamodb.get_paginator("list_tables").paginate() for t in page["TableNames"]]
    for table in tables:  # (the moto server holds every test's stacks: more than one page)
        if not table.startswith(f"{stack.names.prefix}-"):
            continue
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for number, item in enumerate(page.get("Items", [])):
                found[f"{table}/{len(found)}-{number}"] = json.dumps(_readable(item)).encode()
    return found


def _schedule_bytes(stack: Any) -> dict[str, bytes]:
    scheduler = stack.client("scheduler")
    group = stack.names.schedule_group
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group).get("Schedules", [])]
    return {n: json.dumps(scheduler.get_schedule(Name=n, GroupName=group), default=str).encode() for n in names}


def _where(needles: list[str], blobs: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(needle, where) for needle in needles for where, blob in blobs.items() if needle.encode() in blob]


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


@pytest.fixture
def seeded(local_stack, tmp_path, monkeypatch):
    """Two members who went through the stack (enrolment, consent, purchase → decision → email →
    outcome), plus what the rest of Fidelio writes about them elsewhere."""
    stack = local_stack
    s3 = stack.client("s3")
    s3.put_bucket_versioning(Bucket=stack.data_bucket, VersioningConfiguration={"Status": "Enabled"})
    runner = LocalRunner(stack)
    deps.use(runner._deps["decide"])
    settings = runner._deps["privacy"].settings
    salt = settings.pseudonym_salt
    replace_catalog([Offer(offer_id="coffee-10", title="10% off coffee", categories=["coffee"], value=4,
                           channels=[ev.Channel.EMAIL])])
    publish(stack.client("events"), stack.names.bus, _member_events(GONE) + _member_events(KEPT), "test")
    runner.pump()
    # Whatever the model chose for the purchase, one email offer per member goes through dispatch
    # (the real send path: consent re-check, claim, SES), so the test does not hang on model scores.
    sqs = stack.client("sqs")
    for who in (GONE, KEPT):
        (first, *_) = DecisionRecord.by_member.query(who["member_id"])
        found = decision_store.load_decision(first.decision_id)
        assert found is not None
        offer = ChosenAction(kind="send", offer_id="coffee-10", channel="email", topic="offers",
                             send_at=NOW.timestamp(), probability=0.2, expected_value=0.5)
        email = found[0].model_copy(update={
            "decision_id": f"d-email-{who['member_id']}", "cause_id": f"evt-email-{who['member_id']}",
            "action": offer, "intended": offer, "holdout": False, "reasons": ["because you bought coffee"]})
        decision_store.record_decision(email, 90)
        sqs.send_message(QueueUrl=stack.queue_urls["dispatch"], MessageBody=json.dumps({"decision_id": email.decision_id}))
    runner.pump()
    sent = {who["member_id"]: [d for d in member_decisions(who["member_id"]) if d.status == "sent"]
            for who in (GONE, KEPT)}
    assert all(len(v) == 1 for v in sent.values()), "each member got one email through the stack"
    for decisions in sent.values():
        decision_store.add_outcome(decisions[0].decision_id, "delivered")  # as feedback joins it
    # A send planned for tomorrow: a pending one-time schedule (decide's own code path)
    found = decision_store.load_decision(sent[GONE["member_id"]][0].decision_id)
    assert found is not None
    later = found[0].model_copy(update={
        "decision_id": "d-pending-for-tomorrow", "cause_id": "evt-tomorrow",
        "action": ChosenAction(**{**found[0].action.model_dump(), "send_at": (NOW + timedelta(days=1)).timestamp()})})
    decision_store.record_decision(later, 90)
    schedule_dispatch(stack.client("scheduler"), runner._deps["decide"].settings, later)
    # An event archive with both members' lines (one nested, one not JSON at all)
    s3.put_object(Bucket=stack.data_bucket, Key="events/date=2026-03-02/part-1.jsonl", Body="\n".join([
        json.dumps({"detail-type": "member.updated", "detail": {"member_id": KEPT["member_id"]}}),
        json.dumps({"detail-type": "member.updated", "detail": {"contact": {"email": GONE["email"]}}}),
        f"legacy line for {GONE['phone']}",
        json.dumps({"detail-type": "app.opened", "detail": {"member_id": KEPT["member_id"]}}),
    ]).encode())
    # A training export (pseudonymized, as fidelio/training_export.py writes it)
    s3.put_object(Bucket=stack.data_bucket, Key="training/decisions/date=2026-03-02/part-0.parquet", Body=_parquet([
        {"member": pseudonym(GONE["member_id"], salt), "decision_id": "d-1", "converted": True, "f_x": 1.0},
        {"member": pseudonym(KEPT["member_id"], salt), "decision_id": "d-2", "converted": False, "f_x": 2.0},
    ]))
    # Model cards in the registry: one trained on both members, one on the kept member only
    for version, members in (("v-saw-both", [GONE, KEPT]), ("v-kept-only", [KEPT])):
        card = {"name": "offers", "model_version": version, "feature_version": "2", "feature_names": [],
                "training_members": training_members_entry(pseudonym(m["member_id"], salt) for m in members)}
        s3.put_object(Bucket=stack.data_bucket, Key=f"models/offers/{version}/metadata.json",
                      Body=json.dumps(card).encode())
    # Idempotency records (Powertools layout: hashed keys, the saved result as data)
    dynamodb = stack.client("dynamodb")
    for who, key in ((GONE, "ingest#5d41402abc4b2a76"), (KEPT, "ingest#7d793037a0760186")):
        dynamodb.put_item(TableName=stack.names.table("idempotency"), Item={
            "id": {"S": key}, "expiration": {"N": "1772460000"}, "status": {"S": "COMPLETED"},
            "data": {"S": json.dumps({"member_id": who["member_id"]})}})
    state = tmp_path / "local.json"
    state.write_text(stack.to_json())
    monkeypatch.setattr(cli, "STATE_FILE", state)
    return stack, runner, sent


def _gone_needles(sent: dict[str, list[DecisionRecord]]) -> list[str]:
    return [*GONE.values(), sent[GONE["member_id"]][0].decision_id, "d-pending-for-tomorrow"]


def test_export_holds_the_member_from_every_store_and_nothing_of_others(seeded, tmp_path):
    out = tmp_path / "export.json"
    # When the member's data is exported with the CLI
    assert cli.main(["privacy", "export", GONE["member_id"], "--out", str(out)]) == 0
    export = json.loads(out.read_text())
    # Then every store is represented
    assert export["profile"]["email"] == GONE["email"] and export["profile"]["first_name"] == "Zebulon"
    assert export["profile"]["enrolled_at"].startswith("2026-01-21")  # ISO, not epoch seconds
    assert [c["granted"] for c in export["consent_history"]] == [True]
    statuses = sorted(d["status"] for d in export["decisions"])
    assert "sent" in statuses and "decided" in statuses
    assert all(d["decided_at"].startswith("2026-03-02") for d in export["decisions"])
    assert any(d["reasons"] for d in export["decisions"] if d["status"] == "sent")
    assert [m["channel"] for m in export["messages_sent"]] == ["email"]
    assert export["messages_sent"][0]["claimed_at"] is not None
    assert [o["outcome"] for o in export["outcomes"]] == ["delivered"]
    assert "d-pending-for-tomorrow" in [s["decision_id"] for s in export["scheduled_sends"]]
    assert all(s["expression"].startswith("at(") for s in export["scheduled_sends"])
    objects = {row["object"].split("/")[0] for row in export["archive_rows"]}
    assert objects == {"decisions", "events", "training"}
    # and nothing about the other member
    assert KEPT["member_id"] not in out.read_text() and KEPT["email"] not in out.read_text()


def test_an_export_request_on_the_bus_writes_the_export_to_s3_and_records_completion(seeded):
    stack, runner, _ = seeded
    # When the preference center publishes an export request
    request = ev.PrivacyRequested(event_id="req-export-1", member_id=GONE["member_id"], occurred_at=NOW,
                                  kind="export", source="preference_center")
    publish(stack.client("events"), stack.names.bus, [request], "fidelio.preferences")
    runner.pump()
    # Then the export is in the bucket under the member's pseudonym (never their id)
    s3 = stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.data_bucket, Prefix="privacy/exports/")["Contents"]]
    salt = runner._deps["privacy"].settings.pseudonym_salt
    assert keys == [f"privacy/exports/{pseudonym(GONE['member_id'], salt)}/req-export-1.json"]
    export = json.loads(s3.get_object(Bucket=stack.data_bucket, Key=keys[0])["Body"].read())
    assert export["profile"]["email"] == GONE["email"] and export["decisions"]
    # and the request is recorded as completed in the ledger, with nothing dead-lettered
    from functions.dal.privacy_requests import privacy_requests

    deps.use(runner._deps["privacy"])
    (recorded,) = privacy_requests(GONE["member_id"])
    assert recorded["status"] == "completed" and recorded["export_key"] == keys[0]
    assert runner.dead_letters()["privacy"] == []


def test_erasure_leaves_nothing_identifying_anywhere_and_keeps_other_members(seeded):
    stack, runner, sent = seeded
    s3 = stack.client("s3")
    kept_decisions = len(list(DecisionRecord.by_member.query(KEPT["member_id"])))
    gone_decisions = len(list(DecisionRecord.by_member.query(GONE["member_id"])))
    gone_ids = {d.decision_id for d in DecisionRecord.by_member.query(GONE["member_id"])}
    gone_schedules = len([name for name in _schedule_bytes(stack) if name in gone_ids])
    assert gone_schedules >= 1
    # Given the member also asked for an export earlier (it too must go)
    publish(stack.client("events"), stack.names.bus, [ev.PrivacyRequested(
        event_id="req-export-2", member_id=GONE["member_id"], occurred_at=NOW, kind="export", source="support")],
        "test")
    runner.pump()
    before = _where(_gone_needles(sent), {**_table_bytes(stack), **_object_bytes(s3, stack.data_bucket),
                                          **_schedule_bytes(stack)})
    assert {w.split("/")[0].split("#")[0] for _, w in before} >= {
        stack.names.table("members"), stack.names.table("decisions"), stack.names.table("ledger"),
        stack.names.table("idempotency"), "decisions", "events", "privacy", "d-pending-for-tomorrow"}
    # When the member is erased with the CLI
    assert cli.main(["privacy", "erase", GONE["member_id"], "--yes", "--reason", "support ticket 4711"]) == 0
    # Then their id, email, phone, name and decision ids appear in no table, object version or schedule
    blobs = {**_table_bytes(stack), **_object_bytes(s3, stack.data_bucket), **_schedule_bytes(stack)}
    assert _where(_gone_needles(sent), blobs) == []
    assert _where(sorted(gone_ids), blobs) == []  # every decision id of theirs, schedules included
    # nor does the pseudonym, except in the tombstone and the erasure list
    salt = runner._deps["privacy"].settings.pseudonym_salt
    gone_pseudonym = pseudonym(GONE["member_id"], salt)
    holders = sorted({w.split("#")[0].split("/")[0] for _, w in _where([gone_pseudonym], blobs)})
    assert holders == sorted([stack.names.table("ledger"), "privacy"])
    models = [w for _, w in _where([gone_pseudonym], blobs) if w.startswith("models/")]
    assert models == []
    # and the other member is intact everywhere
    assert MemberRecord.get(KEPT["member_id"]).profile["email"] == KEPT["email"]
    assert len(list(DecisionRecord.by_member.query(KEPT["member_id"]))) == kept_decisions
    kept_where = {w.split("/")[0] for _, w in _where([KEPT["member_id"]], blobs)}
    assert {"decisions", "events"} <= kept_where
    training = s3.get_object(Bucket=stack.data_bucket, Key="training/decisions/date=2026-03-02/part-0.parquet")
    rows = pq.read_table(io.BytesIO(training["Body"].read())).to_pylist()
    assert [r["member"] for r in rows] == [pseudonym(KEPT["member_id"], salt)]
    assert _where([KEPT["member_id"]], {k: v for k, v in blobs.items() if "idempotency" in k})
    # and the receipt names the model versions that were trained on the member
    deps.use(runner._deps["privacy"])
    receipt = erasure_receipt(GONE["member_id"], salt)
    assert receipt is not None
    assert "offers:v-saw-both" in receipt.models.trained_on
    assert "offers:v-kept-only" in receipt.models.not_trained_on
    assert receipt.removed["profile"] == 1 and receipt.removed["scheduled_sends"] == gone_schedules
    assert receipt.removed["decisions"] == gone_decisions >= 2 and receipt.removed["send_claims"] == 1
    assert receipt.removed["ledger_records"] == 2  # consent history + the export request
    assert receipt.removed["archive_rows"] >= 4  # decision archive, event archive (2), training export
    assert receipt.reason == "support ticket 4711"


def test_after_erasure_replayed_events_resurrect_nothing_and_send_nothing(seeded):
    stack, runner, _ = seeded
    emails_before = len(raw_emails_to(stack.endpoint, GONE["email"]))
    assert cli.main(["privacy", "erase", GONE["member_id"], "--yes"]) == 0
    # When the member's events are replayed (the bus archive) and new ones arrive with the same id
    events = _member_events(GONE) + _member_events(GONE, suffix="-again")
    publish(stack.client("events"), stack.names.bus, events, "test")
    runner.pump()
    # Then no profile, no decision and no message come back
    deps.use(runner._deps["decide"])
    with pytest.raises(DoesNotExist):
        MemberRecord.get(GONE["member_id"])
    assert list(DecisionRecord.by_member.query(GONE["member_id"])) == []
    assert len(raw_emails_to(stack.endpoint, GONE["email"])) == emails_before
    assert _where([GONE["member_id"], GONE["email"]], _table_bytes(stack)) == []
    # while the other member's events still go through
    publish(stack.client("events"), stack.names.bus, _member_events(KEPT, suffix="-again")[2:], "test")
    runner.pump()
    assert len(list(DecisionRecord.by_member.query(KEPT["member_id"]))) >= 2


def test_the_next_training_excludes_erased_members(seeded, tmp_path, monkeypatch):
    stack, runner, _ = seeded
    assert cli.main(["privacy", "erase", GONE["member_id"], "--yes"]) == 0
    settings = runner._deps["privacy"].settings
    s3 = stack.client("s3")
    # The erasure list holds the member's pseudonym only
    erased = load_erasure_list(s3, stack.data_bucket, settings.pseudonym_salt)
    assert erased.excludes(GONE["member_id"]) and not erased.excludes(KEPT["member_id"])
    # When the lifecycle trains from the archive, the export it runs is told to leave them out
    from fidelio import training_export

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def export_spy(s3_client, bucket, start, end, salt, exclude_ids):
        seen["exclude"] = set(exclude_ids)
        raise Stop

    monkeypatch.setattr(training_export, "export_training_data", export_spy)
    life = lifecycle.Lifecycle(settings=settings, s3=s3, ssm=stack.client("ssm"), index_path=tmp_path / "index.json")
    with pytest.raises(Stop):
        lifecycle.train_from_archive(life, NOW.date(), NOW.date(), tmp_path)
    assert seen["exclude"] == {pseudonym(GONE["member_id"], settings.pseudonym_salt)}


def test_an_erasure_request_on_the_bus_erases_the_member(seeded):
    stack, runner, _ = seeded
    gone_decisions = len(list(DecisionRecord.by_member.query(GONE["member_id"])))
    # When the preference center publishes an erasure request
    publish(stack.client("events"), stack.names.bus, [ev.PrivacyRequested(
        event_id="req-erase-1", member_id=GONE["member_id"], occurred_at=NOW, kind="erase",
        source="preference_center")], "fidelio.preferences")
    runner.pump()
    # Then the member is gone and the receipt says how the request came
    deps.use(runner._deps["privacy"])
    with pytest.raises(DoesNotExist):
        MemberRecord.get(GONE["member_id"])
    receipt = erasure_receipt(GONE["member_id"], runner._deps["privacy"].settings.pseudonym_salt)
    assert receipt is not None and "preference_center" in receipt.reason
    assert receipt.removed["decisions"] == gone_decisions
    assert runner.dead_letters()["privacy"] == []


def test_erase_refuses_without_yes_when_nobody_can_confirm(seeded, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["privacy", "erase", GONE["member_id"]]) == 2
    assert "without --yes" in capsys.readouterr().err
    assert MemberRecord.get(GONE["member_id"]).profile["email"] == GONE["email"]  # untouched


def test_without_pyarrow_training_partitions_of_the_members_days_are_dropped_whole(seeded, monkeypatch):
    stack, runner, _ = seeded
    s3 = stack.client("s3")
    salt = runner._deps["privacy"].settings.pseudonym_salt
    other_day = "training/decisions/date=2026-02-01/part-0.parquet"
    s3.put_object(Bucket=stack.data_bucket, Key=other_day, Body=_parquet([
        {"member": pseudonym(KEPT["member_id"], salt), "decision_id": "d-3", "converted": False, "f_x": 3.0}]))
    # Given the erasure runs where pyarrow is not installed (the Lambda bundle)
    from functions.dal import privacy as privacy_store

    monkeypatch.setattr(privacy_store, "pyarrow_available", lambda: False)
    assert cli.main(["privacy", "erase", GONE["member_id"], "--yes"]) == 0
    # Then the export partition of the day the member was active is gone (every version),
    keys = {v["Key"] for v in s3.list_object_versions(Bucket=stack.data_bucket).get("Versions", [])}
    assert "training/decisions/date=2026-03-02/part-0.parquet" not in keys
    # and a day without them is untouched
    assert other_day in keys
    deps.use(runner._deps["privacy"])
    receipt = erasure_receipt(GONE["member_id"], salt)
    assert receipt is not None and receipt.removed["training_objects_dropped"] == 1


def test_erasures_are_reapplied_after_a_restore_brings_members_back(seeded):
    stack, runner, sent = seeded
    deps.use(runner._deps["privacy"])
    profile = MemberRecord.get(GONE["member_id"])
    decision = DecisionRecord.get(sent[GONE["member_id"]][0].decision_id)
    assert cli.main(["privacy", "erase", GONE["member_id"], "--yes"]) == 0
    # Given a point-in-time restore puts the member's profile and a decision back
    dynamodb = stack.client("dynamodb")
    for table, item in ((stack.names.table("members"), profile), (stack.names.table("decisions"), decision)):
        dynamodb.put_item(TableName=table, Item=item.serialize())
    assert MemberRecord.get(GONE["member_id"]).profile["email"] == GONE["email"]
    # When the erasures are re-applied
    assert cli.main(["privacy", "reapply"]) == 0
    # Then the member is gone again, and the kept member untouched
    assert _where(_gone_needles(sent), _table_bytes(stack)) == []
    assert MemberRecord.get(KEPT["member_id"]).profile["email"] == KEPT["email"]
    receipt = erasure_receipt(GONE["member_id"], runner._deps["privacy"].settings.pseudonym_salt)
    assert receipt is not None and receipt.runs == 2


def test_a_cli_export_without_a_member_says_what_is_missing(capsys):
    assert cli.main(["privacy", "export"]) == 2
    assert "needs a MEMBER id" in capsys.readouterr().err


def test_an_object_the_erasure_cannot_clean_dead_letters_the_request_with_its_reason(seeded):
    stack, runner, _ = seeded
    # Given an archive object in a format the erasure cannot rewrite, naming the member
    stack.client("s3").put_object(Bucket=stack.data_bucket, Key="events/date=2026-03-02/dump.bin",
                                  Body=b"\x00\x01" + GONE["email"].encode())
    # When an erasure request arrives
    publish(stack.client("events"), stack.names.bus, [ev.PrivacyRequested(
        event_id="req-erase-2", member_id=GONE["member_id"], occurred_at=NOW, kind="erase", source="support")],
        "test")
    runner.pump()
    # Then the request is on the DLQ at once, saying which object to deal with,
    (dead,) = runner.dead_letters()["privacy"]
    assert "dump.bin" in dead["MessageAttributes"]["reason"]["StringValue"]
    # and the member is suppressed meanwhile (their replayed events are dropped)
    publish(stack.client("events"), stack.names.bus, _member_events(GONE, suffix="-replay"), "test")
    runner.pump()
    deps.use(runner._deps["ingest"])
    with pytest.raises(DoesNotExist):
        MemberRecord.get(GONE["member_id"])
