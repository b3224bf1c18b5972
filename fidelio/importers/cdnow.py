"""CDNOW (Fader, Hardie & Lee 2005) as `purchase.completed` events.

CDNOW_master.txt ships in the lifetimes==0.11.3 wheel: one row per purchase of the
23,570 customers who first bought from CDNOW in Q1 1997, followed to 30 June 1998
(69,659 rows: customer id, date YYYYMMDD, number of CDs, dollar value). Each row becomes
one event; a customer with two rows on the same day made two orders that day.

    fidelio import cdnow [--source-dir DIR] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from fidelio.datasets import LIFETIMES, DatasetUnavailable, fetch_wheel, read_member
from functions.domain.events import LineItem, PurchaseCompleted, event_type_of, to_detail

MASTER_MEMBER = "lifetimes/datasets/CDNOW_master.txt"
# The paper's 1/10 cohort (2,357 customers), 39-week calibration, as lifetimes ships it.
SUMMARY_MEMBER = "lifetimes/datasets/cdnow_customers_summary.csv"
SUMMARY_WITH_SPEND_MEMBER = "lifetimes/datasets/cdnow_customers_summary_with_transactions.csv"
MASTER_FILE = "CDNOW_master.txt"
MEMBER_PREFIX = "cdnow-"
CATEGORY = "music"
PRODUCT_ID = "cdnow-cd"
CURRENCY = "USD"
# The study window: first purchases in Jan-Mar 1997, followed for 78 weeks.
PERIOD_START = date(1997, 1, 1)
PERIOD_END = date(1998, 7, 1)  # exclusive: 546 days = 78 weeks after PERIOD_START


class MalformedCdnowRow(ValueError):
    """A line of CDNOW_master.txt that is not `customer_id YYYYMMDD cds dollars`."""


@dataclass(frozen=True)
class CdnowPurchase:
    """One row of CDNOW_master.txt; `sequence` numbers the rows of one customer-day (0, 1...)."""

    customer_id: str
    day: date
    cds: int
    dollars: float
    sequence: int = 0

    @property
    def member_id(self) -> str:
        return f"{MEMBER_PREFIX}{self.customer_id}"

    @property
    def order_id(self) -> str:
        return f"cdnow-{self.customer_id}-{self.day:%Y%m%d}-{self.sequence}"


def parse_master(text: str) -> list[CdnowPurchase]:
    """Rows of CDNOW_master.txt (whitespace separated, header optional), in file order."""
    rows: list[CdnowPurchase] = []
    seen: dict[tuple[str, date], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "customer_id":
            continue
        if len(fields) != 4:
            raise MalformedCdnowRow(f"line {number}: expected 4 fields, got {len(fields)}: {line.strip()[:60]!r}")
        customer, raw_day, raw_cds, raw_dollars = fields
        try:
            day = datetime.strptime(raw_day, "%Y%m%d").date()
            cds, dollars = int(raw_cds), float(raw_dollars)
        except ValueError as error:
            raise MalformedCdnowRow(f"line {number}: {error}") from error
        if not customer.isdigit() or cds <= 0 or dollars < 0:
            raise MalformedCdnowRow(f"line {number}: bad customer id, CD count or amount: {line.strip()[:60]!r}")
        key = (customer, day)
        sequence = seen.get(key, 0)
        seen[key] = sequence + 1
        rows.append(CdnowPurchase(customer, day, cds, dollars, sequence))
    return rows


def load_master(source_dir: Path | None = None) -> tuple[list[CdnowPurchase], bytes]:
    """The parsed rows and the raw bytes (for a sha256 in model cards).

    `source_dir` may hold CDNOW_master.txt itself or the lifetimes wheel; without it the
    wheel is fetched into the dataset cache. Raises DatasetUnavailable."""
    raw: bytes
    if source_dir is not None and (Path(source_dir) / MASTER_FILE).is_file():
        raw = (Path(source_dir) / MASTER_FILE).read_bytes()
    else:
        raw = read_member(fetch_wheel(LIFETIMES, source_dir=source_dir), MASTER_MEMBER)
    return parse_master(raw.decode("ascii")), raw


@dataclass(frozen=True)
class CdnowSummary:
    """Per customer of the paper's cohort: x repeat purchases, t_x and T in weeks, and (when
    the file has it) z_bar, the mean value of the repeat purchases."""

    x: list[float]
    t_x: list[float]
    T: list[float]
    z_bar: list[float] | None


def _read_csv_columns(raw: bytes) -> dict[str, list[float]]:
    lines = raw.decode("ascii").splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    columns: dict[str, list[float]] = {h: [] for h in header}
    for line in lines[1:]:
        if line.strip():
            for name, value in zip(header, line.split(","), strict=True):
                columns[name].append(float(value))
    return columns


def load_paper_summary(source_dir: Path | None = None) -> CdnowSummary:
    """cdnow_customers_summary.csv (frequency, recency, T) joined with z_bar from
    cdnow_customers_summary_with_transactions.csv. Raises DatasetUnavailable."""
    wheel = fetch_wheel(LIFETIMES, source_dir=source_dir)
    summary = _read_csv_columns(read_member(wheel, SUMMARY_MEMBER))
    spend = _read_csv_columns(read_member(wheel, SUMMARY_WITH_SPEND_MEMBER))
    same = spend["x"] == summary["frequency"] and spend["T"] == summary["T"]
    return CdnowSummary(summary["frequency"], summary["recency"], summary["T"], spend["zbar"] if same else None)


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def to_event(row: CdnowPurchase) -> PurchaseCompleted:
    """The `purchase.completed` event of one row; the same row always gives the same event_id."""
    midnight = datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC)
    return PurchaseCompleted(
        event_id=row.order_id,
        member_id=row.member_id,
        occurred_at=midnight,
        order_id=row.order_id,
        amount=row.dollars,
        currency=CURRENCY,
        line_items=[
            LineItem(
                product_id=PRODUCT_ID,
                category=CATEGORY,
                quantity=row.cds,
                unit_price=round(row.dollars / row.cds, 4),
            )
        ],
    )


def to_events(rows: Iterable[CdnowPurchase]) -> Iterator[PurchaseCompleted]:
    for row in rows:
        yield to_event(row)


def write_jsonl(events: Iterable[PurchaseCompleted], out: TextIO) -> int:
    """Write `{"detail-type": ..., "detail": ...}` lines; returns how many were written."""
    count = 0
    for event in events:
        out.write(json.dumps({"detail-type": event_type_of(event), "detail": to_detail(event)}, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


# --- CLI: `fidelio import cdnow` -----------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Convert CDNOW_master.txt (lifetimes 0.11.3 wheel) to purchase.completed events."
    parser.add_argument(
        "--source-dir", type=Path, default=None,
        help="directory holding CDNOW_master.txt or the lifetimes-0.11.3 wheel (default: fetch into the cache)",
    )
    parser.add_argument(
        "--out", type=Path, default=None,
        help="JSON-lines file to write (default: standard output; the summary then goes to stderr)",
    )


def _fail(message: str, code: int) -> int:
    print(f"fidelio import cdnow: {message}", file=sys.stderr)
    return code


def _usage_error(message: str) -> int:
    return _fail(message, 2)


def run(args: argparse.Namespace) -> int:
    source_dir: Path | None = args.source_dir
    out_path: Path | None = args.out
    if source_dir is not None and not source_dir.is_dir():
        return _usage_error(f"--source-dir {source_dir} is not a directory")
    if out_path is not None:
        if out_path.is_dir():
            return _usage_error(f"--out {out_path} is a directory; give a file name such as cdnow.jsonl")
        if not out_path.parent.is_dir():
            return _usage_error(f"--out {out_path}: folder {out_path.parent} does not exist")
    try:
        rows, raw = load_master(source_dir)
    except DatasetUnavailable as error:
        return _fail(f"CDNOW is unavailable: {error}", 1)
    except MalformedCdnowRow as error:
        return _fail(f"CDNOW_master.txt is malformed: {error}", 1)
    members = len({row.customer_id for row in rows})
    if out_path is None:
        written = write_jsonl(to_events(rows), sys.stdout)
        summary_stream, target = sys.stderr, "stdout"
    else:
        with out_path.open("w", encoding="utf-8") as out:
            written = write_jsonl(to_events(rows), out)
        summary_stream, target = sys.stdout, str(out_path)
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    print(
        f"cdnow: {written} purchase.completed events for {members} members ({first} to {last}) "
        f"-> {target} (source sha256 {sha256_of(raw)[:12]})",
        file=summary_stream,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fidelio import cdnow")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
