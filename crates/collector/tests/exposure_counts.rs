//! `exposure_counts`, kept at ingest, against a from-scratch count: any sequence of exposure
//! batches (units exposed twice, batches redelivered, conversions in between) leaves every read
//! that counts units from it (units per variant and per config version, slices, summaries, the
//! span, the timeline) equal to counting the first stored exposure of every unit. The model here
//! counts in memory, independently of both the aggregate and the SQL that scans the exposures.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeMap;

use cohort_collector::Store;
use cohort_collector::store::{Batch, ExposureFilter};
use cohort_core::{DeviceClass, Exposure};
use common::{Harness, at, conversion, property_runner, unique_tenant};
use proptest::prelude::*;

const HOUR_MS: i64 = 3_600_000;
const EXPERIMENTS: [&str; 2] = ["hero", "checkout"];
const VARIANTS: [&str; 3] = ["control", "green", "blue"];
const COUNTRIES: [Option<&str>; 3] = [None, Some("DE"), Some("FR")];
const DEVICES: [Option<DeviceClass>; 3] = [None, Some(DeviceClass::Mobile), Some(DeviceClass::Desktop)];

/// (experiment, unit, variant, config version, country, device, milliseconds into the run).
type Record = (usize, usize, usize, u64, usize, usize, i64);

#[derive(Debug, Clone)]
enum Step {
    /// A batch of exposures, units repeated within and across batches.
    Exposures(Vec<Record>),
    /// An earlier exposure batch again (a redelivery), by position among them.
    Redeliver(usize),
    /// Conversions of some units, some before any exposure of theirs.
    Conversions(Vec<(usize, i64)>),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let record = (
        0usize..2,
        0usize..12,
        0usize..3,
        1u64..3,
        0usize..3,
        0usize..3,
        0i64..5 * HOUR_MS,
    );
    let step = prop_oneof![
        4 => prop::collection::vec(record, 1..20).prop_map(Step::Exposures),
        1 => (0usize..8).prop_map(Step::Redeliver),
        1 => prop::collection::vec((0usize..12, 0i64..5 * HOUR_MS), 1..6).prop_map(Step::Conversions),
    ];
    prop::collection::vec(step, 1..12)
}

fn exposure(tenant: &str, record: &Record) -> Exposure {
    let &(experiment, unit, variant, version, country, device, offset) = record;
    Exposure {
        country: COUNTRIES[country].map(str::to_owned),
        device: DEVICES[device],
        ..Exposure::new(
            tenant,
            EXPERIMENTS[experiment],
            VARIANTS[variant],
            &format!("unit-{unit}"),
            version,
            at(offset),
        )
    }
}

/// Which of the model's records a slice covers.
type Keep = Box<dyn Fn(&Record) -> bool>;

/// The first stored exposure of every (experiment, unit): what the counts must add up to.
#[derive(Default)]
struct Model(BTreeMap<(usize, usize), Record>);

impl Model {
    fn store(&mut self, batch: &[Record]) {
        for record in batch {
            self.0.entry((record.0, record.1)).or_insert(*record);
        }
    }

