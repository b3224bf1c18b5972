"""summary.json and report.html of a (synthetic) demo run: every key, every chart, nothing external."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from fidelio.report.html import render_report
from fidelio.report.log import (
    Exposure,
    LoggedDecision,
    MemberOutcome,
    PolicyOutcome,
    Redemption,
    RunLog,
    Segment,
)
from fidelio.report.summary import build_summary, write_outputs

HOSTILE = '<script>alert("tier")</script>'
TIERS = ("bronze", "silver", "gold", "platinum")
AGES = ("<25", "25-34", "35-49", "50-64", "65+")


def synthetic_run(seed: int = 3, members: int = 400, days: int = 30) -> RunLog:
    """A small month: members with a 10 % holdout, a decision log with two target policies,
    four policies' totals. One member's tier is a hostile string."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for i in range(members):
        holdout = i % 10 == 0
        tier = HOSTILE if i == 1 else TIERS[i % 4]
        purchases = int(rng.poisson(2.0 if holdout else 2.4))
        sends = 0 if holdout else int(rng.poisson(6))
        outcomes.append(MemberOutcome(
            member_id=f"m{i}", holdout=holdout, segment=Segment(tier, AGES[i % 5], i % 7 == 0),
            sends=sends, marketing_sends=sends, conversions=0 if holdout else int(rng.poisson(0.3)),
            organic_conversions=int(rng.poisson(0.2)), purchases=purchases, revenue=38.0 * purchases,
            unsubscribes=int(rng.random() < 0.01), offer_value_received=2.5 * sends))
    exposures, redemptions = [], []
    for i in range(members):  # six offer messages each, sent (8 % redeemed) or withheld (3 %)
        holdout = i % 10 == 0
        for j in range(6):
            at = 1.0e9 + j * 5 * 86400.0
            exposures.append(Exposure(f"m{i}", f"x{i}-{j}", f"o{j}", at, holdout))
            if rng.random() < (0.03 if holdout else 0.08):
                redemptions.append(Redemption(f"m{i}", f"o{j}", at + 3600.0, None if holdout else f"x{i}-{j}"))
    decisions = []
    for k in range(3000):
        member = k % members
        holdout = member % 10 == 0
        greedy = int(rng.integers(-1, 3))
        logged = greedy if rng.random() < 0.8 else int(rng.integers(-1, 5))
        propensity = 0.8 + 0.2 / 6 if logged == greedy else 0.2 / 6
        top = [{"offer_id": f"o{j}", "channel": "email", "send_at": 100.0 * j, "p": 0.05, "ev": 0.4,
                "propensity": 0.1} for j in range(5)]
        action = {"kind": "none"} if logged < 0 or holdout else {
            "kind": "send", "offer_id": f"o{logged}", "channel": "email", "send_at": 100.0 * logged}
        means = {-1: 0.0, 0: 0.4, 1: 0.6, 2: 0.3, 3: 0.2, 4: 0.5}
        reward = 10.0 * float(rng.random() < means[logged] / 10) if action["kind"] == "send" else 0.0
        targets = {"fidelio": greedy, "oracle": 1}
        decisions.append(LoggedDecision(
            decision_id=f"d{k}", member_id=f"m{member}", day=k % days, decided_at=1.0e9 + k, trigger="app.opened",
            holdout=holdout, explored=logged != greedy, action=action, intended=action, propensity=propensity,
            p_nothing=0.8 + 0.2 / 6 if greedy == -1 else 0.2 / 6, top=top, reward=reward, converted=reward > 0,
            truth={t: means[a] for t, a in targets.items()},
            model_estimate={t: means[a] * 0.9 for t, a in targets.items()}, target_action=targets))

    def policy(name: str, sends: int, conversions: int, unsubscribes: int, mix: dict[str, int]) -> PolicyOutcome:
        return PolicyOutcome(
            name=name, sends=sends, conversions=conversions, revenue=44.0 * conversions, unsubscribes=unsubscribes,
            complaints=unsubscribes // 4, members=members,
            daily_conversions=[int(x) for x in rng.multinomial(conversions, [1 / days] * days)],
            channel_mix=mix, send_hour_vs_active_hour=[float(x) for x in np.abs(rng.normal(0, 3, sends))],
            through_stack=name == "fidelio")

    policies = {
        "fidelio": policy("fidelio", 2100, 120, 6, {"email": 1500, "push": 550, "sms": 50}),
        "blast": policy("blast", 12000, 150, 60, {"email": 12000}),
        "random": policy("random", 2100, 40, 12, {"email": 1400, "push": 700}),
        "oracle": policy("oracle", 1800, 160, 3, {"email": 1000, "push": 800}),
    }
    return RunLog(
        seed=seed, members=members, days=days, decisions=decisions, members_outcomes=outcomes, policies=policies,
        exposures=exposures, redemptions=redemptions,
        events={"published": 51234, "processed": 51230, "dead_lettered": 4},
        model_versions=[{"version": "offers-v2", "auc": 0.71, "gate": "promoted", "note": "<b>bold</b>"}],
        parameters={"send_cost": {"email": 0.001, "push": 0.0005, "sms": 0.04}, "unsubscribe_cost": 10.0,
                    "holdout_share": 0.1})


