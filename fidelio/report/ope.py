"""Off-policy evaluation: what a target policy would have earned, estimated from the decision log.

The log holds, per decision, the action the engine took and its logging propensity. A target
policy T is deterministic: `d.target_action[T]` is an index into `d.top` (the engine's best
candidates) or -1 for "send nothing". With w = 1[logged action == T's action] / propensity:

    IPS   = mean(w · r)
    SNIPS = Σ(w · r) / Σ(w)
    DR    = mean(q̂_T + w · (r − q̂_logged))

q̂_T is `d.model_estimate[T]`, the engine's predicted reward of T's action. DR needs q̂ of the
logged action only where w > 0, that is where the logged action *is* T's action, so there
q̂_logged = q̂_T: for a deterministic target `model_estimate["__logged__"]` is not needed (it is
not read). Holdout decisions are left out: their action was forced to "send nothing" while their
propensity refers to the intended action, so the pair does not describe the logging policy.
Intervals: percentile bootstrap over decisions (seeded). The truth, when the simulator provides
it, is the mean of `d.truth[T]` over the same decisions. See docs/report.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fidelio.report.log import LoggedDecision
from fidelio.report.measure import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    bootstrap_sums,
    finite_or_none,
    percentile_interval,
)

NOTHING = -1  # target_action / logged index of "send nothing"
# A logged send that is none of the top candidates: no target policy can take it.
OUTSIDE_TOP = -2
ESTIMATORS = ("ips", "snips", "dr")
_SEND_AT_TOLERANCE_S = 1e-3


class InvalidPropensity(ValueError):
    """A logged propensity outside (0, 1]: the log cannot support an importance weight."""


def logged_index(decision: LoggedDecision) -> int:
    """Which of the decision's top candidates was logged: its index, NOTHING, or OUTSIDE_TOP.

    A send is identified by (offer_id, channel, send_at); send times match within a millisecond.
    """
    action = decision.action
    if action.get("kind") != "send":
        return NOTHING
    for i, candidate in enumerate(decision.top):
        if (candidate.get("offer_id") == action.get("offer_id")
                and candidate.get("channel") == action.get("channel")
                and _same_time(candidate.get("send_at"), action.get("send_at"))):
            return i
    return OUTSIDE_TOP


def _same_time(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= _SEND_AT_TOLERANCE_S


def target_policies(decisions: Sequence[LoggedDecision]) -> list[str]:
    """Every target policy named in the log, sorted."""
    return sorted({name for d in decisions for name in d.target_action})


def _empty_estimate() -> dict[str, float | None]:
    return {"estimate": None, "ci_low": None, "ci_high": None}


def off_policy_value(
    decisions: Sequence[LoggedDecision],
    target: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    """IPS, SNIPS and DR estimates of target policy `target`'s mean reward per decision, with CIs.

    Returns {"target", "n", "truth", "ips", "snips", "dr", ...}; each estimator is
    {"estimate", "ci_low", "ci_high"} (None when undefined: no decisions, no matches for SNIPS,
    a missing model estimate for DR). Also: `logged_mean` (the mean observed reward of the
    logging policy on the same decisions), `matched` (decisions where the logged action is T's),
    `ess` (effective sample size (Σw)²/Σw²), and the counts of excluded decisions.
    """
    holdout = sum(1 for d in decisions if d.holdout)
    used = [d for d in decisions if not d.holdout and target in d.target_action]
    result: dict[str, Any] = {
        "target": target, "n": len(used), "truth": None,
        **{name: _empty_estimate() for name in ESTIMATORS},
        "logged_mean": None, "matched": 0, "ess": None,
        "holdout_excluded": holdout,
        "without_target": len(decisions) - holdout - len(used),
        "level": level, "resamples": resamples, "seed": seed,
    }
    if not used:
        return result
    propensity = np.array([d.propensity for d in used], dtype=float)
    bad = np.flatnonzero(~((propensity > 0) & (propensity <= 1 + 1e-9)))
    if bad.size:
        d = used[int(bad[0])]
        raise InvalidPropensity(
            f"decision {d.decision_id}: propensity {d.propensity!r} is outside (0, 1]; "
            f"{bad.size} decision(s) affected")
    reward = np.array([d.reward for d in used], dtype=float)
    matched = np.array([logged_index(d) == d.target_action[target] for d in used], dtype=bool)
    w = np.where(matched, 1.0 / propensity, 0.0)
    wr = w * reward
    has_model = all(target in d.model_estimate for d in used)
    q_target = np.array([d.model_estimate.get(target, 0.0) for d in used], dtype=float)
    # q̂_logged = q̂_T wherever w > 0 (see the module docstring); elsewhere its weight is 0.
    dr_terms = q_target + w * (reward - q_target)

    n = len(used)
    result["matched"] = int(matched.sum())
    result["logged_mean"] = float(reward.mean())
    result["ess"] = float(w.sum() ** 2 / (w**2).sum()) if matched.any() else 0.0
    if all(target in d.truth for d in used):
        result["truth"] = float(np.mean([d.truth[target] for d in used]))

    sums = bootstrap_sums(np.vstack([wr, w, dr_terms]), resamples, np.random.default_rng(seed))
    ips_samples = sums[:, 0] / n
    with np.errstate(divide="ignore", invalid="ignore"):
        snips_samples = np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan)
    dr_samples = sums[:, 2] / n

    result["ips"] = _estimate(wr.sum() / n, ips_samples, level)
    if w.sum() > 0:
        result["snips"] = _estimate(wr.sum() / w.sum(), snips_samples, level)
    if has_model:
        result["dr"] = _estimate(dr_terms.sum() / n, dr_samples, level)
    return result


def _estimate(point: float, samples: np.ndarray, level: float) -> dict[str, float | None]:
    low, high = percentile_interval(samples, level)
    return {"estimate": finite_or_none(point), "ci_low": low, "ci_high": high}


def off_policy_values(
    decisions: Sequence[LoggedDecision],
    targets: Sequence[str] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, dict[str, Any]]:
    """`off_policy_value` for each target (default: every target named in the log)."""
    names = list(targets) if targets is not None else target_policies(decisions)
    return {name: off_policy_value(decisions, name, resamples=resamples, seed=seed, level=level)
            for name in names}
