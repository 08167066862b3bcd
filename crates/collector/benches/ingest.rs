//! Collector benchmark: sustained signed 100-record exposure batches into SQLite over HTTP, and
//! the results query over an experiment with 1,000,000 exposed units (one in ten buying after its
//! exposure, one in twenty also before it; `purchase` defined with a window, a cap and a
//! winsorisation quantile, so the request pays for CUPED and both caps).
//!
//! `cargo bench -p cohort-collector --bench ingest` (docs/collector.md). Knobs (environment):
//! `COHORT_BENCH_SECONDS` (ingest duration, default 15), `COHORT_BENCH_CONNECTIONS` (default 32),
//! `COHORT_BENCH_UNITS` (results experiment sizes, comma-separated and increasing, default
//! 1,000,000; each size extends the previous one's experiment, and the last of several reports
//! with a `large_` prefix).
//!
//! After the saturated run, the same connections send at 80 % of the rate it reached, on a fixed
//! schedule, and reports latency from when each batch was due: the figure the p99 target of
//! bench/RESULTS.md (50 ms) is read against.
//!
//! With `COHORT_BENCH_POSTGRES_URL` (a throwaway server: `scripts/postgres.sh` provides one as
//! `COHORT_TEST_DATABASE_URL`) it measures the same on PostgreSQL after SQLite, with four floors:
//! the collector's own statements (100-row `INSERT … ON CONFLICT DO NOTHING`, 1,000 rows per
//! commit) on one plain connection into an empty copy of the exposures table without its triggers
//! and into the collector's own table with them, `COPY` of the same rows (no conflict check at
//! all), and `COPY` into a staging table merged with the conflict check. Its figures carry a `pg_`
//! prefix.
//!
//! Client and server share this process and the machine's two cores, so the throughput is a
//! floor for the server alone, and the peak RSS (VmHWM) includes the load generator.
//!
//! Between the two it measures the floor: the same rows written straight into SQLite in a loop of
//! transactions (the storage limit), and prints the collector's ingest rate as a share of it.
//! `COHORT_BENCH_JSON=FILE` also writes the figures as JSON.
//!
//! It also prints the per-record sizes DESIGN.md's capacity estimate uses: wire bytes per
//! exposure (request body, and request line + headers, of the signed batches it sent) and stored
//! bytes per exposure and per conversion (the SQLite file after the results load, WAL
//! checkpointed: `page_count × page_size`, split by table and index with `dbstat`). Records are
//! shaped like the edge's: 32-hex-character unit ids in random order, country and device set.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cohort_collector::store::{Batch, ExposureFilter, WriterPhase};
use cohort_collector::{AppState, CollectorConfig, RateLimits, Store, TenantConfigs, WriterOptions, serve};
use cohort_core::beacon::{EXPOSURES_PATH, sign_batch};
use cohort_core::cookie::unit_id_from_random;
use cohort_core::secrets::MasterSecret;
use cohort_core::{Conversion, DeviceClass, Exposure};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "benchmark-secret-of-at-least-32-bytes!!";
const TENANT: &str = "bench";
const BATCH: usize = 100;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `COHORT_BENCH_UNITS`: results experiment sizes, comma-separated and increasing.
fn unit_sizes(text: &str) -> Vec<u64> {
    let sizes: Vec<u64> = text
        .split(',')
        .map(|size| {
            size.trim()
                .parse()
                .ok()
                .filter(|&n: &u64| n >= 1000)
                .unwrap_or_else(|| panic!("COHORT_BENCH_UNITS: `{size}` is not a number of units (1000 or more)"))
        })
        .collect();
    assert!(
        sizes.windows(2).all(|pair| pair[0] < pair[1]),
        "COHORT_BENCH_UNITS: sizes must increase (`{text}`)"
    );
    sizes
}

/// Unit `n`'s id, shaped like the edge's (`unit_id_from_random`: 32 hex characters) and in random
/// order like random ids: short or sequential ids would pack B-tree pages tighter than
/// production keys do and understate the stored bytes.
fn unit(n: u64) -> String {
    let mix = |mut z: u64| {
        // splitmix64
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&mix(n).to_le_bytes());
    bytes[8..].copy_from_slice(&mix(!n).to_le_bytes());
    unit_id_from_random(bytes)
}

fn exposure(experiment: &str, unit: String, variant: &str) -> Exposure {
    Exposure {
        country: Some("DE".into()),
        device: Some(DeviceClass::Mobile),
        ..Exposure::new(TENANT, experiment, variant, &unit, 7, 1_800_000_000_000)
    }
}

