"""`fidelio demo`: the walking skeleton end to end on the local AWS stand-in.

Members enrol, consent and buy; their events go through the real bus rules, queues and
handlers (played by moto and the local runner); decisions are made, emails and pushes are
sent and read back from moto; malformed events land on the DLQ with their reason.
The report (summary.json + report.html) says what happened.
"""

from __future__ import annotations

import argparse
import html
import json
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OFFERS = REPO / "examples" / "offers.yaml"
EVENTS_DIR = REPO / "tests" / "events"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="folder for summary.json and report.html")
    parser.add_argument("--members", type=int, default=200, help="members to enrol (1..20000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--offers", default=str(DEFAULT_OFFERS), help="offer catalog (YAML)")


def _member_events(index: int, now: datetime, rng: Any) -> list[Any]:
    from functions.domain import events as ev

    member = f"demo-{index:05d}"
    zones = ["Europe/Paris", "Europe/London", "America/New_York", "Asia/Tokyo"]
    categories = ["coffee", "bakery", "wine", "produce", "dairy", "snacks"]
    enrolled = now - timedelta(days=int(rng.integers(30, 400)))
    events: list[Any] = [
        ev.MemberEnrolled(event_id=f"{member}-enrol", member_id=member, occurred_at=enrolled,
                          time_zone=zones[index % len(zones)], email=f"{member}@example.com",
                          first_name=f"Member{index}", points_balance=int(rng.integers(0, 3000))),
        ev.ConsentChanged(event_id=f"{member}-consent-email", member_id=member, occurred_at=enrolled,
                          channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS, granted=bool(rng.random() < 0.85),
                          source="signup_form"),
    ]
    favourite = categories[int(rng.integers(0, len(categories)))]
    for k in range(int(rng.integers(1, 4))):
        at = now - timedelta(hours=float(rng.uniform(0, 20 * 24)) if k else 0.0)
        amount = round(float(rng.uniform(5, 60)), 2)
        events.append(ev.PurchaseCompleted(
            event_id=f"{member}-buy-{k}", member_id=member, occurred_at=at, order_id=f"{member}-o{k}",
            amount=amount, line_items=[ev.LineItem(product_id=f"sku-{favourite}", category=favourite,
                                                   unit_price=amount)]))
    return events


def run_demo(args: argparse.Namespace) -> int:
    import numpy as np
    import requests

    from fidelio.cli import load_offer_file
    from fidelio.errors import UsageError
    from fidelio.local.runner import LocalRunner
    from fidelio.local.server import local_aws
    from functions import clock
    from functions.dal.bus import publish
    from functions.dal.offers import replace_catalog
    from functions.dal.tables import DecisionRecord
    from functions.handlers import deps

    warnings.filterwarnings("ignore", message="No application metrics")
    if not 1 <= args.members <= 20000:
        raise UsageError(f"--members must be between 1 and 20000, got {args.members}")
    offers = load_offer_file(Path(args.offers))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    clock.set_clock(lambda: now)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    with local_aws() as stack:
        print(f"local AWS stand-in (moto) at {stack.endpoint}")
        runner = LocalRunner(stack)
        deps.use(runner._deps["decide"])
        replace_catalog(offers)
        events = [e for i in range(args.members) for e in _member_events(i, now, rng)]
        published = publish(stack.client("events"), stack.names.bus, events, "fidelio.demo")
        # A few malformed events, as producers sometimes send: they must reach the DLQ.
        client = stack.client("events")
        poison = sorted((EVENTS_DIR / "invalid").glob("*.json"))
        for path in poison:
            item = json.loads(path.read_text())
            client.put_events(Entries=[{"EventBusName": stack.names.bus, "Source": "fidelio.demo",
                                        "DetailType": item["detail-type"], "Detail": json.dumps(item["detail"])}])
        published += len(poison)
        print(f"published {published} events ({len(poison)} malformed on purpose)")
        runner.pump()
        # Let the day run: fire the sends scheduled for later hours.
        for hour in range(1, 25):
            moment = now + timedelta(hours=hour)
            clock.set_clock(lambda moment=moment: moment)
            runner.pump()
        stats = runner.stats
        dead = {q: len(m) for q, m in runner.dead_letters().items()}
        data = requests.get(f"{stack.endpoint}/moto-api/data.json", timeout=30).json()
        emails = data["ses"].get("RawMessage", [])
        decisions = [d.body for d in DecisionRecord.scan()]
    clock.set_clock(None)
    deps.reset()
    statuses = Counter(d["action"]["kind"] for d in decisions)
    reasons = Counter(r for d in decisions for r in d["rejected"])
    summary = {
        # Producer events only (Fidelio's own notification.* events are counted apart): every
        # one is either processed or dead-lettered, none lost.
        "events": {"published": published,
                   "processed": stats.sources[("ingest", "fidelio.demo")] - dead.get("ingest", 0),
                   "dead_lettered": dead.get("ingest", 0),
                   "fidelio_feedback_events": stats.sources[("ingest", "fidelio.dispatch")]
                   + stats.sources[("ingest", "fidelio.feedback")]},
        "members": args.members, "seed": args.seed,
        "decisions": len(decisions), "decisions_by_action": dict(statuses),
        "holdout_decisions": sum(1 for d in decisions if d["holdout"]),
        "emails_sent": len(emails), "schedules_fired": stats.schedules_fired,
        "rejections_by_reason": dict(reasons.most_common()),
        "invocations": dict(stats.invocations), "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    sample = decisions[:20]
    rows = "".join(
        f"<tr><td>{html.escape(d['member_id'])}</td><td>{html.escape(d['trigger'])}</td>"
        f"<td>{html.escape(str(d['action'].get('offer_id')))}</td><td>{html.escape(str(d['action'].get('channel')))}</td>"
        f"<td>{d['propensity']:.3f}</td><td>{html.escape('; '.join(d['reasons']))}</td></tr>" for d in sample)
    (out / "report.html").write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Fidelio demo</title>"
        "<body style='font-family:sans-serif;max-width:60em;margin:auto'><h1>Fidelio walking skeleton</h1>"
        f"<pre>{html.escape(json.dumps(summary, indent=2))}</pre><h2>Sample decisions</h2>"
        "<table border=1 cellpadding=4><tr><th>member</th><th>trigger</th><th>offer</th><th>channel</th>"
        f"<th>propensity</th><th>reasons</th></tr>{rows}</table></body></html>\n")
    e = summary["events"]
    print(f"events: published {e['published']}, processed {e['processed']}, dead-lettered {e['dead_lettered']}")
    print(f"decisions: {len(decisions)} ({dict(statuses)}); emails sent: {len(emails)}")
    print(f"report: {out / 'report.html'}  summary: {out / 'summary.json'}")
    return 0
