//! The settings that make a 2xx mean "on stable storage", read back from the database through the
//! store's own writer connection: on SQLite `synchronous = FULL` (2) in WAL mode, on PostgreSQL
//! `synchronous_commit = on` with `fsync = on`. (crates/cli/tests/durability.rs watches the real
//! binary fsync before each acknowledgement.)
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use cohort_collector::Backend;
use cohort_collector::store::DurabilitySettings;
use cohort_core::beacon::EXPOSURES_PATH;
use common::{Harness, exposure, json, now_seconds, unique_tenant};

#[tokio::test]
async fn the_writer_connection_commits_with_durable_settings() {
    let harness = Harness::new().await;
    // Settings are read after a batch has gone through the writer, on the connection that wrote it.
    let tenant = unique_tenant("durable");
    let records = vec![exposure(&tenant, "settings", "u1", "control")];
    let (status, _, body) = harness
        .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(&records))
        .await;
    assert_eq!(status, 200, "{body}");

    let settings = harness.state.store.effective_settings().await.unwrap();
    match harness.state.store.backend() {
        Backend::Sqlite => assert_eq!(
            settings,
            DurabilitySettings::Sqlite {
                synchronous: 2,
                journal_mode: "wal".into()
            }
        ),
        Backend::Postgres => assert_eq!(
            settings,
            DurabilitySettings::Postgres {
                synchronous_commit: "on".into(),
                fsync: "on".into()
            }
        ),
    }
}
