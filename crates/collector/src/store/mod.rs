//! Durable storage: SQLite (the embedded default) or PostgreSQL, through sqlx's `Any` driver so
//! both run the same migrations and the same SQL.
//!
//! Writes go through one [`writer`] task that commits many batches per transaction (group
//! commit): each batch stays all-or-nothing inside its own savepoint, and every batch's caller
//! hears back only after the transaction holding it has committed. Reads use a connection pool.

mod configs;
mod kept;
mod monitor;
mod read;
mod writer;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cohort_core::{Conversion, Exposure};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor, SqlSafeStr};

pub use configs::{NewVersion, StoreVersionError, StoredVersion};
pub use kept::{KEPT_LOOKBACK_MS, StaleMetric};
pub use read::{ExposureFilter, MetricAggregate, MetricShape, RowCounts, TimelineCount, VariantExposureSummary};
pub use writer::{WriterOptions, WriterPhase, WriterTimings};

/// One migration's SQL, the same on both databases or one text each.
#[derive(Debug, Clone, Copy)]
enum MigrationSql {
    Portable(&'static str),
    PerBackend {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

impl MigrationSql {
    fn for_backend(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (MigrationSql::Portable(sql), _) => sql,
            (MigrationSql::PerBackend { sqlite, .. }, Backend::Sqlite) => sqlite,
            (MigrationSql::PerBackend { postgres, .. }, Backend::Postgres) => postgres,
        }
    }
}

/// Wraps trigger bodies (`include_str!` of files of statements on `NEW` and `OLD`) in each
/// database's syntax: SQLite takes the statements inside `CREATE TRIGGER`, PostgreSQL in a
/// PL/pgSQL function. Each is a row trigger running after `$event` on `$table`; an insert
/// trigger fires for rows actually inserted, so never for a row `ON CONFLICT DO NOTHING` skipped.
macro_rules! row_triggers {
    (sqlite: $( $name:literal after $event:literal on $table:literal => $body:expr ),+ $(,)?) => {
        concat!($(
            "CREATE TRIGGER ", $name, " AFTER ", $event, " ON ", $table, " FOR EACH ROW BEGIN\n", $body, "END;\n",
        )+)
    };
    (postgres: $( $name:literal after $event:literal on $table:literal => $body:expr ),+ $(,)?) => {
        concat!($(
            "CREATE FUNCTION ", $name, "() RETURNS trigger LANGUAGE plpgsql AS $trigger$\nBEGIN\n", $body,
            "RETURN NULL;\nEND\n$trigger$;\n",
            "CREATE TRIGGER ", $name, " AFTER ", $event, " ON ", $table, " FOR EACH ROW EXECUTE FUNCTION ", $name, "();\n",
        )+)
    };
}

/// A file of migration 4's directory.
macro_rules! kept_figures_part {
    ($file:literal) => {
        include_str!(concat!("../../migrations/0004_kept_metric_figures/", $file))
    };
}

/// Migration 4, "Results at scale" in DESIGN.md: the exposures rekeyed by unit (each database
/// its own way), the tables and the view of the figures computed from the events, then the
/// triggers (which lock the tables on PostgreSQL, so a collector still inserting waits and is
/// then counted by them), then the figures of the events stored before it. Exposures and
/// conversions keep the unit figures; the unit figures keep the totals.
macro_rules! kept_metric_figures {
    (sqlite) => {
        concat!(
            kept_figures_part!("rekey_exposures.sqlite.sql"),
            kept_metric_figures!(tables: sqlite),
            row_triggers!(sqlite:
                "keep_figures_of_exposure" after "INSERT" on "exposures" => kept_figures_part!("on_exposure.sql"),
            ),
            kept_figures_part!("backfill.sql"),
        )
    };
    (postgres) => {
        concat!(
            kept_figures_part!("rekey_exposures.postgres.sql"),
            kept_metric_figures!(tables: postgres),
            "CREATE FUNCTION keep_figures_of_exposures() RETURNS trigger LANGUAGE plpgsql AS $trigger$\nBEGIN\n",
            kept_figures_part!("on_exposures.postgres.sql"),
            kept_figures_part!("figures_select.sql"),
            "new_exposures e ",
            kept_figures_part!("figures_group.sql"),
            "RETURN NULL;\nEND\n$trigger$;\n",
            "CREATE TRIGGER keep_figures_of_exposures AFTER INSERT ON exposures \
             REFERENCING NEW TABLE AS new_exposures FOR EACH STATEMENT EXECUTE FUNCTION keep_figures_of_exposures();\n",
            kept_figures_part!("backfill.sql"),
        )
    };
    (tables: $dialect:ident) => {
        concat!(
            kept_figures_part!("tables.sql"),
            "\n-- The figures computed from the events, for the backfill and a rebuild (and SQLite's exposure\n\
             -- trigger). Reading it filtered by tenant and metric, or by exposure, reads only their rows.\n\
             CREATE VIEW unit_metric_figures_from_events AS\n",
            kept_figures_part!("figures_select.sql"),
            "exposures e ",
            kept_figures_part!("figures_group.sql"),
            row_triggers!($dialect:
                "add_figures_to_totals" after "INSERT" on "unit_metric_figures" => concat!(
                    kept_figures_part!("figures_in.sql"),
                    kept_figures_part!("totals_upsert.sql"),
                ),
                "move_figures_in_totals" after "UPDATE" on "unit_metric_figures" => concat!(
                    kept_figures_part!("figures_out.sql"),
                    kept_figures_part!("totals_upsert.sql"),
                    kept_figures_part!("figures_in.sql"),
                    kept_figures_part!("totals_upsert.sql"),
                ),
                "keep_figures_of_conversion" after "INSERT" on "conversions" => kept_figures_part!("on_conversion.sql"),
            ),
        )
    };
}

/// The schema, in order. Append only: see docs/migrations.md.
const MIGRATIONS: &[(i64, &str, MigrationSql)] = &[
    (
        1,
        "exposures and conversions",
        MigrationSql::Portable(include_str!("../../migrations/0001_exposures_and_conversions.sql")),
    ),
    (
        2,
        "config versions",
        MigrationSql::Portable(include_str!("../../migrations/0002_config_versions.sql")),
    ),
    (
        3,
        "exposure counts",
        MigrationSql::Portable(include_str!("../../migrations/0003_exposure_counts.sql")),
    ),
    (
        4,
        "metric figures kept at ingest",
        MigrationSql::PerBackend {
            sqlite: kept_metric_figures!(sqlite),
            postgres: kept_metric_figures!(postgres),
        },
    ),
];

/// The grain of `exposure_counts`' time column (`exposure_hour = exposed_at_ms / HOUR_MS`).
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A storage failure, with what the collector was doing when it happened.
#[derive(Debug, Clone)]
pub struct StoreError {
    /// What was being done, e.g. "committing 3 batches".
    pub context: Cow<'static, str>,
    /// The database's error (shared: one failed commit fails every batch in it).
    pub source: Arc<sqlx::Error>,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Attaches what the collector was doing to a database error.
pub(crate) trait Context<T> {
    fn context(self, context: impl Into<Cow<'static, str>>) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: impl Into<Cow<'static, str>>) -> Result<T, StoreError> {
        self.map_err(|source| StoreError {
            context: context.into(),
            source: Arc::new(source),
        })
    }
}

/// How many records of a batch were new (the rest were already stored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InsertOutcome {
    /// Records written by this batch.
    pub inserted: u64,
    /// For exposures, the own timestamp (`exposed_at_ms`) of each record written by this batch,
    /// in no particular order; empty for conversions.
    pub new_exposure_timestamps_ms: Vec<i64>,
}

/// One validated batch of records of one tenant.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Exposures.
    Exposures(Vec<Exposure>),
    /// Conversion events.
    Conversions(Vec<Conversion>),
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Batch::Exposures(records) => records.len(),
            Batch::Conversions(records) => records.len(),
        }
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The durability settings the writer's connection (the one that commits every batch) actually
/// runs with, as the database reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurabilitySettings {
    /// SQLite.
    Sqlite {
        /// `PRAGMA synchronous`: 0 OFF, 1 NORMAL, 2 FULL (fsync at every commit), 3 EXTRA.
        synchronous: i64,
        /// `PRAGMA journal_mode`, e.g. `wal`.
        journal_mode: String,
    },
    /// PostgreSQL.
    Postgres {
        /// `synchronous_commit`: `on` makes a commit wait for its WAL to be flushed to disk.
        synchronous_commit: String,
        /// `fsync`: `on` makes those flushes reach stable storage.
        fsync: String,
    },
}

