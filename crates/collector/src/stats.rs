//! The statistics behind experiment results: the distributions (normal, Student t, chi-square),
//! the fixed-horizon tests (two-proportion z-test, Welch's t-test), always-valid confidence
//! sequences for continuous monitoring, CUPED variance reduction, multiple-comparison adjustments
//! and the sample-ratio chi-square test. docs/collector.md ("Statistics") cites the papers.
//!
//! Implemented here rather than pulled from a statistics crate: a few hundred lines cover what the
//! results need, and `testdata/statistics.json` (generated with scipy, statsmodels and GrowthBook's
//! gbstats by `testdata/statistics.py`) checks them against independent implementations.

use serde::Serialize;

/// Two-sided confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;
/// 1 − [`CONFIDENCE`]: the error rate a p-value is compared with.
pub const ALPHA: f64 = 1.0 - CONFIDENCE;
/// Default tuning of the confidence sequences: the total sample size (both arms) at which the
/// sequential interval is narrowest relative to the fixed-horizon one.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;
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
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Treatment minus control.
    pub absolute_lift: f64,
    /// 95 % interval of the absolute lift.
    pub absolute_ci: Interval,
    /// Treatment / control − 1; absent unless the control's estimate is above 0 (a ratio to a
    /// negative mean reads backwards).
    pub relative_lift: Option<f64>,
    /// 95 % interval of the relative lift (delta method); absent with `relative_lift`.
    pub relative_ci: Option<Interval>,
    /// Two-sided p-value; absent when the test is undefined (no variance at all).
    pub p_value: Option<f64>,
    /// The p-value adjusted for every comparison in the same results document.
    pub p_value_adjusted: Option<f64>,
    /// `p_value_adjusted` is below [`ALPHA`].
    pub significant: bool,
    /// What a significant change means for the metric.
    pub verdict: Verdict,
    /// CUPED's regression coefficient when this comparison used it; absent without.
    pub cuped_theta: Option<f64>,
}

/// A comparison's reading, given which way the metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant, in the metric's good direction.
    Better,
    /// Significant, in the metric's bad direction.
    Worse,
    /// Not significant: the data cannot tell the variants apart yet.
    #[default]
    Inconclusive,
}

impl Comparison {
    /// The comparison with every non-finite figure removed: no interval or p-value without a
    /// finite estimate, no relative figures without a finite relative estimate.
    fn finite(mut self) -> Option<Comparison> {
        let interval_finite = |i: &Interval| i.low.is_finite() && i.high.is_finite();
        if !self.absolute_lift.is_finite() || !interval_finite(&self.absolute_ci) {
            return None;
        }
        if !self.relative_lift.is_some_and(f64::is_finite) || !self.relative_ci.as_ref().is_some_and(interval_finite) {
            self.relative_lift = None;
            self.relative_ci = None;
        }
        self.p_value = self.p_value.filter(|p| p.is_finite());
        Some(self)
    }

    /// Records the adjusted p-value and the verdict it implies; `higher_is_better` is the
    /// metric's direction.
    pub fn decide(&mut self, adjusted_p: f64, higher_is_better: bool) {
        self.p_value_adjusted = Some(adjusted_p);
        self.significant = adjusted_p < ALPHA;
        self.verdict = match (self.significant, (self.absolute_lift > 0.0) == higher_is_better) {
            (false, _) => Verdict::Inconclusive,
            (true, true) => Verdict::Better,
            (true, false) => Verdict::Worse,
        };
    }
}

/// Relative lift `treatment / control − 1` and its delta-method standard error, from the two
/// estimates and their standard errors.
fn relative_lift(control: f64, control_se: f64, treatment: f64, treatment_se: f64) -> Option<(f64, f64)> {
    if control <= 0.0 {
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
        ..Comparison::default()
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
        Sample {
            count,
            mean: if count > 0 { sum / count as f64 } else { 0.0 },
            variance: sample_variance(count, sum, sum_of_squares),
        }
    }
}

/// Sample variance (n − 1 denominator) from a count, sum and sum of squares. 0 with fewer than
/// two units, and 0 when the spread is below the rounding error of the sums (values of about
/// 1e8 that differ by about 1): a variance that cannot be told from 0 must not make a p-value.
fn sample_variance(units: u64, sum: f64, sum_of_squares: f64) -> f64 {
    if units < 2 {
        return 0.0;
    }
    let n = units as f64;
    let centred = sum_of_squares - sum * sum / n;
    if centred <= PRECISION * sum_of_squares.abs() {
        return 0.0;
    }
    centred / (n - 1.0)
}

/// Relative rounding error of sums of squares, with a wide margin over f64's 2.2e-16.
const PRECISION: f64 = 1e-12;

