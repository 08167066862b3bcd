//! The single writer: group commit with one savepoint per batch.
//!
//! On this machine an fsync takes about 5 ms, so one transaction per 100-record batch would cap
//! ingest near 20,000 records/s. The writer instead takes every batch waiting in its queue (up to
//! a record budget) into one transaction, wraps each in a savepoint so a failing batch rolls back
//! alone, commits once, and only then answers each batch's caller.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cohort_core::{Conversion, Exposure};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Backend, Batch, Context, DurabilitySettings, HOUR_MS, InsertOutcome, StoreError};
use crate::metrics::{Histogram, LATENCY_BUCKETS};

/// Tuning of the group-committing writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Most records committed in one transaction.
    pub max_group_records: usize,
    /// Batches that may wait for the writer before senders wait for room.
    pub queue_depth: usize,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            max_group_records: 20_000,
            queue_depth: 1024,
        }
    }
}

/// Rows in the largest INSERT statement: 100 × 9 columns stays far below both databases'
/// parameter limits.
const ROWS_PER_STATEMENT: usize = 100;

/// How `records` rows are cut into INSERT statements: full statements of [`ROWS_PER_STATEMENT`]
/// rows, then the rest in falling powers of two. sqlx prepares each distinct SQL text once and
/// keeps it in a 100-entry per-connection cache; one text per batch length (up to 1,000) would
/// keep evicting and re-preparing (on SQLite about 2.7 µs a row, half the cost of inserting it),
/// while these sizes make at most 8 texts per table.
fn statement_sizes(mut records: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = match records {
            0 => return None,
            n if n >= ROWS_PER_STATEMENT => ROWS_PER_STATEMENT,
            n => 1 << n.ilog2(),
        };
        records -= size;
        Some(size)
    })
}

/// A phase of the writer's work, timed for `/metrics` and the ingest benchmark: a latency tail is
/// a queue behind long groups, slow statements, or a slow commit (the fsync, and on SQLite a WAL
/// checkpoint), and each needs a different cure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterPhase {
    /// A batch's wait from joining the writer's queue to its group's transaction beginning.
    Queue,
    /// A group's INSERTs and savepoints, from `BEGIN` to just before `COMMIT`.
    Statements,
    /// A group's `COMMIT`.
    Commit,
}

impl WriterPhase {
    /// Every phase, in the order a batch meets them.
    pub const ALL: [WriterPhase; 3] = [WriterPhase::Queue, WriterPhase::Statements, WriterPhase::Commit];

    /// The phase's histogram in [`WriterTimings`].
    fn index(self) -> usize {
        match self {
            WriterPhase::Queue => 0,
            WriterPhase::Statements => 1,
            WriterPhase::Commit => 2,
        }
    }

    /// The `phase` label.
    pub fn label(self) -> &'static str {
        match self {
            WriterPhase::Queue => "queue",
            WriterPhase::Statements => "statements",
            WriterPhase::Commit => "commit",
        }
    }
}

/// The writer's time per phase since the store opened: a histogram each, over the commit latency
/// buckets (1 ms to 5 s). Queue waits are per batch; statements and commits per group. A group
/// whose transaction fails is in the queue waits only.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterTimings {
    phases: [Histogram<{ LATENCY_BUCKETS.len() }>; 3],
}

