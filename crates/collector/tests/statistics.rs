//! The statistics against reference values from independent implementations
//! (`testdata/statistics.py`): scipy for the distributions and fixed-horizon tests, GrowthBook's
//! gbstats for the confidence sequences and CUPED, statsmodels for the p-value adjustments.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use cohort_collector::stats::{
    Adjustment, ArmSums, Comparison, Inference, Sample, chi_square_sf, compare, cuped_theta, normal_cdf,
    sample_ratio_test, student_t_cdf, student_t_quantile, two_proportion_z_test, welch_t_test,
};
use serde_json::Value;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("../../../testdata/statistics.json")).unwrap()
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap()
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let tolerance = relative * expected.abs().max(1e-300);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual:e}, scipy says {expected:e} (relative error {:e})",
        ((actual - expected) / expected).abs()
    );
}

fn check_comparison(case: &Value, comparison: &Comparison, tolerance: f64) {
    let name = format!("{} vs {}", case["treatment"], case["control"]);
    let pair = |key: &str| (number(&case[key][0]), number(&case[key][1]));
    assert_close(
        comparison.p_value.unwrap(),
        number(&case["p_value"]),
        tolerance,
        &format!("{name}: p"),
    );
    assert_close(
        comparison.absolute_lift,
        number(&case["absolute_lift"]),
        tolerance,
        &name,
    );
    assert_close(comparison.absolute_ci.low, pair("absolute_ci").0, tolerance, &name);
    assert_close(comparison.absolute_ci.high, pair("absolute_ci").1, tolerance, &name);
    assert_close(
        comparison.relative_lift.unwrap(),
        number(&case["relative_lift"]),
        tolerance,
        &name,
    );
    let relative_ci = comparison.relative_ci.unwrap();
    assert_close(relative_ci.low, pair("relative_ci").0, tolerance, &name);
    assert_close(relative_ci.high, pair("relative_ci").1, tolerance, &name);
}

#[test]
fn distributions_match_scipy() {
    let fixtures = fixtures();
    for case in fixtures["normal_cdf"].as_array().unwrap() {
        let z = number(&case[0]);
        assert_close(normal_cdf(z), number(&case[1]), 1e-12, &format!("Φ({z})"));
    }
    for case in fixtures["student_t_cdf"].as_array().unwrap() {
        let (t, df) = (number(&case[0]), number(&case[1]));
        assert_close(student_t_cdf(t, df), number(&case[2]), 1e-11, &format!("T_{df}({t})"));
    }
    for case in fixtures["student_t_quantile_975"].as_array().unwrap() {
        let df = number(&case[0]);
        // Inverting the CDF divides its error by the density: 1e-9 still means ten correct digits.
        assert_close(
            student_t_quantile(0.975, df),
            number(&case[1]),
            1e-9,
            &format!("t_{df}(0.975)"),
        );
    }
    for case in fixtures["chi_square_sf"].as_array().unwrap() {
        let (x, df) = (number(&case[0]), number(&case[1]));
        assert_close(
            chi_square_sf(x, df),
            number(&case[2]),
            1e-11,
            &format!("χ²_{df} sf({x})"),
        );
    }
}

#[test]
fn two_proportion_z_tests_match_scipy() {
    for case in fixtures()["two_proportion"].as_array().unwrap() {
        let count = |arm: &str, i: usize| case[arm][i].as_u64().unwrap();
        let comparison = two_proportion_z_test(
            count("control", 0),
            count("control", 1),
            count("treatment", 0),
            count("treatment", 1),
        )
        .unwrap();
        check_comparison(case, &comparison, 1e-9);
    }
}

#[test]
fn welch_t_tests_match_scipy() {
    for case in fixtures()["welch"].as_array().unwrap() {
        let sample = |arm: &str| {
            let sums = &case[arm];
            Sample::from_sums(sums[0].as_u64().unwrap(), number(&sums[1]), number(&sums[2]))
        };
        let comparison = welch_t_test(sample("control"), sample("treatment")).unwrap();
        // Sums of squares lose a few digits to cancellation against scipy's two-pass variance.
        check_comparison(case, &comparison, 1e-8);
    }
}