/// Welch's unequal-variances t-test of treatment against control, with Welch–Satterthwaite
/// degrees of freedom; the intervals use the t quantile at those degrees of freedom.
pub fn welch_t_test(control: Sample, treatment: Sample) -> Option<Comparison> {
    if control.count < 2 || treatment.count < 2 {
        return None;
    }
    let estimate = |sample: Sample| ArmEstimate {
        units: sample.count as f64,
        mean: sample.mean,
        unadjusted_mean: sample.mean,
        variance: sample.variance,
    };
    Some(mean_comparison(
        &estimate(control),
        &estimate(treatment),
        Inference::Fixed,
    ))
}

/// How intervals and p-values are computed.
#[derive(Debug, Clone, Copy, PartialEq, schemars::JsonSchema)]
pub enum Inference {
    /// Fixed-horizon: valid when the data are looked at once, at a sample size chosen in advance.
    Fixed,
    /// Always-valid asymptotic confidence sequences (Waudby-Smith et al. 2023): valid however
    /// often the data are looked at; `tuning` is the total sample size the interval is tuned for.
    Sequential {
        /// The tuning parameter M (> 0).
        tuning: f64,
    },
}

/// One arm's per-unit figures, summed: `y` is each unit's figure after its first exposure, `x`
/// the same figure before it (the CUPED covariate; all zero without pre-exposure data).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ArmSums {
    /// Units in the arm.
    pub units: u64,
    /// Σ y.
    pub sum: f64,
    /// Σ y².
    pub sum_of_squares: f64,
    /// Σ x.
    pub pre_sum: f64,
    /// Σ x².
    pub pre_sum_of_squares: f64,
    /// Σ x·y.
    pub sum_of_products: f64,
}

impl ArmSums {
    /// Mean of y.
    pub fn mean(&self) -> f64 {
        if self.units == 0 {
            0.0
        } else {
            self.sum / self.units as f64
        }
    }

    /// Per-unit variance of y: p(1 − p) for 0/1 figures (as the z-test and gbstats use), else
    /// the sample variance.
    fn variance(&self, binary: bool) -> f64 {
        if !binary {
            return sample_variance(self.units, self.sum, self.sum_of_squares);
        }
        let p = self.mean();
        (p * (1.0 - p)).max(0.0)
    }

    /// The sums of y − θx: CUPED's adjusted figure.
    fn adjusted(&self, theta: f64) -> (f64, f64) {
        (
            self.sum - theta * self.pre_sum,
            self.sum_of_squares - 2.0 * theta * self.sum_of_products + theta * theta * self.pre_sum_of_squares,
        )
    }
}

/// CUPED's θ = cov(x, y) / var(x) over both arms of a comparison (Deng, Xu, Kohavi and Walker
/// 2013), in sample forms for 0/1 and valued figures alike; `None` when either figure has no
/// variance (no pre-exposure data), which turns the adjustment off.
pub fn cuped_theta(control: &ArmSums, treatment: &ArmSums) -> Option<f64> {
    let n = (control.units + treatment.units) as f64;
    let sum = control.sum + treatment.sum;
    let pre_sum = control.pre_sum + treatment.pre_sum;
    let pre_squares = control.pre_sum_of_squares + treatment.pre_sum_of_squares;
    let centred_pre = pre_squares - pre_sum * pre_sum / n;
    let centred_post = control.sum_of_squares + treatment.sum_of_squares - sum * sum / n;
    if n < 2.0
        || centred_pre <= PRECISION * pre_squares.abs()
        || centred_post <= PRECISION * (control.sum_of_squares + treatment.sum_of_squares).abs()
    {
        return None;
    }
    let theta = (control.sum_of_products + treatment.sum_of_products - sum * pre_sum / n) / centred_pre;
    (theta.is_finite() && theta != 0.0).then_some(theta)
}

/// An arm's mean and per-unit variance, CUPED-adjusted when `theta` is given.
struct ArmEstimate {
    units: f64,
    mean: f64,
    unadjusted_mean: f64,
    variance: f64,
}

fn arm_estimate(arm: &ArmSums, binary: bool, theta: Option<f64>) -> ArmEstimate {
    let (mean, variance) = match theta {
        None => (arm.mean(), arm.variance(binary)),
        Some(theta) => {
            // var(y − θx) straight from its own sums: never negative, and the same n − 1 form
            // for every term (mixing p(1 − p) with a sample covariance understates it).
            let (sum, sum_of_squares) = arm.adjusted(theta);
            let mean = if arm.units == 0 { 0.0 } else { sum / arm.units as f64 };
            (mean, sample_variance(arm.units, sum, sum_of_squares))
        }
    };
    ArmEstimate {
        units: arm.units as f64,
        mean,
        unadjusted_mean: arm.mean(),
        variance,
    }
}

