"""Calibration of served predictions (functions.domain.drift): what the monitor publishes."""

from __future__ import annotations

import pytest

from functions.domain.drift import MATURITY_S, calibration, matured_sends

NOW = 1_800_000_000.0


def _send(i: int, p: float | None, age_s: float, kind: str = "send") -> dict:
    action = {"kind": kind} if p is None else {"kind": kind, "probability": p}
    return {"decision_id": f"d{i}", "decided_at": NOW - age_s, "action": action}


def test_only_matured_sends_with_a_prediction_are_judged():
    decisions = [_send(0, 0.1, MATURITY_S + 1), _send(1, 0.1, MATURITY_S - 60), _send(2, None, 3 * MATURITY_S),
                 _send(3, 0.2, 3 * MATURITY_S, kind="none")]
    assert [d["decision_id"] for d in matured_sends(decisions, NOW)] == ["d0"]


def test_realized_over_predicted():
    sends = [_send(i, 0.02 if i % 2 else 0.06, 3 * MATURITY_S) for i in range(50)]
    outcomes = {"d1": ["delivered", "clicked", "redeemed"], "d2": ["clicked"], "d3": ["opened"]}
    report = calibration(sends, outcomes)
    assert report.sends == 50
    assert report.predicted_mean == pytest.approx(0.04)
    assert report.predicted_p90 == pytest.approx(0.06)
    assert report.redeemed_rate == pytest.approx(1 / 50) and report.clicked_rate == pytest.approx(2 / 50)
    assert report.ratio == pytest.approx(0.5)


def test_nothing_to_judge_is_undefined_not_zero():
    report = calibration([], {})
    assert report.sends == 0 and report.ratio is None and report.predicted_mean is None
