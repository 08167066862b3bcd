//! Prometheus metrics. The collector's own (ingest, commits, delivery lag, sample-ratio checks)
//! are rendered by hand in the text exposition format; the per-request and process metrics come
//! from the `prometheus` crate ([`crate::http`]) and are appended to them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use crate::http::HttpMetrics;
use crate::store::{WriterPhase, WriterTimings};
use std::time::Duration;

/// Upper bounds (seconds) of the commit latency histogram's buckets, and of the writer's phases.
pub(crate) const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Upper bounds (seconds) of the delivery lag histogram's buckets: the edge's queue consumer waits
/// up to 5 s for a batch, retries come 10 s doubling to 1 h, and replayed dead letters can be days
/// old. 60 s and 900 s are bounds because deploy/prometheus/alerts.yml alerts on them.
const DELIVERY_LAG_BUCKETS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 21600.0, 86400.0,
];

/// Which ingest endpoint a count belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// `/v1/exposures`.
    Exposures,
    /// `/v1/events`.
    Conversions,
}

impl RecordKind {
    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Exposures => "exposure",
            RecordKind::Conversions => "conversion",
        }
    }
}

/// Observations per bucket of bounds kept by the caller (`N` of them, plus `+Inf`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Histogram<const N: usize> {
    bucket_counts: [u64; N],
    count: u64,
    sum_seconds: f64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            bucket_counts: [0; N],
            count: 0,
            sum_seconds: 0.0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    pub(crate) fn observe(&mut self, bounds: &[f64; N], seconds: f64) {
        for (bound, count) in bounds.iter().zip(self.bucket_counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// Observations since `earlier`, a snapshot of the same histogram.
    pub(crate) fn count_since(&self, earlier: &Histogram<N>) -> u64 {
        self.count.saturating_sub(earlier.count)
    }

    /// The smallest bound that at least `quantile` of the observations since `earlier` fall
    /// within; `None` without observations or when they fall beyond the last bound.
    pub(crate) fn quantile_bound_since(&self, earlier: &Histogram<N>, bounds: &[f64; N], quantile: f64) -> Option<f64> {
        let total = self.count_since(earlier);
        if total == 0 {
            return None;
        }
        let rank = (quantile * total as f64).ceil().max(1.0) as u64;
        bounds
            .iter()
            .zip(self.bucket_counts.iter().zip(earlier.bucket_counts.iter()))
            .find(|(_, (now, then))| now.saturating_sub(**then) >= rank)
            .map(|(bound, _)| *bound)
    }
}

/// The latest sample-ratio test of one experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmGauge {
    /// The chi-square test's p-value.
    pub p_value: f64,
    /// `p_value < stats::SRM_ALARM_P`.
    pub mismatch: bool,
}

/// (tenant, experiment) → the latest test of every experiment the monitor could test.
pub type SrmGauges = BTreeMap<(String, String), SrmGauge>;

/// What the scheduled sample-ratio monitor reports.
#[derive(Default)]
struct SrmMonitorState {
    gauges: SrmGauges,
    /// Unix seconds at the end of the latest completed check.
    last_check_unix_seconds: Option<f64>,
    checks: u64,
    failed_checks: u64,
}

/// Every metric the collector exports.
#[derive(Default)]
pub struct Metrics {
    /// (kind) → records newly stored.
    ingested: Mutex<BTreeMap<RecordKind, u64>>,
    /// (kind) → records that were already stored.
    duplicates: Mutex<BTreeMap<RecordKind, u64>>,
    /// (reason code) → rejected requests.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// (tenant) → requests refused by the rate limiter.
    rate_limited: Mutex<BTreeMap<String, u64>>,
    commit_latency: Mutex<Histogram<{ LATENCY_BUCKETS.len() }>>,
    delivery_lag: Mutex<Histogram<{ DELIVERY_LAG_BUCKETS.len() }>>,
    srm_monitor: Mutex<SrmMonitorState>,
    /// Requests by route and status, and the process.
    pub http: Arc<HttpMetrics>,
}