/// Half-width of the asymptotic confidence sequence for an estimate with variance `variance`
/// after `total_units` units (Waudby-Smith et al. 2023, eq. 9, with ρ from their eq. 161), and
/// the matching always-valid p-value (eq. 155): `p ≤ alpha` exactly when the interval excludes 0.
pub fn sequential_interval(estimate: f64, variance: f64, total_units: f64, alpha: f64, tuning: f64) -> (f64, f64) {
    let log_alpha = alpha.ln();
    let rho_squared = (-2.0 * log_alpha + (1.0 - 2.0 * log_alpha).ln()) / tuning;
    let n_rho_squared = total_units * rho_squared;
    let tau = n_rho_squared + 1.0;
    let half_width = (variance * 2.0 * tau / n_rho_squared * (tau.sqrt() / alpha).ln()).sqrt();
    let p_value = if variance > 0.0 {
        (tau.sqrt() * (-n_rho_squared * estimate * estimate / (2.0 * variance * tau)).exp()).min(1.0)
    } else {
        f64::NAN
    };
    (half_width, p_value)
}

/// Treatment versus control on per-unit figures (`binary`: 0/1 conversions), by `inference`,
/// CUPED-adjusted when both arms carry pre-exposure data. `None` when either arm is too small to
/// estimate anything.
///
/// Without CUPED, fixed-horizon uses the two-proportion z-test or Welch's t-test; everything else
/// uses the (adjusted) means with a Welch-type variance (fixed) or the confidence sequence.
pub fn compare(control: &ArmSums, treatment: &ArmSums, binary: bool, inference: Inference) -> Option<Comparison> {
    let minimum = if binary { 1 } else { 2 };
    if control.units < minimum || treatment.units < minimum {
        return None;
    }
    if let Some(theta) = cuped_theta(control, treatment) {
        let adjusted = mean_comparison(
            &arm_estimate(control, binary, Some(theta)),
            &arm_estimate(treatment, binary, Some(theta)),
            inference,
        );
        // With no variance left after adjustment (the covariate predicts every unit exactly)
        // the adjustment says nothing: compare the unadjusted figures instead.
        if adjusted.p_value.is_some() {
            return Comparison {
                cuped_theta: Some(theta),
                ..adjusted
            }
            .finite();
        }
    }
    let comparison = match inference {
        Inference::Fixed if binary => two_proportion_z_test(
            control.sum.round() as u64,
            control.units,
            treatment.sum.round() as u64,
            treatment.units,
        )?,
        _ => mean_comparison(
            &arm_estimate(control, binary, None),
            &arm_estimate(treatment, binary, None),
            inference,
        ),
    };
    comparison.finite()
}

/// Difference of two arms' means with a Welch-type standard error: the t quantile at
/// Welch–Satterthwaite degrees of freedom (fixed) or the confidence sequence (sequential). No
/// p-value when either arm has no variance (gbstats' rule: the test is undefined there).
fn mean_comparison(control: &ArmEstimate, treatment: &ArmEstimate, inference: Inference) -> Comparison {
    let absolute_lift = treatment.mean - control.mean;
    let v0 = control.variance / control.units;
    let v1 = treatment.variance / treatment.units;
    let variance = v0 + v1;
    let testable = control.variance > 0.0 && treatment.variance > 0.0;
    // Relative lift over the unadjusted control mean, by the delta method.
    let relative = (control.unadjusted_mean > 0.0).then(|| {
        let c = control.unadjusted_mean;
        (
            absolute_lift / c,
            v1 / (c * c) + v0 * treatment.unadjusted_mean.powi(2) / c.powi(4),
        )
    });
    let total = control.units + treatment.units;
    // Welch–Satterthwaite degrees of freedom and the t quantile, for fixed-horizon.
    let df = if testable {
        variance.powi(2) / (v0.powi(2) / (control.units - 1.0) + v1.powi(2) / (treatment.units - 1.0))
    } else {
        f64::INFINITY
    };
    let critical = if df.is_finite() {
        student_t_quantile(1.0 - ALPHA / 2.0, df)
    } else {
        Z_975
    };
    let half_width = |variance: f64| match inference {
        Inference::Sequential { tuning } => sequential_interval(0.0, variance, total, ALPHA, tuning).0,
        Inference::Fixed => critical * variance.sqrt(),
    };
    let p_value = testable.then(|| match inference {
        Inference::Sequential { tuning } => sequential_interval(absolute_lift, variance, total, ALPHA, tuning).1,
        Inference::Fixed => student_t_two_sided_p(absolute_lift / variance.sqrt(), df),
    });
    Comparison {
        absolute_lift,
        absolute_ci: Interval::around(absolute_lift, half_width(variance)),
        relative_lift: relative.map(|(lift, _)| lift),
        relative_ci: relative.map(|(lift, variance)| Interval::around(lift, half_width(variance))),
        p_value,
        ..Comparison::default()
    }
}