@pytest.fixture(scope="module")
def run() -> RunLog:
    return synthetic_run()


@pytest.fixture(scope="module")
def summary(run: RunLog) -> dict:
    return build_summary(run, "fidelio")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_summary_holds_every_documented_key_with_numbers(summary):
    for key in ("seed", "members", "days"):
        assert _is_number(summary[key]), key
    assert list(summary["policies"]) == ["fidelio", "blast", "random", "oracle"]
    for name, figures in summary["policies"].items():
        for key in ("sends", "conversions", "revenue", "unsubscribes", "complaints", "net_value"):
            assert _is_number(figures[key]), (name, key)
    for key in ("relative", "ci_low", "ci_high", "treated_mean", "holdout_mean", "treated_n", "holdout_n",
                "absolute", "absolute_ci_low", "absolute_ci_high", "incremental", "window_days"):
        assert _is_number(summary["lift"][key]), key
    assert summary["lift"]["metric"] == "offer_redeemed_within_window"
    assert summary["lift"]["treated_exposures"] + summary["lift"]["holdout_exposures"] == 400 * 6
    for key in ("relative", "ci_low", "ci_high", "treated_n", "holdout_n"):
        assert _is_number(summary["lift_by_metric"]["conversions"][key]), key
    assert _is_number(summary["ope"]["truth"]) and summary["ope"]["target"] == "fidelio"
    assert _is_number(summary["ope"]["n"])
    for estimator in ("ips", "snips", "dr"):
        for key in ("estimate", "ci_low", "ci_high"):
            assert _is_number(summary["ope"][estimator][key]), (estimator, key)
    for key in ("published", "processed", "dead_lettered"):
        assert _is_number(summary["events"][key]), key
    for key in ("net_value_vs_blast", "net_value_vs_oracle", "unsubscribes_per_member_vs_blast"):
        assert _is_number(summary["ratios"][key]), key
    assert summary["fairness"]["by"]["tier"] and summary["model_versions"][0]["version"] == "offers-v2"
    assert summary["parameters"]["unsubscribe_cost"] == 10.0
    # and it is plain JSON (no NaN)
    json.dumps(summary, allow_nan=False)


def test_summary_figures_agree_with_the_run(run, summary):
    fidelio, blast = summary["policies"]["fidelio"], summary["policies"]["blast"]
    # net value: 120 × 44 revenue − (1500 × 0.001 + 550 × 0.0005 + 50 × 0.04) − 6 × 10
    assert fidelio["net_value"] == pytest.approx(5280 - (1.5 + 0.275 + 2.0) - 60)
    assert summary["ratios"]["net_value_vs_blast"] == pytest.approx(fidelio["net_value"] / blast["net_value"])
    assert summary["ratios"]["unsubscribes_per_member_vs_blast"] == pytest.approx(6 / 60)
    assert summary["decisions"]["total"] == len(run.decisions)
    assert summary["ope"]["n"] == sum(1 for d in run.decisions if not d.holdout)
    assert set(summary["ope_by_target"]) == {"fidelio", "oracle"}
    hist = summary["series"]["send_hour_gap"]["fidelio"]
    assert sum(hist["counts"]) == hist["sends"] == 2100


def test_summary_is_reproducible(run):
    assert build_summary(run, "fidelio") == build_summary(run, "fidelio")


def test_ratios_with_a_zero_or_missing_denominator_are_null(run):
    # Given a run where blast made no unsubscribe and earned exactly nothing net, and no oracle ran
    zero = RunLog(seed=1, members=10, days=2, members_outcomes=run.members_outcomes[:20], policies={
        "fidelio": PolicyOutcome("fidelio", 10, 1, 5.0, 1, 0, 10, channel_mix={"email": 10}),
        "blast": PolicyOutcome("blast", 0, 0, 0.0, 0, 0, 10)})
    ratios = build_summary(zero, "fidelio", resamples=50)["ratios"]
    # Then every ratio is null rather than an error or infinity
    low = ratios.pop("unsubscribes_per_member_vs_blast_ci_low")
    assert ratios == {"net_value_vs_blast": None, "net_value_vs_oracle": None,
                      "unsubscribes_per_member_vs_blast": None, "expected_net_value_vs_blast": None,
                      "expected_net_value_vs_oracle": None, "expected_unsubscribes_per_member_vs_blast": None,
                      "unsubscribes_per_member_vs_blast_ci_high": None}
    # ... except the lower end of the unsubscribe ratio's interval: 1 against 0 bounds it below only
    assert 0 < low < 1