/// Locks a metric; a panic elsewhere while holding it leaves numbers that are still worth showing.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn add<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, amount: u64) {
    *lock(map).entry(key).or_insert(0) += amount;
}

/// A sample value as the exposition format reads it (Go's `ParseFloat`). Rust's `Display`
/// never uses an exponent, which would spell a p-value of 1e-300 with 300 zeros.
fn sample_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value != 0.0 && value.abs() < 1e-4 {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

/// Quotes a label value per the exposition format.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_counter<K: Ord>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    map: &Mutex<BTreeMap<K, u64>>,
    key_text: impl Fn(&K) -> String,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (key, value) in lock(map).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {value}", escape_label(&key_text(key)));
    }
}

fn render_histogram<const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[f64; N],
    histogram: &Mutex<Histogram<N>>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    render_histogram_series(out, name, "", bounds, &lock(histogram));
}

/// One histogram's samples; `labels` are `name="value",` pairs put before each bucket's `le`.
fn render_histogram_series<const N: usize>(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64; N],
    histogram: &Histogram<N>,
) {
    for (bound, count) in bounds.iter().zip(histogram.bucket_counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", histogram.count);
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.trim_end_matches(','))
    };
    let _ = writeln!(out, "{name}_sum{braced} {}", sample_value(histogram.sum_seconds));
    let _ = writeln!(out, "{name}_count{braced} {}", histogram.count);
}

/// The writer's time per phase of a group commit (see [`WriterTimings`]).
fn render_writer_timings(out: &mut String, timings: &WriterTimings) {
    let name = "cohort_writer_phase_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} The single writer's time per phase: each batch's wait in its queue, and each group commit's statements and commit (the fsync).\n# TYPE {name} histogram"
    );
    for phase in WriterPhase::ALL {
        let labels = format!("phase=\"{}\",", phase.label());
        render_histogram_series(out, name, &labels, &LATENCY_BUCKETS, timings.histogram(phase));
    }
}

fn render_srm_gauge(out: &mut String, name: &str, help: &str, gauges: &SrmGauges, value: impl Fn(&SrmGauge) -> f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for ((tenant, experiment), gauge) in gauges {
        let _ = writeln!(
            out,
            "{name}{{tenant=\"{}\",experiment=\"{}\"}} {}",
            escape_label(tenant),
            escape_label(experiment),
            sample_value(value(gauge))
        );
    }
}

