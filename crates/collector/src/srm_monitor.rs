//! The scheduled sample-ratio-mismatch (SRM) check: every experiment of every tenant is tested
//! on a schedule and soon after a burst of new exposures, whether or not anyone reads its results,
//! and the outcome is exported as gauges (`cohort_srm_p_value`, `cohort_srm_mismatch`) that
//! deploy/prometheus/alerts.yml alerts on.
//!
//! The expected split is the tenant's configured one (variant weights; a variant the data shows
//! but the config lacks is expected to get nothing), else an equal split over the variants seen —
//! the same defaults results use when the query names no split. The tenant holdout's membership
//! records (`_holdout`) are tested against the config's `holdout` share, and only when the
//! collector has the tenant's config: an equal split would be the wrong expectation for them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::app::AppState;
use crate::metrics::{SrmGauge, SrmGauges};
use cohort_core::exposure::HOLDOUT_EXPERIMENT;

use crate::results::{self, ResultsQuery};
use crate::stats::{SampleRatioTest, sample_ratio_test};
use crate::store::{ExposureFilter, StoreError, VariantExposureSummary};
use crate::tenant_configs::TenantConfigs;

/// When the monitor checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrmMonitorOptions {
    /// Time between scheduled checks (at least 1 ms).
    pub interval: Duration,
    /// Newly stored exposures since the last check that start a check before the schedule does.
    pub burst_records: u64,
}

impl Default for SrmMonitorOptions {
    fn default() -> SrmMonitorOptions {
        SrmMonitorOptions {
            interval: Duration::from_secs(60),
            burst_records: 10_000,
        }
    }
}

/// Counts newly stored exposures between checks and wakes the monitor when they reach its burst
/// size. Until a monitor is started it only counts.
#[derive(Debug)]
pub struct SrmTrigger {
    stored_since_check: AtomicU64,
    burst_records: AtomicU64,
    wake: Notify,
}

impl Default for SrmTrigger {
    fn default() -> SrmTrigger {
        SrmTrigger {
            stored_since_check: AtomicU64::new(0),
            burst_records: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
        }
    }
}

impl SrmTrigger {
    /// Adds exposures a commit newly stored; wakes the monitor when they pass its burst size.
    pub fn record_stored_exposures(&self, count: u64) {
        let burst = self.burst_records.load(Ordering::Relaxed);
        let before = self.stored_since_check.fetch_add(count, Ordering::Relaxed);
        // Only the commit that crosses the threshold wakes it; a wake while the monitor is busy
        // is kept (Notify stores one permit) and starts the next check as soon as it can.
        if before < burst && before.saturating_add(count) >= burst {
            self.wake.notify_one();
        }
    }

    /// Exposures stored since the last check started.
    pub fn stored_since_check(&self) -> u64 {
        self.stored_since_check.load(Ordering::Relaxed)
    }
}

/// What one completed check found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SrmCheck {
    /// Experiments tested (those with at least two variants and one unit).
    pub experiments: usize,
    /// (tenant, experiment) of every experiment in mismatch.
    pub mismatches: Vec<(String, String)>,
}

/// A change of an experiment's alarm between two checks, logged once.
#[derive(Debug, Clone, PartialEq)]
enum AlarmChange<'a> {
    Raised(&'a (String, String), SrmGauge),
    Cleared(&'a (String, String), SrmGauge),
}

/// Alarms raised and cleared from `previous` to `current`. An experiment absent before counts
/// as not in alarm, so a mismatch already present when the collector starts is reported once.
fn alarm_changes<'a>(previous: &SrmGauges, current: &'a SrmGauges) -> Vec<AlarmChange<'a>> {
    current
        .iter()
        .filter_map(|(key, gauge)| {
            let was = previous.get(key).is_some_and(|before| before.mismatch);
            match (was, gauge.mismatch) {
                (false, true) => Some(AlarmChange::Raised(key, *gauge)),
                (true, false) => Some(AlarmChange::Cleared(key, *gauge)),
                _ => None,
            }
        })
        .collect()
}

/// The variants to test with their observed units and expected weights, by the same rules results
/// use without a query (the configured split, strays expected to get nothing; else an equal
/// split over the variants seen). `None` for the holdout's records without the tenant's config:
/// an equal split would be the wrong expectation for them.
fn expected_split(
    configs: &TenantConfigs,
    tenant: &str,
    experiment: &str,
    version_mix: Option<&[(String, f64)]>,
    observed: &[VariantExposureSummary],
) -> Option<Vec<(String, u64, f64)>> {
    let configured = configs.experiment(tenant, experiment);
    if configured.is_none() && experiment == HOLDOUT_EXPERIMENT {
        return None;
    }
    let exposed: Vec<(String, u64)> = observed.iter().map(|s| (s.variant.clone(), s.units)).collect();
    let (weights, _) = results::expected_split(&ResultsQuery::default(), configured, version_mix, &exposed).ok()?;
    let units_of = |variant: &str| exposed.iter().find(|(v, _)| v == variant).map_or(0, |(_, n)| *n);
    Some(
        weights
            .into_iter()
            .map(|(variant, weight)| {
                let units = units_of(&variant);
                (variant, units, weight)
            })
            .collect(),
    )
}