class _Page(HTMLParser):
    """Collects what the tests check: svgs with their titles, links and sources, headings, captions."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: list[dict] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_svg_title = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action")]
        if tag == "svg":
            self.svgs.append({"attrs": attributes, "title": ""})
        if tag == "title" and self.svgs:
            self._in_svg_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_svg_title = False

    def handle_data(self, data):
        if self._in_svg_title:
            self.svgs[-1]["title"] += data


def test_report_is_written_with_a_chart_per_figure(run, tmp_path):
    # When the demo writes its outputs
    summary_path, report_path = write_outputs(run, tmp_path / "demo", "fidelio")
    # Then both files exist, summary.json parses, and the page has every chart, each titled for
    # screen readers
    assert json.loads(summary_path.read_text())["seed"] == run.seed
    page = _Page()
    page.feed(report_path.read_text())
    ids = [s["attrs"].get("aria-labelledby", "") for s in page.svgs]
    for chart in ("lift-chart", "conversions-chart", "timing-chart", "channels-chart", "unsubscribes-chart",
                  "ope-chart", "fairness-value-chart", "fairness-sends-chart"):
        assert any(i.startswith(chart) for i in ids), chart
    assert all(s["attrs"].get("role") == "img" and s["title"].strip() for s in page.svgs)
    assert "h1" in page.tags and page.tags.count("h2") >= 8 and "caption" in page.tags


def test_report_needs_nothing_from_the_network(summary):
    page = _Page()
    text = render_report(summary)
    page.feed(text)
    assert all(not url.lower().startswith(("http", "//")) for url in page.urls), page.urls
    assert "http" not in text.lower()
    assert not re.search(r"<(script|link|img|iframe)\b", text, re.I)


def test_hostile_text_from_the_run_is_escaped(summary):
    text = render_report(summary)
    # Then the hostile tier name appears only as text, never as markup
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&quot;tier&quot;)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text


def test_report_renders_with_missing_baselines_and_no_decisions():
    # Given a run with only Fidelio, no decision log and no holdout
    bare = RunLog(seed=0, members=1, days=1, members_outcomes=[
        MemberOutcome("m0", False, Segment("gold", "unknown", False), sends=1, offer_value_received=1.0)],
        policies={"fidelio": PolicyOutcome("fidelio", 1, 0, 0.0, 0, 0, 1, daily_conversions=[0],
                                           channel_mix={"email": 1}, send_hour_vs_active_hour=[1.0])})
    summary = build_summary(bare, "fidelio", resamples=20)
    text = render_report(summary)
    # Then the figures it cannot compute say n/a, and the page still renders
    assert summary["lift"]["relative"] is None and summary["ope"]["n"] == 0
    assert "n/a" in text and text.rstrip().endswith("</html>")


def test_write_outputs_creates_the_folder(run, tmp_path: Path):
    out = tmp_path / "a" / "b"
    paths = write_outputs(run, out)
    assert all(p.exists() and p.parent == out for p in paths)


def test_expected_net_value_prices_the_truth_like_the_realized_one(run):
    # Given a run whose policies carry the simulator's truth at each send
    expected = RunLog(seed=1, members=10, days=2, members_outcomes=run.members_outcomes[:20], policies={
        "fidelio": PolicyOutcome("fidelio", 100, 1, 44.0, 1, 0, 10, channel_mix={"email": 90, "sms": 10},
                                 expected_revenue=120.0, expected_unsubscribes=0.5),
        "blast": PolicyOutcome("blast", 200, 0, 0.0, 2, 0, 10, channel_mix={"email": 200},
                               expected_revenue=50.0, expected_unsubscribes=2.0)})
    summary = build_summary(expected, "fidelio", resamples=50)
    fidelio, blast = summary["policies"]["fidelio"], summary["policies"]["blast"]
    # Then expected net value = expected revenue − send costs − expected unsubscribes × cost
    assert fidelio["expected_net_value"] == pytest.approx(120.0 - (90 * 0.001 + 10 * 0.04) - 0.5 * 10)
    assert blast["expected_net_value"] == pytest.approx(50.0 - 200 * 0.001 - 2.0 * 10)
    assert summary["ratios"]["expected_net_value_vs_blast"] == pytest.approx(
        fidelio["expected_net_value"] / blast["expected_net_value"])
    assert summary["ratios"]["expected_unsubscribes_per_member_vs_blast"] == pytest.approx(0.25)


@pytest.mark.parametrize("window", ["0", "-3", "45", "week"])
def test_demo_refuses_a_bad_lift_window_in_one_line(window, capsys):
    from fidelio.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "--lift-window-days", window])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lift-window-days" in err[0]


def test_the_lift_window_is_the_one_asked_for(run):
    # Given redemptions one hour after each message, When the window is 2 days or 1 day
    two, one = (build_summary(run, "fidelio", resamples=50, lift_window_days=w)["lift"] for w in (2.0, 1.0))
    # Then both windows are recorded and see the same redemptions (all within the hour)
    assert (two["window_days"], one["window_days"]) == (2.0, 1.0)
    assert two["treated_redeemed"] == one["treated_redeemed"] > 0
