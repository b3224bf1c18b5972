"""BG/NBD purchase model and Gamma-Gamma spend model, fitted by maximum likelihood.

BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
Science 24(2). While alive a customer buys as a Poisson process of rate lambda ~
Gamma(r, alpha); after each purchase they drop out with probability p ~ Beta(a, b).
A customer is summarised by x (repeat purchases), t_x (time of the last purchase) and T
(time since the first purchase), all measured from the first purchase; we use weeks.

Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer
base analysis", JMR 42(4). A customer's spend per transaction is Gamma(p, nu) with nu ~
Gamma(q, gamma), independent of the purchase process; z_bar is the mean of x transactions.
Its conditional expectation is closed form and lives in functions.domain.churn, which
serves it; this module only fits it.

Training side only (scipy). Likelihoods are written in log space with gammaln/betaln;
optimisation runs on log-parameters from several starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from functions.domain.churn import GammaGammaParams, expected_spend_per_purchase

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "GammaGammaFit",
    "GammaGammaParams",
    "bgnbd_gradient",
    "bgnbd_log_likelihood",
    "conditional_expected_purchases",
    "expected_purchases_new_customer",
    "expected_spend_per_purchase",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_log_likelihood",
    "p_alive",
    "simulate_bgnbd",
]

LOG_BOUND = 12.0  # |log(parameter)| <= 12: e^12 ~ 1.6e5, far outside any fitted value
BGNBD_STARTS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 1.0, 1.0, 1.0),
    (0.5, 5.0, 0.5, 2.0),
    (0.2, 2.0, 1.5, 5.0),
    (2.0, 20.0, 0.2, 0.5),
)
GAMMA_GAMMA_STARTS: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 1.0),
    (5.0, 3.0, 15.0),
    (2.0, 5.0, 50.0),
)


class FitFailed(RuntimeError):
    """The optimiser did not converge from any start; the message says what it saw."""


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float  # total over customers
    n_customers: int
    starts_converged: int


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    n_customers: int
    starts_converged: int


def _arrays(*values: object) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


# --- BG/NBD ---------------------------------------------------------------------------


def _log_dropout_term(r: float, alpha: float, a: float, b: float,
                      x: np.ndarray, t_x: np.ndarray) -> np.ndarray:
    """log[a / (b + x - 1)] - (r + x) log(alpha + t_x) for x > 0; -inf when x == 0 (no repeat
    purchase: the customer cannot have dropped out after one, BG/NBD's delta_{x>0})."""
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    term = math.log(a) - np.log(b + safe_x - 1.0) - (r + safe_x) * np.log(alpha + t_x)
    return np.where(repeat, term, -np.inf)


def bgnbd_log_likelihood(params: BgNbdParams, x: object, t_x: object, T: object) -> np.ndarray:
    """Per-customer log-likelihood (FHL 2005, eq. 6), computed in log space:
    log[B(a, b+x)/B(a, b)] + log[G(r+x) alpha^r / G(r)]
      + log[(alpha+T)^-(r+x) + delta_{x>0} a/(b+x-1) (alpha+t_x)^-(r+x)]."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + betaln(a, b + x) - betaln(a, b)
    survive = -(r + x) * np.log(alpha + T)
    return common + np.logaddexp(survive, _log_dropout_term(r, alpha, a, b, x, t_x))


def bgnbd_gradient(params: BgNbdParams, x: object, t_x: object, T: object,
                   weights: object | None = None) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient with respect to log(r, alpha, a, b)."""
    x, t_x, T = _arrays(x, t_x, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + betaln(a, b + x) - betaln(a, b)
    survive = -(r + x) * np.log(alpha + T)
    dropout = _log_dropout_term(r, alpha, a, b, x, t_x)
    total = np.logaddexp(survive, dropout)
    w_survive, w_dropout = np.exp(survive - total), np.exp(dropout - total)  # shares of the two terms
    repeat = x > 0
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w_survive * np.log(alpha + T) - w_dropout * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_survive / (alpha + T) + w_dropout / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w_dropout / a
    d_b = digamma(b + x) - digamma(a + b + x) - digamma(b) + digamma(a + b) - np.where(repeat, w_dropout / b_x1, 0.0)
    grad = np.array([w @ d_r * r, w @ d_alpha * alpha, w @ d_a * a, w @ d_b * b])
    return float(w @ (common + total)), grad


def _minimise(objective, starts: tuple[tuple[float, ...], ...], jac: bool) -> tuple[np.ndarray, float, int]:
    """L-BFGS-B from several log-space starts, keeping the best. Without an analytic gradient
    the best is polished by Nelder-Mead (finite differences are coarse near the optimum)."""
    best, converged = None, 0
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(starts[0])
    for start in starts:
        result = optimize.minimize(objective, np.log(np.asarray(start, dtype=np.float64)), method="L-BFGS-B",
                                   jac=jac, bounds=bounds, options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-9})
        if not np.isfinite(result.fun):
            continue
        converged += int(bool(result.success))
        if best is None or result.fun < best.fun:
            best = result
    if best is None:
        raise FitFailed(f"no start gave a finite likelihood (starts: {starts})")
    theta, value = np.asarray(best.x), float(best.fun)
    if not jac:
        polished = optimize.minimize(objective, best.x, method="Nelder-Mead",
                                     options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-13})
        if polished.fun <= value:
            theta, value = np.asarray(polished.x), float(polished.fun)
    if np.any(np.abs(theta) >= LOG_BOUND - 1e-6):
        raise FitFailed(f"a parameter hit its bound: {np.exp(theta)} (degenerate data?)")
    return theta, value, converged


