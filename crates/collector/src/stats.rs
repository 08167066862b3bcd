//! The statistics behind experiment results: the distributions (normal, Student t, chi-square)
//! and the tests built on them (two-proportion z-test, Welch's t-test, sample-ratio chi-square).
//!
//! Implemented here rather than pulled from a statistics crate: a few hundred lines cover what the
//! results need, and `testdata/statistics.json` (generated with scipy) checks them.

use serde::Serialize;

/// Two-sided confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;
/// Φ⁻¹(0.975): the normal quantile of a two-sided 95 % interval.
const Z_975: f64 = 1.959_963_984_540_054;
/// Relative accuracy the series and continued fractions iterate to.
const EPSILON: f64 = 1e-15;
const MAX_ITERATIONS: usize = 500;

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Modified Lentz evaluation of the continued fraction `b0 + a1/(b1 + a2/(b2 + …))`, given a
/// function returning `(a_n, b_n)` for n ≥ 1.
fn continued_fraction(b0: f64, term: impl Fn(usize) -> (f64, f64)) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = if b0 == 0.0 { TINY } else { b0 };
    let mut c = f;
    let mut d = 0.0;
    for n in 1..=MAX_ITERATIONS {
        let (a, b) = term(n);
        d = b + a * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = b + a / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < EPSILON {
            break;
        }
    }
    f
}

/// Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x); Q = 1 − P.
        let mut term = 1.0 / a;
        let mut sum = term;
        for n in 1..MAX_ITERATIONS {
            term *= x / (a + n as f64);
            sum += term;
            if term.abs() < sum.abs() * EPSILON {
                break;
            }
        }
        1.0 - sum * log_prefactor.exp()
    } else {
        // Continued fraction for Q(a, x) (Numerical Recipes' form, via Lentz).
        let fraction = continued_fraction(x + 1.0 - a, |n| {
            let n = n as f64;
            (-n * (n - a), x + 2.0 * n + 1.0 - a)
        });
        log_prefactor.exp() / fraction
    }
}

/// Regularized incomplete beta function I_x(a, b).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_prefactor = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let fraction = continued_fraction(1.0, |n| {
        let m = (n / 2) as f64;
        let numerator = if n % 2 == 1 {
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        } else {
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        };
        (numerator, 1.0)
    });
    log_prefactor.exp() / (a * fraction)
}

/// Standard normal distribution function Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    // Φ(z) = erfc(−z/√2) / 2 and erfc(y) = Q(½, y²) for y ≥ 0.
    let half_tail = 0.5 * gamma_q(0.5, z * z / 2.0);
    if z < 0.0 { half_tail } else { 1.0 - half_tail }
}

/// Two-sided p-value of a standard normal statistic: P(|Z| ≥ |z|).
pub fn normal_two_sided_p(z: f64) -> f64 {
    gamma_q(0.5, z * z / 2.0)
}

/// Student t distribution function with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t < 0.0 { tail } else { 1.0 - tail }
}

/// Two-sided p-value of a t statistic: P(|T| ≥ |t|).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The quantile t such that P(T ≤ t) = `probability`, for probability in (0.5, 1).
pub fn student_t_quantile(probability: f64, df: f64) -> f64 {
    // The CDF is increasing: bisect on [0, high], doubling high until it brackets the quantile.
    let mut high = 1.0;
    while student_t_cdf(high, df) < probability {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if student_t_cdf(mid, df) < probability {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-14 * high {
            break;
        }
    }
    0.5 * (low + high)
}

/// Chi-square survival function P(X ≥ x) with `df` degrees of freedom.
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// A two-sided 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    fn around(estimate: f64, half_width: f64) -> Interval {
        Interval {
            low: estimate - half_width,
            high: estimate + half_width,
        }
    }
}

/// A treatment-versus-control comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Treatment minus control.
    pub absolute_lift: f64,
    /// 95 % interval of the absolute lift.
    pub absolute_ci: Interval,
    /// Treatment / control − 1; absent when the control's estimate is 0.
    pub relative_lift: Option<f64>,
    /// 95 % interval of the relative lift (delta method); absent with `relative_lift`.
    pub relative_ci: Option<Interval>,
    /// Two-sided p-value; absent when the test is undefined (no variance at all).
    pub p_value: Option<f64>,
}

/// Relative lift `treatment / control − 1` and its delta-method standard error, from the two
/// estimates and their standard errors.
fn relative_lift(control: f64, control_se: f64, treatment: f64, treatment_se: f64) -> Option<(f64, f64)> {
    if control == 0.0 {
        return None;
    }
    let ratio = treatment / control;
    let variance = (treatment_se / control).powi(2) + (ratio * control_se / control).powi(2);
    Some((ratio - 1.0, variance.sqrt()))
}

fn comparison(
    control: f64,
    control_se: f64,
    treatment: f64,
    treatment_se: f64,
    critical_value: f64,
    p_value: Option<f64>,
) -> Comparison {
    let absolute_lift = treatment - control;
    let absolute_se = (control_se.powi(2) + treatment_se.powi(2)).sqrt();
    let relative = relative_lift(control, control_se, treatment, treatment_se);
    Comparison {
        absolute_lift,
        absolute_ci: Interval::around(absolute_lift, critical_value * absolute_se),
        relative_lift: relative.map(|(lift, _)| lift),
        relative_ci: relative.map(|(lift, se)| Interval::around(lift, critical_value * se)),
        p_value,
    }
}

