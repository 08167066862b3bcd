"""The results queries on a columnar engine: DuckDB beside SQLite and PostgreSQL.

`make bench-columnar` (scripts/bench-columnar.sh). Loads the collector's results benchmark data
(crates/collector/benches/ingest.rs, `results_benchmark`) into each engine with the collector's
schema (crates/collector/migrations/0001_exposures_and_conversions.sql) and runs the two
statements a results request runs (crates/collector/src/store/read.rs: `exposed_units_where` and
`metric_aggregates`, for the benchmark tenant's `purchase` metric: a value metric with a 168-hour
window, a cap of 1000 and winsorising at the 99th percentile, and the 14-day CUPED lookback),
written here as the collector writes them. Each engine must give the same answers; the report
gives the load time, each statement's median of 5 runs after one warm-up, and the stored bytes.

    python bench/columnar/run.py --units 10000000 [--engines duckdb,sqlite,postgres] [--layouts] [--report FILE]

`--layouts` also measures, on SQLite, what the metric aggregates would cost read from figures kept
at ingest instead of joined per request (DESIGN.md, "Results at scale"): per-unit rows (one per
unit and metric, clustered by experiment and metric), and per-variant running totals corrected
for the capped units through an index on the per-unit figures. Both are built from the loaded
rows with the same window and lookback, and must answer exactly as the joined statement does.

PostgreSQL is used when COHORT_TEST_DATABASE_URL is set (scripts/postgres.sh sets it), through
the `psql` shell; its statements are timed by psql's `\timing` (from sending the statement to its
answer), the embedded engines' by the wall clock around the call. Everything runs on this
machine's cores, one engine at a time.
"""

import argparse
import datetime
import math
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


def per_unit_from_join(keys=""):
    """The per-unit figures of `Store::metric_aggregates`: each unit's events and sums after its
    first exposure (within the window) and over the lookback before it, per metric, joined from
    the conversions; `keys` puts more of the unit's columns first."""
    window = f"(CASE c.metric WHEN 'purchase' THEN {WINDOW_MS} ELSE CAST(NULL AS BIGINT) END)"
    value = (
        f"CASE WHEN c.value > {MAX_CONVERSION_VALUE} THEN {MAX_CONVERSION_VALUE} "
        f"WHEN c.value < -{MAX_CONVERSION_VALUE} THEN -{MAX_CONVERSION_VALUE} ELSE COALESCE(c.value, 0.0) END"
    )
    return (
        f"SELECT {keys}e.variant AS variant, c.metric AS metric, "
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
        "GROUP BY c.unit_id, c.metric, e.variant"
    )


# The same figures read from the per-unit rows kept at ingest (UNIT_OUTCOMES).
PER_UNIT_FROM_ROWS = (
    "SELECT variant, metric, after_events, after_sum, before_events, before_sum, valued "
    f"FROM unit_outcomes WHERE tenant_id = '{TENANT}' AND experiment = '{EXPERIMENT}'"
)


def metric_aggregates(cap=1000.0, quantile=0.99, per_unit=None):
    """`Store::metric_aggregates` for one metric shape (purchase: window, cap, winsorising at
    `quantile`, or not when None), over the per-unit figures of `per_unit` (a SELECT; by default
    the join the collector runs)."""
    per_unit = per_unit or per_unit_from_join()
    absolute = f"(CASE metric WHEN 'purchase' THEN CAST({cap:e} AS DOUBLE PRECISION) ELSE CAST(NULL AS DOUBLE PRECISION) END)"
    lower = "CAST(NULL AS DOUBLE PRECISION)"
    q = f"(CASE metric WHEN 'purchase' THEN CAST({quantile or 0:e} AS DOUBLE PRECISION) ELSE CAST(NULL AS DOUBLE PRECISION) END)"
    quantiles = (
        ", quantiles AS (SELECT metric AS quantile_metric, MIN(after_sum) AS quantile "
        "FROM (SELECT metric, after_sum, "
        "ROW_NUMBER() OVER (PARTITION BY metric ORDER BY after_sum) AS position, "
        "COUNT(*) OVER (PARTITION BY metric) AS converted "
        "FROM per_unit WHERE after_events > 0 AND metric IN ('purchase')) ranked "
        f"WHERE position >= {q} * converted GROUP BY metric)"
    )
    upper = f"CASE WHEN quantile > 0 AND ({absolute} IS NULL OR quantile < {absolute}) THEN quantile ELSE {absolute} END"
    quantile_join = " LEFT JOIN quantiles ON quantile_metric = metric"
    if quantile is None:
        quantiles, upper, quantile_join = "", absolute, ""

    def capped(v):
        return f"CASE WHEN {v} > upper THEN upper WHEN {v} < lower THEN lower ELSE {v} END"

    y, x = capped("after_sum"), capped("before_sum")
    return (
        f"WITH per_unit AS ({per_unit}){quantiles} "
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
        f"FROM per_unit{quantile_join}) bounded) capped "
        "GROUP BY variant, metric ORDER BY metric, variant"
    )


