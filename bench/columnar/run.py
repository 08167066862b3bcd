"""The results queries on a columnar engine: DuckDB beside SQLite and PostgreSQL.

`make bench-columnar` (scripts/bench-columnar.sh). Loads the collector's results benchmark data
(crates/collector/benches/ingest.rs, `results_benchmark`) into each engine with the collector's
schema (crates/collector/migrations/0001_exposures_and_conversions.sql) and runs the two
statements a results request runs (crates/collector/src/store/read.rs: `exposed_units_where` and
`metric_aggregates`, for the benchmark tenant's `purchase` metric: a value metric with a 168-hour
window, a cap of 1000 and winsorising at the 99th percentile, and the 14-day CUPED lookback),
written here as the collector writes them. Each engine must give the same answers; the report
gives the load time, each statement's median of 5 runs after one warm-up, and the stored bytes.

    python bench/columnar/run.py --units 10000000 [--engines duckdb,sqlite,postgres] [--report FILE]

PostgreSQL is used when COHORT_TEST_DATABASE_URL is set (scripts/postgres.sh sets it), through
the `psql` shell; its statements are timed by psql's `\timing` (from sending the statement to its
answer), the embedded engines' by the wall clock around the call. Everything runs on this
machine's cores, one engine at a time.
"""

import argparse
import datetime
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import duckdb

TENANT = "bench"
EXPERIMENT = "big"
EXPOSED_AT_MS = 1_800_000_000_000
LOOKBACK_MS = 14 * 24 * 3_600_000
WINDOW_MS = 168 * 3_600_000
MAX_CONVERSION_VALUE = "1e9"

SCHEMA = """
CREATE TABLE exposures (
    tenant_id TEXT NOT NULL, experiment TEXT NOT NULL, unit_id TEXT NOT NULL, variant TEXT NOT NULL,
    config_version BIGINT NOT NULL, exposed_at_ms BIGINT NOT NULL, country TEXT, device TEXT,
    received_at_ms BIGINT NOT NULL, PRIMARY KEY (tenant_id, experiment, unit_id));
CREATE TABLE conversions (
    tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, unit_id TEXT NOT NULL, metric TEXT NOT NULL,
    value DOUBLE PRECISION, occurred_at_ms BIGINT NOT NULL, received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id));
"""
# The collector's secondary indexes; DuckDB's ART indexes would only slow its loads and scans, so
# it gets the primary keys alone (what a team moving to it would do).
INDEXES = """
CREATE INDEX exposures_by_variant ON exposures (tenant_id, experiment, variant);
CREATE INDEX conversions_by_unit ON conversions (tenant_id, unit_id, occurred_at_ms);
"""

EXPOSED_UNITS = (
    "SELECT e.variant AS variant, CAST(COUNT(*) AS BIGINT) AS units FROM exposures e "
    f"WHERE e.tenant_id = '{TENANT}' AND e.experiment = '{EXPERIMENT}' GROUP BY e.variant ORDER BY e.variant"
)


