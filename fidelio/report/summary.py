"""The demo's figures in one dict (summary.json), and the files `make demo` writes.

`build_summary` turns a RunLog into plain JSON-able data: per-policy totals and net value, lift
against the holdout, off-policy estimates, fairness, the series the charts draw. The HTML report
(fidelio/report/html.py) is drawn from this dict alone, so summary.json can re-render it.
Every bootstrap is seeded with the run's seed: the same run gives the same file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fidelio.report.html import render_report
from fidelio.report.log import PolicyOutcome, RunLog
from fidelio.report.measure import (
    DEFAULT_EXPOSURE_WINDOW_DAYS,
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    FAIRNESS_MIN_MEMBERS,
    LIFT_METRICS,
    exposure_lift,
    fairness,
    lift,
    net_value_breakdown,
    rate_ratio_interval,
    value_parameters,
)
from fidelio.report.ope import off_policy_value, off_policy_values, target_policies

POLICY_ORDER = ("fidelio", "blast", "random", "oracle")
# |send local hour − member's peak hour|, in whole hours; the last bin holds 12 h and more.
HOUR_GAP_BINS = 13
MAIN_LIFT_METRIC = "conversions"  # offer redemptions, attributed or organic


def _ordered_policies(policies: Mapping[str, PolicyOutcome]) -> list[str]:
    known = [name for name in POLICY_ORDER if name in policies]
    return known + sorted(set(policies) - set(known))


def _per(value: float, members: int) -> float | None:
    return value / members if members else None


def _ratio(numerator: float | None, denominator: float | None, *, positive_only: bool = False) -> float | None:
    """numerator ÷ denominator, or None when undefined (missing, zero, or for value ratios, ≤ 0)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if positive_only and denominator < 0:
        return None
    return numerator / denominator


def policy_figures(policy: PolicyOutcome, params: Mapping[str, Any]) -> dict[str, Any]:
    value = net_value_breakdown(policy, params)
    return {
        "sends": policy.sends,
        "conversions": policy.conversions,
        "revenue": float(policy.revenue),
        "unsubscribes": policy.unsubscribes,
        "complaints": policy.complaints,
        "net_value": value["net_value"],
        "send_cost": value["send_cost"],
        "unsubscribe_cost": value["unsubscribe_cost"],
        "members": policy.members,
        "sends_per_member": _per(policy.sends, policy.members),
        "conversions_per_member": _per(policy.conversions, policy.members),
        "unsubscribes_per_member": _per(policy.unsubscribes, policy.members),
        "complaints_per_member": _per(policy.complaints, policy.members),
        "net_value_per_member": _per(value["net_value"], policy.members),
        "channel_mix": dict(policy.channel_mix),
        "through_stack": policy.through_stack,
        **expected_figures(policy, params, value["send_cost"]),
    }


def expected_figures(policy: PolicyOutcome, params: Mapping[str, Any], send_cost: float) -> dict[str, float | None]:
    """Net value and opt-outs by the simulator's truth at each send: what the policy's choices
    were worth in expectation, free of the draw's noise (a few dozen conversions decide the
    realized figures of a small world). `send_cost`: the policy's, priced as for net value
    (the sends happened: their cost is not an expectation)."""
    if policy.expected_revenue is None or policy.expected_unsubscribes is None:
        return {"expected_net_value": None, "expected_unsubscribes_per_member": None}
    unit = float(params["unsubscribe_cost"])
    return {
        "expected_net_value": float(policy.expected_revenue - send_cost - unit * policy.expected_unsubscribes),
        "expected_unsubscribes_per_member": _per(policy.expected_unsubscribes, policy.members),
    }


def hour_gap_histogram(gaps: Sequence[float]) -> dict[str, Any]:
    """Counts of sends per whole hour of |send local hour − peak hour| (last bin: 12 h or more)."""
    finite = [abs(g) for g in gaps if math.isfinite(g)]
    counts = [0] * HOUR_GAP_BINS
    for gap in finite:
        counts[min(HOUR_GAP_BINS - 1, math.floor(gap))] += 1
    n = len(finite)
    return {
        "counts": counts,
        "sends": n,
        "mean": sum(finite) / n if n else None,
        "within_2h_share": sum(1 for g in finite if g < 2) / n if n else None,
    }


def _ratios(policies: Mapping[str, dict[str, Any]]) -> dict[str, float | None]:
    fidelio, blast, oracle = (policies.get(name) for name in ("fidelio", "blast", "oracle"))

    def field(policy: dict[str, Any] | None, key: str) -> float | None:
        return None if policy is None else policy[key]

    return {
        "net_value_vs_blast": _ratio(field(fidelio, "net_value"), field(blast, "net_value"), positive_only=True),
        "net_value_vs_oracle": _ratio(field(fidelio, "net_value"), field(oracle, "net_value"), positive_only=True),
        "unsubscribes_per_member_vs_blast": _ratio(field(fidelio, "unsubscribes_per_member"),
                                                   field(blast, "unsubscribes_per_member")),
        "expected_net_value_vs_blast": _ratio(field(fidelio, "expected_net_value"),
                                              field(blast, "expected_net_value"), positive_only=True),
        "expected_net_value_vs_oracle": _ratio(field(fidelio, "expected_net_value"),
                                               field(oracle, "expected_net_value"), positive_only=True),
        "expected_unsubscribes_per_member_vs_blast": _ratio(
            field(fidelio, "expected_unsubscribes_per_member"), field(blast, "expected_unsubscribes_per_member")),
        **_unsubscribe_ratio_interval(fidelio, blast),
    }


