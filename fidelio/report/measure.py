"""Measurements of a run: lift against the holdout, net value per policy, fairness by segment.

Pure functions of the run log's plain data (fidelio/report/log.py); no I/O. Every interval is a
seeded nonparametric bootstrap, so the same log and seed give the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from fidelio.report.log import Exposure, LoggedDecision, MemberOutcome, PolicyOutcome, Redemption

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
# Per message, in the currency of the revenue (EUR in the simulator); see docs/report.md.
DEFAULT_SEND_COST: dict[str, float] = {"email": 0.001, "push": 0.0005, "sms": 0.04}
# Lost future value of a member who can no longer be reached on a channel (an assumption).
DEFAULT_UNSUBSCRIBE_COST = 10.0
# Segments smaller than this are shown but left out of the disparity ratio (too noisy).
FAIRNESS_MIN_MEMBERS = 30
LIFT_METRICS = ("purchases", "revenue", "conversions")
# How long after a message (or a withheld one) a redemption of its offer counts for it: the
# simulator's message conversions happen within 7 days of the click; see docs/report.md.
DEFAULT_EXPOSURE_WINDOW_DAYS = 7.0
TIER_ORDER = ("bronze", "silver", "gold", "platinum")
AGE_ORDER = ("<25", "25-34", "35-49", "50-64", "65+", "unknown")
# Keeps one resampling block under ~4M gathered values (about 32 MB per column).
_BLOCK_VALUES = 4_000_000


class UnknownMetric(ValueError):
    """A lift metric the member outcomes do not carry."""


class UnknownChannelCost(ValueError):
    """A policy sent on a channel with no configured send cost."""


# --- bootstrap ---------------------------------------------------------------------------------


def bootstrap_sums(columns: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of each column over `resamples` bootstrap resamples of the rows.

    `columns` has shape (k, n): k quantities measured on the same n units, resampled together
    (a unit's values stay paired). Returns shape (resamples, k). Resampling runs in blocks so a
    large log never materialises a resamples × n index matrix at once.
    """
    columns = np.atleast_2d(np.asarray(columns, dtype=float))
    k, n = columns.shape
    out = np.zeros((resamples, k))
    if n == 0:
        return out
    block = max(1, _BLOCK_VALUES // n)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        for j in range(k):
            out[start:stop, j] = columns[j][idx].sum(axis=1)
    return out


def percentile_interval(samples: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float | None, float | None]:
    """The central `level` percentile interval of bootstrap replicates, ignoring undefined ones."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an undefined figure is null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- lift against the holdout ------------------------------------------------------------------


def member_metric(outcome: MemberOutcome, metric: str) -> float:
    """One member's value of a lift metric.

    purchases: every purchase in the run; revenue: all purchase revenue; conversions: every offer
    redemption, attributed to a message or organic (a holdout member has no message-attributed
    conversions by construction, so only the total is comparable between the groups).
    """
    if metric == "purchases":
        return float(outcome.purchases)
    if metric == "revenue":
        return float(outcome.revenue)
    if metric == "conversions":
        return float(outcome.conversions + outcome.organic_conversions)
    raise UnknownMetric(f"lift metric {metric!r}; supported: {', '.join(LIFT_METRICS)}")


def lift(
    members_outcomes: Sequence[MemberOutcome],
    metric: str = "purchases",
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    """Treated (non-holdout) vs holdout, per member: relative lift and absolute difference, with CIs.

    relative = treated_mean / holdout_mean − 1. The interval resamples the treated and the holdout
    members independently (two samples), `resamples` times, and takes the percentile interval.
    Undefined figures (no holdout, a zero holdout mean) are None.
    """
    if metric not in LIFT_METRICS:
        raise UnknownMetric(f"lift metric {metric!r}; supported: {', '.join(LIFT_METRICS)}")
    treated = np.array([member_metric(m, metric) for m in members_outcomes if not m.holdout], dtype=float)
    holdout = np.array([member_metric(m, metric) for m in members_outcomes if m.holdout], dtype=float)
    result: dict[str, Any] = {
        "metric": metric,
        "relative": None, "ci_low": None, "ci_high": None,
        "absolute": None, "absolute_ci_low": None, "absolute_ci_high": None,
        "treated_mean": finite_or_none(treated.mean()) if treated.size else None,
        "holdout_mean": finite_or_none(holdout.mean()) if holdout.size else None,
        "treated_n": int(treated.size), "holdout_n": int(holdout.size),
        "level": level, "resamples": resamples, "seed": seed,
    }
    if treated.size == 0 or holdout.size == 0:
        return result
    treated_rng, holdout_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    treated_means = bootstrap_sums(treated, resamples, treated_rng)[:, 0] / treated.size
    holdout_means = bootstrap_sums(holdout, resamples, holdout_rng)[:, 0] / holdout.size
    t_mean, h_mean = float(treated.mean()), float(holdout.mean())
    result["absolute"] = t_mean - h_mean
    result["absolute_ci_low"], result["absolute_ci_high"] = percentile_interval(treated_means - holdout_means, level)
    if h_mean > 0:
        result["relative"] = t_mean / h_mean - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(holdout_means > 0, treated_means / holdout_means - 1.0, np.nan)
        result["ci_low"], result["ci_high"] = percentile_interval(ratios, level)
    return result


def exposure_outcomes(
    exposures: Sequence[Exposure], redemptions: Sequence[Redemption], window_days: float = DEFAULT_EXPOSURE_WINDOW_DAYS,
) -> dict[str, tuple[bool, int, int]]:
    """member id -> (holdout, exposures, exposures whose offer the member redeemed within the window).

    Only exposures with an offer count. A redemption counts for the latest exposure of the same
    member and offer that precedes it by less than the window, and for no other: an exposure is
    redeemed at most once, a redemption is counted at most once.
    """
    window = window_days * 86400.0
    by_pair: dict[tuple[str, str], list[Exposure]] = defaultdict(list)
    members: dict[str, list[int]] = {}
    holdout_of: dict[str, bool] = {}
    for exposure in exposures:
        if exposure.offer_id is None:
            continue
        by_pair[(exposure.member_id, exposure.offer_id)].append(exposure)
        members.setdefault(exposure.member_id, [0, 0])[0] += 1
        holdout_of[exposure.member_id] = exposure.holdout
    redeemed: set[str] = set()
    for redemption in sorted(redemptions, key=lambda r: r.at):
        candidates = [e for e in by_pair.get((redemption.member_id, redemption.offer_id), ())
                      if e.at <= redemption.at < e.at + window and e.decision_id not in redeemed]
        if candidates:
            latest = max(candidates, key=lambda e: e.at)
            redeemed.add(latest.decision_id)
            members[latest.member_id][1] += 1
    return {m: (holdout_of[m], n, y) for m, (n, y) in members.items()}


def exposure_lift(
    exposures: Sequence[Exposure],
    redemptions: Sequence[Redemption],
    *,
    window_days: float = DEFAULT_EXPOSURE_WINDOW_DAYS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    """Lift of the messages themselves: the share of offer messages whose offer was redeemed
    within `window_days`, treated members' sends against the holdout's withheld would-be sends.

    The holdout's would-be sends go through the same decisions, send times, caps and send-time
    checks as the treated members' sends and are withheld at the last step (ghost sends), so the
    two rates differ by what the messages caused: their redemptions, net of the organic
    redemptions of the same offers in the same windows. It leaves out the noise of every
    redemption no message was about, which is what makes the member-level lift (`lift`) need
    far more members. relative = treated rate / holdout rate − 1; absolute is per message;
    `incremental` = absolute × treated messages. The interval resamples members (a member's
    messages stay together) in each group independently; a replicate whose holdout rate is 0
    has an unbounded ratio, counted as +inf, so `ci_high` can be None (unbounded).
    """
    outcomes = exposure_outcomes(exposures, redemptions, window_days)
    groups = {flag: np.array([(n, y) for holdout, n, y in outcomes.values() if holdout is flag], dtype=float).reshape(-1, 2).T
              for flag in (False, True)}
    treated, holdout = groups[False], groups[True]
    result: dict[str, Any] = {
        "metric": "offer_redeemed_within_window", "method": "ghost_sends", "window_days": window_days,
        "relative": None, "ci_low": None, "ci_high": None,
        "absolute": None, "absolute_ci_low": None, "absolute_ci_high": None, "incremental": None,
        "treated_mean": None, "holdout_mean": None,
        "treated_exposures": int(treated[0].sum()), "holdout_exposures": int(holdout[0].sum()),
        "treated_redeemed": int(treated[1].sum()), "holdout_redeemed": int(holdout[1].sum()),
        "treated_n": int(treated.shape[1]), "holdout_n": int(holdout.shape[1]),
        "level": level, "resamples": resamples, "seed": seed,
    }
    if treated[0].sum() == 0 or holdout[0].sum() == 0:
        return result
    t_rate, h_rate = treated[1].sum() / treated[0].sum(), holdout[1].sum() / holdout[0].sum()
    result.update(treated_mean=float(t_rate), holdout_mean=float(h_rate), absolute=float(t_rate - h_rate),
                  incremental=float((t_rate - h_rate) * treated[0].sum()))
    treated_rng, holdout_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    t_sums = bootstrap_sums(treated, resamples, treated_rng)
    h_sums = bootstrap_sums(holdout, resamples, holdout_rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_rates = np.where(t_sums[:, 0] > 0, t_sums[:, 1] / t_sums[:, 0], np.nan)
        h_rates = np.where(h_sums[:, 0] > 0, h_sums[:, 1] / h_sums[:, 0], np.nan)
        ratios = np.where(h_rates > 0, t_rates / h_rates - 1.0, np.where(t_rates > 0, np.inf, np.nan))
    result["absolute_ci_low"], result["absolute_ci_high"] = percentile_interval(t_rates - h_rates, level)
    if h_rate > 0:
        result["relative"] = float(t_rate / h_rate - 1.0)
    defined = ratios[~np.isnan(ratios)]
    if defined.size:
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(defined, [tail, 1.0 - tail], method="inverted_cdf")
        result["ci_low"], result["ci_high"] = finite_or_none(low), finite_or_none(high)
    return result


def _binomial_tail(successes: int, trials: int, p: float, upper: bool) -> float:
    """P(X >= successes) (upper) or P(X <= successes) for X ~ Binomial(trials, p)."""
    ks = range(successes, trials + 1) if upper else range(0, successes + 1)
    return sum(math.comb(trials, k) * p**k * (1.0 - p) ** (trials - k) for k in ks)


def rate_ratio_interval(x: int, y: int, exposure_x: float, exposure_y: float,
                        level: float = DEFAULT_LEVEL) -> tuple[float | None, float | None]:
    """Exact interval for the ratio of two Poisson rates, (x / exposure_x) / (y / exposure_y).

    Given x + y, x is binomial with p = λx·ex / (λx·ex + λy·ey); the Clopper–Pearson interval
    for p maps to the ratio. For rare counts (a few unsubscribes per policy) it says how much a
    ratio of counts can be trusted. The upper bound is None when unbounded (y = 0); both are
    None without any event.
    """
    n = x + y
    if n == 0 or exposure_x <= 0 or exposure_y <= 0:
        return None, None
    alpha = (1.0 - level) / 2.0

    def solve(target: Callable[[float], float]) -> float:
        low, high = 0.0, 1.0  # target is increasing in p
        for _ in range(60):
            mid = (low + high) / 2.0
            low, high = (mid, high) if target(mid) < 0 else (low, mid)
        return (low + high) / 2.0

    p_low = 0.0 if x == 0 else solve(lambda p: _binomial_tail(x, n, p, upper=True) - alpha)
    p_high = 1.0 if x == n else solve(lambda p: alpha - _binomial_tail(x, n, p, upper=False))
    scale = exposure_y / exposure_x

    def ratio(p: float) -> float | None:
        return None if p >= 1.0 else p / (1.0 - p) * scale

    return ratio(p_low), ratio(p_high)


# --- net value ---------------------------------------------------------------------------------


def value_parameters(parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The cost parameters of net value: the defaults, overridden by the run's `parameters`.

    Reads `send_cost` (channel -> cost per message; channels not given keep their default) and
    `unsubscribe_cost` (cost per unsubscribe).
    """
    parameters = parameters or {}
    send_cost = dict(DEFAULT_SEND_COST)
    send_cost.update({str(k): float(v) for k, v in (parameters.get("send_cost") or {}).items()})
    unsubscribe_cost = parameters.get("unsubscribe_cost")
    return {
        "send_cost": send_cost,
        "unsubscribe_cost": float(DEFAULT_UNSUBSCRIBE_COST if unsubscribe_cost is None else unsubscribe_cost),
    }


def net_value_breakdown(policy: PolicyOutcome, params: Mapping[str, Any] | None = None) -> dict[str, float]:
    """revenue − Σ_channel sends(channel) × send_cost(channel) − unsubscribes × unsubscribe_cost.

    Send costs come from the policy's channel mix (not from `policy.send_cost`, so every policy is
    priced the same way). A channel without a configured cost is an error, not a free channel.
    """
    p = value_parameters(params)
    unknown = sorted(set(policy.channel_mix) - set(p["send_cost"]))
    if unknown:
        raise UnknownChannelCost(
            f"policy {policy.name!r} sent on {', '.join(unknown)}; send costs are configured for "
            f"{', '.join(sorted(p['send_cost']))} (set parameters['send_cost'])")
    send_cost = sum(count * p["send_cost"][channel] for channel, count in policy.channel_mix.items())
    unsubscribe_cost = policy.unsubscribes * p["unsubscribe_cost"]
    return {
        "revenue": float(policy.revenue),
        "send_cost": float(send_cost),
        "unsubscribe_cost": float(unsubscribe_cost),
        "net_value": float(policy.revenue - send_cost - unsubscribe_cost),
    }


def net_value(policy: PolicyOutcome, params: Mapping[str, Any] | None = None) -> float:
    """Net value of a policy's run; see `net_value_breakdown` for the formula."""
    return net_value_breakdown(policy, params)["net_value"]


# --- fairness ----------------------------------------------------------------------------------

# (dimension, label of a member's segment, display order of the labels)
_DIMENSIONS = (
    ("tier", lambda m: str(m.segment.tier), TIER_ORDER),
    ("age_band", lambda m: str(m.segment.age_band), AGE_ORDER),
    ("new_member", lambda m: "new" if m.segment.new_member else "existing", ("existing", "new")),
)


def _ordered(labels: Iterator[str] | set[str], order: Sequence[str]) -> list[str]:
    rank = {label: i for i, label in enumerate(order)}
    return sorted(labels, key=lambda label: (rank.get(label, len(order)), label))


def _ratio(values: list[float]) -> float | None:
    if len(values) < 2 or min(values) <= 0:
        return None
    return max(values) / min(values)


def fairness(
    members_outcomes: Sequence[MemberOutcome],
    decisions: Sequence[LoggedDecision] = (),
    *,
    min_members: int = FAIRNESS_MIN_MEMBERS,
) -> dict[str, Any]:
    """Offer value and send volume per member, by tier, age band and new vs existing.

    Holdout members are left out: they get no marketing by design, so they would only dilute
    every segment. Per segment: members, mean offer value received, mean sends and marketing
    sends, share of members who received at least one offer, and, from the decision log,
    decisions per member and the share of those decisions that sent something.
    Disparity per dimension: max / min of the mean offer value (and of the mean marketing sends)
    across the segments with at least `min_members` members; None when fewer than two segments
    qualify or the smallest mean is zero.
    """
    treated = [m for m in members_outcomes if not m.holdout]
    decisions_by_member: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in decisions:
        if d.holdout:
            continue
        counts = decisions_by_member[d.member_id]
        counts[0] += 1
        counts[1] += d.action.get("kind") == "send"
    by: dict[str, list[dict[str, Any]]] = {}
    disparity: dict[str, dict[str, Any]] = {}
    for dimension, label_of, order in _DIMENSIONS:
        groups: dict[str, list[MemberOutcome]] = defaultdict(list)
        for m in treated:
            groups[label_of(m)].append(m)
        rows: list[dict[str, Any]] = []
        for label in _ordered(set(groups), order):
            members = groups[label]
            n = len(members)
            made = sum(decisions_by_member[m.member_id][0] for m in members if m.member_id in decisions_by_member)
            sent = sum(decisions_by_member[m.member_id][1] for m in members if m.member_id in decisions_by_member)
            rows.append({
                "segment": label,
                "members": n,
                "offer_value_per_member": sum(m.offer_value_received for m in members) / n,
                "sends_per_member": sum(m.sends for m in members) / n,
                "marketing_sends_per_member": sum(m.marketing_sends for m in members) / n,
                "reached_share": sum(1 for m in members if m.offer_value_received > 0) / n,
                "decisions_per_member": made / n,
                "send_rate": sent / made if made else None,
                "in_disparity": n >= min_members,
            })
        by[dimension] = rows
        eligible = [r for r in rows if r["in_disparity"]]
        disparity[dimension] = {
            "segments_compared": len(eligible),
            "offer_value_ratio": _ratio([r["offer_value_per_member"] for r in eligible]),
            "marketing_sends_ratio": _ratio([r["marketing_sends_per_member"] for r in eligible]),
        }
    ratios = [d["offer_value_ratio"] for d in disparity.values() if d["offer_value_ratio"] is not None]
    return {
        "by": by,
        "disparity": disparity,
        "max_offer_value_ratio": max(ratios) if ratios else None,
        "min_members": min_members,
        "members": len(treated),
        "holdout_excluded": len(members_outcomes) - len(treated),
    }