impl WriterTimings {
    fn observe(&mut self, phase: WriterPhase, elapsed: Duration) {
        self.phases[phase.index()].observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    pub(crate) fn histogram(&self, phase: WriterPhase) -> &Histogram<{ LATENCY_BUCKETS.len() }> {
        &self.phases[phase.index()]
    }

    /// Observations of `phase` since `earlier` (a snapshot of the same writer).
    pub fn count_since(&self, earlier: &WriterTimings, phase: WriterPhase) -> u64 {
        self.histogram(phase).count_since(earlier.histogram(phase))
    }

    /// The bucket bound (seconds) that the `quantile` of `phase`'s observations since `earlier`
    /// fall within: a histogram's resolution, enough to tell which phase holds a tail. `None`
    /// without observations, or when they fall beyond the last bound (5 s).
    pub fn quantile_bound_since(&self, earlier: &WriterTimings, phase: WriterPhase, quantile: f64) -> Option<f64> {
        self.histogram(phase)
            .quantile_bound_since(earlier.histogram(phase), &LATENCY_BUCKETS, quantile)
    }
}

struct WriteRequest {
    batch: Batch,
    received_at_ms: i64,
    queued_at: Instant,
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

enum Message {
    Write(WriteRequest),
    /// Read back the durability settings of the writer's connection, after committing everything
    /// queued before this message.
    ReadSettings(oneshot::Sender<Result<DurabilitySettings, StoreError>>),
    /// Commit everything queued before this message, then rebuild one metric's kept figures for
    /// a window ([`super::kept`]); answers whether anything changed.
    RebuildKept {
        tenant: String,
        metric: String,
        window_ms: Option<i64>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Commit everything queued before this message, then stop.
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct WriterHandle {
    sender: mpsc::Sender<Message>,
    timings: Arc<Mutex<WriterTimings>>,
}

fn writer_stopped() -> StoreError {
    StoreError {
        context: "queueing a batch".into(),
        source: Arc::new(sqlx::Error::PoolClosed),
    }
}

impl WriterHandle {
    pub(crate) async fn write(&self, batch: Batch, received_at_ms: i64) -> Result<InsertOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let request = WriteRequest {
            batch,
            received_at_ms,
            queued_at: Instant::now(),
            reply,
        };
        self.sender
            .send(Message::Write(request))
            .await
            .map_err(|_| writer_stopped())?;
        outcome.await.map_err(|_| writer_stopped())?
    }

    pub(crate) fn timings(&self) -> WriterTimings {
        *lock_timings(&self.timings)
    }

    pub(crate) async fn durability_settings(&self) -> Result<DurabilitySettings, StoreError> {
        let (reply, settings) = oneshot::channel();
        self.sender
            .send(Message::ReadSettings(reply))
            .await
            .map_err(|_| writer_stopped())?;
        settings.await.map_err(|_| writer_stopped())?
    }

    /// Rebuilds one metric's kept figures for `window_ms` after the writes queued before it, and
    /// answers whether they were built for another window.
    pub(crate) async fn rebuild_kept(
        &self,
        tenant: &str,
        metric: &str,
        window_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (reply, rebuilt) = oneshot::channel();
        self.sender
            .send(Message::RebuildKept {
                tenant: tenant.to_owned(),
                metric: metric.to_owned(),
                window_ms,
                reply,
            })
            .await
            .map_err(|_| writer_stopped())?;
        rebuilt.await.map_err(|_| writer_stopped())?
    }

    /// Queues the same rebuild without waiting for it; dropped when the queue is full (a later
    /// read asks again).
    pub(crate) fn queue_rebuild_kept(&self, tenant: &str, metric: &str, window_ms: Option<i64>) {
        let (reply, _) = oneshot::channel();
        let _ = self.sender.try_send(Message::RebuildKept {
            tenant: tenant.to_owned(),
            metric: metric.to_owned(),
            window_ms,
            reply,
        });
    }

    pub(crate) async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.sender.send(Message::Close(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// Timings are plain numbers: a panic while holding the lock leaves them worth reading.
fn lock_timings(timings: &Mutex<WriterTimings>) -> std::sync::MutexGuard<'_, WriterTimings> {
    timings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn spawn(connection: AnyConnection, backend: Backend, options: WriterOptions) -> WriterHandle {
    let (sender, receiver) = mpsc::channel(options.queue_depth);
    let timings = Arc::new(Mutex::new(WriterTimings::default()));
    tokio::spawn(run(connection, backend, receiver, options, timings.clone()));
    WriterHandle { sender, timings }
}

async fn run(
    mut connection: AnyConnection,
    backend: Backend,
    mut receiver: mpsc::Receiver<Message>,
    options: WriterOptions,
    timings: Arc<Mutex<WriterTimings>>,
) {
    while let Some(first) = receiver.recv().await {
        let mut group = Vec::new();
        let mut close = None;
        let mut read_settings = None;
        let mut rebuild = None;
        let mut records = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(request) => {
                    records += request.batch.len();
                    group.push(request);
                }
                Message::Close(done) => {
                    close = Some(done);
                    break;
                }
                Message::ReadSettings(reply) => {
                    read_settings = Some(reply);
                    break;
                }
                Message::RebuildKept {
                    tenant,
                    metric,
                    window_ms,
                    reply,
                } => {
                    rebuild = Some((tenant, metric, window_ms, reply));
                    break;
                }
            }
            if records < options.max_group_records {
                next = receiver.try_recv().ok();
            }
        }
        if !group.is_empty() {
            commit_group(&mut connection, backend, group, &timings).await;
        }
        if let Some(reply) = read_settings {
            let _ = reply.send(durability_settings(&mut connection, backend).await);
        }
        if let Some((tenant, metric, window_ms, reply)) = rebuild {
            let _ = reply.send(super::kept::rebuild(&mut connection, backend, &tenant, &metric, window_ms).await);
        }
        if let Some(done) = close {
            if let Err(error) = connection.close().await {
                tracing::warn!(%error, "closing the writer connection");
            }
            let _ = done.send(());
            return;
        }
    }
}

async fn commit_group(
    connection: &mut AnyConnection,
    backend: Backend,
    group: Vec<WriteRequest>,
    timings: &Mutex<WriterTimings>,
) {
    let began = Instant::now();
    {
        let mut timings = lock_timings(timings);
        for request in &group {
            timings.observe(WriterPhase::Queue, began.saturating_duration_since(request.queued_at));
        }
    }
    let outcomes = match write_group(connection, backend, &group, timings).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::error!(%error, batches = group.len(), "group commit failed; no batch in it was written");
            vec![Err(error); group.len()]
        }
    };
    for (request, outcome) in group.into_iter().zip(outcomes) {
        // The caller may have gone (client disconnected); the batch is committed regardless.
        let _ = request.reply.send(outcome);
    }
}

/// What the database reports for the settings that make a commit durable on this connection.
async fn durability_settings(
    connection: &mut AnyConnection,
    backend: Backend,
) -> Result<DurabilitySettings, StoreError> {
    match backend {
        Backend::Sqlite => {
            let synchronous = sqlx::query::<Any>("PRAGMA synchronous")
                .fetch_one(&mut *connection)
                .await
                .and_then(|row| row.try_get(0))
                .context("reading PRAGMA synchronous")?;
            let journal_mode = sqlx::query::<Any>("PRAGMA journal_mode")
                .fetch_one(&mut *connection)
                .await
                .and_then(|row| row.try_get(0))
                .context("reading PRAGMA journal_mode")?;
            Ok(DurabilitySettings::Sqlite {
                synchronous,
                journal_mode,
            })
        }
        Backend::Postgres => {
            let row = sqlx::query::<Any>("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
                .fetch_one(&mut *connection)
                .await
                .context("reading synchronous_commit and fsync")?;
            Ok(DurabilitySettings::Postgres {
                synchronous_commit: row.try_get(0).context("reading synchronous_commit")?,
                fsync: row.try_get(1).context("reading fsync")?,
            })
        }
    }
}

/// Writes every batch in its own savepoint inside one transaction; `Err` when the transaction
/// itself fails (then nothing was committed).
async fn write_group(
    connection: &mut AnyConnection,
    backend: Backend,
    group: &[WriteRequest],
    timings: &Mutex<WriterTimings>,
) -> Result<Vec<Result<InsertOutcome, StoreError>>, StoreError> {
    let began = Instant::now();
    let mut transaction = connection.begin().await.context("beginning a transaction")?;
    let mut outcomes = Vec::with_capacity(group.len());
    // The new exposures of the batches that stay: counted once per group, not per batch, because
    // on PostgreSQL every update of a row adds a version of it, and a group of hundreds of batches
    // updating the same few rows made each later update slower (ingest fell from about 80 % to
    // 55 % of its statement floor).
    let mut counts = ExposureCounts::default();
    for request in group {
        let mut savepoint = transaction.begin().await.context("opening a savepoint")?;
        let outcome = match insert_batch(&mut savepoint, backend, &request.batch, request.received_at_ms).await {
            Ok(written) => savepoint
                .commit()
                .await
                .context("releasing a savepoint")
                .map(|()| written),
            // Dropping the savepoint rolls back this batch alone.
            Err(error) => Err(error),
        };
        let outcome = match outcome {
            Ok((written, new_exposures)) => {
                counts.merge(new_exposures);
                Ok(written)
            }
            Err(error) => {
                tracing::error!(%error, records = request.batch.len(), "batch rolled back");
                Err(error)
            }
        };
        outcomes.push(outcome);
    }
    add_exposure_counts(&mut transaction, backend, &counts).await?;
    let group_size = outcomes.len();
    let committing = Instant::now();
    lock_timings(timings).observe(WriterPhase::Statements, committing - began);
    transaction
        .commit()
        .await
        .context(format!("committing a group of {group_size} batches"))?;
    lock_timings(timings).observe(WriterPhase::Commit, committing.elapsed());
    Ok(outcomes)
}

/// `rows` tuples of `columns` parameters each. PostgreSQL needs numbered `$n`; SQLite gets
/// anonymous `?`, because it treats `$n` as a *named* parameter kept in a linear list that sqlx
/// searches once per bound value, which made binding a 900-parameter statement quadratic (60 % of
/// the ingest benchmark's CPU time went there). The parameter of column `nan_is_null`, if any, is
/// stored as NULL when it is NaN (see [`optional_real`]).
fn placeholders(backend: Backend, rows: usize, columns: usize, nan_is_null: Option<usize>) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ",(" });
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            let wrapped = nan_is_null == Some(column);
            if wrapped {
                sql.push_str("NULLIF(");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
            }
            if wrapped {
                sql.push_str(", 'NaN')");
            }
        }
        sql.push(')');
    }
    sql
}