def metric_aggregates():
    """`Store::metric_aggregates` for one metric shape (purchase: window, cap, winsorising)."""
    window = f"(CASE c.metric WHEN 'purchase' THEN {WINDOW_MS} ELSE CAST(NULL AS BIGINT) END)"
    absolute = "(CASE metric WHEN 'purchase' THEN CAST(1e3 AS DOUBLE PRECISION) ELSE CAST(NULL AS DOUBLE PRECISION) END)"
    lower = "CAST(NULL AS DOUBLE PRECISION)"
    q = "(CASE metric WHEN 'purchase' THEN CAST(9.9e-1 AS DOUBLE PRECISION) ELSE CAST(NULL AS DOUBLE PRECISION) END)"
    quantiles = (
        ", quantiles AS (SELECT metric AS quantile_metric, MIN(after_sum) AS quantile "
        "FROM (SELECT metric, after_sum, "
        "ROW_NUMBER() OVER (PARTITION BY metric ORDER BY after_sum) AS position, "
        "COUNT(*) OVER (PARTITION BY metric) AS converted "
        "FROM per_unit WHERE after_events > 0 AND metric IN ('purchase')) ranked "
        f"WHERE position >= {q} * converted GROUP BY metric)"
    )
    upper = f"CASE WHEN quantile > 0 AND ({absolute} IS NULL OR quantile < {absolute}) THEN quantile ELSE {absolute} END"

    def capped(v):
        return f"CASE WHEN {v} > upper THEN upper WHEN {v} < lower THEN lower ELSE {v} END"

    value = (
        f"CASE WHEN c.value > {MAX_CONVERSION_VALUE} THEN {MAX_CONVERSION_VALUE} "
        f"WHEN c.value < -{MAX_CONVERSION_VALUE} THEN -{MAX_CONVERSION_VALUE} ELSE COALESCE(c.value, 0.0) END"
    )
    y, x = capped("after_sum"), capped("before_sum")
    return (
        "WITH per_unit AS ("
        "SELECT e.variant AS variant, c.metric AS metric, "
        "SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN 1 ELSE 0 END) AS after_events, "
        f"CAST(SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN {value} ELSE 0.0 END) AS DOUBLE PRECISION) AS after_sum, "
        "SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN 1 ELSE 0 END) AS before_events, "
        f"CAST(SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN {value} ELSE 0.0 END) AS DOUBLE PRECISION) AS before_sum, "
        "MAX(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms AND c.value IS NOT NULL THEN 1 ELSE 0 END) AS valued "
        "FROM conversions c CROSS JOIN exposures e "
        f"WHERE c.tenant_id = '{TENANT}' AND e.tenant_id = c.tenant_id AND e.experiment = '{EXPERIMENT}' "
        f"AND e.unit_id = c.unit_id AND c.occurred_at_ms >= e.exposed_at_ms - {LOOKBACK_MS} "
        f"AND (c.occurred_at_ms < e.exposed_at_ms OR {window} IS NULL "
        f"OR c.occurred_at_ms - e.exposed_at_ms < {window}) "
        f"GROUP BY c.unit_id, c.metric, e.variant){quantiles} "
        "SELECT variant, metric, "
        "CAST(SUM(converted) AS BIGINT) AS converted_units, "
        "CAST(SUM(active_before) AS BIGINT) AS active_before_units, "
        "CAST(SUM(converted * active_before) AS BIGINT) AS both_units, "
        "CAST(MAX(valued) AS BIGINT) AS valued, "
        "CAST(MAX(upper) AS DOUBLE PRECISION) AS upper_cap, "
        "CAST(SUM(y) AS DOUBLE PRECISION) AS y_sum, CAST(SUM(y * y) AS DOUBLE PRECISION) AS y_squares, "
        "CAST(SUM(x) AS DOUBLE PRECISION) AS x_sum, CAST(SUM(x * x) AS DOUBLE PRECISION) AS x_squares, "
        "CAST(SUM(x * y) AS DOUBLE PRECISION) AS xy_sum "
        "FROM (SELECT variant, metric, valued, upper, "
        "CASE WHEN after_events > 0 THEN 1 ELSE 0 END AS converted, "
        "CASE WHEN before_events > 0 THEN 1 ELSE 0 END AS active_before, "
        f"{y} AS y, {x} AS x "
        f"FROM (SELECT per_unit.*, {upper} AS upper, {lower} AS lower "
        "FROM per_unit LEFT JOIN quantiles ON quantile_metric = metric) bounded) capped "
        "GROUP BY variant, metric ORDER BY metric, variant"
    )


METRIC_AGGREGATES = metric_aggregates()