/// The collector's database: a read pool and the group-committing writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    readers: AnyPool,
    writer: writer::WriterHandle,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// `sqlite://path` URLs create their file (and its directory) on first use.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError {
            context: format!("creating the database directory {}", parent.display()).into(),
            source: Arc::new(sqlx::Error::Io(e)),
        })?;
    }
    Ok(match query {
        Some(query) if query.contains("mode=") => url.to_owned(),
        Some(query) => format!("sqlite://{path}?{query}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

/// Per-connection SQLite settings. WAL lets results read while batches commit; synchronous=FULL
/// fsyncs the WAL at every commit, so a 2xx survives power loss, not only a process crash
/// (crates/cli/tests/durability.rs watches the collector binary do it).
const SQLITE_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;";

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `postgres://…`), runs
    /// the migrations and starts the writer.
    pub async fn open(url: &str, writer_options: WriterOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, prepare_sqlite_url(url)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError {
                context: format!("opening `{url}`").into(),
                source: Arc::new(sqlx::Error::Configuration(
                    "expected a sqlite:// or postgres:// URL".into(),
                )),
            });
        };
        let options: AnyConnectOptions = url.parse().context("parsing the database URL")?;
        let options = options.disable_statement_logging();

        let mut writer_connection = AnyConnection::connect_with(&options)
            .await
            .context("connecting the writer")?;
        if backend == Backend::Sqlite {
            // journal_mode is stored in the file; set it before anything else touches the file.
            writer_connection
                .execute("PRAGMA journal_mode = WAL;")
                .await
                .context("switching SQLite to WAL mode")?;
            writer_connection
                .execute(SQLITE_PRAGMAS)
                .await
                .context("setting SQLite pragmas")?;
        }
        migrator(backend)
            .run(&mut writer_connection)
            .await
            .map_err(|e| StoreError {
                context: "running migrations".into(),
                source: Arc::new(sqlx::Error::Migrate(Box::new(e))),
            })?;

        let readers = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        connection.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting the read pool")?;
        let writer = writer::spawn(writer_connection, backend, writer_options);
        Ok(Store {
            backend,
            readers,
            writer,
        })
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the writer's time has gone since the store opened.
    pub fn writer_timings(&self) -> WriterTimings {
        self.writer.timings()
    }

    /// Writes a validated batch of one tenant, all or nothing, and returns once it is committed.
    pub async fn insert(&self, batch: Batch, received_at_ms: i64) -> Result<InsertOutcome, StoreError> {
        self.writer.write(batch, received_at_ms).await
    }

    /// Reads back the durability settings of the connection that commits batches, after the
    /// batches queued before this call have committed.
    pub async fn effective_settings(&self) -> Result<DurabilitySettings, StoreError> {
        self.writer.durability_settings().await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query::<sqlx::Any>("SELECT 1")
            .execute(&self.readers)
            .await
            .context("pinging the database")
            .map(drop)
    }

    /// The migrations this build expects but the database has not applied successfully; empty
    /// when the schema is current. A collector that migrated at start-up sees none, but a database
    /// rolled back or shared with an older collector may lack some.
    pub async fn missing_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query::<sqlx::Any>(
            // Booleans differ between the drivers; both turn them into integers alike.
            "SELECT version, CAST(CAST(success AS INTEGER) AS BIGINT) AS succeeded FROM _sqlx_migrations",
        )
        .fetch_all(&self.readers)
        .await
        .context("reading applied migrations")?;
        let mut applied = Vec::new();
        for row in &rows {
            use sqlx::Row;
            let version: i64 = row.try_get("version").context("reading a migration version")?;
            let succeeded: i64 = row.try_get("succeeded").context("reading a migration's outcome")?;
            if succeeded == 1 {
                applied.push(version);
            }
        }
        Ok(MIGRATIONS
            .iter()
            .map(|&(version, _, _)| version)
            .filter(|version| !applied.contains(version))
            .collect())
    }

    /// Waits for queued writes to commit, then closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }
}

fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                let sql = sql.for_backend(backend);
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode() {
        // A directory that does not exist yet, two levels down: opening creates it.
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("data").join("cohort");
        let url = format!("sqlite://{}/x.db", dir.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.is_dir());
        let read_only = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite_url(&read_only).unwrap(), read_only);
        // Other options keep their place and gain the create mode.
        let shared = format!("{url}?cache=shared");
        assert_eq!(
            prepare_sqlite_url(&shared).unwrap(),
            format!("{url}?cache=shared&mode=rwc")
        );
    }
}