def fit_bgnbd(x: object, t_x: object, T: object, weights: object | None = None,
              starts: tuple[tuple[float, float, float, float], ...] = BGNBD_STARTS) -> BgNbdFit:
    """Maximum-likelihood BG/NBD (analytic gradient). `weights` counts identical customers."""
    x, t_x, T = _arrays(x, t_x, T)
    if not (x.shape == t_x.shape == T.shape) or x.size == 0:
        raise ValueError("x, t_x and T must be non-empty arrays of one shape")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9) or np.any((x > 0) & (t_x <= 0)):
        raise ValueError("need x >= 0, 0 <= t_x <= T, and t_x > 0 when x > 0")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())

    def negative_mean_ll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        value, grad = bgnbd_gradient(BgNbdParams(r, alpha, a, b), x, t_x, T, w)
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(4)
        return -value / total, -grad / total

    theta, value, converged = _minimise(negative_mean_ll, starts, jac=True)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BgNbdFit(BgNbdParams(r, alpha, a, b), -value * total, round(total), converged)


def p_alive(params: BgNbdParams, x: object, t_x: object, T: object) -> np.ndarray:
    """P(still alive at T | x, t_x, T) = 1 / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).
    It is 1 for every customer without a repeat purchase."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = _log_dropout_term(r, alpha, a, b, x, t_x) + (r + x) * np.log(alpha + T)
    return expit(-log_odds_dead)


def _one_minus_survival_series(params: BgNbdParams, t: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t).

    Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product
    into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the divergent growth in x of the first form
    (C-A-B = a-1-r-x < 0) is gone and the series converges fast for every x."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    return 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)


def conditional_expected_purchases(params: BgNbdParams, t: float, x: object, t_x: object, T: object) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005, eq. 10)."""
    x, t_x, T = _arrays(x, t_x, T)
    a, b = params.a, params.b
    if abs(a - 1.0) < 1e-9:
        raise ValueError("a == 1 makes the BG/NBD expectation's closed form singular")
    horizon = np.full_like(x, float(t))
    alive = p_alive(params, x, t_x, T)
    return (a + b + x - 1.0) / (a - 1.0) * _one_minus_survival_series(params, horizon, x, T) * alive


def expected_purchases_new_customer(params: BgNbdParams, t: object) -> np.ndarray:
    """E[X(t)] for a customer seen from their first purchase (FHL 2005, eq. 9)."""
    (t,) = _arrays(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t)
    tail = np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - tail)


def simulate_bgnbd(params: BgNbdParams, T: object, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for T weeks after their first purchase."""
    (T,) = _arrays(T)
    n = T.size
    rate = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    dropout = rng.beta(params.a, params.b, size=n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = rng.random(n) >= 0.0  # alive after the first purchase
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / rate[idx])
        bought = now[idx] <= T[idx]
        hit = idx[bought]
        x[hit] += 1.0
        t_x[hit] = now[hit]
        active[idx[~bought]] = False
        active[hit] = rng.random(hit.size) >= dropout[hit]
    return x, t_x


# --- Gamma-Gamma -----------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGammaParams, x: object, z_bar: object) -> np.ndarray:
    """log f(z_bar | x; p, q, gamma): z_bar, the mean of x > 0 transactions, is
    Gamma(p x, nu x) with nu ~ Gamma(q, gamma)."""
    x, z = _arrays(x, z_bar)
    p, q, v = params.p, params.q, params.v
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * math.log(v)
            + (px - 1.0) * np.log(z) + px * np.log(x) - (px + q) * np.log(v + x * z))


def fit_gamma_gamma(x: object, z_bar: object,
                    starts: tuple[tuple[float, float, float], ...] = GAMMA_GAMMA_STARTS) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma on customers with x > 0 and z_bar > 0 (others are
    dropped: a zero mean carries no information about the spend scale)."""
    x, z = _arrays(x, z_bar)
    keep = (x > 0) & (z > 0)
    x, z = x[keep], z[keep]
    if x.size < 3:
        raise ValueError("Gamma-Gamma needs customers with x > 0 and a positive mean spend")

    def negative_mean_ll(theta: np.ndarray) -> float:
        p, q, v = np.exp(theta)
        value = -float(np.mean(gamma_gamma_log_likelihood(GammaGammaParams(p, q, v), x, z)))
        return value if math.isfinite(value) else 1e300

    theta, value, converged = _minimise(negative_mean_ll, starts, jac=False)
    p, q, v = (float(t) for t in np.exp(theta))
    return GammaGammaFit(GammaGammaParams(p, q, v), -value * x.size, int(x.size), converged)