/// An optional number as a parameter: NaN for NULL, which the placeholder turns back into NULL
/// (PostgreSQL's NaN equals NaN; SQLite stores a bound NaN as NULL). Stored values are finite.
/// Binding `None` instead would declare the parameter with another type than a number's (sqlx's
/// `Any` driver binds an absent double as a 4-byte float), and PostgreSQL then rejected the same
/// cached statement when a later batch had a value in that position.
fn optional_real(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

/// A record type and the table it goes to.
trait StoredRecord {
    /// `INSERT INTO table (columns) VALUES`, completed with placeholders.
    const INSERT: &'static str;
    /// What follows the values: the conflict target that makes re-sends no-ops.
    const ON_CONFLICT: &'static str;
    /// Parameters per row.
    const COLUMNS: usize;
    /// The column bound with [`optional_real`], if any.
    const NAN_IS_NULL: Option<usize> = None;
    /// ` RETURNING` what the writer keeps counts of, for every row this statement wrote (rows
    /// skipped by the conflict target return nothing), or empty when only the count is needed.
    const RETURNING: &'static str;
    /// Binds this record's values, in column order, ending with `received_at_ms`.
    fn bind<'q>(&self, query: AnyQuery<'q>, received_at_ms: i64) -> AnyQuery<'q>;
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

impl StoredRecord for Exposure {
    const INSERT: &'static str = "INSERT INTO exposures (tenant_id, experiment, unit_id, variant, config_version, \
                                  exposed_at_ms, country, device, received_at_ms) VALUES ";
    const ON_CONFLICT: &'static str = " ON CONFLICT (tenant_id, experiment, unit_id) DO NOTHING";
    const COLUMNS: usize = 9;
    // `exposure_counts` needs each newly stored exposure's slice, and the delivery-lag histogram
    // its own time. Columns in `NewExposure::read`'s order.
    const RETURNING: &'static str =
        " RETURNING tenant_id, experiment, variant, config_version, country, device, exposed_at_ms";
    fn bind<'q>(&self, query: AnyQuery<'q>, received_at_ms: i64) -> AnyQuery<'q> {
        query
            .bind(self.tenant.clone())
            .bind(self.experiment.clone())
            .bind(self.unit.clone())
            .bind(self.variant.clone())
            // Ingest refuses versions above i64::MAX, the column's range.
            .bind(i64::try_from(self.config_version).unwrap_or(i64::MAX))
            .bind(self.timestamp)
            .bind(self.country.clone())
            .bind(self.device.map(|device| device.as_str().to_owned()))
            .bind(received_at_ms)
    }
}