    fn units(&self, experiment: usize, keep: impl Fn(&Record) -> bool) -> Vec<(String, u64)> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for record in self.0.values().filter(|r| r.0 == experiment && keep(r)) {
            *counts.entry(VARIANTS[record.2].to_owned()).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

async fn check(steps: Vec<Step>) {
    let harness = Harness::new().await;
    let store: &Store = &harness.state.store;
    let tenant = unique_tenant("counts");
    let mut model = Model::default();
    let mut sent: Vec<Vec<Record>> = Vec::new();
    let mut events = 0;
    for step in steps {
        let batch = match step {
            Step::Exposures(batch) => {
                sent.push(batch.clone());
                batch
            }
            Step::Redeliver(position) if !sent.is_empty() => sent[position % sent.len()].clone(),
            Step::Redeliver(_) => continue,
            Step::Conversions(units) => {
                let records = units
                    .iter()
                    .map(|&(unit, offset)| {
                        events += 1;
                        conversion(
                            &tenant,
                            &format!("event-{events}"),
                            &format!("unit-{unit}"),
                            "buy",
                            None,
                            at(offset),
                        )
                    })
                    .collect();
                store.insert(Batch::Conversions(records), at(0)).await.unwrap();
                continue;
            }
        };
        let exposures = batch.iter().map(|record| exposure(&tenant, record)).collect();
        let outcome = store.insert(Batch::Exposures(exposures), at(0)).await.unwrap();
        let before = model.0.len();
        model.store(&batch);
        assert_eq!(
            outcome.inserted,
            (model.0.len() - before) as u64,
            "new exposures of {batch:?}"
        );
    }

    for (e, experiment) in EXPERIMENTS.iter().enumerate() {
        assert_eq!(
            store.exposed_units(&tenant, experiment).await.unwrap(),
            model.units(e, |_| true),
            "{experiment}: units per variant"
        );
        // Slices: whole hours are read from the counts, other bounds from the exposures.
        let slices: Vec<(ExposureFilter, Keep)> = vec![
            (
                ExposureFilter {
                    country: Some("DE".into()),
                    ..ExposureFilter::default()
                },
                Box::new(|r: &Record| COUNTRIES[r.4] == Some("DE")),
            ),
            (
                ExposureFilter {
                    device: Some("mobile".into()),
                    config_version: Some(2),
                    ..ExposureFilter::default()
                },
                Box::new(|r: &Record| DEVICES[r.5] == Some(DeviceClass::Mobile) && r.3 == 2),
            ),
            (
                ExposureFilter {
                    from_ms: Some(at(HOUR_MS)),
                    to_ms: Some(at(3 * HOUR_MS)),
                    ..ExposureFilter::default()
                },
                Box::new(|r: &Record| (HOUR_MS..3 * HOUR_MS).contains(&r.6)),
            ),
            (
                ExposureFilter {
                    from_ms: Some(at(HOUR_MS + 1)),
                    ..ExposureFilter::default()
                },
                Box::new(|r: &Record| r.6 > HOUR_MS),
            ),
        ];
        for (filter, keep) in &slices {
            assert_eq!(
                store.exposed_units_where(&tenant, experiment, filter).await.unwrap(),
                model.units(e, keep),
                "{experiment}: units of {filter:?}"
            );
        }
        let mut by_version: BTreeMap<u64, u64> = BTreeMap::new();
        for record in model.0.values().filter(|r| r.0 == e) {
            *by_version.entry(record.3).or_default() += 1;
        }
        assert_eq!(
            store
                .exposed_units_by_version(&tenant, experiment, &ExposureFilter::default())
                .await
                .unwrap(),
            by_version.into_iter().collect::<Vec<_>>(),
            "{experiment}: units per config version"
        );
        let times: Vec<i64> = model.0.values().filter(|r| r.0 == e).map(|r| at(r.6)).collect();
        let span = times.iter().min().copied().zip(times.iter().max().copied());
        assert_eq!(
            store.exposure_span(&tenant, experiment).await.unwrap(),
            span,
            "{experiment}: span"
        );
        // Hour buckets come from the counts, minute buckets from the exposures.
        for bucket_ms in [HOUR_MS, 2 * HOUR_MS, 60_000] {
            let mut timeline: BTreeMap<(i64, String), u64> = BTreeMap::new();
            for record in model.0.values().filter(|r| r.0 == e) {
                *timeline
                    .entry((at(record.6) / bucket_ms, VARIANTS[record.2].to_owned()))
                    .or_default() += 1;
            }
            let stored: Vec<((i64, String), u64)> = store
                .exposure_timeline(&tenant, experiment, bucket_ms)
                .await
                .unwrap()
                .into_iter()
                .map(|point| ((point.bucket, point.variant), point.units))
                .collect();
            assert_eq!(
                stored,
                timeline.into_iter().collect::<Vec<_>>(),
                "{experiment}: timeline in {bucket_ms} ms buckets"
            );
        }
    }
    let summaries: Vec<(String, String, u64, i64, i64)> = store
        .exposure_summaries(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.experiment,
                s.variant,
                s.units,
                s.first_exposure_ms,
                s.last_exposure_ms,
            )
        })
        .collect();
    let mut expected: BTreeMap<(String, String), (u64, i64, i64)> = BTreeMap::new();
    for record in model.0.values() {
        let at = at(record.6);
        let entry = expected
            .entry((EXPERIMENTS[record.0].to_owned(), VARIANTS[record.2].to_owned()))
            .or_insert((0, at, at));
        entry.0 += 1;
        entry.1 = entry.1.min(at);
        entry.2 = entry.2.max(at);
    }
    let expected: Vec<_> = expected
        .into_iter()
        .map(|((experiment, variant), (units, first, last))| (experiment, variant, units, first, last))
        .collect();
    assert_eq!(summaries, expected, "summaries");
}

#[test]
fn counts_kept_at_ingest_equal_counting_the_stored_exposures() {
    let (runtime, mut runner) = property_runner(32, "proptest-regressions/exposure_counts.txt");
    runner
        .run(&steps(), |steps| {
            runtime.block_on(check(steps));
            Ok(())
        })
        .unwrap();
}

/// A database from before the counts (migration 3 not applied) gains them from its exposures
/// when a collector that has the migration opens it. SQLite only: on a shared PostgreSQL,
/// dropping the table would pull it from under the other tests.
#[tokio::test]
async fn the_migration_counts_the_exposures_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cohort.db", dir.path().display());
    let tenant = unique_tenant("before");
    let store = Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    let records: Vec<Record> = (0..30)
        .map(|u| (0, u, u % 2, 1, u % 3, u % 3, (u as i64) * 600_000))
        .collect();
    let exposures = records.iter().map(|record| exposure(&tenant, record)).collect();
    store.insert(Batch::Exposures(exposures), at(0)).await.unwrap();
    store.close().await;

    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for statement in [
        "DROP TABLE exposure_counts",
        "DELETE FROM _sqlx_migrations WHERE version = 3",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    sqlx::Connection::close(db).await.unwrap();

    let store = Store::open(&url, cohort_collector::WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(store.missing_migrations().await.unwrap(), Vec::<i64>::new());
    let mut model = Model::default();
    model.store(&records);
    assert_eq!(
        store.exposed_units(&tenant, "hero").await.unwrap(),
        model.units(0, |_| true)
    );
    let summary = &store.exposure_summaries(&tenant).await.unwrap()[0];
    assert_eq!(
        (summary.units, summary.first_exposure_ms, summary.last_exposure_ms),
        (15, at(0), at(28 * 600_000))
    );
    store.close().await;
}
