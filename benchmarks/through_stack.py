"""End to end on the local stand-in (informational): member events published to the bus on a
moto server (its own process, loopback only), carried by the local runner through the real
handlers (ingest -> decide -> dispatch -> SES/SNS, then SES opens -> feedback -> ingest), with
each handler invocation timed.

    python benchmarks/through_stack.py --events 300 --json benchmarks/results/through_stack.json

events/s is bounded by moto (a single-threaded Python server doing DynamoDB, SQS and
EventBridge in memory) and by running every function in one process: it is not a figure for
AWS. The per-record handler times say where each function spends its time against moto;
compare them between runs of this script, not with Lambda durations.
Stops by itself: everything is bounded by --timeout (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
# Metrics are disabled here; Powertools still warns that an invocation published none.
warnings.filterwarnings("ignore", message="No application metrics to publish")

from _results import write_result  # noqa: E402

from fidelio.local.runner import LocalRunner  # noqa: E402
from fidelio.local.server import local_aws  # noqa: E402
from functions import clock  # noqa: E402
from functions.dal.bus import publish  # noqa: E402
from functions.dal.offers import replace_catalog  # noqa: E402
from functions.dal.tables import DecisionRecord  # noqa: E402
from functions.domain import events as ev  # noqa: E402
from functions.domain.offers import Offer  # noqa: E402
from functions.handlers import deps  # noqa: E402

NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # afternoon in Europe: most sends go at once
ZONES = ["Europe/Paris", "Europe/London", "Europe/Berlin"]
EVENTS_PER_MEMBER = 3  # enrolled, consent, purchase (the trigger)


class Timeout(RuntimeError):
    pass


class TimedRunner(LocalRunner):
    """The local runner with every handler invocation timed (wall and CPU of this process)."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.handler_s: dict[str, list[float]] = defaultdict(list)
        self.handler_cpu_s: dict[str, float] = defaultdict(float)
        self.handler_records: dict[str, int] = defaultdict(int)

    def _handler(self, fn: Any) -> Any:
        inner = super()._handler(fn)

        def timed(event: dict[str, Any], context: Any) -> Any:
            if time.monotonic() > self.deadline:
                raise Timeout("the --timeout passed before the stack drained")
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(event, context)
            finally:
                self.handler_s[fn.logical_name].append(time.perf_counter() - started)
                self.handler_cpu_s[fn.logical_name] += time.process_time() - cpu
                self.handler_records[fn.logical_name] += len(event.get("Records", []))

        return timed

    def poll_once(self, fn: Any) -> int:
        if time.monotonic() > self.deadline:
            raise Timeout("the --timeout passed before the stack drained")
        return super().poll_once(fn)


