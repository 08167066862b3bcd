#!/usr/bin/env python3
"""Reference values for the collector's statistics (crates/collector/src/stats.rs).

Writes testdata/statistics.json; the JSON is committed so the Rust tests need no Python.

* scipy: normal_cdf, student_t_cdf, student_t_quantile_975, chi_square_sf, two_proportion,
  welch, sample_ratio.
* GrowthBook's gbstats 0.8.0: sequential (SequentialTwoSidedTTest on ProportionStatistic and
  SampleMeanStatistic) and cuped (RegressionAdjustedStatistic with TwoSidedTTest and
  SequentialTwoSidedTTest), absolute and relative lift.
* statsmodels: holm and benjamini_hochberg (multipletests, methods "holm" and "fdr_bh").

To rerun, in a virtual environment with the pinned versions (`make test` does this in its own
environment and fails if the output differs from the committed file):

    pip install -r testdata/statistics-requirements.txt
    pip install --no-deps gbstats==0.8.0
    python3 testdata/statistics.py [--out DIR]

gbstats 0.8.0 declares numpy<2 and pandas<2, but the modules used here need only numpy, scipy and
pydantic. numpy 2 matters: the welch sums were written with it (numpy 2.4, scipy 1.17, statsmodels 0.15),
and numpy 1.x reproduces those draws and sums only to the last digit or so.
"""
import json
import math
import os
import sys

import numpy as np
from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, RegressionAdjustedStatistic, SampleMeanStatistic
from scipy import stats
from statsmodels.stats.multitest import multipletests

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


def revenue(n, rate, mean, generator=rng):
    """Per-unit values: most units 0, converters a log-normal amount."""
    converted = generator.random(n) < rate
    return np.where(converted, generator.lognormal(np.log(mean), 0.8, n), 0.0)


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


# Everything below draws from its own generator so the data above never changes.
second_rng = np.random.default_rng(20261130)


def exact_sum(values):
    """Correctly rounded, so the fixtures do not depend on numpy's summation order."""
    return math.fsum(float(v) for v in values)


def gbstats_result(test):
    result = test.compute_result()
    # A refused comparison (zero baseline, zero variance) would be gbstats' placeholder, not a reference value.
    assert result.error_message is None, result.error_message
    return {"estimate": float(result.expected), "ci": [float(result.ci[0]), float(result.ci[1])], "p_value": float(result.p_value)}


def both_lifts(make_test):
    return {kind: gbstats_result(make_test(kind)) for kind in ("absolute", "relative")}


def sequential_case(kind, control, treatment, tuning):
    """control/treatment are [n, sum, sum_of_squares]; for proportions sum_of_squares == sum."""

    def statistic(arm):
        n, total, squares = arm
        if kind == "proportion":
            return ProportionStatistic(n=n, sum=total)
        return SampleMeanStatistic(n=n, sum=total, sum_squares=squares)

    def make_test(difference_type):
        config = SequentialConfig(difference_type=difference_type, alpha=0.05, sequential_tuning_parameter=tuning)
        return SequentialTwoSidedTTest(statistic(control), statistic(treatment), config)

    return {"kind": kind, "control": control, "treatment": treatment, "tuning": tuning, "alpha": 0.05, **both_lifts(make_test)}


def conversions(n, rate):
    converted = int((second_rng.random(n) < rate).sum())
    return [n, float(converted), float(converted)]


def unit_sums(values):
    return [len(values), exact_sum(values), exact_sum(values * values)]


def sequential_mean_case(n_control, n_treatment, rate, mean, lift, tuning):
    control = revenue(n_control, rate, mean, second_rng)
    treatment = revenue(n_treatment, rate, mean * (1 + lift), second_rng)
    return sequential_case("mean", unit_sums(control), unit_sums(treatment), tuning)


def pre_post(n, lift):
    """Per-unit pre-period (x) and post-period (y) values: 30% of units were active before the
    experiment, and their post value follows their pre value."""
    active = second_rng.random(n) < 0.3
    pre = np.where(active, second_rng.lognormal(np.log(20.0), 0.7, n), 0.0)
    baseline = np.where(active, 0.8 * pre * second_rng.lognormal(0.0, 0.3, n), 0.0)
    newcomers = np.where(second_rng.random(n) < 0.05, second_rng.lognormal(np.log(15.0), 0.8, n), 0.0)
    post = (baseline + newcomers) * (1 + lift)
    return pre, post


def cuped_sums(pre, post):
    return [len(post), exact_sum(post), exact_sum(post * post), exact_sum(pre), exact_sum(pre * pre), exact_sum(pre * post)]


