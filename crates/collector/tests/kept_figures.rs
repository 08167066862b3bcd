//! The metric figures kept at ingest against the from-scratch computation: any interleaving of
//! exposures and conversions (conversions before their unit's exposure, late exposures, events
//! before the lookback, redelivered batches, a metric's window changed midway, values beyond the
//! bound) leaves whole-experiment results read from the kept figures equal to the join of every
//! conversion to its unit's exposure, under every kind of cap. Sums built by differences add in
//! another order than the join's, so they are compared to a relative tolerance.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use cohort_collector::Store;
use cohort_collector::store::{Batch, ExposureFilter, KEPT_LOOKBACK_MS, MetricAggregate, MetricShape, StaleMetric};
use cohort_core::Exposure;
use common::{Harness, at, conversion, property_runner, unique_tenant};
use proptest::prelude::*;

const HOUR_MS: i64 = 3_600_000;
const EXPERIMENTS: [&str; 2] = ["hero", "checkout"];
const VARIANTS: [&str; 2] = ["control", "green"];
/// `buy` is defined (windows and caps vary); `view` is not, so it is read with no window.
const METRICS: [&str; 2] = ["buy", "view"];
const VALUES: [Option<f64>; 8] = [
    None,
    Some(1.0),
    Some(12.5),
    Some(40.0),
    Some(-7.0),
    Some(100.0),
    Some(0.25),
    Some(3e9),
];
const WINDOWS: [Option<i64>; 3] = [None, Some(2 * HOUR_MS), Some(30 * 60_000)];

#[derive(Debug, Clone)]
enum Step {
    /// Exposures: (experiment, unit, variant, milliseconds into the run).
    Exposures(Vec<(usize, usize, usize, i64)>),
    /// Conversions: (event number, unit, metric, value, milliseconds into the run); event
    /// numbers repeat, so some are duplicates of stored events.
    Conversions(Vec<(usize, usize, usize, usize, i64)>),
    /// The batch sent this many steps back, again.
    Redeliver(usize),
    /// `buy`'s window changes, and its figures are rebuilt.
    Rewindow(usize),
}

fn steps() -> impl Strategy<Value = (usize, Vec<Step>)> {
    let exposure = (0usize..2, 0usize..10, 0usize..2, 0i64..6 * HOUR_MS);
    // Some events fall before the lookback, some long after the exposures.
    let time = prop_oneof![
        6 => -3 * HOUR_MS..8 * HOUR_MS,
        1 => -KEPT_LOOKBACK_MS - 2 * HOUR_MS..-KEPT_LOOKBACK_MS + 2 * HOUR_MS,
    ];
    let event = (0usize..40, 0usize..10, 0usize..2, 0usize..VALUES.len(), time);
    let step = prop_oneof![
        4 => prop::collection::vec(exposure, 1..12).prop_map(Step::Exposures),
        4 => prop::collection::vec(event, 1..8).prop_map(Step::Conversions),
        1 => (1usize..4).prop_map(Step::Redeliver),
        1 => (0usize..WINDOWS.len()).prop_map(Step::Rewindow),
    ];
    (0usize..WINDOWS.len(), prop::collection::vec(step, 1..14))
}