def member_events(members: int) -> list[ev.MemberEvent]:
    events: list[ev.MemberEvent] = []
    for i in range(members):
        m = f"bench-{i:05d}"
        enrolled = NOW - timedelta(days=60)
        events.append(ev.MemberEnrolled(event_id=f"{m}-e", member_id=m, occurred_at=enrolled,
                                        time_zone=ZONES[i % len(ZONES)], email=f"{m}@example.com",
                                        first_name=f"M{i}"))
        events.append(ev.ConsentChanged(event_id=f"{m}-c", member_id=m, occurred_at=enrolled, channel="email",
                                        topic="offers", granted=True, source="signup"))
        events.append(ev.PurchaseCompleted(
            event_id=f"{m}-p", member_id=m, occurred_at=NOW - timedelta(minutes=5), order_id=f"{m}-o",
            amount=20.0 + i % 30,
            line_items=[ev.LineItem(product_id="sku", category=["coffee", "wine", "bakery"][i % 3], unit_price=20)]))
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="member events published (3 per member)")
    parser.add_argument("--chunk", type=int, default=60, help="events published between pumps")
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    members = max(1, args.events // EVENTS_PER_MEMBER)
    started_all = time.monotonic()
    deadline = started_all + args.timeout
    try:
        with local_aws() as stack:
            setup_s = time.monotonic() - started_all
            runner = TimedRunner(stack, deadline=deadline)
            deps.use(runner._deps["decide"])
            replace_catalog([
                Offer(offer_id="coffee-10", title="Coffee", categories=["coffee"], value=5, channels=[ev.Channel.EMAIL]),
                Offer(offer_id="wine-5", title="Wine", categories=["wine"], value=8, channels=[ev.Channel.EMAIL]),
                Offer(offer_id="bread-3", title="Bread", categories=["bakery"], value=3, channels=[ev.Channel.EMAIL]),
            ])
            clock.set_clock(lambda: NOW)
            events = member_events(members)
            events_client = stack.client("events")
            # Phase 1: member events in, decisions and sends out (queues kept drained while publishing).
            started = time.perf_counter()
            publish_s = 0.0
            for start in range(0, len(events), args.chunk):
                t = time.perf_counter()
                publish(events_client, stack.names.bus, events[start : start + args.chunk], "bench")
                publish_s += time.perf_counter() - t
                runner.pump(fire_schedules=False)
            runner.pump()
            phase1_s = time.perf_counter() - started
            # Phase 1b: the sends the engine timed for later (the member's best hour) fire as the
            # day goes by, an hour of the clock at a time (without it nothing would be sent: the
            # engine schedules most sends for later in the day).
            started = time.perf_counter()
            for hour in range(1, 25):
                moment = NOW + timedelta(hours=hour)
                clock.set_clock(lambda moment=moment: moment)
                runner.pump()
            sends_s = time.perf_counter() - started
            deps.use(runner._deps["decide"])
            decisions = list(DecisionRecord.scan())
            sent = [d for d in decisions if d.status == "sent"]
            # Phase 2: SES reports an open for every email sent -> feedback -> bus -> ingest.
            sqs = stack.client("sqs")
            started = time.perf_counter()
            for d in sent:
                record = {"eventType": "Open", "mail": {"messageId": d.message_id, "tags": {
                    "decision_id": [d.decision_id], "member_id": [d.member_id]}},
                    "open": {"timestamp": (NOW + timedelta(hours=25)).isoformat().replace("+00:00", "Z")}}
                sqs.send_message(QueueUrl=stack.queue_urls["feedback"], MessageBody=json.dumps(record))
            runner.pump()
            phase2_s = time.perf_counter() - started
            dead = {q: len(m) for q, m in runner.dead_letters().items()}
    except Timeout as error:
        print(f"error: {error} ({args.timeout:.0f} s); try fewer --events", file=sys.stderr)
        return 1
    except RuntimeError as error:
        print(f"error: cannot run the local stand-in: {error}", file=sys.stderr)
        return 1
    finally:
        clock.set_clock(None)
        deps.reset()

    stats = runner.stats
    per_function: dict[str, Any] = {}
    for name in ("ingest", "decide", "dispatch", "feedback"):
        calls = runner.handler_s.get(name, [])
        records = runner.handler_records.get(name, 0)
        total = sum(calls)
        per_function[name] = {
            "invocations": len(calls), "records": records,
            "handler_ms_per_record": round(total / records * 1000, 2) if records else None,
            "handler_cpu_ms_per_record": round(runner.handler_cpu_s[name] / records * 1000, 2) if records else None,
            "handler_ms_per_invocation_p50": round(statistics.median(calls) * 1000, 1) if calls else None,
            "handler_ms_per_invocation_p99": round(float(np.percentile(calls, 99)) * 1000, 1) if calls else None,
            "handler_s_total": round(total, 2), "failed_records": stats.failed_records.get(name, 0),
        }
    handler_total = sum(sum(v) for v in runner.handler_s.values())
    wall = phase1_s + sends_s + phase2_s
    result = {
        "machine": {"platform": platform.platform(), "nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
                    "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": len(events), "members": members, "setup_s": round(setup_s, 1),
        "end_to_end_s": round(phase1_s, 2), "events_per_s": round(len(events) / phase1_s, 1),
        "publish_s": round(publish_s, 2),
        "decisions": len(decisions), "sent": len(sent), "schedules_fired": stats.schedules_fired,
        "sends_phase_s": round(sends_s, 2),
        "feedback_records": len(sent), "feedback_phase_s": round(phase2_s, 2),
        "handler_share_of_wall": round(handler_total / wall, 2),
        "dead_letters": dead,
        "functions": per_function,
        "note": "moto in a separate process on loopback; every handler in this process; informational only",
    }
    print(f"{len(events)} member events ({members} members) end to end in {phase1_s:.1f} s: "
          f"{result['events_per_s']} events/s; {len(decisions)} decisions stored, {len(sent)} sent over the next "
          f"24 h ({stats.schedules_fired} scheduled sends fired, {sends_s:.1f} s); "
          f"{len(sent)} SES opens through feedback in {phase2_s:.1f} s")
    print(f"{'function':<10}{'invocations':>12}{'records':>9}{'ms/record':>11}{'cpu ms/rec':>11}"
          f"{'p50 ms/inv':>11}{'failed':>8}")
    for name, row in per_function.items():
        print(f"{name:<10}{row['invocations']:>12}{row['records']:>9}{row['handler_ms_per_record'] or 0:>11.1f}"
              f"{row['handler_cpu_ms_per_record'] or 0:>11.1f}{row['handler_ms_per_invocation_p50'] or 0:>11.1f}"
              f"{row['failed_records']:>8}")
    print(f"handlers account for {result['handler_share_of_wall']:.0%} of the wall time; the rest is the runner's "
          f"SQS polling/acks and publishing; dead letters: {dead}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
