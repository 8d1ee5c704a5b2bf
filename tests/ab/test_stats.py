"""The report's statistics against scipy's reference functions, and the always-valid test under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hotpath.ab import stats as ab


@pytest.mark.parametrize("x1,n1,x2,n2", [(120, 1000, 150, 1000), (5000, 20000, 5210, 20100), (3, 50, 9, 40)])
def test_two_proportion_z_equals_the_2x2_chi_square(x1, n1, x2, n2) -> None:
    t = ab.two_proportion_ztest(x1, n1, x2, n2)
    chi2, p, _, _ = stats.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert t.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert t.p_value == pytest.approx(p, rel=1e-9)
    assert math.copysign(1, t.statistic) == math.copysign(1, x2 / n2 - x1 / n1)
    assert t.diff == pytest.approx(x2 / n2 - x1 / n1)
    assert t.lift == pytest.approx((x2 / n2) / (x1 / n1) - 1)
    assert t.ci_low < t.diff < t.ci_high


def test_welch_matches_scipy_ttest_ind_unequal_variances() -> None:
    rng = np.random.default_rng(1)
    a = rng.lognormal(3, 1, 700) * (rng.random(700) < 0.1)
    b = rng.lognormal(3.1, 1.2, 900) * (rng.random(900) < 0.1)
    t = ab.welch(a.mean(), a.std(ddof=1), len(a), b.mean(), b.std(ddof=1), len(b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert t.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (t.ci_low, t.ci_high) == (pytest.approx(ci.low, rel=1e-7), pytest.approx(ci.high, rel=1e-7))


def test_srm_is_scipy_chisquare_and_flags_a_skew() -> None:
    res = ab.srm({"a": 5100, "b": 4900}, {"a": 0.5, "b": 0.5}, alpha=0.05)
    ref = stats.chisquare([5100, 4900], [5000, 5000])
    assert res["chi2"] == pytest.approx(ref.statistic) and res["p_value"] == pytest.approx(ref.pvalue)
    assert res["flagged"]
    assert not ab.srm({"a": 5010, "b": 4990}, {"a": 0.5, "b": 0.5})["flagged"]
    three = ab.srm({"a": 900, "b": 450, "holdout": 150}, {"a": 0.6, "b": 0.3, "holdout": 0.1})
    assert three["p_value"] == pytest.approx(stats.chisquare([900, 450, 150], [900, 450, 150]).pvalue)


def test_rate_and_mean_intervals() -> None:
    r = ab.proportion_ci(37, 400)
    ci = stats.binomtest(37, 400).proportion_ci(method="wilson")
    assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    v = np.arange(50, dtype=float)
    m = ab.mean_ci(v)
    lo, hi = stats.t.interval(0.95, 49, loc=v.mean(), scale=stats.sem(v))
    assert (m.ci_low, m.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_always_valid_p_resists_peeking_where_the_fixed_horizon_p_does_not() -> None:
    """A/A runs looked at 50 times each: stopping at the first fixed-horizon p < 0.05 finds a
    'winner' far more often than 5 %; the mSPRT p stays below alpha in at most ~5 %."""
    rng = np.random.default_rng(5)
    runs, looks, per_look, p = 300, 50, 200, 0.1
    naive = seq = 0
    for _ in range(runs):
        a = np.cumsum(rng.binomial(per_look, p, looks))
        b = np.cumsum(rng.binomial(per_look, p, looks))
        n = per_look * np.arange(1, looks + 1)
        hit_naive = hit_seq = False
        for x1, x2, k in zip(a, b, n):
            t = ab.two_proportion_ztest(int(x1), int(k), int(x2), int(k))
            hit_naive |= t.p_value < 0.05
            p1, p2 = x1 / k, x2 / k
            var = p1 * (1 - p1) / k + p2 * (1 - p2) / k
            hit_seq |= ab.msprt_pvalue(p2 - p1, var, 0.1 * p1) < 0.05
        naive += hit_naive
        seq += hit_seq
    assert naive / runs > 0.15
    assert seq / runs <= 0.06


def test_msprt_detects_a_real_difference() -> None:
    k = 40000
    p1, p2 = 0.20, 0.22
    var = p1 * (1 - p1) / k + p2 * (1 - p2) / k
    assert ab.msprt_pvalue(p2 - p1, var, 0.1 * p1) < 1e-3
    assert ab.msprt_pvalue(0.0, var, 0.02) == 1.0