METRIC_AGGREGATES = metric_aggregates()

# Per-unit figures as ingest would keep them: one row per (experiment, metric, unit) with its
# variant and its sums after the first exposure (within the window) and over the lookback before
# it. WITHOUT ROWID clusters the rows by key, so one experiment's metric is one contiguous range.
UNIT_OUTCOMES = (
    "CREATE TABLE unit_outcomes (tenant_id TEXT NOT NULL, experiment TEXT NOT NULL, unit_id TEXT NOT NULL, "
    "variant TEXT NOT NULL, metric TEXT NOT NULL, after_events BIGINT NOT NULL, after_sum DOUBLE PRECISION NOT NULL, "
    "before_events BIGINT NOT NULL, before_sum DOUBLE PRECISION NOT NULL, valued BIGINT NOT NULL, "
    "PRIMARY KEY (tenant_id, experiment, metric, unit_id)) WITHOUT ROWID; "
    f"INSERT INTO unit_outcomes {per_unit_from_join('c.tenant_id, e.experiment, c.unit_id, ')}; "
    # The units a cap can touch are found through these: the top of each sum.
    "CREATE INDEX unit_outcomes_by_after_sum ON unit_outcomes (tenant_id, experiment, metric, after_sum) "
    "WHERE after_events > 0; "
    "CREATE INDEX unit_outcomes_by_before_sum ON unit_outcomes (tenant_id, experiment, metric, before_sum); "
    # Per-variant running totals of the uncapped figures: what ingest would add to as units change.
    "CREATE TABLE outcome_totals AS SELECT tenant_id, experiment, metric, variant, "
    "SUM(CASE WHEN after_events > 0 THEN 1 ELSE 0 END) AS converted, "
    "SUM(CASE WHEN before_events > 0 THEN 1 ELSE 0 END) AS active_before, "
    "SUM(CASE WHEN after_events > 0 AND before_events > 0 THEN 1 ELSE 0 END) AS both_units, "
    "MAX(valued) AS valued, SUM(after_sum) AS y_sum, SUM(after_sum * after_sum) AS y_squares, "
    "SUM(before_sum) AS x_sum, SUM(before_sum * before_sum) AS x_squares, SUM(before_sum * after_sum) AS xy_sum "
    "FROM unit_outcomes GROUP BY tenant_id, experiment, metric, variant; "
    "ANALYZE;"
)


def totals_aggregates(query, cap=1000.0, quantile=0.99):
    """`metric_aggregates(cap, quantile)`'s answer from the running totals: read the totals, find
    the winsorising quantile by walking the top (1 − q) of the converted units' index, and replace
    the capped units' uncapped contributions by their capped ones. Reads a few rows plus the capped
    units, whatever the size."""
    scope = f"tenant_id = '{TENANT}' AND experiment = '{EXPERIMENT}' AND metric = 'purchase'"
    totals = query(
        "SELECT variant, converted, active_before, both_units, valued, y_sum, y_squares, x_sum, x_squares, xy_sum "
        f"FROM outcome_totals WHERE {scope} ORDER BY variant"
    )
    upper = cap
    if quantile is not None:
        converted = sum(row[1] for row in totals)
        position = math.ceil(quantile * converted)  # nearest rank, as metric_aggregates computes it
        (found,) = query(
            f"SELECT after_sum FROM unit_outcomes WHERE {scope} AND after_events > 0 "
            f"ORDER BY after_sum DESC LIMIT 1 OFFSET {converted - position}"
        )[0]
        upper = found if 0 < found < cap else cap
    capped_units = query(
        "SELECT unit_id, variant, after_sum, before_sum FROM unit_outcomes "
        f"WHERE {scope} AND after_events > 0 AND after_sum > {upper!r} "
        f"UNION SELECT unit_id, variant, after_sum, before_sum FROM unit_outcomes WHERE {scope} AND before_sum > {upper!r}"
    )
    by_variant = {}
    for _, variant, after, before in capped_units:
        by_variant.setdefault(variant, []).append((after, before))
    answer = []
    for variant, conv, active, both, valued, y, yy, x, xx, xy in totals:
        for after, before in by_variant.get(variant, ()):
            cy, cx = min(after, upper), min(before, upper)
            y, yy = y - after + cy, yy - after * after + cy * cy
            x, xx, xy = x - before + cx, xx - before * before + cx * cx, xy - before * after + cx * cy
        answer.append((variant, "purchase", conv, active, both, valued, upper, y, yy, x, xx, xy))
    return answer


# A cap inside the data, so the totals' correction for capped units is exercised, not only read:
# the benchmark's own values all fall within its winsorising quantile.
CHECK_CAP = 22.0