/// How p-values are adjusted for the number of comparisons in one results document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// Holm's step-down procedure (Holm 1979): controls the family-wise error rate.
    Holm,
    /// Benjamini–Hochberg (1995): controls the false discovery rate.
    BenjaminiHochberg,
}

impl Adjustment {
    /// The name used in queries and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Adjustment::Holm => "holm",
            Adjustment::BenjaminiHochberg => "benjamini_hochberg",
        }
    }

    /// Adjusted p-values, in the order of `p_values`.
    pub fn adjust(self, p_values: &[f64]) -> Vec<f64> {
        let m = p_values.len();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
        let mut adjusted = vec![0.0; m];
        match self {
            Adjustment::Holm => {
                // Step down: the k-th smallest is multiplied by m − k, never below an earlier one.
                let mut running: f64 = 0.0;
                for (rank, &index) in order.iter().enumerate() {
                    running = running.max(((m - rank) as f64 * p_values[index]).min(1.0));
                    adjusted[index] = running;
                }
            }
            Adjustment::BenjaminiHochberg => {
                // Step up: the k-th smallest is multiplied by m / k, never above a later one.
                let mut running: f64 = 1.0;
                for (rank, &index) in order.iter().enumerate().rev() {
                    running = running.min((m as f64 / (rank + 1) as f64 * p_values[index]).min(1.0));
                    adjusted[index] = running;
                }
            }
        }
        adjusted
    }
}

/// Result of the sample-ratio-mismatch test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SampleRatioTest {
    /// Pearson's chi-square statistic; infinite (JSON `null`) when a variant expected to get
    /// nothing got units.
    #[serde(serialize_with = "finite_or_null")]
    pub chi_square: f64,
    /// Degrees of freedom (variants − 1).
    pub degrees_of_freedom: u32,
    /// P(X ≥ chi_square) under the expected split.
    pub p_value: f64,
    /// `p_value < SRM_ALARM_P`: the assignment or the logging is broken; do not trust the lift.
    pub mismatch: bool,
}

/// Writes a non-finite number as `null`, on purpose rather than by serde_json's fallback.
fn finite_or_null<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
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
    fn a_covariate_equal_to_the_outcome_falls_back_to_the_unadjusted_comparison() {
        // Every unit did after its exposure exactly what it did before: θ = 1 explains everything.
        let arm = |units: u64, converted: f64| ArmSums {
            units,
            sum: converted,
            sum_of_squares: converted,
            pre_sum: converted,
            pre_sum_of_squares: converted,
            sum_of_products: converted,
        };
        let (control, treatment) = (arm(1000, 100.0), arm(1000, 130.0));
        assert!(cuped_theta(&control, &treatment).is_some());
        let inference = Inference::Sequential { tuning: 5000.0 };
        let adjusted = compare(&control, &treatment, true, inference).unwrap();
        let without_pre = |arm: ArmSums| ArmSums {
            pre_sum: 0.0,
            pre_sum_of_squares: 0.0,
            sum_of_products: 0.0,
            ..arm
        };
        let plain = compare(&without_pre(control), &without_pre(treatment), true, inference).unwrap();
        assert_eq!(adjusted, plain);
        assert_eq!(adjusted.cuped_theta, None);
        assert!(plain.p_value.is_some());
    }

    #[test]
    fn an_arm_below_the_minimum_means_no_comparison_whatever_the_other_holds() {
        let arm = |units: u64| ArmSums {
            units,
            sum: units as f64 * 2.0,
            sum_of_squares: units as f64 * 5.0,
            ..ArmSums::default()
        };
        for inference in [Inference::Fixed, Inference::Sequential { tuning: 5000.0 }] {
            // A continuous metric needs two units per arm to estimate a variance; a binary one, one.
            assert!(compare(&arm(1), &arm(500), false, inference).is_none());
            assert!(compare(&arm(500), &arm(1), false, inference).is_none());
            assert!(compare(&arm(0), &arm(500), true, inference).is_none());
            assert!(compare(&arm(500), &arm(0), true, inference).is_none());
            assert!(compare(&arm(2), &arm(500), false, inference).is_some());
        }
    }

    #[test]
    fn zero_weight_variants_with_units_are_mismatches() {
        let test = sample_ratio_test(&[50, 3], &[1.0, 0.0]).unwrap();
        assert!(test.mismatch);
        assert_eq!(test.p_value, 0.0);
    }
}