fn test_split(split: &[(String, u64, f64)]) -> Option<SampleRatioTest> {
    let observed: Vec<u64> = split.iter().map(|(_, units, _)| *units).collect();
    let weights: Vec<f64> = split.iter().map(|(_, _, weight)| *weight).collect();
    sample_ratio_test(&observed, &weights)
}

/// `control:700,green:300`-style text of one field of the split, for the log.
fn describe(split: &[(String, u64, f64)], field: impl Fn(&(String, u64, f64)) -> String) -> String {
    split
        .iter()
        .map(|entry| format!("{}:{}", entry.0, field(entry)))
        .collect::<Vec<_>>()
        .join(",")
}

fn unix_seconds_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Runs one check now: tests every experiment of every tenant with exposures,
/// replaces the exported gauges, logs each alarm raised or cleared since the previous check, and
/// counts the check. A storage error stops the check, leaves the gauges as they were and is
/// counted in `cohort_srm_check_failures_total`.
pub async fn run_check(state: &AppState) -> Result<SrmCheck, StoreError> {
    state.srm_trigger.stored_since_check.store(0, Ordering::Relaxed);
    let tested = match test_every_experiment(state).await {
        Ok(tested) => tested,
        Err(error) => {
            state.metrics.record_srm_check_failure();
            return Err(error);
        }
    };
    let gauges: SrmGauges = tested
        .iter()
        .map(|(key, (test, _))| {
            (
                key.clone(),
                SrmGauge {
                    p_value: test.p_value,
                    mismatch: test.mismatch,
                },
            )
        })
        .collect();
    let previous = state.metrics.record_srm_check(gauges.clone(), unix_seconds_now());
    for change in alarm_changes(&previous, &gauges) {
        match change {
            AlarmChange::Raised((tenant, experiment), gauge) => {
                let split = tested
                    .get(&(tenant.clone(), experiment.clone()))
                    .map(|(_, split)| split);
                let split = split.map_or(&[][..], Vec::as_slice);
                tracing::warn!(
                    tenant,
                    experiment,
                    p_value = gauge.p_value,
                    observed_units = describe(split, |entry| entry.1.to_string()),
                    expected_weights = describe(split, |entry| entry.2.to_string()),
                    "sample-ratio mismatch: the assignment or the exposure logging is broken; do not trust this experiment's lift"
                );
            }
            AlarmChange::Cleared((tenant, experiment), gauge) => {
                tracing::info!(
                    tenant,
                    experiment,
                    p_value = gauge.p_value,
                    "sample-ratio mismatch cleared"
                );
            }
        }
    }
    Ok(SrmCheck {
        experiments: gauges.len(),
        mismatches: gauges
            .iter()
            .filter(|(_, gauge)| gauge.mismatch)
            .map(|(key, _)| key.clone())
            .collect(),
    })
}

type TestedExperiments = BTreeMap<(String, String), (SampleRatioTest, Vec<(String, u64, f64)>)>;

async fn test_every_experiment(state: &AppState) -> Result<TestedExperiments, StoreError> {
    let mut tested = BTreeMap::new();
    for tenant in state.store.tenants_with_exposures().await? {
        let configs = state.tenant_configs(&tenant).await?;
        let summaries = state.store.exposure_summaries(&tenant).await?;
        // Sorted by experiment, then variant: each experiment's rows are one run.
        for variants in summaries.chunk_by(|a, b| a.experiment == b.experiment) {
            let experiment = &variants[0].experiment;
            let version_mix = match configs.experiment(&tenant, experiment) {
                Some(configured) => {
                    results::version_mix(state, &tenant, configured, &ExposureFilter::default()).await?
                }
                None => None,
            };
            let Some(split) = expected_split(&configs, &tenant, experiment, version_mix.as_deref(), variants) else {
                continue;
            };
            if let Some(test) = test_split(&split) {
                tested.insert((tenant.clone(), experiment.clone()), (test, split));
            }
        }
    }
    Ok(tested)
}

/// Starts the monitor on the current Tokio runtime: a check at once, then one every
/// `options.interval` and one soon after every `options.burst_records` newly stored exposures.
/// After each check it rests as long as the check took, so under heavy ingest burst-started checks
/// take at most half of one read connection's time. Abort the handle to stop it.
pub fn spawn(state: AppState, options: SrmMonitorOptions) -> JoinHandle<()> {
    state
        .srm_trigger
        .burst_records
        .store(options.burst_records, Ordering::Relaxed);
    tokio::spawn(run(state, options.interval.max(Duration::from_millis(1))))
}