impl StoredRecord for Conversion {
    const INSERT: &'static str = "INSERT INTO conversions (tenant_id, event_id, unit_id, metric, value, \
                                  occurred_at_ms, received_at_ms) VALUES ";
    const ON_CONFLICT: &'static str = " ON CONFLICT (tenant_id, event_id) DO NOTHING";
    const COLUMNS: usize = 7;
    const NAN_IS_NULL: Option<usize> = Some(4);
    const RETURNING: &'static str = "";
    fn bind<'q>(&self, query: AnyQuery<'q>, received_at_ms: i64) -> AnyQuery<'q> {
        query
            .bind(self.tenant.clone())
            .bind(self.id.clone())
            .bind(self.unit.clone())
            .bind(self.metric.clone())
            .bind(optional_real(self.value))
            .bind(self.timestamp)
            .bind(received_at_ms)
    }
}

/// Inserts one batch; returns what it wrote and, for exposures, the new ones' counts.
async fn insert_batch(
    connection: &mut AnyConnection,
    backend: Backend,
    batch: &Batch,
    received_at_ms: i64,
) -> Result<(InsertOutcome, ExposureCounts), StoreError> {
    let mut counts = ExposureCounts::default();
    match batch {
        Batch::Exposures(records) => {
            let (inserted, rows) = insert_records(connection, backend, records, received_at_ms).await?;
            let mut timestamps = Vec::with_capacity(rows.len());
            for row in &rows {
                let exposure = NewExposure::read(row).context("reading a new exposure")?;
                timestamps.push(exposure.exposed_at_ms);
                counts.add(exposure.key, 1, exposure.exposed_at_ms, exposure.exposed_at_ms);
            }
            let outcome = InsertOutcome {
                inserted,
                new_exposure_timestamps_ms: timestamps,
            };
            Ok((outcome, counts))
        }
        Batch::Conversions(records) => {
            let (inserted, _) = insert_records(connection, backend, records, received_at_ms).await?;
            let outcome = InsertOutcome {
                inserted,
                new_exposure_timestamps_ms: Vec::new(),
            };
            Ok((outcome, counts))
        }
    }
}

