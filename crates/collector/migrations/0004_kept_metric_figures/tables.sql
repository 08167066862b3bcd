-- Metric figures kept at ingest (DESIGN.md, "Results at scale"): what the results of a whole
-- experiment read instead of joining every conversion to its unit's exposure. Triggers on
-- exposures and conversions keep them in the inserting transaction, so a batch rolled back or a
-- redelivered record (not inserted again) changes nothing. The SQL is shared by SQLite and
-- PostgreSQL; only the trigger wrappers differ (src/store/mod.rs, `MIGRATIONS`).
--
-- The figures follow the results' definitions: an event counts after a unit's first exposure
-- when it falls within the metric's window, and before it within the 14-day lookback
-- (1209600000 ms, `KEPT_LOOKBACK_MS`); values are bounded to ±1e9 (`MAX_CONVERSION_VALUE`).
-- Caps and the winsorising quantile are applied when results are read, so they may change freely.

-- The window a metric's figures were built for, when it has one; a metric without a row is kept
-- with no window. Written only by a rebuild (src/store/kept.rs), which rebuilds that metric's
-- figures in the same transaction.
CREATE TABLE metric_windows (
    tenant_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    window_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, metric)
);

-- One row per experiment, exposed unit and metric the unit has an event of (within the window
-- after its first exposure or the lookback before it).
CREATE TABLE unit_metric_figures (
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    variant TEXT NOT NULL,
    -- Events within the window after the first exposure, and their values' sum.
    after_events BIGINT NOT NULL,
    after_sum DOUBLE PRECISION NOT NULL,
    -- Events within the lookback before it, and their values' sum (the CUPED covariate).
    before_events BIGINT NOT NULL,
    before_sum DOUBLE PRECISION NOT NULL,
    -- 1 when an event after the exposure carried a value.
    valued BIGINT NOT NULL,
    -- The magnitude band of the larger of |after_sum| and |before_sum|: 0 below 1, then one band
    -- per factor of 100, 5 from 1e8 up. The totals are kept per band, so that removing the units a
    -- cap changes subtracts figures of the cap's size, never a whale's from a sum it dwarfs.
    magnitude BIGINT GENERATED ALWAYS AS (
                  CASE WHEN ABS(after_sum) < 1.0 AND ABS(before_sum) < 1.0 THEN 0
                       WHEN ABS(after_sum) < 100.0 AND ABS(before_sum) < 100.0 THEN 1
                       WHEN ABS(after_sum) < 10000.0 AND ABS(before_sum) < 10000.0 THEN 2
                       WHEN ABS(after_sum) < 1000000.0 AND ABS(before_sum) < 1000000.0 THEN 3
                       WHEN ABS(after_sum) < 100000000.0 AND ABS(before_sum) < 100000000.0 THEN 4
                       ELSE 5 END) STORED,
    PRIMARY KEY (tenant_id, experiment, unit_id, metric)
);

-- The winsorising quantile is a walk down the first, and the units a cap lowers or raises are
-- ranges of both: the read touches those units only.
CREATE INDEX unit_metric_figures_by_after_sum
    ON unit_metric_figures (tenant_id, experiment, metric, after_sum) WHERE after_events > 0;
CREATE INDEX unit_metric_figures_by_before_sum
    ON unit_metric_figures (tenant_id, experiment, metric, before_sum) WHERE before_events > 0;

-- Per variant, metric and magnitude band, the unit figures summed before any cap.
CREATE TABLE variant_metric_totals (
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    metric TEXT NOT NULL,
    variant TEXT NOT NULL,
    magnitude BIGINT NOT NULL,
    -- Units with an event after, before, and both.
    converted_units BIGINT NOT NULL,
    active_before_units BIGINT NOT NULL,
    both_units BIGINT NOT NULL,
    -- 1 when any unit's event after its exposure carried a value.
    valued BIGINT NOT NULL,
    -- Σy, Σy², Σx, Σx², Σxy over the units: y = after_sum, x = before_sum.
    y_sum DOUBLE PRECISION NOT NULL,
    y_squares DOUBLE PRECISION NOT NULL,
    x_sum DOUBLE PRECISION NOT NULL,
    x_squares DOUBLE PRECISION NOT NULL,
    xy_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, experiment, metric, variant, magnitude)
);
