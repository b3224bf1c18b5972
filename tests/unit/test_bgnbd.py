"""BG/NBD and Gamma-Gamma: the paper's fit on CDNOW, recovery on simulated customers, and the
closed forms' properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import hyp2f1
from scipy.stats import chi2

from fidelio.datasets import DatasetUnavailable
from fidelio.models.bgnbd import (
    BgNbdParams,
    bgnbd_gradient,
    bgnbd_log_likelihood,
    conditional_expected_purchases,
    expected_purchases_new_customer,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    p_alive,
    simulate_bgnbd,
)
from functions.domain.churn import GammaGammaParams, expected_spend_per_purchase

PAPER = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def paper_fit():
    from fidelio.models.churn import paper_fit as fit

    try:
        return fit()
    except DatasetUnavailable as error:
        pytest.skip(f"CDNOW (lifetimes==0.11.3 wheel) unavailable, cannot check the paper's fit: {error}")


def test_bgnbd_reproduces_the_papers_parameters_on_the_cdnow_cohort(paper_fit):
    # Given the 2,357-customer CDNOW cohort (39-week calibration) that FHL (2005) fit
    # When BG/NBD is fitted by maximum likelihood
    # Then r, alpha, a, b match the published 0.243, 4.414, 0.793, 2.426 within 1%
    #      and the log-likelihood is the published -9582.4
    assert paper_fit["n_customers"] == 2357
    assert paper_fit["bgnbd_max_rel_err"] <= 0.01, paper_fit["bgnbd"]
    assert paper_fit["bgnbd_log_likelihood"] == pytest.approx(-9582.4, abs=0.05)


def test_gamma_gamma_reproduces_the_papers_spend_parameters(paper_fit):
    # Given the same cohort's mean repeat-transaction values
    # When Gamma-Gamma is fitted
    # Then p, q, gamma match FHL (2005, "RFM and CLV"): 6.25, 3.74, 15.44
    assert paper_fit["gamma_gamma_max_rel_err"] <= 0.01, paper_fit["gamma_gamma"]


def test_fit_recovers_known_parameters_from_simulated_customers():
    # Given 4,000 customers simulated from known BG/NBD parameters (no download needed)
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.9, b=3.0)
    rng = np.random.default_rng(20050101)
    T = rng.uniform(26.0, 52.0, size=4000)
    x, t_x = simulate_bgnbd(truth, T, rng)

    # When BG/NBD is fitted
    fit = fit_bgnbd(x, t_x, T)

    # Then the optimum is at least as likely as the truth, the truth is inside the 99.9%
    # likelihood-ratio region, and every parameter is close to its true value
    ll_truth = float(bgnbd_log_likelihood(truth, x, t_x, T).sum())
    assert fit.log_likelihood >= ll_truth - 1e-6
    assert 2.0 * (fit.log_likelihood - ll_truth) < chi2.ppf(0.999, df=4)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fit.params, name) == pytest.approx(getattr(truth, name), rel=0.25), name


def test_simulated_repeat_purchases_match_the_closed_form_expectation():
    # Given customers simulated for 39 weeks from the paper's parameters
    rng = np.random.default_rng(7)
    T = np.full(20000, 39.0)
    x, _ = simulate_bgnbd(PAPER, T, rng)
    # Then their mean repeat purchases equals E[X(39)] within 4 standard errors
    expected = float(expected_purchases_new_customer(PAPER, 39.0))
    assert abs(x.mean() - expected) < 4 * x.std() / math.sqrt(x.size)


def test_log_likelihood_matches_the_papers_formula_term_by_term():
    # Given a few customers, including one without repeat purchases
    x, t_x, T = np.array([0.0, 1.0, 4.0]), np.array([0.0, 5.0, 30.0]), np.array([38.0, 38.0, 38.0])
    r, alpha, a, b = PAPER.r, PAPER.alpha, PAPER.a, PAPER.b
    # When the likelihood is computed directly (no logs) as in FHL (2005) eq. 6
    beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    direct = []
    for xi, ti, Ti in zip(x, t_x, T, strict=True):
        b_ab_x = math.gamma(a) * math.gamma(b + xi) / math.gamma(a + b + xi)
        b_a1 = math.gamma(a + 1) * math.gamma(b + xi - 1) / math.gamma(a + b + xi) if xi > 0 else 0.0
        lead = math.gamma(r + xi) * alpha**r / math.gamma(r)
        value = b_ab_x / beta * lead / (alpha + Ti) ** (r + xi)
        if xi > 0:
            value += b_a1 / beta * lead / (alpha + ti) ** (r + xi)
        direct.append(math.log(value))
    # Then the log-space implementation agrees
    np.testing.assert_allclose(bgnbd_log_likelihood(PAPER, x, t_x, T), direct, rtol=1e-10)


def test_analytic_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    T = rng.uniform(20.0, 40.0, size=500)
    x, t_x = simulate_bgnbd(PAPER, T, rng)
    theta = np.log([PAPER.r, PAPER.alpha, PAPER.a, PAPER.b])
    _, grad = bgnbd_gradient(PAPER, x, t_x, T)
    numeric = []
    for k in range(4):
        step = np.zeros(4)
        step[k] = 1e-6
        hi = bgnbd_log_likelihood(BgNbdParams(*np.exp(theta + step)), x, t_x, T).sum()
        lo = bgnbd_log_likelihood(BgNbdParams(*np.exp(theta - step)), x, t_x, T).sum()
        numeric.append((hi - lo) / 2e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_the_silence():
    # A customer with no repeat purchase cannot have dropped out (BG/NBD drops out after a purchase)
    assert p_alive(PAPER, [0.0, 0.0], [0.0, 0.0], [5.0, 70.0]).tolist() == [1.0, 1.0]
    # Same x and T: the longer since the last purchase (smaller t_x), the less likely alive
    alive = p_alive(PAPER, [3.0] * 4, [35.0, 25.0, 10.0, 2.0], [38.0] * 4)
    assert np.all(np.diff(alive) < 0) and np.all((alive > 0) & (alive < 1))
    # Same recency gap: more past purchases make the silence more telling
    assert p_alive(PAPER, [10.0], [20.0], [38.0])[0] < p_alive(PAPER, [2.0], [20.0], [38.0])[0]


def test_conditional_expectation_is_the_papers_formula_and_behaves():
    x = np.array([0.0, 1.0, 3.0, 10.0, 40.0])
    t_x = np.array([0.0, 20.0, 30.0, 37.0, 38.0])
    T = np.full(5, 38.86)
    horizon = 39.0
    # The Euler-transformed series equals FHL eq. 10 evaluated directly
    r, alpha, a, b = PAPER.r, PAPER.alpha, PAPER.a, PAPER.b
    z = horizon / (alpha + T + horizon)
    direct = ((a + b + x - 1) / (a - 1)
              * (1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
              * p_alive(PAPER, x, t_x, T))
    ours = conditional_expected_purchases(PAPER, horizon, x, t_x, T)
    np.testing.assert_allclose(ours, direct, rtol=1e-9)
    # More past purchases (all recent) mean more future purchases; a longer horizon means more
    assert np.all(np.diff(ours) > 0)
    assert np.all(conditional_expected_purchases(PAPER, 78.0, x, t_x, T) > ours)
    # Knowing nothing (x = t_x = T = 0) gives the unconditional E[X(t)]
    assert conditional_expected_purchases(PAPER, 39.0, [0.0], [0.0], [0.0])[0] == pytest.approx(
        float(expected_purchases_new_customer(PAPER, 39.0)), rel=1e-10)
    # Large counts stay finite
    assert np.isfinite(conditional_expected_purchases(PAPER, 52.0, [300.0], [38.0], [38.5])).all()


def test_gamma_gamma_recovers_spend_parameters_and_shrinks_to_the_population_mean():
    # Given mean spends simulated from Gamma-Gamma with known parameters
    truth = GammaGammaParams(p=6.0, q=4.0, v=15.0)
    rng = np.random.default_rng(11)
    x = rng.integers(1, 8, size=3000).astype(float)
    nu = rng.gamma(truth.q, 1.0 / truth.v, size=x.size)
    z_bar = rng.gamma(truth.p * x, 1.0 / (nu * x))
    # When fitted
    fit = fit_gamma_gamma(x, z_bar)
    # Then the parameters come back and the fit beats the truth's likelihood
    assert fit.log_likelihood >= gamma_gamma_log_likelihood(truth, x, z_bar).sum() - 1e-6
    assert fit.params.p == pytest.approx(truth.p, rel=0.25)
    population = fit.params.p * fit.params.v / (fit.params.q - 1)
    assert population == pytest.approx(truth.p * truth.v / (truth.q - 1), rel=0.1)
    # And the conditional mean moves from the population mean toward the member's own mean
    spend = expected_spend_per_purchase(truth, [0.0, 1.0, 5.0, 50.0], [100.0] * 4)
    assert spend[0] == pytest.approx(truth.p * truth.v / (truth.q - 1))
    assert np.all(np.diff(spend) > 0) and spend[-1] < 100.0