/// Inserts records in statements of [`statement_sizes`]; returns how many were new and, for
/// record types with [`StoredRecord::RETURNING`], the rows it returned.
async fn insert_records<R: StoredRecord>(
    connection: &mut AnyConnection,
    backend: Backend,
    records: &[R],
    received_at_ms: i64,
) -> Result<(u64, Vec<AnyRow>), StoreError> {
    let statement = InsertStatement {
        head: R::INSERT,
        columns: R::COLUMNS,
        nan_is_null: R::NAN_IS_NULL,
        on_conflict: R::ON_CONFLICT,
        returning: R::RETURNING,
    };
    statement
        .run(connection, backend, records, |query, record| {
            record.bind(query, received_at_ms)
        })
        .await
        .context(R::INSERT)
}

/// A multi-row `INSERT`: `head`, then a placeholder tuple of `columns` per row, `on_conflict`,
/// and `returning` (empty when only the count of rows is wanted).
struct InsertStatement {
    head: &'static str,
    columns: usize,
    nan_is_null: Option<usize>,
    on_conflict: &'static str,
    returning: &'static str,
}

impl InsertStatement {
    /// Inserts `rows` in statements of [`statement_sizes`], each row's values bound by `bind`;
    /// returns the rows affected and, with a `returning` clause, the rows returned.
    async fn run<T>(
        &self,
        connection: &mut AnyConnection,
        backend: Backend,
        rows: &[T],
        bind: impl for<'q> Fn(AnyQuery<'q>, &T) -> AnyQuery<'q>,
    ) -> Result<(u64, Vec<AnyRow>), sqlx::Error> {
        let mut affected = 0;
        let mut returned = Vec::new();
        let mut rest = rows;
        for size in statement_sizes(rows.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let sql = format!(
                "{}{}{}{}",
                self.head,
                placeholders(backend, chunk.len(), self.columns, self.nan_is_null),
                self.on_conflict,
                self.returning
            );
            let query = chunk.iter().fold(sqlx::query::<Any>(AssertSqlSafe(sql)), &bind);
            if !self.returning.is_empty() {
                let rows = query.fetch_all(&mut *connection).await?;
                affected += rows.len() as u64;
                returned.extend(rows);
            } else {
                affected += query.execute(&mut *connection).await?.rows_affected();
            }
        }
        Ok((affected, returned))
    }
}