def measure_layouts(db):
    """SQLite: the metric aggregates from the per-unit rows and from the running totals."""
    started = time.perf_counter()
    db.executescript(UNIT_OUTCOMES)
    built = time.perf_counter() - started
    query = lambda sql: db.execute(sql).fetchall()  # noqa: E731
    per_unit, per_unit_ms, per_unit_best = timed(lambda: (query(metric_aggregates(per_unit=PER_UNIT_FROM_ROWS)), None))
    totals, totals_ms, totals_best = timed(lambda: (totals_aggregates(query), None))
    # The benchmark's sums all fall within its winsorising quantile, so the timing above reads back
    # no capped unit; this one caps most of them, to show what reading them back costs.
    capped_totals, capped_ms, capped_best = timed(lambda: (totals_aggregates(query, cap=CHECK_CAP, quantile=None), None))

    def units_above(upper):
        return query(
            f"SELECT COUNT(*) FROM unit_outcomes WHERE tenant_id = '{TENANT}' AND experiment = '{EXPERIMENT}' "
            f"AND ((after_events > 0 AND after_sum > {upper!r}) OR before_sum > {upper!r})"
        )[0][0]

    capped = query(metric_aggregates(cap=CHECK_CAP, quantile=None))
    for name, answer in (
        ("per-unit rows", query(metric_aggregates(cap=CHECK_CAP, quantile=None, per_unit=PER_UNIT_FROM_ROWS))),
        ("running totals", capped_totals),
    ):
        if normalise(answer) != normalise(capped):
            sys.exit(f"capped at {CHECK_CAP}: {name} answer differently from the join:\n{normalise(answer)}\n{normalise(capped)}")
    return dict(
        built_s=built,
        per_unit=per_unit,
        per_unit_ms=per_unit_ms,
        per_unit_best=per_unit_best,
        totals=totals,
        totals_ms=totals_ms,
        totals_best=totals_best,
        totals_capped_units=units_above(totals[0][6]),
        capped_units=units_above(CHECK_CAP),
        capped_ms=capped_ms,
        capped_best=capped_best,
    )


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


def normalise(answer, reference_types=None):
    """Rows as comparable tuples: numbers rounded to 6 significant digits (engines sum in
    different orders). `reference_types`, another engine's answer to the same statement, gives
    the cells' types: psql prints a whole DOUBLE PRECISION without a decimal point, so its text alone cannot
    tell 26.0 from 26."""

    def cell(value, kind):
        if isinstance(kind, float) and isinstance(value, int):
            value = float(value)
        return float(f"{value:.6g}") if isinstance(value, float) else value

    types = reference_types if reference_types is not None and len(reference_types) == len(answer) else answer
    return [tuple(cell(v, k) for v, k in zip(row, kinds)) for row, kinds in zip(answer, types)]


def run_duckdb(units, work):
    import duckdb  # only here: the SQLite and PostgreSQL runs need nothing installed

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


def run_sqlite(units, work, layouts=False):
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
    size = os.path.getsize(path)
    if layouts:
        result["layouts"] = measure_layouts(db)
    db.close()
    return {**result, "bytes": size}


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
    parser.add_argument("--layouts", action="store_true", help="also time figures kept at ingest (SQLite)")
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
                results.append(run_sqlite(args.units, work, args.layouts))
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
            if normalise(r[part], reference[part]) != normalise(reference[part]):
                sys.exit(
                    f"{r['engine']} answers {part} differently from {reference['engine']}:\n"
                    f"{normalise(r[part], reference[part])}\n{normalise(reference[part])}"
                )
    for r in results:
        layouts = r.get("layouts")
        for part in ("per_unit", "totals") if layouts else ():
            if normalise(layouts[part]) != normalise(r["metrics"]):
                sys.exit(
                    f"{r['engine']}: the {part} layout answers differently from the joined statement:\n"
                    f"{normalise(layouts[part])}\n{normalise(r['metrics'])}"
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
    for r in results:
        layouts = r.get("layouts")
        if not layouts:
            continue
        lines += [
            "",
            f"Metric aggregates on {r['engine']} from figures kept at ingest (`--layouts`), each giving the joined "
            f"statement's answer: built from the loaded rows in {layouts['built_s']:.0f} s (a one-off here; ingest would "
            "keep them up to date). Median of 5 after a warm-up (best in brackets), ms.",
            "",
            "| read from | metric aggregates |",
            "|---|---:|",
            f"| the join of conversions to exposures (above) | {r['metrics_ms']:.0f} ({r['metrics_best']:.0f}) |",
            f"| per-unit rows, one per unit and metric, clustered | {layouts['per_unit_ms']:.0f} ({layouts['per_unit_best']:.0f}) |",
            f"| per-variant running totals, corrected for the capped units ({layouts['totals_capped_units']:,} read back) "
            f"| {layouts['totals_ms']:.1f} ({layouts['totals_best']:.1f}) |",
            f"| the same with a cap of {CHECK_CAP:g} instead, inside the data: {layouts['capped_units']:,} capped units read back "
            f"| {layouts['capped_ms']:.0f} ({layouts['capped_best']:.0f}) |",
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        with open(args.report, "w") as out:
            out.write(report)


if __name__ == "__main__":
    main()