fn shapes(window_ms: Option<i64>) -> Vec<Vec<MetricShape>> {
    let buy = |upper_cap, winsorize, lower_cap| MetricShape {
        key: "buy".into(),
        window_ms,
        upper_cap,
        winsorize,
        lower_cap,
    };
    vec![
        vec![buy(None, None, None)],
        vec![buy(Some(20.0), None, Some(-5.0))],
        vec![buy(None, Some(0.5), None)],
        vec![buy(Some(30.0), Some(0.9), Some(-30.0))],
        vec![buy(Some(1e12), Some(0.25), None)],
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-6
}

fn assert_equal(kept: &[MetricAggregate], joined: &[MetricAggregate], context: &str) {
    let keys = |rows: &[MetricAggregate]| -> Vec<(String, String)> {
        rows.iter().map(|r| (r.metric.clone(), r.variant.clone())).collect()
    };
    assert_eq!(keys(kept), keys(joined), "{context}: (metric, variant) rows");
    for (k, j) in kept.iter().zip(joined) {
        let counts = |r: &MetricAggregate| {
            (
                r.converted_units,
                r.active_before_units,
                r.converted_and_active_before_units,
                r.has_values,
                r.upper_cap,
            )
        };
        assert_eq!(counts(k), counts(j), "{context}: counts of {}/{}", k.metric, k.variant);
        let sums = |r: &MetricAggregate| {
            [
                r.value_sum,
                r.value_sum_of_squares,
                r.value_sum_before,
                r.value_sum_of_squares_before,
                r.value_sum_of_products,
            ]
        };
        for (a, b) in sums(k).into_iter().zip(sums(j)) {
            assert!(
                close(a, b),
                "{context}: sums of {}/{}: {k:?} against {j:?}",
                k.metric,
                k.variant
            );
        }
    }
}

async fn check(first_window: usize, steps: Vec<Step>) {
    let harness = Harness::new().await;
    let store: &Store = &harness.state.store;
    let tenant = unique_tenant("kept");
    let mut window = WINDOWS[first_window];
    store.rebuild_kept_metric(&tenant, "buy", window).await.unwrap();
    let mut sent: Vec<Batch> = Vec::new();
    for step in steps {
        let batch = match step {
            Step::Exposures(records) => Batch::Exposures(
                records
                    .iter()
                    .map(|&(experiment, unit, variant, offset)| {
                        Exposure::new(
                            &tenant,
                            EXPERIMENTS[experiment],
                            VARIANTS[variant],
                            &format!("unit-{unit}"),
                            1,
                            at(offset),
                        )
                    })
                    .collect(),
            ),
            Step::Conversions(records) => Batch::Conversions(
                records
                    .iter()
                    .map(|&(event, unit, metric, value, offset)| {
                        // A repeated event number is a duplicate, whatever else it carries: the
                        // first stored wins, for the join and the kept figures alike.
                        conversion(
                            &tenant,
                            &format!("event-{event}"),
                            &format!("unit-{unit}"),
                            METRICS[metric],
                            VALUES[value],
                            at(offset),
                        )
                    })
                    .collect(),
            ),
            Step::Redeliver(back) if back <= sent.len() => sent[sent.len() - back].clone(),
            Step::Redeliver(_) => continue,
            Step::Rewindow(choice) => {
                window = WINDOWS[choice];
                store.rebuild_kept_metric(&tenant, "buy", window).await.unwrap();
                continue;
            }
        };
        sent.push(batch.clone());
        store.insert(batch, at(0)).await.unwrap();
    }

    for shapes in shapes(window) {
        assert_eq!(
            store.stale_kept_metrics(&tenant, &shapes).await.unwrap(),
            Vec::<StaleMetric>::new(),
            "the kept figures fit the definitions, so results read them"
        );
        for experiment in EXPERIMENTS {
            let filter = ExposureFilter::default();
            let kept = store
                .metric_aggregates(&tenant, experiment, &filter, KEPT_LOOKBACK_MS, &shapes)
                .await
                .unwrap();
            let joined = store
                .metric_aggregates_from_events(&tenant, experiment, &filter, KEPT_LOOKBACK_MS, &shapes)
                .await
                .unwrap();
            assert_equal(&kept, &joined, &format!("{experiment} with {shapes:?}"));
        }
    }
}

#[test]
fn kept_figures_equal_the_join_of_events_to_exposures() {
    let (runtime, mut runner) = property_runner(48, "proptest-regressions/kept_figures.txt");
    runner
        .run(&steps(), |(first_window, steps)| {
            runtime.block_on(check(first_window, steps));
            Ok(())
        })
        .unwrap();
}

/// A database from before the kept figures (migration 4 not applied) gains them from its events
/// when a collector with the migration opens it. SQLite only: on a shared PostgreSQL, dropping
/// the tables would pull them from under the other tests.
#[tokio::test]
async fn the_migration_builds_the_figures_of_the_events_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cohort.db", dir.path().display());
    let tenant = unique_tenant("before");
    let store = Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    let exposures = (0..40)
        .map(|u| Exposure::new(&tenant, "hero", VARIANTS[u % 2], &format!("unit-{u}"), 1, at(0)))
        .collect();
    store.insert(Batch::Exposures(exposures), at(0)).await.unwrap();
    let conversions = (0..60)
        .map(|e| {
            let offset = if e % 3 == 0 { -HOUR_MS } else { HOUR_MS };
            conversion(
                &tenant,
                &format!("e{e}"),
                &format!("unit-{}", e % 40),
                "buy",
                VALUES[e % VALUES.len()],
                at(offset),
            )
        })
        .collect();
    store.insert(Batch::Conversions(conversions), at(0)).await.unwrap();
    store.close().await;

    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for statement in [
        "DROP VIEW unit_metric_figures_from_events",
        "DROP TRIGGER keep_figures_of_exposure",
        "DROP TRIGGER keep_figures_of_conversion",
        "DROP TABLE variant_metric_totals",
        "DROP TABLE unit_metric_figures",
        "DROP TABLE metric_windows",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    sqlx::Connection::close(db).await.unwrap();

    let store = Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(store.missing_migrations().await.unwrap(), Vec::<i64>::new());
    let capped = &shapes(None)[3];
    assert_eq!(store.stale_kept_metrics(&tenant, capped).await.unwrap(), vec![]);
    let filter = ExposureFilter::default();
    let kept = store
        .metric_aggregates(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, capped)
        .await
        .unwrap();
    let joined = store
        .metric_aggregates_from_events(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, capped)
        .await
        .unwrap();
    // Every unit of 0..20 has an event after its exposure; of 20..40, those not a multiple of 3.
    assert_eq!(kept.iter().map(|a| a.converted_units).sum::<u64>(), 33);
    assert_equal(&kept, &joined, "after the migration");
    store.close().await;
}

/// A definition whose window differs from the one the figures were built for is answered from
/// the events meanwhile, and the rebuild it queues makes the figures fit.
#[tokio::test]
async fn a_changed_window_reads_the_events_until_the_rebuild() {
    let harness = Harness::new().await;
    let store: &Store = &harness.state.store;
    let tenant = unique_tenant("rewindow");
    let exposures = (0..10)
        .map(|u| Exposure::new(&tenant, "hero", VARIANTS[u % 2], &format!("unit-{u}"), 1, at(0)))
        .collect();
    store.insert(Batch::Exposures(exposures), at(0)).await.unwrap();
    let conversions = (0..10)
        .map(|e| {
            conversion(
                &tenant,
                &format!("e{e}"),
                &format!("unit-{e}"),
                "buy",
                Some(5.0),
                at(e as i64 * HOUR_MS),
            )
        })
        .collect();
    store.insert(Batch::Conversions(conversions), at(0)).await.unwrap();

    let windowed = &shapes(Some(4 * HOUR_MS))[0];
    let stale = store.stale_kept_metrics(&tenant, windowed).await.unwrap();
    assert_eq!(
        stale,
        vec![StaleMetric {
            metric: "buy".into(),
            window_ms: Some(4 * HOUR_MS)
        }]
    );
    let filter = ExposureFilter::default();
    let read = store
        .metric_aggregates(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, windowed)
        .await
        .unwrap();
    let joined = store
        .metric_aggregates_from_events(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, windowed)
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|a| a.converted_units).sum::<u64>(),
        4,
        "events within 4 hours"
    );
    assert_equal(&read, &joined, "from the events while stale");
    // The read queued the rebuild; this one waits behind it and finds nothing left to do.
    assert!(
        !store
            .rebuild_kept_metric(&tenant, "buy", Some(4 * HOUR_MS))
            .await
            .unwrap()
    );
    assert_eq!(store.stale_kept_metrics(&tenant, windowed).await.unwrap(), vec![]);
    let kept = store
        .metric_aggregates(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, windowed)
        .await
        .unwrap();
    assert_equal(&kept, &joined, "from the rebuilt figures");
    // Back to no window: a metric the config stops windowing is rebuilt too.
    assert!(store.rebuild_kept_metric(&tenant, "buy", None).await.unwrap());
    let all = store
        .metric_aggregates(&tenant, "hero", &filter, KEPT_LOOKBACK_MS, &shapes(None)[0])
        .await
        .unwrap();
    assert_eq!(all.iter().map(|a| a.converted_units).sum::<u64>(), 10);
}