/// One keep-alive HTTP/1.1 request; returns the status and the bytes of its request line and
/// headers.
async fn post(stream: &mut TcpStream, secret: &MasterSecret, body: &[u8], buffer: &mut Vec<u8>) -> (u16, usize) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let signed = sign_batch(&secret.beacon_key(TENANT), TENANT, now, body);
    let head = format!(
        "POST {EXPOSURES_PATH} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         cohort-tenant: {}\r\ncohort-timestamp: {}\r\ncohort-signature: {}\r\n\r\n",
        body.len(),
        signed.tenant,
        signed.timestamp,
        signed.signature
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    buffer.clear();
    loop {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed");
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(buffer);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return (text[9..12].parse().unwrap(), head.len());
            }
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Figures for `COHORT_BENCH_JSON` (the `make bench` orchestrator reads them).
type Report = serde_json::Map<String, serde_json::Value>;

/// The JSON of batch `batch` of load-generator connection `client`: `BATCH` exposures to
/// `experiment` of units no other batch of the run uses, half per variant.
fn batch_body(experiment: &str, client: u64, batch: u64) -> Vec<u8> {
    let exposures: Vec<Exposure> = (0..BATCH)
        .map(|i| {
            let variant = if i % 2 == 0 { "control" } else { "green" };
            exposure(
                experiment,
                unit(client << 48 | (batch * BATCH as u64 + i as u64)),
                variant,
            )
        })
        .collect();
    serde_json::to_vec(&exposures).unwrap()
}

/// Ingest at `fraction` of the saturated rate `saturated` (exposures/s), open loop: each
/// connection sends its batches on a fixed schedule, and a batch's latency runs from when it was
/// due, not from when it went out, so a stalled server is charged for the batches that queued
/// behind the stall (a closed loop would send fewer and hide them).
async fn paced_ingest_benchmark(
    address: SocketAddr,
    store: &Store,
    saturated: f64,
    fraction: f64,
    seconds: u64,
    connections: u64,
    report: &mut Report,
) {
    let secret = MasterSecret::new(SECRET).unwrap();
    let target = saturated * fraction;
    let interval = Duration::from_secs_f64(connections as f64 * BATCH as f64 / target);
    let writer_before = store.writer_timings();
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..connections)
        .map(|client| {
            let secret = secret.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut latencies = Vec::new();
                let mut buffer = Vec::new();
                // Connections start spread over one interval, not all at once.
                let mut due = started + interval.mul_f64(client as f64 / connections as f64);
                for batch in 0u64.. {
                    if due >= end {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    let body = batch_body("paced", client, batch);
                    let (status, _) = post(&mut stream, &secret, &body, &mut buffer).await;
                    latencies.push(due.elapsed());
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buffer));
                    due += interval;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let rate = (latencies.len() * BATCH) as f64 / elapsed;
    let (p50, p99) = (
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "paced ingest: {:.0} % of saturation = {target:.0} exposures/s asked, {rate:.0}/s sent over \
         {connections} connections; latency from when each batch was due: p50 {p50:.1} ms, p99 {p99:.1} ms",
        fraction * 100.0
    );
    report.insert("paced_fraction".into(), fraction.into());
    report.insert("paced_exposures_per_second".into(), rate.round().into());
    report.insert("paced_latency_p50_ms".into(), p50.into());
    report.insert("paced_latency_p99_ms".into(), p99.into());
    // Where a tail comes from: the writer's own phases over the paced run, to its histogram's
    // bucket bounds (a bound of 0.05 means "at most 50 ms").
    let writer = store.writer_timings();
    let phases: Vec<String> = WriterPhase::ALL
        .into_iter()
        .map(|phase| {
            let observed = writer.count_since(&writer_before, phase);
            let bound = |q| writer.quantile_bound_since(&writer_before, phase, q);
            let shown = |bound: Option<f64>| match bound {
                _ if observed == 0 => "none".to_owned(),
                Some(seconds) => format!("≤ {:.1} ms", seconds * 1e3),
                None => "> 5000 ms".to_owned(),
            };
            let p99 = bound(0.99);
            report.insert(
                format!("paced_writer_{}_p99_ms", phase.label()),
                p99.map_or(serde_json::Value::Null, |s| (s * 1e3).into()),
            );
            format!(
                "{} ({observed}×) p50 {}, p99 {}, max {}",
                phase.label(),
                shown(bound(0.5)),
                shown(p99),
                shown(bound(1.0))
            )
        })
        .collect();
    println!("paced ingest: writer phases: {}", phases.join("; "));
}

async fn ingest_benchmark(address: SocketAddr, seconds: u64, connections: u64, report: &mut Report) -> f64 {
    let secret = MasterSecret::new(SECRET).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(AtomicU64::new(0));
    // Request body, request line + headers, and response bytes of every batch sent.
    let wire = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|client| {
            let (secret, stop, records, wire) = (secret.clone(), stop.clone(), records.clone(), wire.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut latencies = Vec::new();
                let mut buffer = Vec::new();
                for batch in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = batch_body("ingest", client, batch);
                    let sent = Instant::now();
                    let (status, head) = post(&mut stream, &secret, &body, &mut buffer).await;
                    latencies.push(sent.elapsed());
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buffer));
                    records.fetch_add(BATCH as u64, Ordering::Relaxed);
                    for (total, bytes) in wire.iter().zip([body.len(), head, buffer.len()]) {
                        total.fetch_add(bytes as u64, Ordering::Relaxed);
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let total = records.load(Ordering::Relaxed);
    println!(
        "ingest: {total} exposures in {elapsed:.1} s over {connections} connections = {:.0} exposures/s \
         ({} batches of {BATCH}); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total as f64 / elapsed,
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "ingest: peak RSS (VmHWM, server + load generator) {:.0} MiB",
        peak_rss_mib()
    );
    let rate = total as f64 / elapsed;
    report.insert("ingest_exposures".into(), total.into());
    report.insert("ingest_exposures_per_second".into(), rate.round().into());
    report.insert("ingest_connections".into(), connections.into());
    report.insert(
        "latency_p50_ms".into(),
        (percentile(&latencies, 0.50).as_secs_f64() * 1e3).into(),
    );
    report.insert(
        "latency_p99_ms".into(),
        (percentile(&latencies, 0.99).as_secs_f64() * 1e3).into(),
    );
    let peak_rss = peak_rss_mib();
    assert!(
        peak_rss.is_finite(),
        "ingest: no VmHWM in /proc/self/status, so no peak RSS"
    );
    report.insert("peak_rss_mib".into(), peak_rss.into());
    let [body, head, response] = wire.each_ref().map(|total| total.load(Ordering::Relaxed) as f64);
    let batches = latencies.len() as f64;
    println!(
        "wire: signed {BATCH}-exposure batch: body {:.0} bytes = {:.1} bytes per exposure; request line + \
         headers (HTTP/1.1, no TLS) {:.0} bytes = {:.1} per exposure; together {:.1} bytes per exposure; \
         response {:.0} bytes per batch (averages over {batches} batches)",
        body / batches,
        body / total as f64,
        head / batches,
        head / total as f64,
        (body + head) / total as f64,
        response / batches,
    );
    report.insert("wire_bytes_per_exposure".into(), ((body + head) / total as f64).into());
    rate
}

/// Rows of one INSERT and of one transaction in the floor: the collector's statement size, and
/// about what one of its group commits holds under load.
const FLOOR_ROWS_PER_STATEMENT: usize = 100;
const FLOOR_ROWS_PER_COMMIT: usize = 1_000;

/// The floors' columns, in the order [`bind_floor_row`] and [`floor_copy_text`] give their values.
const FLOOR_COLUMNS: &str =
    "tenant_id, experiment, unit_id, variant, config_version, exposed_at_ms, country, device, received_at_ms";

/// Floor row `n`'s variant: the two alternate.
fn floor_variant(n: u64) -> &'static str {
    if n.is_multiple_of(2) { "control" } else { "green" }
}

/// Binds floor row `n`'s values to a query (an `Any` or a `Postgres` one alike), in experiment
/// `ingest` unless another is named.
macro_rules! bind_floor_row {
    ($query:expr, $n:expr) => {
        bind_floor_row!($query, $n, "ingest")
    };
    ($query:expr, $n:expr, $experiment:expr) => {
        $query
            .bind(TENANT)
            .bind($experiment)
            .bind(unit($n))
            .bind(floor_variant($n))
            .bind(7_i64)
            .bind(1_800_000_000_000_i64)
            .bind("DE")
            .bind("mobile")
            .bind(1_800_000_000_100_i64)
    };
}

/// Binds the [`FLOOR_ROWS_PER_STATEMENT`] rows of one floor statement, from row `$next` on, and
/// advances `$next` past them.
macro_rules! bind_floor_statement {
    ($query:expr, $next:expr $(, $experiment:expr)?) => {{
        let mut query = $query;
        for _ in 0..FLOOR_ROWS_PER_STATEMENT {
            query = bind_floor_row!(query, $next $(, $experiment)?);
            $next += 1;
        }
        query
    }};
}

/// Floor rows `first..first + FLOOR_ROWS_PER_COMMIT` as `COPY … FROM STDIN` text: the same values.
fn floor_copy_text(first: u64) -> String {
    (first..first + FLOOR_ROWS_PER_COMMIT as u64)
        .map(|n| {
            format!(
                "{TENANT}\tingest\t{}\t{}\t7\t1800000000000\tDE\tmobile\t1800000000100\n",
                unit(n),
                floor_variant(n)
            )
        })
        .collect()
}

/// The storage limit the collector is measured against: the same exposure rows (edge-shaped unit
/// ids in random order) written straight into a fresh SQLite file with the collector's schema and
/// settings (WAL, synchronous=FULL) by one connection in a loop of transactions, for `seconds`.
/// No HTTP, JSON, signatures, validation or writer queue: what is left is SQLite's own cost.
async fn floor_benchmark(dir: &std::path::Path, seconds: u64, report: &mut Report) -> f64 {
    use sqlx::Executor;
    let url = format!("sqlite://{}", dir.join("floor.db").display());
    // The collector's own migrations and journal mode, then a plain connection of our own.
    Store::open(&url, WriterOptions::default()).await.unwrap().close().await;
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    db.execute("PRAGMA synchronous = FULL").await.unwrap();
    let sql = format!(
        "INSERT INTO exposures ({FLOOR_COLUMNS}) VALUES {} ON CONFLICT (tenant_id, experiment, unit_id) DO NOTHING",
        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; FLOOR_ROWS_PER_STATEMENT].join(", ")
    );
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut transaction = db.begin().await.unwrap();
        for _ in 0..FLOOR_ROWS_PER_COMMIT / FLOOR_ROWS_PER_STATEMENT {
            // The SQL text is built above from constants only.
            let query = sqlx::query::<sqlx::Any>(sqlx::AssertSqlSafe(sql.as_str()));
            bind_floor_statement!(query, rows)
                .execute(&mut *transaction)
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored = sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM exposures")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored as u64, rows, "floor: {rows} rows inserted, {stored} stored");
    db.close().await.unwrap();
    let rate = rows as f64 / elapsed;
    println!(
        "floor: {rows} exposures straight into SQLite (one connection, {FLOOR_ROWS_PER_STATEMENT}-row INSERTs, one \
         commit per {FLOOR_ROWS_PER_COMMIT} rows, WAL, synchronous=FULL) = {rate:.0} exposures/s"
    );
    report.insert("floor_exposures_per_second".into(), rate.round().into());
    rate
}

/// The floor's statement on PostgreSQL: [`FLOOR_ROWS_PER_STATEMENT`] rows into `table`, numbered
/// placeholders, duplicates skipped.
fn postgres_floor_insert(table: &str) -> String {
    let row_placeholders: Vec<String> = (0..FLOOR_ROWS_PER_STATEMENT)
        .map(|row| {
            let first = row * 9;
            format!(
                "(${})",
                (first + 1..=first + 9)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", $")
            )
        })
        .collect();
    format!(
        "INSERT INTO {table} ({FLOOR_COLUMNS}) VALUES {} ON CONFLICT (tenant_id, experiment, unit_id) DO NOTHING",
        row_placeholders.join(", ")
    )
}

/// Where the floor's statements spend their time in the collector's own exposures table:
/// `EXPLAIN (ANALYZE, FORMAT JSON)` of [`PROFILED_STATEMENTS`] of them (fresh units, so every row
/// is new), each trigger's time against the statements' execution time, which includes it.
/// Returns the triggers' share. `first_row` must follow every floor row already in the table.
async fn postgres_trigger_profile(db: &mut sqlx::postgres::PgConnection, first_row: u64) -> f64 {
    use sqlx::Row;
    let sql = format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", postgres_floor_insert("exposures"));
    let mut execution_ms = 0.0;
    let mut trigger_ms: std::collections::BTreeMap<String, f64> = Default::default();
    let mut row = first_row;
    for _ in 0..PROFILED_STATEMENTS {
        // The SQL text is built from constants only.
        let query = sqlx::query::<sqlx::Postgres>(sqlx::AssertSqlSafe(sql.as_str()));
        let answer = bind_floor_statement!(query, row, FLOOR_EXPERIMENT)
            .fetch_one(&mut *db)
            .await
            .unwrap();
        // EXPLAIN's JSON comes as type `json`, whose wire form is its text.
        let plan: serde_json::Value = serde_json::from_str(&answer.try_get_unchecked::<String, _>(0).unwrap()).unwrap();
        let plan = &plan[0];
        execution_ms += plan["Execution Time"].as_f64().unwrap();
        for trigger in plan["Triggers"].as_array().into_iter().flatten() {
            *trigger_ms
                .entry(trigger["Trigger Name"].as_str().unwrap().to_owned())
                .or_default() += trigger["Time"].as_f64().unwrap();
        }
    }
    // The exposures table has a trigger on PostgreSQL: a profile without one measured nothing.
    assert!(
        !trigger_ms.is_empty(),
        "postgres trigger profile: EXPLAIN ANALYZE reported no trigger on exposures"
    );
    let total: f64 = trigger_ms.values().sum();
    let each: Vec<String> = trigger_ms
        .iter()
        .map(|(name, ms)| format!("{name} {:.0}%", 100.0 * ms / execution_ms))
        .collect();
    println!(
        "postgres trigger profile: {PROFILED_STATEMENTS} statements of {FLOOR_ROWS_PER_STATEMENT} new exposures took \
         {execution_ms:.1} ms to execute, {:.0}% of it in triggers ({})",
        100.0 * total / execution_ms,
        each.join(", ")
    );
    total / execution_ms
}

/// Statements the trigger profile explains: enough for a stable share, few enough to be quick.
const PROFILED_STATEMENTS: usize = 50;

/// Experiment of the PostgreSQL floor rows written into the collector's own exposures table.
const FLOOR_EXPERIMENT: &str = "floor";

/// The collector's statements (100-row `INSERT … ON CONFLICT DO NOTHING`, 1,000 rows per commit)
/// into `table` on one plain connection for `seconds`; returns rows per second and the rows
/// written, after checking that every row was stored.
async fn postgres_statements_floor(
    db: &mut sqlx::postgres::PgConnection,
    table: &str,
    experiment: &str,
    seconds: u64,
) -> (f64, u64) {
    let sql = postgres_floor_insert(table);
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut transaction = db.begin().await.unwrap();
        for _ in 0..FLOOR_ROWS_PER_COMMIT / FLOOR_ROWS_PER_STATEMENT {
            // The SQL text is built above from constants only.
            let query = sqlx::query::<sqlx::Postgres>(sqlx::AssertSqlSafe(sql.as_str()));
            bind_floor_statement!(query, rows, experiment)
                .execute(&mut *transaction)
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE experiment = $1"
    )))
    .bind(experiment)
    .fetch_one(&mut *db)
    .await
    .unwrap();
    assert_eq!(
        stored as u64, rows,
        "postgres floor into {table}: {rows} rows inserted, {stored} stored"
    );
    (rate, rows)
}

