"""Load test of Fidelio's delivery guarantees on the local stand-in: N member events published
concurrently, with exact duplicates and poison events mixed in, carried through every handler
until the queues drain; then the accounting identity is checked and the sends counted.

    python benchmarks/reliability.py --events 2000 --duplicate-share 0.2 --poison-share 0.05 \\
        --json benchmarks/results/reliability.json

Accounting, in unique events (an exact duplicate is the same event again, not a new one):
  published       entries PutEvents accepted (duplicates included)
  unique_events   published - duplicates_injected (valid events + poison events)
  processed       unique valid events found applied to their member's profile
  dead_lettered   unique poison events found on a DLQ, each with a reason
  lost            unique_events - processed - dead_lettered (must be 0)
  decisions       decision records (one per trigger event and trigger, whatever the copies)
  sends           emails SES accepted for this run's members
  duplicate_sends emails beyond one per sending decision (must be 0)
Member events per member: enrolled + consent (published first), then a purchase (the
trigger). Duplicates are copies of random valid events, published again among the rest;
poison events break the contract in one of several ways (unknown schema version, wrong
type, unknown time zone, negative amount, oversized detail, missing member id).
Stops by itself: bounded by --events and by --timeout (seconds). Loopback only: the moto
server listens on 127.0.0.1. events/s is bounded by moto (see benchmarks/through_stack.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
warnings.filterwarnings("ignore", message="No application metrics to publish")

from _results import write_result  # noqa: E402

NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # afternoon in Europe: most sends go at once
ZONES = ["Europe/Paris", "Europe/London", "Europe/Berlin"]
SOURCE = "bench.reliability"
POISON_KINDS = ("unknown_version", "wrong_type", "unknown_time_zone", "negative_amount", "oversized",
                "missing_member_id")


class Timeout(RuntimeError):
    pass


class BadArguments(ValueError):
    pass


def check_arguments(args: argparse.Namespace) -> None:
    if args.events < 10:
        raise BadArguments(f"--events {args.events}: give at least 10 (e.g. --events 2000)")
    if not 0 <= args.duplicate_share < 1:
        raise BadArguments(f"--duplicate-share {args.duplicate_share}: give a share in [0, 1), e.g. 0.2")
    if not 0 <= args.poison_share < 1 or args.duplicate_share + args.poison_share >= 0.9:
        raise BadArguments(f"--poison-share {args.poison_share}: give a share in [0, 1) that leaves, with "
                           f"--duplicate-share, at least 10% valid events (e.g. 0.05)")
    if args.threads < 1 or args.timeout <= 0:
        raise BadArguments("--threads must be >= 1 and --timeout > 0 (seconds)")


# ---- the events -----------------------------------------------------------------------

def _detail(event_id: str, member: str, occurred: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "member_id": member, "occurred_at": occurred.isoformat(),
            "schema_version": 1, **fields}


def member_events(index: int) -> tuple[list[tuple[str, dict]], tuple[str, dict]]:
    """(setup events, trigger) of one member, as (detail-type, detail)."""
    m = f"rel-{index:05d}"
    joined = NOW - timedelta(days=60)
    setup = [
        ("member.enrolled", _detail(f"{m}-e", m, joined, time_zone=ZONES[index % len(ZONES)],
                                    email=f"{m}@example.com", first_name=f"M{index}")),
        ("consent.changed", _detail(f"{m}-c", m, joined, channel="email", topic="offers", granted=True,
                                    source="signup")),
    ]
    category = ["coffee", "wine", "bakery"][index % 3]
    trigger = ("purchase.completed", _detail(f"{m}-p", m, NOW - timedelta(minutes=5), order_id=f"{m}-o",
                                             amount=20.0 + index % 30, line_items=[
                                                 {"product_id": "sku", "category": category, "unit_price": 20}]))
    return setup, trigger


def poison_event(index: int, rng: random.Random) -> tuple[str, dict]:
    kind = POISON_KINDS[index % len(POISON_KINDS)]
    event_id, member = f"poison-{index:05d}", f"rel-poison-{index:05d}"
    purchase = _detail(event_id, member, NOW, order_id="o", amount=10.0)
    if kind == "unknown_version":
        return "purchase.completed", {**purchase, "schema_version": rng.choice([2, 3, 99])}
    if kind == "wrong_type":
        return "purchase.completed", {**purchase, "amount": "ten euros"}
    if kind == "unknown_time_zone":
        return "member.enrolled", _detail(event_id, member, NOW, time_zone="Mars/Olympus")
    if kind == "negative_amount":
        return "purchase.completed", {**purchase, "amount": -5}
    if kind == "oversized":
        return "member.enrolled", _detail(event_id, member, NOW, time_zone="UTC", first_name="x" * 100_000)
    return "points.earned", {k: v for k, v in _detail(event_id, member, NOW, points=10).items() if k != "member_id"}


def plan(events: int, duplicate_share: float, poison_share: float, seed: int
         ) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]], dict[str, Any]]:
    """(phase 1 entries, phase 2 entries, what was injected). Phase 1 holds every member's
    setup events; phase 2 the triggers, duplicates and poison, shuffled together."""
    rng = random.Random(seed)
    duplicates = round(events * duplicate_share)
    poison = round(events * poison_share)
    valid = events - duplicates - poison
    members = max(1, valid // 3)
    setup: list[tuple[str, dict]] = []
    triggers: list[tuple[str, dict]] = []
    for i in range(members):
        s, t = member_events(i)
        setup += s
        triggers.append(t)
    extra_setup = valid - 3 * members  # round up to exactly `valid` with points events
    for j in range(extra_setup):
        m = f"rel-{j % members:05d}"
        setup.append(("points.earned", _detail(f"{m}-x{j}", m, NOW - timedelta(days=1), points=10)))
    originals = setup + triggers
    copies = [rng.choice(originals) for _ in range(duplicates)]
    poisoned = [poison_event(i, rng) for i in range(poison)]
    phase2 = triggers + copies + poisoned
    rng.shuffle(phase2)
    injected = {"members": members, "valid_events": len(originals), "duplicates_injected": duplicates,
                "poison_injected": poison, "trigger_ids": [t[1]["event_id"] for t in triggers],
                "valid_ids": {d["event_id"]: d["member_id"] for _, d in originals},
                "poison_ids": {d["event_id"] for _, d in poisoned}}
    return setup, phase2, injected


# ---- running it -----------------------------------------------------------------------

class Publishers:
    """`threads` threads putting `entries` on the bus, 10 per PutEvents call (its limit)."""

    def __init__(self, stack: Any, entries: list[tuple[str, dict]], threads: int, deadline: float):
        self.stack, self.deadline = stack, deadline
        batches = [entries[i : i + 10] for i in range(0, len(entries), 10)]
        self._accepted = [0] * threads
        self._errors: list[BaseException] = []
        self._workers = [threading.Thread(target=self._publish, args=(n, batches[n::threads]), daemon=True)
                         for n in range(threads)]
        for worker in self._workers:
            worker.start()

    def _publish(self, n: int, batches: list[list[tuple[str, dict]]]) -> None:
        client = self.stack.client("events")
        try:
            for batch in batches:
                if time.monotonic() > self.deadline:
                    raise Timeout("the --timeout passed while publishing")
                response = client.put_events(Entries=[
                    {"EventBusName": self.stack.names.bus, "Source": SOURCE, "DetailType": detail_type,
                     "Detail": json.dumps(detail)} for detail_type, detail in batch])
                self._accepted[n] += len(batch) - response["FailedEntryCount"]
        except BaseException as error:  # handed to the main thread by accepted()
            self._errors.append(error)

    def busy(self) -> bool:
        return any(worker.is_alive() for worker in self._workers)

    def accepted(self) -> int:
        for worker in self._workers:
            worker.join()
        if self._errors:
            raise self._errors[0]
        return sum(self._accepted)


def pump_while(runner: Any, busy: Any, deadline: float) -> None:
    """Drain the queues while `busy()` (publishers running), then until empty."""
    while True:
        if time.monotonic() > deadline:
            raise Timeout("the --timeout passed before the stack drained")
        still_busy = busy()
        seen = 0
        for fn in runner._functions:
            seen += runner.poll_once(fn)
        seen += runner.fire_due_schedules()
        if not still_busy and seen == 0:
            return
        if seen == 0:
            time.sleep(0.05)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from fidelio.local.runner import LocalRunner
    from fidelio.local.server import local_aws
    from functions import clock
    from functions.dal.offers import replace_catalog
    from functions.dal.tables import DecisionRecord, MemberRecord
    from functions.domain.offers import Offer
    from functions.handlers import deps

    started_all = time.monotonic()
    deadline = started_all + args.timeout
    setup, phase2, injected = plan(args.events, args.duplicate_share, args.poison_share, args.seed)
    with local_aws() as stack:
        runner = LocalRunner(stack)
        deps.use(runner._deps["decide"])
        replace_catalog([
            Offer(offer_id="coffee-10", title="Coffee", categories=["coffee"], value=5, channels=["email"]),
            Offer(offer_id="wine-5", title="Wine", categories=["wine"], value=8, channels=["email"]),
            Offer(offer_id="bread-3", title="Bread", categories=["bakery"], value=3, channels=["email"]),
        ])
        clock.set_clock(lambda: NOW)
        try:
            started = time.perf_counter()
            published = 0
            for entries in (setup, phase2):
                publishers = Publishers(stack, entries, args.threads, deadline)
                pump_while(runner, publishers.busy, deadline)
                published += publishers.accepted()
            drained_s = time.perf_counter() - started
            # sends planned for later fall due
            clock.set_clock(lambda: NOW + timedelta(days=3))
            pump_while(runner, lambda: False, deadline)
            elapsed_s = time.perf_counter() - started
            counted = count_outcomes(stack, runner, injected, DecisionRecord, MemberRecord, deps)
        finally:
            clock.set_clock(None)
            deps.reset()
    unique = published - injected["duplicates_injected"]
    lost = unique - counted["processed"] - counted["dead_lettered"]
    return {
        "machine": {"platform": platform.platform(), "nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
                    "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/reliability.py", *sys.argv[1:]]),
        "seed": args.seed, "threads": args.threads,
        "published": published, "duplicates_injected": injected["duplicates_injected"],
        "poison_injected": injected["poison_injected"], "unique_events": unique,
        "processed": counted["processed"], "dead_lettered": counted["dead_lettered"], "lost": lost,
        "identity_holds": lost == 0 and counted["processed"] + counted["dead_lettered"] == unique,
        "members": injected["members"], "decisions": counted["decisions"],
        "triggers_decided": counted["triggers_decided"], "triggers": len(injected["trigger_ids"]),
        "decisions_by_status": counted["by_status"],
        "sends": counted["sends"], "duplicate_sends": counted["duplicate_sends"],
        "dead_letters_without_reason": counted["without_reason"],
        "unexpected_dead_letters": counted["unexpected_dead_letters"],
        "records_delivered": dict(runner.stats.records), "records_retried": dict(runner.stats.failed_records),
        "drain_s": round(drained_s, 2), "total_s": round(elapsed_s, 2),
        "events_per_s": round(published / drained_s, 1),
        "note": "moto in a separate process on loopback; every handler in this process; informational only",
    }


def count_outcomes(stack: Any, runner: Any, injected: dict[str, Any], DecisionRecord: Any, MemberRecord: Any,
                   deps: Any) -> dict[str, Any]:
    import requests

    deps.use(runner._deps["ingest"])
    valid_ids: dict[str, str] = injected["valid_ids"]
    applied: set[str] = set()
    from functions.dal.members import applied_events

    for record in MemberRecord.scan(attributes_to_get=["member_id", "recent_events", "events_floor", "updated_at"]):
        applied.update(e for e in applied_events(record).ids if e in valid_ids)
    # dead letters, on every DLQ (read without deleting: a zero visibility timeout each time)
    sqs = stack.client("sqs")
    dead_poison: set[str] = set()
    unexpected: list[str] = []
    without_reason = 0
    for queue, url in stack.dlq_urls.items():
        seen_ids: set[str] = set()
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            for message in got:
                if message["MessageId"] in seen_ids:
                    continue
                seen_ids.add(message["MessageId"])
                if not message.get("MessageAttributes", {}).get("reason", {}).get("StringValue"):
                    without_reason += 1
                try:
                    event_id = json.loads(message["Body"])["detail"]["event_id"]
                except (ValueError, KeyError, TypeError):
                    event_id = None
                if event_id in injected["poison_ids"]:
                    dead_poison.add(event_id)
                else:
                    unexpected.append(f"{queue}: {message['Body'][:120]}")
            # hide what was read so the next receive returns the rest; gone when the run ends
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 600}
                for i, m in enumerate(got)])
    decisions = [d for d in DecisionRecord.scan() if d.member_id.startswith("rel-")]
    triggers = set(injected["trigger_ids"])
    by_status = Counter(d.status for d in decisions)
    # sends: emails SES accepted (moto lists a raw message's recipient twice: count messages)
    data = requests.get(f"{stack.endpoint}/moto-api/data.json", timeout=30).json()
    emails = Counter(next(iter({d for d in m.get("destinations", []) if d.startswith("rel-")}), None)
                     for m in data["ses"].get("RawMessage", []))
    emails.pop(None, None)
    sending = Counter(f"{d.member_id}@example.com" for d in decisions if d.status in {"sent", "unconfirmed"})
    duplicate_sends = sum(max(0, n - sending[address]) for address, n in emails.items())
    return {"processed": len(applied), "dead_lettered": len(dead_poison), "decisions": len(decisions),
            "triggers_decided": len({d.trigger_event_id for d in decisions} & triggers),
            "by_status": dict(sorted(by_status.items())), "sends": sum(emails.values()),
            "duplicate_sends": duplicate_sends, "without_reason": without_reason,
            "unexpected_dead_letters": unexpected[:20]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--events", type=int, default=2000, help="entries published, duplicates and poison included")
    parser.add_argument("--duplicate-share", type=float, default=0.2, help="share of exact duplicates")
    parser.add_argument("--poison-share", type=float, default=0.05, help="share of contract-breaking events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=4, help="concurrent publishers")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before giving up")
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        result = run(args)
    except BadArguments as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Timeout as error:
        print(f"error: {error} ({args.timeout:.0f} s); try fewer --events or a larger --timeout", file=sys.stderr)
        return 1
    except RuntimeError as error:
        print(f"error: cannot run the local stand-in: {error}", file=sys.stderr)
        return 1
    rows = [("published", result["published"]), ("duplicates injected", result["duplicates_injected"]),
            ("poison injected", result["poison_injected"]), ("unique events", result["unique_events"]),
            ("processed", result["processed"]), ("dead-lettered", result["dead_lettered"]),
            ("lost", result["lost"]), ("decisions", result["decisions"]),
            ("triggers decided", f"{result['triggers_decided']} / {result['triggers']}"),
            ("sends", result["sends"]), ("duplicate sends", result["duplicate_sends"]),
            ("events/s", result["events_per_s"])]
    for name, value in rows:
        print(f"{name:<22}{value:>14}")
    identity = (f"{result['unique_events']} unique = {result['processed']} processed + "
                f"{result['dead_lettered']} dead-lettered + {result['lost']} lost")
    print(f"accounting identity: {identity} -> {'holds' if result['identity_holds'] else 'BROKEN'}")
    print(f"decisions by status: {result['decisions_by_status']}; drained in {result['drain_s']} s")
    write_result(args.json, result)
    ok = result["identity_holds"] and result["duplicate_sends"] == 0 and not result["unexpected_dead_letters"]
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