/// The slice of `exposure_counts` an exposure counts in: its primary key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CountKey {
    tenant: String,
    experiment: String,
    variant: String,
    config_version: i64,
    /// `""` when the exposure had none.
    country: String,
    device: String,
    hour: i64,
}

/// An exposure the insert reported as new.
struct NewExposure {
    key: CountKey,
    exposed_at_ms: i64,
}

impl NewExposure {
    /// Reads a row of `Exposure::RETURNING`.
    fn read(row: &AnyRow) -> Result<NewExposure, sqlx::Error> {
        let exposed_at_ms: i64 = row.try_get(6)?;
        Ok(NewExposure {
            key: CountKey {
                tenant: row.try_get(0)?,
                experiment: row.try_get(1)?,
                variant: row.try_get(2)?,
                config_version: row.try_get(3)?,
                country: row.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
                device: row.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                // Stored timestamps are positive (validated from 2020 on): this floors.
                hour: exposed_at_ms / HOUR_MS,
            },
            exposed_at_ms,
        })
    }
}

/// New exposures per slice: units, earliest and latest exposure. Ordered by key, so concurrent
/// collectors on one PostgreSQL lock the rows they share in the same order.
#[derive(Default)]
struct ExposureCounts(BTreeMap<CountKey, (i64, i64, i64)>);

impl ExposureCounts {
    /// Adds `units` first exposed between `first` and `last` to `key`'s slice.
    fn add(&mut self, key: CountKey, units: i64, first: i64, last: i64) {
        let entry = self.0.entry(key).or_insert((0, first, last));
        entry.0 += units;
        entry.1 = entry.1.min(first);
        entry.2 = entry.2.max(last);
    }

    fn merge(&mut self, other: ExposureCounts) {
        for (key, (units, first, last)) in other.0 {
            self.add(key, units, first, last);
        }
    }
}