def cuped_case(n_control, n_treatment, lift):
    control = cuped_sums(*pre_post(n_control, 0.0))
    treatment = cuped_sums(*pre_post(n_treatment, lift))

    def statistic(arm):
        n, sum_y, sum_y2, sum_x, sum_x2, sum_xy = arm
        return RegressionAdjustedStatistic(
            n=n,
            post_statistic=SampleMeanStatistic(n=n, sum=sum_y, sum_squares=sum_y2),
            pre_statistic=SampleMeanStatistic(n=n, sum=sum_x, sum_squares=sum_x2),
            post_pre_sum_of_products=sum_xy,
            theta=0,  # gbstats pools theta over both arms when the test is built
        )

    def fixed(difference_type):
        return TwoSidedTTest(statistic(control), statistic(treatment), FrequentistConfig(difference_type=difference_type, alpha=0.05))

    def sequential(difference_type):
        config = SequentialConfig(difference_type=difference_type, alpha=0.05, sequential_tuning_parameter=5000)
        return SequentialTwoSidedTTest(statistic(control), statistic(treatment), config)

    probe = fixed("absolute")
    # With theta 0 gbstats silently falls back to the unadjusted test, which would check nothing new.
    assert isinstance(probe.stat_a, RegressionAdjustedStatistic), "theta is 0"
    fixed_lifts = both_lifts(fixed)
    # The t-test's tail is 2 * (1 - cdf), which loses everything below ~1e-15; keep p where it is exact.
    assert all(lift["p_value"] > 1e-10 for lift in fixed_lifts.values())
    return {
        "control": control,
        "treatment": treatment,
        "theta": float(probe.stat_a.theta),
        "fixed": {"df": float(probe.dof), **fixed_lifts},
        "sequential": {"tuning": 5000, **both_lifts(sequential)},
    }


def adjustment_case(p_values, method):
    adjusted = multipletests(p_values, method=method)[1]
    return {"p_values": p_values, "adjusted": [float(p) for p in adjusted]}


cases["sequential"] = [
    sequential_case("proportion", [10000, 500.0, 500.0], [10000, 620.0, 620.0], 5000),
    sequential_case("proportion", [50, 6.0, 6.0], [52, 20.0, 20.0], 5000),
    sequential_case("proportion", conversions(200000, 0.031), conversions(200000, 0.031), 5000),
    sequential_case("proportion", conversions(200000, 0.031), conversions(199500, 0.0335), 20000),
    sequential_case("proportion", conversions(4000, 0.12), conversions(4100, 0.1), 20000),
    sequential_case("proportion", conversions(800, 0.4), conversions(780, 0.4), 5000),
    sequential_mean_case(3000, 3100, 0.3, 40.0, 0.25, 5000),
    sequential_mean_case(60, 55, 0.5, 12.0, 0.0, 5000),
    sequential_mean_case(50000, 50000, 0.08, 25.0, 0.0, 20000),
    sequential_mean_case(50000, 49800, 0.08, 25.0, 0.15, 5000),
    sequential_mean_case(200000, 200000, 0.03, 60.0, -0.1, 20000),
    sequential_case("mean", unit_sums(second_rng.normal(5.0, 2.0, 400)), unit_sums(second_rng.normal(5.6, 3.0, 380)), 5000),
]
cases["cuped"] = [
    cuped_case(1000, 1000, 0.0),
    cuped_case(1000, 980, 0.12),
    cuped_case(200, 210, 0.3),
    cuped_case(5000, 5000, 0.08),
    cuped_case(20000, 20100, 0.0),
    cuped_case(20000, 19900, -0.05),
    cuped_case(100000, 100000, 0.02),
    cuped_case(400, 380, -0.2),
]
p_value_sets = [
    [0.01, 0.04, 0.03, 0.005],
    [0.2],
    [0.001, 0.001, 0.02, 0.5, 0.049, 0.8],
    [0.9, 0.6, 0.75],
    [float(f"{p:.6g}") for p in second_rng.random(8) ** 3],
    [float(f"{p:.6g}") for p in np.concatenate([second_rng.random(4) * 0.01, second_rng.random(8)])],
]
cases["holm"] = [adjustment_case(p_values, "holm") for p_values in p_value_sets]
cases["benjamini_hochberg"] = [adjustment_case(p_values, "fdr_bh") for p_values in p_value_sets]

# `--out DIR` writes there instead (make test regenerates into a scratch dir and diffs).
out_dir = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else os.path.dirname(os.path.abspath(__file__))
path = os.path.join(out_dir, "statistics.json")
with open(path, "w") as out:
    json.dump(cases, out, indent=1)
    out.write("\n")
print(f"wrote {path}")
