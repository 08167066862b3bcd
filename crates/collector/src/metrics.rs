//! Prometheus metrics, rendered by hand in the text exposition format: a few counters and one
//! histogram do not warrant a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the commit latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

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

#[derive(Default)]
struct Histogram {
    bucket_counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
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
    /// (tenant) → results queries that found a sample-ratio mismatch.
    srm_alarms: Mutex<BTreeMap<String, u64>>,
    commit_latency: Mutex<Histogram>,
}

fn add<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, amount: u64) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *map.entry(key).or_insert(0) += amount;
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
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (key, value) in map.iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {value}", escape_label(&key_text(key)));
    }
}

impl Metrics {
    /// Counts a committed batch.
    pub fn record_commit(&self, kind: RecordKind, inserted: u64, duplicates: u64, latency: Duration) {
        add(&self.ingested, kind, inserted);
        add(&self.duplicates, kind, duplicates);
        let seconds = latency.as_secs_f64();
        let mut histogram = self
            .commit_latency
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.bucket_counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// Counts a refused request by its error code.
    pub fn record_rejection(&self, code: &'static str) {
        add(&self.rejected, code, 1);
    }

    /// Counts a rate-limited request.
    pub fn record_rate_limited(&self, tenant: &str) {
        add(&self.rate_limited, tenant.to_owned(), 1);
    }

    /// Counts a results query that raised the sample-ratio-mismatch alarm.
    pub fn record_srm_alarm(&self, tenant: &str) {
        add(&self.srm_alarms, tenant.to_owned(), 1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
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
        render_counter(
            &mut out,
            "cohort_srm_alarms_total",
            "Results queries that found a sample-ratio mismatch (p < 0.001).",
            "tenant",
            &self.srm_alarms,
            String::clone,
        );
        let name = "cohort_commit_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a batch reaching the writer's queue to its commit.\n# TYPE {name} histogram"
        );
        let histogram = self
            .commit_latency
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.bucket_counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
        let _ = writeln!(out, "{name}_sum {}", histogram.sum_seconds);
        let _ = writeln!(out, "{name}_count {}", histogram.count);
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
        metrics.record_srm_alarm("sh\"op");
        let text = metrics.render();
        assert!(
            text.contains("cohort_ingested_records_total{kind=\"exposure\"} 90\n"),
            "{text}"
        );
        assert!(text.contains("cohort_duplicate_records_total{kind=\"exposure\"} 10\n"));
        assert!(text.contains("cohort_rejected_requests_total{reason=\"bad_signature\"} 1\n"));
        assert!(text.contains("cohort_srm_alarms_total{tenant=\"sh\\\"op\"} 1\n"));
        assert!(text.contains("cohort_commit_latency_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("cohort_commit_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("cohort_commit_latency_seconds_count 1\n"));
    }
}
