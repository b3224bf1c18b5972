"""Off-policy estimates on synthetic logs whose truth is known by construction.

The logging policy is epsilon-greedy over five top candidates, "send nothing" and two sends
outside the top list; its propensities are exact. Rewards are 10 × Bernoulli(p) with known p, so
the value of any deterministic target policy on the logged contexts is known.
"""

from __future__ import annotations

import numpy as np
import pytest

from fidelio.report.log import LoggedDecision
from fidelio.report.ope import NOTHING, OUTSIDE_TOP, InvalidPropensity, logged_index, off_policy_value

VALUE = 10.0  # reward of a conversion
TOP = 5
OUTSIDE = 2  # logged sends that are not among the top candidates


def synthetic_log(seed: int, n: int = 2000, epsilon: float = 0.3, model_noise: float = 0.05,
                  holdout_share: float = 0.0) -> list[LoggedDecision]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 12.0, size=(n, TOP + OUTSIDE))  # P(convert) of each send
    mean = VALUE * p  # true expected reward of each send
    # The logging policy's score: a noisy estimate minus a fatigue cost; "nothing" scores 0.
    score = mean + rng.normal(0.0, 0.4, size=mean.shape) - rng.uniform(0.0, 1.6, size=(n, 1))
    score[:, TOP:] -= 5.0  # sends outside the top list are never greedy
    scores = np.hstack([np.zeros((n, 1)), score])  # column 0 = nothing, column 1 + i = send i
    greedy = scores.argmax(axis=1)
    actions = scores.shape[1]
    probabilities = np.full((n, actions), epsilon / actions)
    probabilities[np.arange(n), greedy] += 1.0 - epsilon
    # One draw per decision from its own distribution (inverse CDF, vectorised).
    logged_actions = (rng.random((n, 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    logged_actions = np.minimum(logged_actions, actions - 1)
    converted = rng.random(n) < p[np.arange(n), np.maximum(logged_actions - 1, 0)]
    model_noise_draws = rng.normal(0.0, model_noise * VALUE, size=(n, 4))
    holdout = rng.random(n) < holdout_share
    truth_greedy = mean[:, :TOP].argmax(axis=1)
    # Python scalars from here on: the loop only assembles records.
    rows = zip(logged_actions.tolist(), greedy.tolist(), truth_greedy.tolist(), converted.tolist(),
               p.tolist(), score.tolist(), probabilities.tolist(), model_noise_draws.tolist(),
               holdout.tolist(), strict=True)
    decisions = []
    for i, (logged, greedy_i, best, conv, p_i, score_i, prob_i, noise_i, holdout_i) in enumerate(rows):
        send = logged - 1  # -1 = nothing
        reward = VALUE if send >= 0 and conv else 0.0
        top = [{"offer_id": f"o{j}", "channel": "email", "send_at": 1000.0 + j, "p": p_i[j],
                "ev": score_i[j], "propensity": prob_i[j + 1]} for j in range(TOP)]
        action = ({"kind": "none"} if send < 0 else
                  {"kind": "send", "offer_id": f"o{send}" if send < TOP else f"x{send}", "channel": "email",
                   "send_at": 1000.0 + send})
        targets = {"logging_greedy": greedy_i - 1, "truth_greedy": best, "always_nothing": NOTHING, "second": 1}
        truth = {name: (VALUE * p_i[a] if a >= 0 else 0.0) for name, a in targets.items()}
        model = {name: max(0.0, value + noise) if targets[name] >= 0 else 0.0
                 for (name, value), noise in zip(truth.items(), noise_i, strict=True)}
        decisions.append(LoggedDecision(
            decision_id=f"d{i}", member_id=f"m{i}", day=0, decided_at=0.0, trigger="purchase.completed",
            holdout=holdout_i, explored=logged != greedy_i, action=action, intended=action,
            propensity=prob_i[logged], p_nothing=prob_i[0], top=top, reward=reward, converted=reward > 0,
            truth=truth, model_estimate=model, target_action=targets))
    return decisions


@pytest.fixture(scope="module")
def replications() -> dict[str, list[dict]]:
    """50 seeded logs of 1,500 decisions, each evaluated for every target (300 resamples: fast)."""
    out: dict[str, list[dict]] = {t: [] for t in ("logging_greedy", "truth_greedy", "second")}
    for seed in range(50):
        log = synthetic_log(seed, n=1500)
        for target in out:
            out[target].append(off_policy_value(log, target, resamples=300, seed=seed))
    return out


@pytest.mark.parametrize("target", ["logging_greedy", "truth_greedy", "second"])
@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_each_interval_covers_the_truth_in_most_replications(replications, target, estimator):
    # Given 50 logs with known truth, When each estimator's 95 % interval is computed
    runs = replications[target]
    covered = sum(r[estimator]["ci_low"] <= r["truth"] <= r[estimator]["ci_high"] for r in runs)
    # Then it contains the truth in at least 85 % of them
    assert covered / len(runs) >= 0.85, (target, estimator, covered)


@pytest.mark.parametrize("target", ["logging_greedy", "truth_greedy", "second"])
def test_ips_is_unbiased(replications, target):
    # Given 50 independent logs, When IPS estimates the target's value on each
    errors = np.array([r["ips"]["estimate"] - r["truth"] for r in replications[target]])
    # Then the mean error is within three standard errors of zero
    assert abs(errors.mean()) < 3 * errors.std(ddof=1) / np.sqrt(errors.size), errors.mean()


def test_snips_and_dr_have_lower_variance_than_ips_with_a_good_model(replications):
    # Given a target the logging policy rarely takes (large, variable weights) and a good reward model
    runs = replications["truth_greedy"]
    spread = {e: np.std([r[e]["estimate"] - r["truth"] for r in runs]) for e in ("ips", "snips", "dr")}
    # Then the self-normalised and doubly robust estimates vary less than IPS
    assert spread["snips"] < spread["ips"], spread
    assert spread["dr"] < spread["ips"], spread
    width = {e: np.mean([r[e]["ci_high"] - r[e]["ci_low"] for r in runs]) for e in ("ips", "dr")}
    assert width["dr"] < width["ips"], width


def test_target_equal_to_the_logging_greedy_action_matches_most_decisions():
    # Given epsilon = 0.3 over 8 actions, the greedy action has propensity 0.7 + 0.3 / 8
    log = synthetic_log(seed=7, epsilon=0.3)
    # When the target is the logging policy's greedy choice
    result = off_policy_value(log, "logging_greedy", resamples=300)
    # Then about that share of decisions match, the weights are nearly constant (ESS ≈ matched)
    assert result["matched"] / result["n"] == pytest.approx(0.7375, abs=0.03)
    assert result["ess"] == pytest.approx(result["matched"], rel=0.02)
    # and every estimate is close to the truth, with a narrow interval
    for estimator in ("ips", "snips", "dr"):
        assert result[estimator]["estimate"] == pytest.approx(result["truth"], abs=0.15)
        assert result[estimator]["ci_high"] - result[estimator]["ci_low"] < 0.6


def test_a_policy_that_never_sends_is_worth_exactly_zero():
    # Given a log, When the target sends nothing (reward 0 whenever the logged action is nothing)
    result = off_policy_value(synthetic_log(seed=3, n=500), "always_nothing", resamples=200)
    # Then every estimate and interval is exactly zero, like the truth
    assert result["truth"] == 0.0
    for estimator in ("ips", "snips", "dr"):
        assert result[estimator] == {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_holdout_decisions_are_left_out():
    # Given a log where a fifth of the decisions are holdout
    log = synthetic_log(seed=5, n=1000, holdout_share=0.2)
    holdout = sum(d.holdout for d in log)
    # When one of them logs a huge reward (it cannot: holdout sends nothing; a bug must not leak in)
    next(d for d in log if d.holdout).reward = 1e6
    result = off_policy_value(log, "second", resamples=200)
    # Then the holdout decisions are excluded and counted, and the estimate is unaffected
    assert result["n"] == len(log) - holdout
    assert result["holdout_excluded"] == holdout
    assert result["ips"]["estimate"] < 10.0


def test_bootstrap_is_seeded_and_reproducible():
    log = synthetic_log(seed=11, n=600)
    first = off_policy_value(log, "second", resamples=300, seed=4)
    again = off_policy_value(log, "second", resamples=300, seed=4)
    other = off_policy_value(log, "second", resamples=300, seed=5)
    assert first == again
    assert first["ips"]["ci_low"] != other["ips"]["ci_low"]


def test_logged_action_is_identified_by_offer_channel_and_send_time():
    # Given a decision whose logged send matches top[2] except for the send time
    decision = synthetic_log(seed=1, n=1)[0]
    decision.action = {"kind": "send", "offer_id": "o2", "channel": "email", "send_at": 1002.0}
    assert logged_index(decision) == 2
    decision.action = {"kind": "send", "offer_id": "o2", "channel": "email", "send_at": 1002.0 + 3600}
    # Then it is not that candidate (a different send time is a different action)
    assert logged_index(decision) == OUTSIDE_TOP
    decision.action = {"kind": "send", "offer_id": "o2", "channel": "push", "send_at": 1002.0}
    assert logged_index(decision) == OUTSIDE_TOP
    decision.action = {"kind": "none"}
    assert logged_index(decision) == NOTHING


def test_an_impossible_propensity_is_refused_with_the_decision_named():
    log = synthetic_log(seed=2, n=50)
    log[10].propensity = 0.0
    with pytest.raises(InvalidPropensity, match="d10"):
        off_policy_value(log, "second")


def test_no_decision_for_the_target_gives_undefined_estimates():
    result = off_policy_value(synthetic_log(seed=2, n=20), "unknown_policy")
    assert result["n"] == 0
    assert result["ips"]["estimate"] is None and result["truth"] is None


def test_default_bootstrap_on_a_month_sized_log_is_fast():
    # Given a log the size of a month of a 2,000-member programme
    import time

    log = synthetic_log(seed=9, n=20000)
    started = time.process_time()  # CPU time: other jobs on the machine do not count
    off_policy_value(log, "truth_greedy")  # 1,000 resamples
    assert time.process_time() - started < 3.0