/// The PostgreSQL floors, exposures per second.
struct PostgresFloors {
    /// The collector's statements into an empty copy of the exposures table without triggers.
    statements: f64,
    /// The same statements into the collector's own exposures table, triggers included.
    with_triggers: f64,
    /// `COPY` into an empty copy, without the duplicate check.
    copy: f64,
}

/// The PostgreSQL floors: the same rows as [`floor_benchmark`] into empty copies of the exposures
/// table (its indexes and constraints, not its triggers), first with the collector's statements on
/// one plain connection, then the same into the collector's own table (triggers included), then
/// with `COPY` (what PostgreSQL takes at most, without the duplicate check), then with `COPY` into
/// a staging table merged with the duplicate check.
async fn postgres_floor_benchmark(url: &str, seconds: u64, report: &mut Report) -> PostgresFloors {
    use sqlx::Executor;
    let mut db = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    for table in ["floor_insert", "floor_copy", "floor_merge"] {
        db.execute(sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE exposures INCLUDING ALL)"
        )))
        .await
        .unwrap();
    }
    let (insert_rate, _) = postgres_statements_floor(&mut db, "floor_insert", "ingest", seconds).await;
    // The same statements into the collector's own exposures table, its triggers (the metric
    // figures kept at ingest) included: what keeping them costs is the gap to the rate above.
    // Another experiment keeps these rows apart from the ingest run's, and they go afterwards.
    let (triggers_rate, written) = postgres_statements_floor(&mut db, "exposures", FLOOR_EXPERIMENT, seconds).await;
    let trigger_share = postgres_trigger_profile(&mut db, written).await;
    sqlx::query("DELETE FROM exposures WHERE tenant_id = $1 AND experiment = $2")
        .bind(TENANT)
        .bind(FLOOR_EXPERIMENT)
        .execute(&mut db)
        .await
        .unwrap();
    db.execute("VACUUM exposures").await.unwrap();

    let started = Instant::now();
    let mut copied = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let text = floor_copy_text(copied);
        copied += FLOOR_ROWS_PER_COMMIT as u64;
        let mut copy = db
            .copy_in_raw(&format!("COPY floor_copy ({FLOOR_COLUMNS}) FROM STDIN"))
            .await
            .unwrap();
        copy.send(text.into_bytes()).await.unwrap();
        copy.finish().await.unwrap();
    }
    let copy_rate = copied as f64 / started.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM floor_copy")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        stored as u64, copied,
        "postgres COPY floor: {copied} rows copied, {stored} stored"
    );

    // The write path that could replace the statements: COPY into a session's temporary staging
    // table (never WAL-logged, emptied at each commit), merged with the duplicate check and
    // returning the new rows' timestamps, as the collector's exposure insert does.
    db.execute("CREATE TEMPORARY TABLE floor_staging (LIKE exposures) ON COMMIT DELETE ROWS")
        .await
        .unwrap();
    let merge = format!(
        "INSERT INTO floor_merge ({FLOOR_COLUMNS}) SELECT {FLOOR_COLUMNS} FROM floor_staging \
         ON CONFLICT (tenant_id, experiment, unit_id) DO NOTHING RETURNING exposed_at_ms"
    );
    let started = Instant::now();
    let mut merged = 0u64;
    let mut new_rows = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let text = floor_copy_text(merged);
        merged += FLOOR_ROWS_PER_COMMIT as u64;
        let mut transaction = db.begin().await.unwrap();
        let mut copy = transaction
            .copy_in_raw(&format!("COPY floor_staging ({FLOOR_COLUMNS}) FROM STDIN"))
            .await
            .unwrap();
        copy.send(text.into_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        // The SQL text is built above from constants only.
        new_rows += sqlx::query(sqlx::AssertSqlSafe(merge.as_str()))
            .fetch_all(&mut *transaction)
            .await
            .unwrap()
            .len();
        transaction.commit().await.unwrap();
    }
    let merge_rate = merged as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        new_rows as u64, merged,
        "postgres staging floor: {merged} rows merged, {new_rows} new"
    );
    db.execute("DROP TABLE floor_insert; DROP TABLE floor_copy; DROP TABLE floor_merge")
        .await
        .unwrap();
    db.close().await.unwrap();
    println!(
        "postgres floor: exposures straight into PostgreSQL ({FLOOR_ROWS_PER_STATEMENT}-row INSERT … ON CONFLICT, \
         one commit per {FLOOR_ROWS_PER_COMMIT} rows) = {insert_rate:.0} exposures/s, {triggers_rate:.0}/s into the \
         collector's table with its triggers; COPY of {FLOOR_ROWS_PER_COMMIT} rows \
         per transaction = {copy_rate:.0} exposures/s; COPY into a temporary staging table merged with INSERT … \
         SELECT … ON CONFLICT … RETURNING, {FLOOR_ROWS_PER_COMMIT} rows per transaction = {merge_rate:.0} exposures/s"
    );
    report.insert("pg_floor_exposures_per_second".into(), insert_rate.round().into());
    report.insert(
        "pg_floor_triggers_exposures_per_second".into(),
        triggers_rate.round().into(),
    );
    report.insert("pg_floor_trigger_share".into(), trigger_share.into());
    report.insert("pg_floor_copy_exposures_per_second".into(), copy_rate.round().into());
    report.insert(
        "pg_floor_staging_exposures_per_second".into(),
        merge_rate.round().into(),
    );
    PostgresFloors {
        statements: insert_rate,
        with_triggers: triggers_rate,
        copy: copy_rate,
    }
}