def _unsubscribe_ratio_interval(fidelio: dict[str, Any] | None, blast: dict[str, Any] | None) -> dict[str, float | None]:
    """95 % exact interval of unsubscribes per member, Fidelio ÷ blast (two Poisson counts)."""
    if fidelio is None or blast is None:
        return {"unsubscribes_per_member_vs_blast_ci_low": None, "unsubscribes_per_member_vs_blast_ci_high": None}
    low, high = rate_ratio_interval(int(fidelio["unsubscribes"]), int(blast["unsubscribes"]),
                                    float(fidelio["members"]), float(blast["members"]))
    return {"unsubscribes_per_member_vs_blast_ci_low": low, "unsubscribes_per_member_vs_blast_ci_high": high}


def _differences(policies: Mapping[str, dict[str, Any]]) -> dict[str, float | None]:
    fidelio = policies.get("fidelio")
    out: dict[str, float | None] = {}
    for other in ("blast", "random", "oracle"):
        base = policies.get(other)
        out[f"net_value_vs_{other}"] = (None if fidelio is None or base is None
                                        else fidelio["net_value"] - base["net_value"])
    return out


def _decision_counts(run: RunLog) -> dict[str, int]:
    decisions = run.decisions
    return {
        "total": len(decisions),
        "holdout": sum(1 for d in decisions if d.holdout),
        "sends": sum(1 for d in decisions if d.action.get("kind") == "send"),
        "explored": sum(1 for d in decisions if d.explored),
    }


def build_summary(
    run: RunLog,
    target_policy: str = "fidelio",
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    lift_window_days: float = DEFAULT_EXPOSURE_WINDOW_DAYS,
) -> dict[str, Any]:
    """Every figure of the demo report, as JSON-able data (no NaN: undefined figures are None).

    `target_policy` is the policy the headline off-policy estimate is for; every other target
    named in the decision log is estimated too (`ope_by_target`).
    """
    params = value_parameters(run.parameters)
    names = _ordered_policies(run.policies)
    policies = {name: policy_figures(run.policies[name], params) for name in names}
    lifts = {metric: lift(run.members_outcomes, metric, resamples=resamples, seed=run.seed, level=level)
             for metric in LIFT_METRICS}
    message_lift = exposure_lift(run.exposures, run.redemptions, window_days=lift_window_days,
                                 resamples=resamples, seed=run.seed, level=level)
    targets = target_policies(run.decisions)
    others = [t for t in targets if t != target_policy]
    ope = off_policy_value(run.decisions, target_policy, resamples=resamples, seed=run.seed, level=level)
    ope_by_target = {target_policy: ope,
                     **off_policy_values(run.decisions, others, resamples=resamples, seed=run.seed, level=level)}
    events = {key: run.events.get(key) for key in ("published", "processed", "dead_lettered")}
    events.update({k: v for k, v in run.events.items() if k not in events})
    summary = {
        "seed": run.seed,
        "members": run.members,
        "days": run.days,
        "decisions": _decision_counts(run),
        "policies": policies,
        # The headline lift is the messages' (ghost sends); the member-level lifts, which count
        # every redemption and purchase of the run, are beside it (docs/report.md says why).
        "lift": message_lift,
        "lift_by_metric": lifts,
        "ope": ope,
        "ope_by_target": ope_by_target,
        "events": events,
        "fairness": fairness(run.members_outcomes, run.decisions),
        "parameters": {
            **run.parameters,
            **params,
            "bootstrap_resamples": resamples,
            "confidence_level": level,
            "bootstrap_seed": run.seed,
            "lift_metric": "offer messages redeemed within the window, sends vs withheld sends",
            "lift_window_days": message_lift["window_days"],
            "member_lift_metric": MAIN_LIFT_METRIC,
            "ope_target": target_policy,
            "fairness_min_members": FAIRNESS_MIN_MEMBERS,
        },
        "model_versions": list(run.model_versions),
        "ratios": _ratios(policies),
        "differences": _differences(policies),
        "series": {
            "daily_conversions": {name: list(run.policies[name].daily_conversions) for name in names},
            "send_hour_gap": {name: hour_gap_histogram(run.policies[name].send_hour_vs_active_hour)
                              for name in names},
        },
    }
    return jsonable(summary)


def jsonable(value: Any) -> Any:
    """Plain JSON data: numpy scalars to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def write_outputs(run: RunLog, out_dir: str | Path, target_policy: str = "fidelio",
                  lift_window_days: float = DEFAULT_EXPOSURE_WINDOW_DAYS) -> tuple[Path, Path]:
    """Write summary.json and report.html into `out_dir` (created if needed); return their paths."""
    return write_summary(build_summary(run, target_policy, lift_window_days=lift_window_days), out_dir)


def write_summary(summary: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write an already built summary as summary.json and report.html into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    report_path = out / "report.html"
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    report_path.write_text(render_report(summary), encoding="utf-8")
    return summary_path, report_path