#[test]
fn sample_ratio_tests_match_scipy() {
    for case in fixtures()["sample_ratio"].as_array().unwrap() {
        let observed: Vec<u64> = case["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let weights: Vec<f64> = case["weights"].as_array().unwrap().iter().map(number).collect();
        let test = sample_ratio_test(&observed, &weights).unwrap();
        let expected_p = number(&case["p_value"]);
        assert_close(
            test.chi_square,
            number(&case["chi_square"]),
            1e-11,
            &format!("{observed:?} χ²"),
        );
        assert_close(test.p_value, expected_p, 1e-10, &format!("{observed:?} p"));
        assert_eq!(test.mismatch, expected_p < 0.001, "{observed:?}");
    }
}

/// Checks estimate, interval and (when `check_p`) p-value of one scale of a gbstats case.
fn check_scale(expected: &Value, estimate: f64, low: f64, high: f64, p_value: Option<f64>, what: &str) {
    assert_close(
        estimate,
        number(&expected["estimate"]),
        1e-9,
        &format!("{what}: estimate"),
    );
    assert_close(low, number(&expected["ci"][0]), 1e-9, &format!("{what}: low"));
    assert_close(high, number(&expected["ci"][1]), 1e-9, &format!("{what}: high"));
    if let Some(p) = p_value {
        let expected_p = number(&expected["p_value"]);
        // gbstats' fixed-horizon p is 2·(1 − T(|t|)), exact to about 1e-16 absolute.
        assert!(
            (p - expected_p).abs() <= 1e-9 * expected_p + 1e-14,
            "{what}: p {p:e}, gbstats says {expected_p:e}"
        );
    }
}

fn check_gbstats(expected: &Value, comparison: &Comparison, what: &str) {
    let absolute = &comparison.absolute_ci;
    check_scale(
        &expected["absolute"],
        comparison.absolute_lift,
        absolute.low,
        absolute.high,
        Some(comparison.p_value.expect("a p-value on the absolute scale")),
        &format!("{what} absolute"),
    );
    let relative = comparison.relative_ci.unwrap();
    check_scale(
        &expected["relative"],
        comparison.relative_lift.unwrap(),
        relative.low,
        relative.high,
        None,
        &format!("{what} relative"),
    );
}

fn arm(sums: &Value) -> ArmSums {
    let n = |i: usize| number(&sums[i]);
    ArmSums {
        units: sums[0].as_u64().unwrap(),
        sum: n(1),
        sum_of_squares: n(2),
        pre_sum: if sums.as_array().unwrap().len() > 3 { n(3) } else { 0.0 },
        pre_sum_of_squares: if sums.as_array().unwrap().len() > 3 { n(4) } else { 0.0 },
        sum_of_products: if sums.as_array().unwrap().len() > 3 { n(5) } else { 0.0 },
    }
}

#[test]
fn confidence_sequences_match_gbstats() {
    for (i, case) in fixtures()["sequential"].as_array().unwrap().iter().enumerate() {
        let binary = case["kind"] == "proportion";
        let inference = Inference::Sequential {
            tuning: number(&case["tuning"]),
        };
        let comparison = compare(&arm(&case["control"]), &arm(&case["treatment"]), binary, inference).unwrap();
        assert_eq!(comparison.cuped_theta, None, "no pre-exposure data, no CUPED");
        check_gbstats(case, &comparison, &format!("sequential[{i}]"));
    }
}

#[test]
fn cuped_matches_gbstats_fixed_and_sequential() {
    for (i, case) in fixtures()["cuped"].as_array().unwrap().iter().enumerate() {
        let (control, treatment) = (arm(&case["control"]), arm(&case["treatment"]));
        let theta = cuped_theta(&control, &treatment).unwrap();
        assert_close(theta, number(&case["theta"]), 1e-9, &format!("cuped[{i}] theta"));
        let fixed = compare(&control, &treatment, false, Inference::Fixed).unwrap();
        assert_eq!(fixed.cuped_theta, Some(theta));
        check_gbstats(&case["fixed"], &fixed, &format!("cuped[{i}] fixed"));
        let inference = Inference::Sequential {
            tuning: number(&case["sequential"]["tuning"]),
        };
        let sequential = compare(&control, &treatment, false, inference).unwrap();
        check_gbstats(&case["sequential"], &sequential, &format!("cuped[{i}] sequential"));
    }
}

#[test]
fn p_value_adjustments_match_statsmodels() {
    for (name, adjustment) in [
        ("holm", Adjustment::Holm),
        ("benjamini_hochberg", Adjustment::BenjaminiHochberg),
    ] {
        for case in fixtures()[name].as_array().unwrap() {
            let p: Vec<f64> = case["p_values"].as_array().unwrap().iter().map(number).collect();
            let adjusted = adjustment.adjust(&p);
            assert_eq!(
                adjusted.len(),
                case["adjusted"].as_array().unwrap().len(),
                "{name} {p:?}"
            );
            for (got, expected) in adjusted.iter().zip(case["adjusted"].as_array().unwrap()) {
                assert_close(*got, number(expected), 1e-12, &format!("{name} {p:?}"));
            }
        }
    }
}