/// The bench tenant's config: `purchase` defined as a value metric with a window and both caps,
/// so the results request does everything a defined metric costs (the winsorisation quantile's
/// extra read included).
fn bench_tenant_config() -> TenantConfigs {
    let mut configs = TenantConfigs::default();
    configs
        .insert_json(&format!(
            r#"{{"schema": 1, "tenant": "{TENANT}", "version": 7, "hostnames": ["bench.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "metrics": [{{"key": "purchase", "kind": "value", "window_hours": 168, "cap": 1000,
                          "winsorize_percentile": 0.99}}]}}"#
        ))
        .unwrap();
    configs
}

/// One size of the results experiment: units `loaded_units..units` are loaded, then the
/// experiment's `units` are measured, the figures named with `key_prefix`.
struct ResultsSize {
    loaded_units: u64,
    units: u64,
    key_prefix: &'static str,
}

async fn results_benchmark(
    store: &Store,
    url: &str,
    backend: &Backend<'_>,
    address: SocketAddr,
    size: ResultsSize,
    report: &mut Report,
) {
    let ResultsSize {
        loaded_units,
        units,
        key_prefix,
    } = size;
    let loading = Instant::now();
    let mut writes = Vec::new();
    // Units are numbered and their rows derived from the number, so a larger size extends the
    // experiment a smaller one loaded.
    for start in (loaded_units..units).step_by(1000) {
        let exposures: Vec<Exposure> = (start..(start + 1000).min(units))
            .map(|u| exposure("big", unit(u), if u % 2 == 0 { "control" } else { "green" }))
            .collect();
        // One in ten units of each variant buys, after its exposure, for a value that varies.
        let conversions: Vec<Conversion> = (start..(start + 1000).min(units))
            .filter(|u| (u / 2) % 10 == 3)
            .map(|u| Conversion {
                id: format!("order-{u}"),
                tenant: TENANT.into(),
                unit: unit(u),
                metric: "purchase".into(),
                value: Some(20.0 + (u % 7) as f64),
                timestamp: 1_800_000_060_000,
            })
            .collect();
        if start == 0 {
            let body = serde_json::to_vec(&conversions).unwrap();
            println!(
                "wire: signed {}-conversion batch: body {} bytes = {:.1} bytes per conversion",
                conversions.len(),
                body.len(),
                body.len() as f64 / conversions.len() as f64
            );
        }
        // One in twenty units also bought during the day before its exposure: the CUPED covariate.
        let conversions: Vec<Conversion> = conversions
            .into_iter()
            .chain(
                (start..(start + 1000).min(units))
                    .filter(|u| (u / 2) % 20 == 3)
                    .map(|u| Conversion {
                        id: format!("earlier-order-{u}"),
                        tenant: TENANT.into(),
                        unit: unit(u),
                        metric: "purchase".into(),
                        value: Some(15.0 + (u % 5) as f64),
                        timestamp: 1_800_000_000_000 - 86_400_000,
                    }),
            )
            .collect();
        let (store_a, store_b) = (store.clone(), store.clone());
        writes.push(tokio::spawn(async move {
            store_a.insert(Batch::Exposures(exposures), 0).await
        }));
        writes.push(tokio::spawn(async move {
            store_b.insert(Batch::Conversions(conversions), 0).await
        }));
        if writes.len() >= 64 {
            for write in writes.drain(..) {
                write.await.unwrap().unwrap();
            }
        }
    }
    for write in writes {
        write.await.unwrap().unwrap();
    }
    let loaded = loading.elapsed().as_secs_f64();
    if let Backend::Postgres = backend {
        // Autovacuum analyses a freshly loaded table when it gets to it; until then the planner
        // has no statistics and the results query ran 6 times slower in one run. Measure the
        // steady state a running deployment has.
        let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
        sqlx::query("ANALYZE exposures, conversions")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    // What was loaded, counted back: the figures below are for this data set.
    let exposed = count_rows(url, "SELECT COUNT(*) FROM exposures WHERE experiment = 'big'").await;
    let conversions = count_rows(url, "SELECT COUNT(*) FROM conversions").await;
    let expected_conversions = (0..units).filter(|u| (u / 2) % 10 == 3).count() as u64
        + (0..units).filter(|u| (u / 2) % 20 == 3).count() as u64;
    assert_eq!(
        (exposed, conversions),
        (units, expected_conversions),
        "results: stored (exposed units, conversions) differ from what was loaded"
    );
    println!(
        "results: loaded {exposed} exposed units and {conversions} conversions ({} before exposure) in {loaded:.1} s",
        (0..units).filter(|u| (u / 2) % 20 == 3).count()
    );

    let token = MasterSecret::new(SECRET).unwrap().results_read_token(TENANT);
    let mut timings = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET /v1/tenants/{TENANT}/experiments/big/results?weights=control:5000,green:5000 HTTP/1.1\r\n\
             host: bench\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        timings.push(started.elapsed());
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains(&format!("\"exposed_units\":{}", units / 2)),
            "{response}"
        );
        // The measured request did the whole analysis: CUPED and both caps.
        assert!(
            response.contains("\"cuped\":{\"applied\":true") && response.contains("\"applied_cap\":"),
            "{response}"
        );
    }
    timings.sort();
    exposed_units_benchmark(store, units, key_prefix, report).await;
    metric_aggregates_benchmark(store, key_prefix, report).await;
    report.insert(format!("{key_prefix}results_units"), units.into());
    report.insert(
        format!("{key_prefix}results_median_ms"),
        (percentile(&timings, 0.5).as_secs_f64() * 1e3).into(),
    );
    println!(
        "results: {units} exposed units, query over HTTP: median {:.0} ms, best {:.0} ms, worst {:.0} ms (5 runs)",
        percentile(&timings, 0.5).as_secs_f64() * 1e3,
        timings[0].as_secs_f64() * 1e3,
        timings[4].as_secs_f64() * 1e3,
    );
}