async fn run(state: AppState, interval: Duration) {
    let mut schedule = tokio::time::interval(interval);
    schedule.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let cause = tokio::select! {
            _ = schedule.tick() => "schedule",
            () = state.srm_trigger.wake.notified() => {
                // The next scheduled check comes a full interval after this one.
                schedule.reset();
                "burst"
            }
        };
        let started = Instant::now();
        match run_check(&state).await {
            Ok(check) => tracing::debug!(
                cause,
                experiments = check.experiments,
                mismatches = check.mismatches.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sample-ratio check done"
            ),
            Err(error) => tracing::error!(%error, cause, "sample-ratio check failed"),
        }
        tokio::time::sleep(started.elapsed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(variant: &str, units: u64) -> VariantExposureSummary {
        VariantExposureSummary {
            experiment: "cta".into(),
            variant: variant.into(),
            units,
            first_exposure_ms: 1,
            last_exposure_ms: 2,
        }
    }

    const SHOP: &str = r#"{"schema": 1, "tenant": "shop", "version": 3, "hostnames": ["shop.example"],
      "hash_key": "000102030405060708090a0b0c0d0e0f", "holdout": 500,
      "experiments": [{"key": "cta", "status": "running",
        "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]}]}"#;

    #[test]
    fn expectations_come_from_the_config_or_an_equal_split_and_the_holdout_needs_a_config() {
        let mut configs = TenantConfigs::default();
        configs.insert_json(SHOP).unwrap();
        let observed = [summary("green", 480), summary("control", 520)];
        assert_eq!(
            expected_split(&configs, "shop", "cta", None, &observed).unwrap(),
            [("control".to_owned(), 520, 5000.0), ("green".to_owned(), 480, 5000.0)]
        );
        let held = [summary("holdout", 6), summary("rest", 94)];
        assert_eq!(
            expected_split(&configs, "shop", HOLDOUT_EXPERIMENT, None, &held).unwrap(),
            [("holdout".to_owned(), 6, 500.0), ("rest".to_owned(), 94, 9500.0)]
        );
        assert_eq!(expected_split(&configs, "news", HOLDOUT_EXPERIMENT, None, &held), None);
    }

    #[test]
    fn the_config_sets_the_split_and_strays_are_expected_to_get_nothing() {
        let mut configs = TenantConfigs::default();
        configs.insert_json(SHOP).unwrap();
        let observed = [summary("control", 700), summary("stray", 3)];
        let split = expected_split(&configs, "shop", "cta", None, &observed).unwrap();
        assert_eq!(
            split,
            [
                ("control".to_owned(), 700, 5000.0),
                ("green".to_owned(), 0, 5000.0),
                ("stray".to_owned(), 3, 0.0)
            ]
        );
        assert!(test_split(&split).unwrap().mismatch);
        assert_eq!(
            describe(&split, |entry| entry.1.to_string()),
            "control:700,green:0,stray:3"
        );
    }

    #[test]
    fn without_a_config_the_variants_seen_share_equally() {
        let configs = TenantConfigs::default();
        let observed = [summary("a", 510), summary("b", 490)];
        let split = expected_split(&configs, "news", "layout", None, &observed).unwrap();
        assert_eq!(split, [("a".to_owned(), 510, 1.0), ("b".to_owned(), 490, 1.0)]);
        let test = test_split(&split).unwrap();
        assert!(!test.mismatch && test.p_value > 0.5, "{test:?}");
        // One variant seen and no config: nothing to compare.
        let one = expected_split(&configs, "news", "layout", None, &observed[..1]).unwrap();
        assert_eq!(test_split(&one), None);
    }

    #[test]
    fn alarms_are_reported_when_raised_and_when_cleared_only() {
        let key = |experiment: &str| ("shop".to_owned(), experiment.to_owned());
        let gauge = |mismatch| SrmGauge {
            p_value: if mismatch { 1e-9 } else { 0.4 },
            mismatch,
        };
        let previous: SrmGauges = [
            (key("steady-alarm"), gauge(true)),
            (key("healing"), gauge(true)),
            (key("fine"), gauge(false)),
        ]
        .into_iter()
        .collect();
        let current: SrmGauges = [
            (key("steady-alarm"), gauge(true)),
            (key("healing"), gauge(false)),
            (key("fine"), gauge(false)),
            (key("breaking"), gauge(true)),
            (key("new-and-fine"), gauge(false)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            alarm_changes(&previous, &current),
            [
                AlarmChange::Raised(&key("breaking"), gauge(true)),
                AlarmChange::Cleared(&key("healing"), gauge(false)),
            ]
        );
    }

    #[test]
    fn only_the_commit_that_crosses_the_burst_wakes_the_monitor() {
        let trigger = SrmTrigger::default();
        trigger.record_stored_exposures(50);
        assert_eq!(trigger.stored_since_check(), 50);
        trigger.burst_records.store(100, Ordering::Relaxed);
        let woken = || {
            let notified = trigger.wake.notified();
            tokio::pin!(notified);
            // Registers interest and polls once: ready only if a permit was stored.
            notified.as_mut().enable()
        };
        trigger.record_stored_exposures(40);
        assert!(!woken());
        trigger.record_stored_exposures(10);
        assert!(woken());
        trigger.record_stored_exposures(500);
        assert!(!woken());
    }
}