/// Adds new exposures to `exposure_counts`, in the transaction that stores them, counting only
/// the batches whose savepoints were kept: a batch that rolls back is not counted.
async fn add_exposure_counts(
    connection: &mut AnyConnection,
    backend: Backend,
    counts: &ExposureCounts,
) -> Result<(), StoreError> {
    let statement = InsertStatement {
        head: "INSERT INTO exposure_counts (tenant_id, experiment, variant, config_version, country, device, \
               exposure_hour, units, first_exposed_at_ms, last_exposed_at_ms) VALUES ",
        columns: 10,
        nan_is_null: None,
        on_conflict: " ON CONFLICT (tenant_id, experiment, variant, config_version, country, device, exposure_hour) \
               DO UPDATE SET units = exposure_counts.units + excluded.units, \
               first_exposed_at_ms = CASE WHEN excluded.first_exposed_at_ms < exposure_counts.first_exposed_at_ms \
                                     THEN excluded.first_exposed_at_ms ELSE exposure_counts.first_exposed_at_ms END, \
               last_exposed_at_ms = CASE WHEN excluded.last_exposed_at_ms > exposure_counts.last_exposed_at_ms \
                                    THEN excluded.last_exposed_at_ms ELSE exposure_counts.last_exposed_at_ms END",
        returning: "",
    };
    let slices: Vec<_> = counts.0.iter().collect();
    statement
        .run(connection, backend, &slices, |query, (key, (units, first, last))| {
            query
                .bind(key.tenant.clone())
                .bind(key.experiment.clone())
                .bind(key.variant.clone())
                .bind(key.config_version)
                .bind(key.country.clone())
                .bind(key.device.clone())
                .bind(key.hour)
                .bind(*units)
                .bind(*first)
                .bind(*last)
        })
        .await
        .context("adding new exposures to exposure_counts")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Backend, ROWS_PER_STATEMENT, placeholders, statement_sizes};

    #[test]
    fn statements_cover_every_record_with_few_distinct_sizes() {
        assert_eq!(statement_sizes(0).count(), 0);
        assert_eq!(statement_sizes(100).collect::<Vec<_>>(), [100]);
        assert_eq!(statement_sizes(257).collect::<Vec<_>>(), [100, 100, 32, 16, 8, 1]);
        let mut sizes = BTreeSet::new();
        for records in 0..=1000 {
            let cut: Vec<_> = statement_sizes(records).collect();
            assert_eq!(cut.iter().sum::<usize>(), records);
            assert!(cut.iter().all(|&size| size <= ROWS_PER_STATEMENT));
            sizes.extend(cut);
        }
        assert_eq!(sizes.len(), 8, "{sizes:?}");
    }

    #[test]
    fn placeholders_number_every_parameter() {
        assert_eq!(placeholders(Backend::Postgres, 2, 3, None), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 3, None), "(?,?,?),(?,?,?)");
        assert_eq!(
            placeholders(Backend::Postgres, 2, 2, Some(1)),
            "($1,NULLIF($2, 'NaN')),($3,NULLIF($4, 'NaN'))"
        );
    }

    #[test]
    fn phase_quantiles_are_bucket_bounds_since_a_snapshot() {
        use std::time::Duration;

        use super::{WriterPhase, WriterTimings};

        let mut timings = WriterTimings::default();
        timings.observe(WriterPhase::Commit, Duration::from_secs(3));
        let before = timings;
        for _ in 0..99 {
            timings.observe(WriterPhase::Commit, Duration::from_millis(3));
        }
        timings.observe(WriterPhase::Commit, Duration::from_millis(80));
        assert_eq!(timings.count_since(&before, WriterPhase::Commit), 100);
        assert_eq!(
            timings.quantile_bound_since(&before, WriterPhase::Commit, 0.5),
            Some(0.005)
        );
        assert_eq!(
            timings.quantile_bound_since(&before, WriterPhase::Commit, 0.99),
            Some(0.005)
        );
        assert_eq!(
            timings.quantile_bound_since(&before, WriterPhase::Commit, 1.0),
            Some(0.1)
        );
        // The 3 s observation before the snapshot is not counted; over everything it is the top.
        assert_eq!(
            timings.quantile_bound_since(&WriterTimings::default(), WriterPhase::Commit, 1.0),
            Some(5.0)
        );
        assert_eq!(timings.quantile_bound_since(&before, WriterPhase::Queue, 0.5), None);
        let text = crate::metrics::Metrics::default().render(&timings);
        assert!(
            text.contains("cohort_writer_phase_seconds_bucket{phase=\"commit\",le=\"0.005\"} 99\n"),
            "{text}"
        );
        assert!(
            text.contains("cohort_writer_phase_seconds_count{phase=\"commit\"} 101\n"),
            "{text}"
        );
        assert!(
            text.contains("cohort_writer_phase_seconds_count{phase=\"queue\"} 0\n"),
            "{text}"
        );
    }
}