/// The metric aggregates of a results request, read from the figures kept at ingest (what the
/// request above read) and computed from the events (the join every request read before them,
/// and what a slice still reads): timed, and required to agree as the property test requires.
async fn metric_aggregates_benchmark(store: &Store, key_prefix: &str, report: &mut Report) {
    let configs = bench_tenant_config();
    let shapes = cohort_collector::results::metric_shapes(&configs, TENANT);
    assert_eq!(
        store.stale_kept_metrics(TENANT, &shapes).await.unwrap(),
        vec![],
        "the kept figures fit the bench's metric, so the requests above read them"
    );
    let all = ExposureFilter::default();
    let lookback = cohort_collector::results::PRE_EXPOSURE_LOOKBACK_MS;
    let mut kept_timings = Vec::new();
    let mut kept = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        kept = store
            .metric_aggregates(TENANT, "big", &all, lookback, &shapes)
            .await
            .unwrap();
        kept_timings.push(started.elapsed());
    }
    kept_timings.sort();
    let started = Instant::now();
    let joined = store
        .metric_aggregates_from_events(TENANT, "big", &all, lookback, &shapes)
        .await
        .unwrap();
    let join_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(kept.len(), joined.len(), "kept {kept:?}, joined {joined:?}");
    for (k, j) in kept.iter().zip(&joined) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-6;
        assert!(
            (k.variant == j.variant && k.converted_units == j.converted_units && k.upper_cap == j.upper_cap)
                && close(k.value_sum, j.value_sum)
                && close(k.value_sum_of_squares, j.value_sum_of_squares)
                && close(k.value_sum_of_products, j.value_sum_of_products),
            "kept {k:?} against joined {j:?}"
        );
    }
    let kept_ms = percentile(&kept_timings, 0.5).as_secs_f64() * 1e3;
    report.insert(format!("{key_prefix}metric_aggregates_kept_ms"), kept_ms.into());
    report.insert(format!("{key_prefix}metric_aggregates_from_events_ms"), join_ms.into());
    println!(
        "results: metric aggregates: {kept_ms:.1} ms from the kept figures (median of 5), \
         {join_ms:.0} ms from the events (once); they agree"
    );
}

