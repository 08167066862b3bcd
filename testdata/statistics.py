#!/usr/bin/env python3
"""Reference values for the collector's statistics (crates/collector/src/stats.rs), from scipy.

Writes testdata/statistics.json. Run `python3 testdata/statistics.py` (needs numpy and scipy:
`pip install scipy`); the JSON is committed so the Rust tests need no Python.
"""
import json
import os

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261129)
Z = stats.norm.ppf(0.975)


def proportion_case(c_conv, c_n, t_conv, t_n):
    p0, p1 = c_conv / c_n, t_conv / t_n
    pooled = (c_conv + t_conv) / (c_n + t_n)
    z = (p1 - p0) / np.sqrt(pooled * (1 - pooled) * (1 / c_n + 1 / t_n))
    se0, se1 = np.sqrt(p0 * (1 - p0) / c_n), np.sqrt(p1 * (1 - p1) / t_n)
    diff_se = np.hypot(se0, se1)
    rel = p1 / p0 - 1
    rel_se = np.sqrt((se1 / p0) ** 2 + (p1 * se0 / p0**2) ** 2)
    return {
        "control": [c_conv, c_n],
        "treatment": [t_conv, t_n],
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "absolute_lift": float(p1 - p0),
        "absolute_ci": [float(p1 - p0 - Z * diff_se), float(p1 - p0 + Z * diff_se)],
        "relative_lift": float(rel),
        "relative_ci": [float(rel - Z * rel_se), float(rel + Z * rel_se)],
    }


def revenue(n, rate, mean):
    """Per-unit values: most units 0, converters a log-normal amount."""
    converted = rng.random(n) < rate
    return np.where(converted, rng.lognormal(np.log(mean), 0.8, n), 0.0)


def welch_case(control, treatment):
    result = stats.ttest_ind(treatment, control, equal_var=False)
    ci = result.confidence_interval(0.95)
    m0, m1 = control.mean(), treatment.mean()
    se0 = control.std(ddof=1) / np.sqrt(len(control))
    se1 = treatment.std(ddof=1) / np.sqrt(len(treatment))
    t_crit = stats.t.ppf(0.975, result.df)
    rel = m1 / m0 - 1
    rel_se = np.sqrt((se1 / m0) ** 2 + (m1 * se0 / m0**2) ** 2)
    sums = lambda a: [len(a), float(a.sum()), float((a * a).sum())]  # noqa: E731
    return {
        "control": sums(control),
        "treatment": sums(treatment),
        "df": float(result.df),
        "p_value": float(result.pvalue),
        "absolute_lift": float(m1 - m0),
        "absolute_ci": [float(ci.low), float(ci.high)],
        "relative_lift": float(rel),
        "relative_ci": [float(rel - t_crit * rel_se), float(rel + t_crit * rel_se)],
    }


def srm_case(observed, weights):
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    result = stats.chisquare(observed, expected)
    return {
        "observed": observed,
        "weights": weights,
        "chi_square": float(result.statistic),
        "p_value": float(result.pvalue),
    }


cases = {
    "normal_cdf": [[z, float(stats.norm.cdf(z))] for z in [-8.0, -5.0, -3.3, -1.96, -0.5, 0.1, 1.0, 2.5, 4.0, 6.0]],
    "student_t_cdf": [
        [t, df, float(stats.t.cdf(t, df))]
        for t, df in [(-3.0, 1.0), (0.7, 2.0), (2.1, 5.0), (-1.3, 9.5), (2.0, 30.0), (4.5, 120.0), (-2.2, 2500.0), (1.96, 1e6)]
    ],
    "student_t_quantile_975": [[df, float(stats.t.ppf(0.975, df))] for df in [1.0, 2.0, 4.5, 10.0, 57.3, 1000.0, 1e6]],
    "chi_square_sf": [
        [x, df, float(stats.chi2.sf(x, df))]
        for x, df in [(0.5, 1.0), (3.84, 1.0), (10.83, 1.0), (20.0, 1.0), (5.0, 2.0), (30.0, 3.0), (2.0, 7.0), (150.0, 9.0)]
    ],
    "two_proportion": [
        proportion_case(500, 10000, 560, 10000),
        proportion_case(120, 2400, 95, 2500),
        proportion_case(31000, 500000, 31500, 499000),
        proportion_case(3, 40, 9, 41),
    ],
    "welch": [
        welch_case(revenue(3000, 0.05, 40.0), revenue(3100, 0.06, 42.0)),
        welch_case(revenue(500, 0.2, 10.0), revenue(450, 0.15, 12.0)),
        welch_case(rng.normal(5.0, 2.0, 40), rng.normal(5.8, 3.5, 25)),
    ],
    "sample_ratio": [
        srm_case([5000, 5000], [5000, 5000]),
        srm_case([5000, 5210], [5000, 5000]),
        srm_case([4000, 3000, 3000], [4000, 3000, 3000]),
        srm_case([9000, 1200], [9000, 1000]),
        srm_case([33500, 33000, 33900], [1, 1, 1]),
    ],
}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statistics.json")
with open(path, "w") as out:
    json.dump(cases, out, indent=1)
    out.write("\n")
print(f"wrote {path}")
