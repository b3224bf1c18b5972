"""A small closed-loop run of the main job: accounting identities hold, and the report and
summary are produced with every figure the issue names."""

from __future__ import annotations

import json

import pytest

from fidelio.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--members", "150", "--days", "3", "--seed", "5", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_every_published_event_is_processed_or_dead_lettered(demo_run):
    _, summary = demo_run
    events = summary["events"]
    assert events["published"] > 0
    assert events["published"] == events["processed"] + events["dead_lettered"]


def test_every_send_seen_on_the_bus_was_read_back_from_moto(demo_run):
    _, summary = demo_run
    events = summary["events"]
    read_back = events["emails_read_back"] + events["pushes_read_back"] + events["sms_read_back"]
    assert events["sends_seen_on_bus"] == summary["policies"]["fidelio"]["sends"]
    assert read_back == events["sends_seen_on_bus"]


def test_the_summary_holds_every_figure_of_the_report(demo_run):
    _, summary = demo_run
    assert (summary["seed"], summary["members"], summary["days"]) == (5, 150, 3)
    for policy in ("fidelio", "blast", "random", "oracle"):
        figures = summary["policies"][policy]
        for key in ("sends", "conversions", "revenue", "unsubscribes", "complaints", "net_value"):
            assert isinstance(figures[key], int | float), (policy, key)
    assert set(summary["lift"]) >= {"relative", "ci_low", "ci_high"}
    for estimator in ("ips", "snips", "dr"):
        assert set(summary["ope"][estimator]) >= {"estimate", "ci_low", "ci_high"}
    assert "truth" in summary["ope"]


def test_the_report_is_a_self_contained_page_with_charts(demo_run):
    out, _ = demo_run
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 5
    assert "src=\"http" not in page and "href=\"http" not in page