def splitmix64(z):
    mask = (1 << 64) - 1
    z = (z + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def unit(n):
    """The benchmark's edge-shaped unit id: 16 splitmix64 bytes as 32 lowercase hex characters."""
    mask = (1 << 64) - 1
    return (struct.pack("<Q", splitmix64(n)) + struct.pack("<Q", splitmix64(~n & mask))).hex()


def rows(units):
    """The results benchmark's rows: every unit exposed (even units control, odd green); one in
    ten buys after its exposure; one in twenty also bought the day before it."""
    for u in range(units):
        uid = unit(u)
        exposure = (TENANT, EXPERIMENT, uid, "control" if u % 2 == 0 else "green", 7, EXPOSED_AT_MS, "DE", "mobile", 0)
        conversions = []
        if (u // 2) % 10 == 3:
            conversions.append((TENANT, f"order-{u}", uid, "purchase", 20.0 + u % 7, EXPOSED_AT_MS + 60_000, 0))
        if (u // 2) % 20 == 3:
            conversions.append(
                (TENANT, f"earlier-order-{u}", uid, "purchase", 15.0 + u % 5, EXPOSED_AT_MS - 86_400_000, 0)
            )
        yield exposure, conversions


def chunks(units, size=100_000):
    exposures, conversions = [], []
    for exposure, converted in rows(units):
        exposures.append(exposure)
        conversions.extend(converted)
        if len(exposures) >= size:
            yield exposures, conversions
            exposures, conversions = [], []
    if exposures:
        yield exposures, conversions


def timed(run, repeat=5):
    """`run()` → (answer, milliseconds the engine reports, or None to time the call here)."""
    run()  # warm-up: caches filled, plans made
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer, reported_ms = run()
        times.append(reported_ms if reported_ms is not None else (time.perf_counter() - started) * 1000)
    return answer, statistics.median(times), min(times)


def measure(engine, loaded_s, query):
    """Both statements through `query` (SQL → rows, and the milliseconds the engine reports or
    None): their answers and timings."""
    counts, counts_ms, counts_best = timed(lambda: query(EXPOSED_UNITS))
    metrics, metrics_ms, metrics_best = timed(lambda: query(METRIC_AGGREGATES))
    return dict(
        engine=engine,
        loaded_s=loaded_s,
        counts=counts,
        counts_ms=counts_ms,
        counts_best=counts_best,
        metrics=metrics,
        metrics_ms=metrics_ms,
        metrics_best=metrics_best,
    )


def normalise(answer):
    """Rows as comparable tuples: numbers rounded to 6 significant digits (engines sum in
    different orders)."""

    def cell(value):
        return float(f"{value:.6g}") if isinstance(value, float) else value

    return [tuple(cell(v) for v in row) for row in answer]


def run_duckdb(units, work):
    path = os.path.join(work, "results.duckdb")
    db = duckdb.connect(path)
    db.execute(SCHEMA)
    started = time.perf_counter()
    for exposures, conversions in chunks(units):
        load_duckdb(db, exposures, conversions)
    db.execute("CHECKPOINT")
    loaded = time.perf_counter() - started
    result = measure(f"DuckDB {duckdb.__version__}", loaded, lambda sql: (db.execute(sql).fetchall(), None))
    db.close()
    return {**result, "bytes": os.path.getsize(path)}


def load_duckdb(db, exposures, conversions):
    """Appends a chunk through a columnar scan of Python lists (DuckDB's fast path from Python)."""
    columns = list(zip(*exposures))
    db.execute(
        "INSERT INTO exposures SELECT * FROM (SELECT UNNEST($1), UNNEST($2), UNNEST($3), UNNEST($4), "
        "UNNEST($5), UNNEST($6), UNNEST($7), UNNEST($8), UNNEST($9))",
        [list(c) for c in columns],
    )
    if conversions:
        columns = list(zip(*conversions))
        db.execute(
            "INSERT INTO conversions SELECT * FROM (SELECT UNNEST($1), UNNEST($2), UNNEST($3), UNNEST($4), "
            "UNNEST($5), UNNEST($6), UNNEST($7))",
            [list(c) for c in columns],
        )


def run_sqlite(units, work):
    path = os.path.join(work, "results.sqlite")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA + INDEXES)
    started = time.perf_counter()
    for exposures, conversions in chunks(units):
        db.executemany("INSERT INTO exposures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", exposures)
        db.executemany("INSERT INTO conversions VALUES (?, ?, ?, ?, ?, ?, ?)", conversions)
        db.commit()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    loaded = time.perf_counter() - started
    result = measure(f"SQLite {sqlite3.sqlite_version}", loaded, lambda sql: (db.execute(sql).fetchall(), None))
    db.close()
    return {**result, "bytes": os.path.getsize(path)}


def typed(text):
    """A cell of psql's unaligned output as the number it prints, or the text."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def psql(url, sql, stdin=None, timing=False):
    commands = ["-c", "\\timing on"] if timing else []
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", url, *commands, "-c", sql],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"psql failed on {sql[:80]}…: {result.stderr}")
    return result.stdout


def run_postgres(units, url):
    psql(url, "DROP TABLE IF EXISTS exposures; DROP TABLE IF EXISTS conversions;" + SCHEMA + INDEXES)
    started = time.perf_counter()
    for exposures, conversions in chunks(units, 500_000):
        text = "".join("\t".join(str(v) for v in row) + "\n" for row in exposures)
        psql(url, "COPY exposures FROM STDIN", text)
        text = "".join("\t".join(str(v) for v in row) + "\n" for row in conversions)
        psql(url, "COPY conversions FROM STDIN", text)
    for table in ("exposures", "conversions"):
        psql(url, f"VACUUM ANALYZE {table}")
    loaded = time.perf_counter() - started

    def query(sql):
        # psql's `\timing` line times the statement from send to answer, without psql's own
        # start and connection.
        lines = [line for line in psql(url, sql, timing=True).strip().split("\n") if line]
        timing = [line for line in lines if line.startswith("Time: ")]
        if len(timing) != 1:
            sys.exit(f"psql printed {len(timing)} timing lines for {sql[:80]}…")
        rows = [tuple(typed(cell) for cell in line.split("\t")) for line in lines if not line.startswith("Time: ")]
        return rows, float(timing[0].split()[1])

    version = psql(url, "SHOW server_version").strip()
    result = measure(f"PostgreSQL {version}", loaded, query)
    size = int(psql(url, "SELECT pg_total_relation_size('exposures') + pg_total_relation_size('conversions')"))
    return {**result, "bytes": size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=10_000_000)
    parser.add_argument("--engines", default="duckdb,sqlite,postgres")
    parser.add_argument("--report")
    args = parser.parse_args()
    if args.units < 1000:
        sys.exit("--units must be at least 1000")
    engines = args.engines.split(",")
    unknown = set(engines) - {"duckdb", "sqlite", "postgres"}
    if unknown:
        sys.exit(f"--engines: unknown {', '.join(sorted(unknown))} (duckdb, sqlite, postgres)")
    url = os.environ.get("COHORT_TEST_DATABASE_URL")
    if "postgres" in engines and not url:
        print("# PostgreSQL left out: COHORT_TEST_DATABASE_URL is not set (run under scripts/postgres.sh)")
        engines.remove("postgres")
    work = tempfile.mkdtemp(prefix="cohort-columnar-")
    results = []
    try:
        for engine in engines:
            print(f"# {engine}: loading {args.units:,} units", flush=True)
            if engine == "duckdb":
                results.append(run_duckdb(args.units, work))
            elif engine == "sqlite":
                results.append(run_sqlite(args.units, work))
            else:
                results.append(run_postgres(args.units, url))
            r = results[-1]
            print(
                f"# {r['engine']}: loaded in {r['loaded_s']:.0f} s; exposed units {r['counts_ms']:.0f} ms, "
                f"metric aggregates {r['metrics_ms']:.0f} ms",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    reference = results[0]
    for r in results[1:]:
        for part in ("counts", "metrics"):
            if normalise(r[part]) != normalise(reference[part]):
                sys.exit(
                    f"{r['engine']} answers {part} differently from {reference['engine']}:\n"
                    f"{normalise(r[part])}\n{normalise(reference[part])}"
                )
    conversions = sum(int(row[2]) + int(row[3]) - int(row[4]) for row in reference["metrics"])
    lines = [
        f"# Results queries at {args.units:,} exposed units: DuckDB beside SQLite and PostgreSQL",
        "",
        f"Generated by `make bench-columnar` (bench/columnar/run.py) on {datetime.date.today()}; "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), one engine at a time, "
        "PostgreSQL a throwaway local server (scripts/postgres.sh). The two statements of a results request "
        "(crates/collector/src/store/read.rs), the benchmark tenant's `purchase` metric (window, cap, "
        f"winsorising, CUPED lookback); {args.units:,} exposed units, about {conversions:,} of them with "
        "conversions. Every engine gave the same answers. Median of 5 after a warm-up (best in brackets), ms.",
        "",
        "| engine | load, s | exposed units per variant | metric aggregates | both, in parallel on 2 connections (max) | stored MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['engine']} | {r['loaded_s']:.0f} | {r['counts_ms']:.0f} ({r['counts_best']:.0f}) | "
            f"{r['metrics_ms']:.0f} ({r['metrics_best']:.0f}) | {max(r['counts_ms'], r['metrics_ms']):.0f} | "
            f"{r['bytes'] / 1048576:.0f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        with open(args.report, "w") as out:
            out.write(report)


if __name__ == "__main__":
    main()
