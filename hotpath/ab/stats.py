"""The statistics of an A/B report, on scipy's distributions.

- :func:`proportion_ci`: Wilson interval of a rate (``scipy.stats.binomtest``).
- :func:`two_proportion_ztest`: pooled two-proportion z-test (its square is the 2x2 chi-square
  without continuity correction).
- :func:`welch`: Welch's t-test from summary statistics (``scipy.stats.ttest_ind_from_stats``,
  ``equal_var=False``) with the Welch-Satterthwaite interval of the difference of means.
- :func:`srm`: sample-ratio mismatch, chi-square goodness of fit of group sizes (``scipy.stats.chisquare``).
- :func:`msprt_pvalue`: an always-valid p-value (mixture sequential probability ratio test with a
  normal mixture, Johari et al. 2017): safe to look at as often as one likes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as st

__all__ = ["Rate", "Mean", "Test", "proportion_ci", "two_proportion_ztest", "welch", "srm", "msprt_pvalue", "mean_ci"]


@dataclass(frozen=True, slots=True)
class Rate:
    successes: int
    trials: int
    value: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Mean:
    n: int
    value: float
    std: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Test:
    """A comparison of a variant with the control: difference, relative lift, interval, p-value."""

    method: str
    diff: float
    lift: float | None
    """``diff / control`` (None when the control's value is 0)."""
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float
    significant: bool
    p_sequential: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def proportion_ci(x: int, n: int, alpha: float = 0.05) -> Rate:
    if n <= 0:
        return Rate(x, n, float("nan"), float("nan"), float("nan"))
    ci = st.binomtest(int(x), int(n)).proportion_ci(confidence_level=1 - alpha, method="wilson")
    return Rate(int(x), int(n), x / n, float(ci.low), float(ci.high))


def mean_ci(values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> Mean:
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return Mean(0, float("nan"), float("nan"), float("nan"), float("nan"))
    m = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(st.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else float("nan")
    return Mean(n, m, sd, m - half, m + half)


def two_proportion_ztest(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> Test:
    """Variant (x2/n2) against control (x1/n1): pooled-variance z, unpooled interval of p2 - p1."""
    if min(n1, n2) <= 0:
        return Test("two_proportion_z", float("nan"), None, float("nan"), float("nan"), float("nan"), 1.0, False)
    p1, p2 = x1 / n1, x2 / n2
    pool = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    z = (p2 - p1) / se0 if se0 > 0 else 0.0
    p = float(2 * st.norm.sf(abs(z)))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    q = float(st.norm.ppf(1 - alpha / 2))
    d = p2 - p1
    return Test("two_proportion_z", d, d / p1 if p1 > 0 else None, d - q * se, d + q * se, z, p, p < alpha)


def welch(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int, alpha: float = 0.05) -> Test:
    """Welch's t of the variant's mean (m2) against the control's (m1), from means, standard
    deviations (ddof=1) and counts."""
    if min(n1, n2) < 2:
        return Test("welch_t", float("nan"), None, float("nan"), float("nan"), float("nan"), 1.0, False)
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    d = m2 - m1
    if v1 + v2 == 0:
        return Test("welch_t", d, d / m1 if m1 else None, d, d, 0.0, 1.0 if d == 0 else 0.0, d != 0)
    res = st.ttest_ind_from_stats(m2, s2, n2, m1, s1, n1, equal_var=False)
    dof = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    half = float(st.t.ppf(1 - alpha / 2, dof)) * math.sqrt(v1 + v2)
    p = float(res.pvalue)
    return Test("welch_t", d, d / m1 if m1 else None, d - half, d + half, float(res.statistic), p, p < alpha)


def srm(observed: Mapping[str, int], expected_shares: Mapping[str, float], alpha: float = 0.001) -> dict:
    """Chi-square goodness of fit of the groups' sizes to the configured shares."""
    names = [k for k in expected_shares]
    obs = np.array([observed.get(k, 0) for k in names], dtype=np.float64)
    total = obs.sum()
    shares = np.array([expected_shares[k] for k in names], dtype=np.float64)
    shares = shares / shares.sum()
    if total <= 0 or len(names) < 2:
        return {"chi2": 0.0, "p_value": 1.0, "flagged": False, "observed": dict(zip(names, obs.astype(int).tolist())), "expected": {}}
    exp = shares * total
    res = st.chisquare(obs, exp)
    p = float(res.pvalue)
    return {
        "chi2": float(res.statistic),
        "p_value": p,
        "flagged": p < alpha,
        "alpha": alpha,
        "observed": dict(zip(names, obs.astype(int).tolist())),
        "expected": dict(zip(names, [round(float(e), 1) for e in exp])),
    }


def msprt_pvalue(diff: float, var: float, tau: float) -> float:
    """Always-valid p-value of ``diff`` (an estimate with variance ``var``) against 0, with a
    ``N(0, tau^2)`` mixture over the true difference: ``1 / Lambda`` where
    ``Lambda = sqrt(var / (var + tau^2)) * exp(tau^2 diff^2 / (2 var (var + tau^2)))``."""
    if not var > 0 or not tau > 0 or math.isnan(diff):
        return 1.0
    t2 = tau * tau
    log_lam = 0.5 * math.log(var / (var + t2)) + t2 * diff * diff / (2 * var * (var + t2))
    return float(min(1.0, math.exp(-log_lam)))
