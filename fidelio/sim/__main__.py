"""Run the member simulator alone and print a one-screen summary.

    python -m fidelio.sim --members 500 --days 7 --seed 1 --fatigue-sensitivity 1.0 \\
        --new-member-share 0.1 [--out events.jsonl] [--offers examples/offers.yaml]

It runs the measurement protocol of `fidelio.sim.measure` once per channel, each in a fresh world
with the same seed: email and push once a day, SMS every third day (SMS programmes send a few a
month), at 10:00 local. Events by type come from the email world; --out writes them as
EventBridge-style JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from pydantic import BaseModel, ValidationError

from fidelio.sim.catalog import DEFAULT_OFFERS_PATH, CatalogError, load_offers
from fidelio.sim.config import DEFAULT_START, SimConfig
from fidelio.sim.measure import CITED_RANGES, CitedRange, ResponseRates, run_daily_protocol
from fidelio.sim.world import event_counts
from functions.domain.events import MemberEvent, event_type_of, to_detail

PROTOCOL_EVERY_DAYS = {"email": 1, "push": 1, "sms": 3}
SHOWN_METRICS = (
    "open_rate",
    "click_rate",
    "conversion_rate",
    "unsubscribe_rate",
    "complaint_rate",
    "bounce_rate",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fidelio.sim", description="Run the Fidelio member simulator alone.")
    parser.add_argument("--members", type=int, default=500, help="population size (default 500)")
    parser.add_argument("--days", type=int, default=7, help="days to simulate (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="every figure depends on it (default 1)")
    parser.add_argument(
        "--fatigue-sensitivity", type=float, default=1.0, help="fatigue multiplier (default 1.0)"
    )
    parser.add_argument(
        "--new-member-share",
        type=float,
        default=0.1,
        help="share of members enrolling during the run (default 0.1)",
    )
    parser.add_argument(
        "--start",
        default=DEFAULT_START.isoformat(),
        help="first day, ISO 8601 with a UTC offset (default %(default)s)",
    )
    parser.add_argument("--offers", type=Path, default=DEFAULT_OFFERS_PATH, help="offer catalog YAML")
    parser.add_argument("--out", type=Path, help="write the email world's events as JSON lines")
    return parser


def _fail(message: str) -> NoReturn:
    print(f"python -m fidelio.sim: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _config(args: argparse.Namespace) -> SimConfig:
    try:
        start = datetime.fromisoformat(args.start)
    except ValueError:
        _fail(f"--start {args.start!r} is not an ISO 8601 date-time")
    flags = {
        "members": "--members",
        "days": "--days",
        "seed": "--seed",
        "start": "--start",
        "fatigue_sensitivity": "--fatigue-sensitivity",
        "new_member_share": "--new-member-share",
    }
    try:
        return SimConfig(
            members=args.members,
            days=args.days,
            seed=args.seed,
            start=start,
            fatigue_sensitivity=args.fatigue_sensitivity,
            new_member_share=args.new_member_share,
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        _fail(f"{flags.get(field, field)}: {first['msg']}")


def _envelope(event: BaseModel) -> dict[str, object]:
    detail = to_detail(event)
    return {
        "source": "fidelio.sim",
        "detail-type": event_type_of(event),
        "time": detail["occurred_at"],
        "detail": detail,
    }


def _verdict(cited: CitedRange, rates: ResponseRates) -> str:
    measured, truth = rates.rate(cited.metric), rates.expected_rate(cited.metric)
    inside = [cited.low <= value <= cited.high for value in (measured, truth)]
    mark = "ok " if all(inside) else ("ok*" if inside[1] else "OUT")
    return (
        f"  {cited.channel:<6}{cited.metric:<18}{measured:>8.2%}{truth:>9.2%}  {mark} "
        f"[{cited.low:.2%}-{cited.high:.2%}]  {cited.source}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = _config(args)
    try:
        offers = load_offers(args.offers)
    except CatalogError as error:
        _fail(str(error))
    began = time.perf_counter()
    events: list[BaseModel] = []
    results: dict[str, ResponseRates] = {}
    stats = None
    for channel, every in PROTOCOL_EVERY_DAYS.items():
        rates, world = run_daily_protocol(
            config, offers, channel, every_days=every, collect=events if channel == "email" else None
        )
        results[channel] = rates
        if channel == "email":
            stats = world.stats()
    elapsed = time.perf_counter() - began
    assert stats is not None

    print(
        f"Fidelio member simulator  seed={config.seed} members={config.members} days={config.days} "
        f"start={config.start.date()} fatigue={config.fatigue_sensitivity} "
        f"new_members={config.new_member_share:.0%}  ({elapsed:.1f} s, {len(offers)} offers)"
    )
    backfilled = sum(1 for e in events if isinstance(e, MemberEvent) and e.occurred_at < config.start)
    print(
        f"\nEvents by type (email world, {len(events)} events, of which {backfilled} dated before the "
        "start: enrolments, consents and purchase history of existing members):"
    )
    counts = event_counts(events)
    names = list(counts.items())
    half = (len(names) + 1) // 2
    for left, right in zip(names[:half], [*names[half:], ("", "")], strict=False):
        print(f"  {left[0]:<28}{left[1]:>8}    {right[0]:<28}{right[1]!s:>8}")
    print(
        f"\nMembers: {stats.enrolled} enrolled, {stats.dormant_at_start} dormant at start, "
        f"{stats.churned_during_run} churned during the run; purchases {stats.purchases}, "
        f"revenue {stats.revenue:,.0f} EUR (of which {stats.message_revenue:,.0f} from "
        f"{stats.message_conversions} message conversions; {stats.organic_redemptions} organic redemptions)"
    )
    print(
        "\nResponse rates, one relevant message per member at 10:00 local "
        "(email, push: daily; sms: every 3rd day), per delivered message:"
    )
    print(
        f"  {'channel':<8}{'sends':>7}  " + "  ".join(f"{m.replace('_rate', ''):>11}" for m in SHOWN_METRICS)
    )
    for channel, rates in results.items():
        cells = "  ".join(
            f"{rates.rate(m):>11.2%}" if not (channel == "sms" and m == "open_rate") else f"{'n/a':>11}"
            for m in SHOWN_METRICS
        )
        print(f"  {channel:<8}{rates.sends:>7}  {cells}")
    print(
        "\nAgainst published ranges (docs/simulator.md); truth = mean probability the members sampled"
        " from (ok* = truth inside, measured count too small):"
    )
    print(f"  {'':<24}{'measured':>8}{'truth':>9}")
    for cited in CITED_RANGES:
        print(_verdict(cited, results[cited.channel]))
    if args.out:
        with args.out.open("w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(_envelope(event), ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"\nWrote {len(events)} events to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