/// Exposed units per variant, the part of a results request `exposure_counts` answers, timed
/// against counting the same units from the exposures (what a slice whose time bounds are not
/// whole hours still does, and what every request did before the counts).
async fn exposed_units_benchmark(store: &Store, units: u64, key_prefix: &str, report: &mut Report) {
    let every_unit_from_rows = ExposureFilter {
        from_ms: Some(1),
        ..ExposureFilter::default()
    };
    let mut counted = Vec::new();
    let mut scanned = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let from_counts = store.exposed_units(TENANT, "big").await.unwrap();
        counted.push(started.elapsed());
        let started = Instant::now();
        let from_rows = store
            .exposed_units_where(TENANT, "big", &every_unit_from_rows)
            .await
            .unwrap();
        scanned.push(started.elapsed());
        assert_eq!(
            from_counts, from_rows,
            "exposed units: the counts and the rows disagree"
        );
        assert_eq!(from_counts.iter().map(|(_, n)| n).sum::<u64>(), units);
    }
    counted.sort();
    scanned.sort();
    let (counted, scanned) = (
        percentile(&counted, 0.5).as_secs_f64() * 1e3,
        percentile(&scanned, 0.5).as_secs_f64() * 1e3,
    );
    report.insert(format!("{key_prefix}exposed_units_from_counts_ms"), counted.into());
    report.insert(format!("{key_prefix}exposed_units_from_rows_ms"), scanned.into());
    println!(
        "results: exposed units per variant of {units} units: {counted:.1} ms from exposure_counts, \
         {scanned:.0} ms from the exposures (median of 5)"
    );
}