fn render_srm_monitor(out: &mut String, state: &SrmMonitorState) {
    render_srm_gauge(
        out,
        "cohort_srm_p_value",
        "P-value of the latest scheduled sample-ratio test (chi-square against the configured split, else an equal one).",
        &state.gauges,
        |gauge| gauge.p_value,
    );
    render_srm_gauge(
        out,
        "cohort_srm_mismatch",
        "1 when the latest scheduled sample-ratio test found a mismatch (p < 0.001), else 0.",
        &state.gauges,
        |gauge| if gauge.mismatch { 1.0 } else { 0.0 },
    );
    let name = "cohort_srm_last_check_timestamp_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Unix time the latest scheduled sample-ratio check completed.\n# TYPE {name} gauge"
    );
    if let Some(seconds) = state.last_check_unix_seconds {
        let _ = writeln!(out, "{name} {}", sample_value(seconds));
    }
    for (name, help, value) in [
        (
            "cohort_srm_checks_total",
            "Scheduled sample-ratio checks completed.",
            state.checks,
        ),
        (
            "cohort_srm_check_failures_total",
            "Scheduled sample-ratio checks a storage error stopped.",
            state.failed_checks,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
}

impl Metrics {
    /// Counts a committed batch.
    pub fn record_commit(&self, kind: RecordKind, inserted: u64, duplicates: u64, latency: Duration) {
        add(&self.ingested, kind, inserted);
        add(&self.duplicates, kind, duplicates);
        lock(&self.commit_latency).observe(&LATENCY_BUCKETS, latency.as_secs_f64());
    }

    /// Observes, per newly stored exposure, the time from its own timestamp to `committed_at_ms`
    /// (both Unix milliseconds); an exposure stamped later than that (edge clock ahead) counts 0.
    pub fn record_delivery_lag(&self, exposure_timestamps_ms: &[i64], committed_at_ms: i64) {
        if exposure_timestamps_ms.is_empty() {
            return;
        }
        let mut histogram = lock(&self.delivery_lag);
        for &timestamp in exposure_timestamps_ms {
            let lag_ms = committed_at_ms.saturating_sub(timestamp).max(0);
            histogram.observe(&DELIVERY_LAG_BUCKETS, lag_ms as f64 / 1000.0);
        }
    }

    /// Replaces every sample-ratio gauge with those of a completed check that ended at
    /// `finished_unix_seconds`; returns the gauges it replaced.
    pub fn record_srm_check(&self, gauges: SrmGauges, finished_unix_seconds: f64) -> SrmGauges {
        let mut state = lock(&self.srm_monitor);
        state.checks += 1;
        state.last_check_unix_seconds = Some(finished_unix_seconds);
        std::mem::replace(&mut state.gauges, gauges)
    }

    /// Counts a sample-ratio check that a storage error stopped (its gauges stay as they were).
    pub fn record_srm_check_failure(&self) {
        lock(&self.srm_monitor).failed_checks += 1;
    }

    /// Counts a refused request by its error code.
    pub fn record_rejection(&self, code: &'static str) {
        add(&self.rejected, code, 1);
    }

    /// Counts a rate-limited request.
    pub fn record_rate_limited(&self, tenant: &str) {
        add(&self.rate_limited, tenant.to_owned(), 1);
    }

    /// The Prometheus text exposition, with the store's writer timings.
    pub fn render(&self, writer: &WriterTimings) -> String {
        let mut out = String::new();
        render_counter(
            &mut out,
            "cohort_ingested_records_total",
            "Records newly stored.",
            "kind",
            &self.ingested,
            |kind| kind.label().to_owned(),
        );
        render_counter(
            &mut out,
            "cohort_duplicate_records_total",
            "Records received again and ignored (idempotent re-sends).",
            "kind",
            &self.duplicates,
            |kind| kind.label().to_owned(),
        );
        render_counter(
            &mut out,
            "cohort_rejected_requests_total",
            "Ingest requests refused, by reason.",
            "reason",
            &self.rejected,
            |reason| (*reason).to_owned(),
        );
        render_counter(
            &mut out,
            "cohort_rate_limited_requests_total",
            "Ingest requests refused by the tenant's rate limit.",
            "tenant",
            &self.rate_limited,
            String::clone,
        );
        render_histogram(
            &mut out,
            "cohort_commit_latency_seconds",
            "Time from a batch reaching the writer's queue to its commit.",
            &LATENCY_BUCKETS,
            &self.commit_latency,
        );
        render_histogram(
            &mut out,
            "cohort_delivery_lag_seconds",
            "Time from each newly stored exposure's own timestamp to its commit (0 when stamped later).",
            &DELIVERY_LAG_BUCKETS,
            &self.delivery_lag,
        );
        render_writer_timings(&mut out, writer);
        render_srm_monitor(&mut out, &lock(&self.srm_monitor));
        self.http.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record_commit(RecordKind::Exposures, 90, 10, Duration::from_millis(3));
        metrics.record_rejection("bad_signature");
        metrics.record_rate_limited("sh\"op");
        let text = metrics.render(&WriterTimings::default());
        assert!(
            text.contains("cohort_ingested_records_total{kind=\"exposure\"} 90\n"),
            "{text}"
        );
        assert!(text.contains("cohort_duplicate_records_total{kind=\"exposure\"} 10\n"));
        assert!(text.contains("cohort_rejected_requests_total{reason=\"bad_signature\"} 1\n"));
        assert!(text.contains("cohort_rate_limited_requests_total{tenant=\"sh\\\"op\"} 1\n"));
        assert!(text.contains("cohort_commit_latency_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("cohort_commit_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("cohort_commit_latency_seconds_count 1\n"));
    }

    #[test]
    fn renders_sample_ratio_gauges_per_experiment_and_the_monitor_counters() {
        let metrics = Metrics::default();
        let text = metrics.render(&WriterTimings::default());
        assert!(
            text.contains("# TYPE cohort_srm_p_value gauge\n# HELP cohort_srm_mismatch"),
            "{text}"
        );
        assert!(text.contains("cohort_srm_checks_total 0\n"));
        // No timestamp before the first check: an alert on staleness cannot mistake 0 for a time.
        assert!(!text.contains("\ncohort_srm_last_check_timestamp_seconds "), "{text}");

        let key = |tenant: &str, experiment: &str| (tenant.to_owned(), experiment.to_owned());
        let first: SrmGauges = [
            (
                key("shop", "cta"),
                SrmGauge {
                    p_value: 2.5e-36,
                    mismatch: true,
                },
            ),
            (
                key("sh\"op", "a\\b"),
                SrmGauge {
                    p_value: 0.5,
                    mismatch: false,
                },
            ),
        ]
        .into_iter()
        .collect();
        assert!(metrics.record_srm_check(first.clone(), 1_800_000_000.25).is_empty());
        metrics.record_srm_check_failure();
        let text = metrics.render(&WriterTimings::default());
        assert!(
            text.contains("cohort_srm_p_value{tenant=\"shop\",experiment=\"cta\"} 2.5e-36\n"),
            "{text}"
        );
        assert!(text.contains("cohort_srm_mismatch{tenant=\"shop\",experiment=\"cta\"} 1\n"));
        assert!(
            text.contains("cohort_srm_p_value{tenant=\"sh\\\"op\",experiment=\"a\\\\b\"} 0.5\n"),
            "{text}"
        );
        assert!(text.contains("cohort_srm_mismatch{tenant=\"sh\\\"op\",experiment=\"a\\\\b\"} 0\n"));
        assert!(text.contains("cohort_srm_last_check_timestamp_seconds 1800000000.25\n"));
        assert!(text.contains("cohort_srm_checks_total 1\n"));
        assert!(text.contains("cohort_srm_check_failures_total 1\n"));

        // A check replaces every gauge: an experiment it no longer tests disappears.
        let second: SrmGauges = [(
            key("shop", "cta"),
            SrmGauge {
                p_value: 0.2,
                mismatch: false,
            },
        )]
        .into_iter()
        .collect();
        assert_eq!(metrics.record_srm_check(second, 1_800_000_060.0), first);
        let text = metrics.render(&WriterTimings::default());
        assert!(
            text.contains("cohort_srm_mismatch{tenant=\"shop\",experiment=\"cta\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("sh\\\"op"), "{text}");
        assert!(text.contains("cohort_srm_last_check_timestamp_seconds 1800000060\n"));
        assert!(text.contains("cohort_srm_checks_total 2\n"));
    }

    #[test]
    fn delivery_lag_is_per_exposure_and_never_negative() {
        let metrics = Metrics::default();
        let committed_ms = 1_800_000_100_000;
        metrics.record_delivery_lag(
            &[committed_ms - 500, committed_ms - 90_000, committed_ms + 7_000],
            committed_ms,
        );
        metrics.record_delivery_lag(&[], committed_ms);
        let text = metrics.render(&WriterTimings::default());
        let name = "cohort_delivery_lag_seconds";
        assert!(text.contains(&format!("# TYPE {name} histogram\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{le=\"1\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{le=\"60\"}} 2\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"120\"}} 3\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"86400\"}} 3\n")));
        assert!(text.contains(&format!("{name}_bucket{{le=\"+Inf\"}} 3\n")));
        assert!(text.contains(&format!("{name}_sum 90.5\n")));
        assert!(text.contains(&format!("{name}_count 3\n")));
    }

    #[test]
    fn sample_values_parse_as_prometheus_floats() {
        assert_eq!(sample_value(0.0), "0");
        assert_eq!(sample_value(1.0), "1");
        assert_eq!(sample_value(0.0012), "0.0012");
        assert_eq!(sample_value(1e-300), "1e-300");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(sample_value(f64::NAN), "NaN");
    }
}