/// Two-proportion z-test of `converted` out of `units` in control and treatment.
///
/// The p-value uses the pooled proportion (the null hypothesis says both are equal); the
/// intervals use each arm's own variance (Wald), the usual choice for an interval of the lift.
pub fn two_proportion_z_test(
    control_converted: u64,
    control_units: u64,
    treatment_converted: u64,
    treatment_units: u64,
) -> Option<Comparison> {
    if control_units == 0 || treatment_units == 0 {
        return None;
    }
    let (n0, n1) = (control_units as f64, treatment_units as f64);
    let (p0, p1) = (control_converted as f64 / n0, treatment_converted as f64 / n1);
    let pooled = (control_converted + treatment_converted) as f64 / (n0 + n1);
    let pooled_se = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)).sqrt();
    let p_value = (pooled_se > 0.0).then(|| normal_two_sided_p((p1 - p0) / pooled_se));
    let se0 = (p0 * (1.0 - p0) / n0).sqrt();
    let se1 = (p1 * (1.0 - p1) / n1).sqrt();
    Some(comparison(p0, se0, p1, se1, Z_975, p_value))
}

/// Count, mean and sample variance of one arm's per-unit values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Number of units.
    pub count: u64,
    /// Mean value per unit.
    pub mean: f64,
    /// Sample variance (n − 1 denominator).
    pub variance: f64,
}

impl Sample {
    /// From the count, sum and sum of squares of the per-unit values.
    pub fn from_sums(count: u64, sum: f64, sum_of_squares: f64) -> Sample {
        let n = count as f64;
        let mean = if count > 0 { sum / n } else { 0.0 };
        let variance = if count > 1 {
            // Rounding can push a zero variance slightly negative.
            ((sum_of_squares - n * mean * mean) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        Sample { count, mean, variance }
    }
}

/// Welch's unequal-variances t-test of treatment against control, with Welch–Satterthwaite
/// degrees of freedom; the intervals use the t quantile at those degrees of freedom.
pub fn welch_t_test(control: Sample, treatment: Sample) -> Option<Comparison> {
    if control.count < 2 || treatment.count < 2 {
        return None;
    }
    let v0 = control.variance / control.count as f64;
    let v1 = treatment.variance / treatment.count as f64;
    let standard_error = (v0 + v1).sqrt();
    if standard_error == 0.0 {
        let critical = Z_975;
        return Some(comparison(control.mean, 0.0, treatment.mean, 0.0, critical, None));
    }
    let df = (v0 + v1).powi(2) / (v0.powi(2) / (control.count - 1) as f64 + v1.powi(2) / (treatment.count - 1) as f64);
    let t = (treatment.mean - control.mean) / standard_error;
    let critical = student_t_quantile(0.5 + CONFIDENCE / 2.0, df);
    Some(comparison(
        control.mean,
        v0.sqrt(),
        treatment.mean,
        v1.sqrt(),
        critical,
        Some(student_t_two_sided_p(t, df)),
    ))
}

/// Result of the sample-ratio-mismatch test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleRatioTest {
    /// Pearson's chi-square statistic.
    pub chi_square: f64,
    /// Degrees of freedom (variants − 1).
    pub degrees_of_freedom: u32,
    /// P(X ≥ chi_square) under the expected split.
    pub p_value: f64,
    /// `p_value < SRM_ALARM_P`: the assignment or the logging is broken; do not trust the lift.
    pub mismatch: bool,
}

/// p-value below which the sample ratio is flagged as a mismatch.
pub const SRM_ALARM_P: f64 = 0.001;

/// Pearson's chi-square goodness-of-fit of observed unit counts against expected weights (any
/// positive scale). `None` with fewer than two arms or no units.
pub fn sample_ratio_test(observed: &[u64], weights: &[f64]) -> Option<SampleRatioTest> {
    let total: u64 = observed.iter().sum();
    let weight_total: f64 = weights.iter().sum();
    if observed.len() < 2 || observed.len() != weights.len() || total == 0 || weight_total <= 0.0 {
        return None;
    }
    let mut chi_square = 0.0;
    for (&count, &weight) in observed.iter().zip(weights) {
        let expected = total as f64 * weight / weight_total;
        if expected <= 0.0 {
            // A variant expected to get nothing that got units is a mismatch beyond any statistic.
            if count > 0 {
                chi_square = f64::INFINITY;
            }
            continue;
        }
        chi_square += (count as f64 - expected).powi(2) / expected;
    }
    let degrees_of_freedom = (observed.len() - 1) as u32;
    let p_value = if chi_square.is_finite() {
        chi_square_sf(chi_square, degrees_of_freedom as f64)
    } else {
        0.0
    };
    Some(SampleRatioTest {
        chi_square,
        degrees_of_freedom,
        p_value,
        mismatch: p_value < SRM_ALARM_P,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_points_are_exact() {
        assert_eq!(normal_cdf(0.0), 0.5);
        assert_eq!(student_t_cdf(0.0, 7.0), 0.5);
        assert!((ln_gamma(1.0)).abs() < 1e-14);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn no_variance_means_no_p_value() {
        let all_converted = two_proportion_z_test(10, 10, 20, 20).unwrap();
        assert_eq!(all_converted.p_value, None);
        assert_eq!(all_converted.absolute_lift, 0.0);
        assert_eq!(two_proportion_z_test(0, 0, 1, 2), None);
        assert_eq!(sample_ratio_test(&[5], &[1.0]), None);
    }

    #[test]
    fn zero_weight_variants_with_units_are_mismatches() {
        let test = sample_ratio_test(&[50, 3], &[1.0, 0.0]).unwrap();
        assert!(test.mismatch);
        assert_eq!(test.p_value, 0.0);
    }
}