/// A `SELECT COUNT(*)` on the database at `url`, through a connection of its own.
async fn count_rows(url: &str, sql: &'static str) -> u64 {
    let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
    let count = sqlx::query_scalar::<sqlx::Any, i64>(sql)
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    count as u64
}

/// Bytes on disk per stored record, after the WAL is checkpointed into the database file.
async fn storage_report(url: &str, path: &std::path::Path, report: &mut Report) {
    let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(busy, 0, "WAL checkpoint blocked");
    let scalar = |sql: &'static str| sqlx::query_scalar::<sqlx::Any, i64>(sql);
    let page_count = scalar("PRAGMA page_count").fetch_one(&mut db).await.unwrap();
    let page_size = scalar("PRAGMA page_size").fetch_one(&mut db).await.unwrap();
    let freelist = scalar("PRAGMA freelist_count").fetch_one(&mut db).await.unwrap();
    let exposures = scalar("SELECT COUNT(*) FROM exposures")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let conversions = scalar("SELECT COUNT(*) FROM conversions")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let bytes = page_count * page_size;
    let file = std::fs::metadata(path).map_or(0, |m| m.len());
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    println!(
        "storage: database after WAL checkpoint: page_count {page_count} × page_size {page_size} = {bytes} bytes \
         (file {file} bytes, WAL {wal} bytes, {freelist} free pages); {exposures} exposures + {conversions} \
         conversions = {:.1} bytes per row",
        bytes as f64 / (exposures + conversions) as f64
    );
    // Per table with its indexes (SQLite's dbstat virtual table, compiled into the bundled SQLite).
    let objects: Result<Vec<(String, i64)>, _> =
        sqlx::query_as("SELECT name, CAST(SUM(pgsize) AS INTEGER) FROM dbstat GROUP BY name ORDER BY name")
            .fetch_all(&mut db)
            .await;
    match objects {
        Ok(objects) => {
            let sum = |prefixes: &[&str]| -> i64 {
                objects
                    .iter()
                    .filter(|(name, _)| {
                        prefixes
                            .iter()
                            .any(|p| name == p || name.starts_with(&format!("sqlite_autoindex_{p}_")))
                    })
                    .map(|(_, size)| size)
                    .sum()
            };
            let exposure_bytes = sum(&["exposures", "exposures_by_variant"]);
            let conversion_bytes = sum(&["conversions", "conversions_by_unit"]);
            println!(
                "storage: exposures (table + primary key + exposures_by_variant) {exposure_bytes} bytes = {:.1} bytes \
                 per exposure; conversions (table + primary key + conversions_by_unit) {conversion_bytes} bytes = \
                 {:.1} bytes per conversion",
                exposure_bytes as f64 / exposures as f64,
                conversion_bytes as f64 / conversions.max(1) as f64,
            );
            report.insert(
                "stored_bytes_per_exposure".into(),
                (exposure_bytes as f64 / exposures as f64).into(),
            );
            let detail: Vec<String> = objects.iter().map(|(name, size)| format!("{name} {size}")).collect();
            println!("storage: bytes by table and index (dbstat): {}", detail.join(", "));
        }
        // DESIGN.md's capacity estimate uses the per-exposure figure: no figure, no run.
        Err(error) => panic!("storage: no per-table split, so no stored bytes per exposure (dbstat: {error})"),
    }
    db.close().await.unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep that short.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let seconds = if quick {
        1
    } else {
        env_number("COHORT_BENCH_SECONDS", 15)
    };
    let connections = env_number("COHORT_BENCH_CONNECTIONS", 32);
    // The quick run loads two sizes too, so the path that extends an experiment is exercised.
    let units = if quick {
        vec![20_000, 40_000]
    } else {
        unit_sizes(&std::env::var("COHORT_BENCH_UNITS").unwrap_or_else(|_| "1000000".into()))
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut report = Report::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        let url = format!("sqlite://{}", path.display());
        let sqlite = Backend::Sqlite {
            dir: dir.path(),
            path: &path,
        };
        run(&url, &sqlite, seconds, connections, &units, &mut report).await;
        if let Ok(postgres) = std::env::var("COHORT_BENCH_POSTGRES_URL") {
            let mut figures = Report::new();
            run(
                &postgres,
                &Backend::Postgres,
                seconds,
                connections,
                &units,
                &mut figures,
            )
            .await;
            report.extend(
                figures
                    .into_iter()
                    .map(|(key, value)| (format!("pg_{}", key.trim_start_matches("pg_")), value)),
            );
        }
        if let Ok(out) = std::env::var("COHORT_BENCH_JSON") {
            std::fs::write(&out, serde_json::Value::Object(report).to_string()).unwrap();
            println!("figures written to {out}");
        }
    });
}

/// Where a run stores: a SQLite file (whose floor and on-disk sizes are measured too), or the
/// PostgreSQL server of the URL.
enum Backend<'a> {
    Sqlite {
        dir: &'a std::path::Path,
        path: &'a std::path::Path,
    },
    Postgres,
}

/// Ingest, its floor(s) and the results query on the database at `url`.
async fn run(url: &str, backend: &Backend<'_>, seconds: u64, connections: u64, units: &[u64], report: &mut Report) {
    let label = match backend {
        Backend::Sqlite { .. } => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    println!("== {label}");
    let store = Store::open(url, WriterOptions::default()).await.unwrap();
    let config = CollectorConfig {
        secret: MasterSecret::new(SECRET).unwrap(),
        max_body_bytes: cohort_collector::DEFAULT_MAX_BODY_BYTES,
        rate_limits: RateLimits::uniform(1e9),
        tenant_configs: bench_tenant_config(),
        edge_kv: None,
        metrics_token: None,
        dashboard: cohort_collector::Dashboard::Off,
        request_timeout: cohort_collector::http::DEFAULT_REQUEST_TIMEOUT,
        sequential_tuning: cohort_collector::stats::DEFAULT_SEQUENTIAL_TUNING,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(config, store.clone());
    cohort_collector::control::import_configs(&state).await.unwrap();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    let ingest = ingest_benchmark(address, seconds, connections, report).await;
    // Four times the connections, each sending a batch at a time: the client's own queueing must
    // not be what is measured.
    paced_ingest_benchmark(address, &store, ingest, 0.8, seconds, connections * 4, report).await;
    // Every exposure acknowledged with a 200 is in the database (the collector answers after
    // its commit), and nothing else: the rate counts stored rows.
    let acknowledged = report["ingest_exposures"].as_u64().unwrap();
    let stored = count_rows(url, "SELECT COUNT(*) FROM exposures WHERE experiment = 'ingest'").await;
    assert_eq!(
        stored, acknowledged,
        "ingest: {acknowledged} exposures acknowledged, {stored} stored"
    );
    let floor = match backend {
        Backend::Sqlite { dir, .. } => floor_benchmark(dir, seconds, report).await,
        Backend::Postgres => {
            let floors = postgres_floor_benchmark(url, seconds, report).await;
            println!(
                "ingest vs COPY: the collector ingests at {:.0}% of the rate COPY loads the same rows; \
                 at {:.0}% of the rate its statements write them into its own table, triggers included",
                100.0 * ingest / floors.copy,
                100.0 * ingest / floors.with_triggers
            );
            report.insert("ingest_vs_copy".into(), (ingest / floors.copy).into());
            report.insert(
                "ingest_vs_triggers_floor".into(),
                (ingest / floors.with_triggers).into(),
            );
            floors.statements
        }
    };
    println!(
        "ingest vs floor: the collector ingests at {:.0}% of the rate {label} alone writes the same rows",
        100.0 * ingest / floor
    );
    report.insert("ingest_vs_floor".into(), (ingest / floor).into());
    // Each size extends the experiment the previous one loaded; the figures of the first size
    // keep their names, those of the last (when there are several) get a `large_` prefix.
    let mut loaded = 0;
    for (index, &size) in units.iter().enumerate() {
        let prefix = if index > 0 && index + 1 == units.len() {
            "large_"
        } else {
            ""
        };
        let size = ResultsSize {
            loaded_units: loaded,
            units: size,
            key_prefix: prefix,
        };
        loaded = size.units;
        results_benchmark(&store, url, backend, address, size, report).await;
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    store.close().await;
    if let Backend::Sqlite { path, .. } = backend {
        storage_report(url, path, report).await;
    }
}
