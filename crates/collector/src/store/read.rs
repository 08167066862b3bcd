//! The aggregate queries behind results. Every query is scoped by tenant first.

use cohort_core::MAX_CONVERSION_VALUE;
use sqlx::{Any, Row};

use std::collections::HashSet;

use super::kept::KEPT_LOOKBACK_MS;
use super::{Context, HOUR_MS, Store, StoreError};

/// How one metric's events become per-unit figures, as the aggregate query needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricShape {
    /// Metric key (validated: the key alphabet only).
    pub key: String,
    /// Only events this many milliseconds after the first exposure count as outcomes.
    pub window_ms: Option<i64>,
    /// Per-unit sums above this are lowered to it (the absolute cap).
    pub upper_cap: Option<f64>,
    /// Per-unit sums above this quantile of the converted units' sums (when positive) are lowered
    /// to it, if that is below `upper_cap`.
    pub winsorize: Option<f64>,
    /// Per-unit sums below this are raised to it.
    pub lower_cap: Option<f64>,
}

/// One (variant, metric) of an experiment, summed over the units with any event of the metric
/// (every other exposed unit counts 0 in every sum). `y` is a unit's figure after its first
/// exposure, `x` the same figure over the lookback before it (the CUPED covariate).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricAggregate {
    /// Variant key.
    pub variant: String,
    /// Metric key.
    pub metric: String,
    /// Units with an event within the window after their first exposure.
    pub converted_units: u64,
    /// Units with an event in the lookback before their first exposure.
    pub active_before_units: u64,
    /// Units with both.
    pub converted_and_active_before_units: u64,
    /// Whether any event within the window after the first exposure carried a value.
    pub has_values: bool,
    /// The upper cap applied to the units' values, if the metric has one.
    pub upper_cap: Option<f64>,
    /// Σ y over units, values capped.
    pub value_sum: f64,
    /// Σ y².
    pub value_sum_of_squares: f64,
    /// Σ x, values capped.
    pub value_sum_before: f64,
    /// Σ x².
    pub value_sum_of_squares_before: f64,
    /// Σ x·y.
    pub value_sum_of_products: f64,
}

/// Which exposed units an analysis covers (a results slice): every filter given must hold for a
/// unit's first exposure. The default covers every unit. Serialised as the results document's
/// `slice`, with only the filters given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ExposureFilter {
    /// Config version that made the assignment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
    /// Country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Device class (`desktop`, `mobile`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// First exposure at or after this time, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// First exposure before this time, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
}

impl UnitSource {
    fn table(self) -> &'static str {
        match self {
            UnitSource::Counts => "exposure_counts",
            UnitSource::Rows => "exposures",
        }
    }

    /// The units of a group of `table()`'s rows.
    fn units(self) -> &'static str {
        match self {
            UnitSource::Counts => "SUM(e.units)",
            UnitSource::Rows => "COUNT(*)",
        }
    }
}

/// A bind value of a dynamically built query.
enum Bind {
    Text(String),
    Integer(i64),
}

/// Where exposed units are counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitSource {
    /// `exposure_counts`: a few rows per experiment, kept at ingest.
    Counts,
    /// `exposures`: a row per unit.
    Rows,
}

impl ExposureFilter {
    /// `exposure_counts` answers every filter whose time bounds fall on its hours; any other is
    /// counted from the exposures themselves.
    fn unit_source(&self) -> UnitSource {
        if [self.from_ms, self.to_ms]
            .into_iter()
            .flatten()
            .all(|ms| ms % HOUR_MS == 0)
        {
            UnitSource::Counts
        } else {
            UnitSource::Rows
        }
    }

    /// `AND ...` conditions on `source`'s alias `e`, numbered from `$first`, and their values.
    fn conditions_on(&self, first: usize, source: UnitSource) -> (String, Vec<Bind>) {
        let (time, from, to) = match source {
            UnitSource::Rows => ("exposed_at_ms", self.from_ms, self.to_ms),
            UnitSource::Counts => (
                "exposure_hour",
                self.from_ms.map(|ms| ms / HOUR_MS),
                self.to_ms.map(|ms| ms / HOUR_MS),
            ),
        };
        let mut sql = String::new();
        let mut binds = Vec::new();
        let mut add = |condition: &str, bind: Bind| {
            sql.push_str(&format!(" AND e.{condition} ${}", first + binds.len()));
            binds.push(bind);
        };
        if let Some(version) = self.config_version {
            add(
                "config_version =",
                Bind::Integer(i64::try_from(version).unwrap_or(i64::MAX)),
            );
        }
        if let Some(country) = &self.country {
            add("country =", Bind::Text(country.clone()));
        }
        if let Some(device) = &self.device {
            add("device =", Bind::Text(device.clone()));
        }
        if let Some(from) = from {
            add(&format!("{time} >="), Bind::Integer(from));
        }
        if let Some(to) = to {
            add(&format!("{time} <"), Bind::Integer(to));
        }
        (sql, binds)
    }

    /// `AND ...` conditions on the exposures alias `e`, numbered from `$first`, and their values.
    fn conditions(&self, first: usize) -> (String, Vec<Bind>) {
        self.conditions_on(first, UnitSource::Rows)
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Integer(number) => query.bind(number),
        };
    }
    query
}

/// How many rows a tenant has (operations and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowCounts {
    /// Stored exposures.
    pub exposures: u64,
    /// Stored conversion events.
    pub conversions: u64,
}

/// One variant of one experiment as a tenant's exposures show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantExposureSummary {
    /// Experiment key.
    pub experiment: String,
    /// Variant key.
    pub variant: String,
    /// Units whose first exposure was to this variant.
    pub units: u64,
    /// Earliest first exposure, Unix milliseconds.
    pub first_exposure_ms: i64,
    /// Latest first exposure, Unix milliseconds.
    pub last_exposure_ms: i64,
}

/// First exposures of one variant in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCount {
    /// Bucket number: `exposed_at_ms / bucket_ms` (timestamps are positive, so this floors).
    pub bucket: i64,
    /// Variant key.
    pub variant: String,
    /// Units first exposed in the bucket.
    pub units: u64,
}

/// `CASE <column> WHEN '<key>' THEN <value> … ELSE NULL END` over the shapes that have a value,
/// or a typed NULL when none does. Keys are validated metric keys (letters, digits, `-`, `_`,
/// `.`) and values are numbers formatted here, so they are inlined rather than bound: PostgreSQL
/// cannot infer a bound parameter's type in a CASE branch.
fn per_metric(
    column: &str,
    shapes: &[MetricShape],
    value: impl Fn(&MetricShape) -> Option<String>,
    sql_type: &str,
) -> String {
    let branches: String = shapes
        .iter()
        .filter_map(|shape| Some(format!(" WHEN {} THEN {}", key_literal(&shape.key)?, value(shape)?)))
        .collect();
    if branches.is_empty() {
        format!("CAST(NULL AS {sql_type})")
    } else {
        format!("(CASE {column}{branches} ELSE CAST(NULL AS {sql_type}) END)")
    }
}

/// A metric key as an SQL string literal. Keys are validated to letters, digits, `-`, `_` and `.`
/// (the key alphabet) before they get here; anything else is left out rather than quoted.
fn key_literal(key: &str) -> Option<String> {
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        .then(|| format!("'{key}'"))
}

/// A finite number as an SQL literal of type DOUBLE PRECISION.
fn real(value: f64) -> String {
    format!("CAST({value:e} AS DOUBLE PRECISION)")
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// Exposed units per variant of one experiment, sorted by variant key.
    pub async fn exposed_units(&self, tenant: &str, experiment: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.exposed_units_where(tenant, experiment, &ExposureFilter::default())
            .await
    }

    /// Exposed units per variant of one experiment among those `filter` covers, sorted by
    /// variant key.
    pub async fn exposed_units_where(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .exposed_units_grouped(tenant, experiment, filter, "variant")
            .await
            .context("counting exposed units")?;
        rows.iter()
            .map(|row| Ok((row.try_get("grouped_by")?, count(row.try_get("units")?))))
            .collect::<Result<_, sqlx::Error>>()
            .context("reading exposed units")
    }

    /// Exposed units of one experiment per config version that assigned them, among those `filter`
    /// covers, sorted by version.
    pub async fn exposed_units_by_version(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let rows = self
            .exposed_units_grouped(tenant, experiment, filter, "config_version")
            .await
            .context("counting exposed units per config version")?;
        rows.iter()
            .map(|row| Ok((count(row.try_get("grouped_by")?), count(row.try_get("units")?))))
            .collect::<Result<_, sqlx::Error>>()
            .context("reading exposed units per config version")
    }

    /// Rows of (`grouped_by`, `units`): the units `filter` covers per value of `column` (a column
    /// both the exposures and their counts have), sorted by it.
    async fn exposed_units_grouped(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
        column: &'static str,
    ) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        let source = filter.unit_source();
        let (conditions, binds) = filter.conditions_on(3, source);
        let sql = format!(
            "SELECT e.{column} AS grouped_by, CAST({units} AS BIGINT) AS units FROM {table} e \
             WHERE e.tenant_id = $1 AND e.experiment = $2{conditions} GROUP BY e.{column} ORDER BY e.{column}",
            units = source.units(),
            table = source.table(),
        );
        let query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(experiment.to_owned());
        bind_all(query, binds).fetch_all(&self.readers).await
    }

    /// Every experiment and variant in a tenant's exposures with its units and first and last
    /// exposure, sorted by experiment then variant: one grouped query over the tenant's rows.
    pub async fn exposure_summaries(&self, tenant: &str) -> Result<Vec<VariantExposureSummary>, StoreError> {
        let rows = sqlx::query::<Any>(
            "SELECT experiment, variant, CAST(SUM(units) AS BIGINT) AS units, \
                    CAST(MIN(first_exposed_at_ms) AS BIGINT) AS first_ms, \
                    CAST(MAX(last_exposed_at_ms) AS BIGINT) AS last_ms \
             FROM exposure_counts WHERE tenant_id = $1 \
             GROUP BY experiment, variant ORDER BY experiment, variant",
        )
        .bind(tenant.to_owned())
        .fetch_all(&self.readers)
        .await
        .context("summarising a tenant's exposures")?;
        rows.iter()
            .map(|row| {
                Ok(VariantExposureSummary {
                    experiment: row.try_get("experiment")?,
                    variant: row.try_get("variant")?,
                    units: count(row.try_get("units")?),
                    first_exposure_ms: row.try_get("first_ms")?,
                    last_exposure_ms: row.try_get("last_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading exposure summaries")
    }

    /// Earliest and latest first exposure of one experiment; `None` without exposures.
    pub async fn exposure_span(&self, tenant: &str, experiment: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query::<Any>(
            "SELECT CAST(MIN(first_exposed_at_ms) AS BIGINT) AS first_ms, \
                    CAST(MAX(last_exposed_at_ms) AS BIGINT) AS last_ms \
             FROM exposure_counts WHERE tenant_id = $1 AND experiment = $2",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .fetch_one(&self.readers)
        .await
        .context("finding an experiment's exposure span")?;
        let first: Option<i64> = row.try_get("first_ms").context("reading the first exposure")?;
        let last: Option<i64> = row.try_get("last_ms").context("reading the last exposure")?;
        Ok(first.zip(last))
    }

    /// First exposures per time bucket of `bucket_ms` and variant, sorted by bucket then variant;
    /// buckets without exposures are absent.
    pub async fn exposure_timeline(
        &self,
        tenant: &str,
        experiment: &str,
        bucket_ms: i64,
    ) -> Result<Vec<TimelineCount>, StoreError> {
        // Integer division of two BIGINTs truncates toward zero on both databases, and stored
        // timestamps are positive (validated from 2020 on), so both floor identically. Buckets of
        // whole hours are sums of `exposure_counts`' hours.
        let (sql, divisor) = if bucket_ms % HOUR_MS == 0 {
            (
                "SELECT bucket, variant, CAST(SUM(units) AS BIGINT) AS units \
                 FROM (SELECT CAST(exposure_hour / CAST($3 AS BIGINT) AS BIGINT) AS bucket, variant, units \
                       FROM exposure_counts WHERE tenant_id = $1 AND experiment = $2) bucketed \
                 GROUP BY bucket, variant ORDER BY bucket, variant",
                bucket_ms / HOUR_MS,
            )
        } else {
            (
                "SELECT bucket, variant, CAST(COUNT(*) AS BIGINT) AS units \
                 FROM (SELECT CAST(exposed_at_ms / CAST($3 AS BIGINT) AS BIGINT) AS bucket, variant \
                       FROM exposures WHERE tenant_id = $1 AND experiment = $2) bucketed \
                 GROUP BY bucket, variant ORDER BY bucket, variant",
                bucket_ms,
            )
        };
        let rows = sqlx::query::<Any>(sql)
            .bind(tenant.to_owned())
            .bind(experiment.to_owned())
            .bind(divisor)
            .fetch_all(&self.readers)
            .await
            .context("counting exposures over time")?;
        rows.iter()
            .map(|row| {
                Ok(TimelineCount {
                    bucket: row.try_get("bucket")?,
                    variant: row.try_get("variant")?,
                    units: count(row.try_get("units")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading the exposure timeline")
    }

    /// Per (variant, metric): conversions and capped value sums of the units `filter` covers,
    /// after their first exposure (within each metric's window) and over `lookback_ms` before it,
    /// with each metric's upper cap (its winsorisation quantile over the converted units, capped
    /// by its absolute cap), sorted by metric then variant. The whole experiment is read from the
    /// figures kept at ingest (a few rows however many units, see [`super::kept`]); a slice, another
    /// lookback, and a metric whose figures fit another window are computed from the events, and
    /// the rebuild of such a metric's figures is queued.
    pub async fn metric_aggregates(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
        lookback_ms: i64,
        shapes: &[MetricShape],
    ) -> Result<Vec<MetricAggregate>, StoreError> {
        if *filter != ExposureFilter::default() || lookback_ms != KEPT_LOOKBACK_MS {
            return self
                .aggregates_from_events(tenant, experiment, filter, lookback_ms, shapes, None)
                .await;
        }
        let stale = self.stale_kept_metrics(tenant, shapes).await?;
        self.queue_kept_rebuilds(tenant, &stale);
        let mut from_events: HashSet<String> = stale.into_iter().map(|stale| stale.metric).collect();
        let (mut aggregates, unanswered) = self
            .kept_metric_aggregates(tenant, experiment, shapes, &from_events)
            .await?;
        from_events.extend(unanswered);
        if !from_events.is_empty() {
            let only: Vec<String> = from_events.into_iter().collect();
            aggregates.extend(
                self.aggregates_from_events(tenant, experiment, filter, lookback_ms, shapes, Some(&only))
                    .await?,
            );
            aggregates.sort_by(|a, b| (&a.metric, &a.variant).cmp(&(&b.metric, &b.variant)));
        }
        Ok(aggregates)
    }

    /// The same aggregates computed from the events: one statement and one pass over the tenant's
    /// conversions, joined to their units' exposures. The reference the kept figures are tested
    /// against, and what a slice reads.
    pub async fn metric_aggregates_from_events(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
        lookback_ms: i64,
        shapes: &[MetricShape],
    ) -> Result<Vec<MetricAggregate>, StoreError> {
        self.aggregates_from_events(tenant, experiment, filter, lookback_ms, shapes, None)
            .await
    }

    /// [`Store::metric_aggregates_from_events`] for every metric, or for the metrics in `only`:
    /// the database does the per-unit grouping and the quantiles, so the answer is a few rows
    /// however many units there are.
    async fn aggregates_from_events(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
        lookback_ms: i64,
        shapes: &[MetricShape],
        only: Option<&[String]>,
    ) -> Result<Vec<MetricAggregate>, StoreError> {
        let (mut conditions, binds) = filter.conditions(4);
        if let Some(only) = only {
            let keys: Vec<String> = only.iter().filter_map(|key| key_literal(key)).collect();
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            conditions.push_str(&format!(" AND c.metric IN ({})", keys.join(", ")));
        }
        let window = per_metric(
            "c.metric",
            shapes,
            |shape| shape.window_ms.map(|ms| ms.to_string()),
            "BIGINT",
        );
        let absolute = per_metric("metric", shapes, |shape| shape.upper_cap.map(real), "DOUBLE PRECISION");
        let lower = per_metric("metric", shapes, |shape| shape.lower_cap.map(real), "DOUBLE PRECISION");
        let winsorized: Vec<&MetricShape> = shapes.iter().filter(|shape| shape.winsorize.is_some()).collect();
        // The nearest-rank quantile of each winsorised metric's converted units: the smallest
        // value whose rank reaches q·k. Only a positive quantile caps (winsorising trims gains).
        let (quantiles, upper) = if winsorized.is_empty() {
            (String::new(), absolute)
        } else {
            let keys: Vec<String> = winsorized.iter().filter_map(|shape| key_literal(&shape.key)).collect();
            let q = per_metric("metric", shapes, |shape| shape.winsorize.map(real), "DOUBLE PRECISION");
            (
                format!(
                    ", quantiles AS (SELECT metric AS quantile_metric, MIN(after_sum) AS quantile \
                       FROM (SELECT metric, after_sum, \
                                    ROW_NUMBER() OVER (PARTITION BY metric ORDER BY after_sum) AS position, \
                                    COUNT(*) OVER (PARTITION BY metric) AS converted \
                             FROM per_unit WHERE after_events > 0 AND metric IN ({})) ranked \
                       WHERE position >= {q} * converted GROUP BY metric)",
                    keys.join(", ")
                ),
                format!(
                    "CASE WHEN quantile > 0 AND ({absolute} IS NULL OR quantile < {absolute}) \
                     THEN quantile ELSE {absolute} END"
                ),
            )
        };
        let quantile_join = if winsorized.is_empty() {
            ""
        } else {
            " LEFT JOIN quantiles ON quantile_metric = metric"
        };
        let capped = |v: &str| format!("CASE WHEN {v} > upper THEN upper WHEN {v} < lower THEN lower ELSE {v} END");
        let (y, x) = (capped("after_sum"), capped("before_sum"));
        // Rows stored before values were bounded may hold any finite number: bound them here too,
        // so no sum of squares overflows.
        let value = format!(
            "CASE WHEN c.value > {max:e} THEN {max:e} WHEN c.value < -{max:e} THEN -{max:e} ELSE COALESCE(c.value, 0.0) END",
            max = MAX_CONVERSION_VALUE
        );
        // CROSS JOIN makes SQLite walk the tenant's conversions and look each unit's exposure up
        // by primary key: conversions are usually far fewer than exposed units. PostgreSQL's
        // planner reorders freely. Events after a metric's window are dropped in WHERE, so the
        // window is evaluated once per event. CASTs pin result types the databases choose
        // differently. Both databases materialise `per_unit` when the quantiles read it too.
        let sql = format!(
            "WITH per_unit AS (\
                 SELECT e.variant AS variant, c.metric AS metric, \
                        SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN 1 ELSE 0 END) AS after_events, \
                        CAST(SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN {value} ELSE 0.0 END) AS DOUBLE PRECISION) AS after_sum, \
                        SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN 1 ELSE 0 END) AS before_events, \
                        CAST(SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN {value} ELSE 0.0 END) AS DOUBLE PRECISION) AS before_sum, \
                        MAX(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms AND c.value IS NOT NULL THEN 1 ELSE 0 END) AS valued \
                 FROM conversions c CROSS JOIN exposures e \
                 WHERE c.tenant_id = $1 AND e.tenant_id = c.tenant_id AND e.experiment = $2 \
                   AND e.unit_id = c.unit_id AND c.occurred_at_ms >= e.exposed_at_ms - $3 \
                   AND (c.occurred_at_ms < e.exposed_at_ms OR {window} IS NULL \
                        OR c.occurred_at_ms - e.exposed_at_ms < {window}){conditions} \
                 GROUP BY c.unit_id, c.metric, e.variant){quantiles} \
             SELECT variant, metric, \
                    CAST(SUM(converted) AS BIGINT) AS converted_units, \
                    CAST(SUM(active_before) AS BIGINT) AS active_before_units, \
                    CAST(SUM(converted * active_before) AS BIGINT) AS both_units, \
                    CAST(MAX(valued) AS BIGINT) AS valued, \
                    CAST(MAX(upper) AS DOUBLE PRECISION) AS upper_cap, \
                    CAST(SUM(y) AS DOUBLE PRECISION) AS y_sum, CAST(SUM(y * y) AS DOUBLE PRECISION) AS y_squares, \
                    CAST(SUM(x) AS DOUBLE PRECISION) AS x_sum, CAST(SUM(x * x) AS DOUBLE PRECISION) AS x_squares, \
                    CAST(SUM(x * y) AS DOUBLE PRECISION) AS xy_sum \
             FROM (SELECT variant, metric, valued, upper, \
                          CASE WHEN after_events > 0 THEN 1 ELSE 0 END AS converted, \
                          CASE WHEN before_events > 0 THEN 1 ELSE 0 END AS active_before, \
                          {y} AS y, {x} AS x \
                   FROM (SELECT per_unit.*, {upper} AS upper, {lower} AS lower \
                         FROM per_unit{quantile_join}) bounded) capped \
             GROUP BY variant, metric ORDER BY metric, variant"
        );
        let query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(experiment.to_owned())
            .bind(lookback_ms);
        let rows = bind_all(query, binds)
            .fetch_all(&self.readers)
            .await
            .context("aggregating conversions")?;
        let real_of = |row: &sqlx::any::AnyRow, column: &str| -> Result<f64, sqlx::Error> {
            Ok(row.try_get::<Option<f64>, _>(column)?.unwrap_or(0.0))
        };
        rows.iter()
            .map(|row| {
                Ok(MetricAggregate {
                    variant: row.try_get("variant")?,
                    metric: row.try_get("metric")?,
                    converted_units: count(row.try_get("converted_units")?),
                    active_before_units: count(row.try_get("active_before_units")?),
                    converted_and_active_before_units: count(row.try_get("both_units")?),
                    has_values: row.try_get::<i64, _>("valued")? > 0,
                    upper_cap: row.try_get("upper_cap")?,
                    value_sum: real_of(row, "y_sum")?,
                    value_sum_of_squares: real_of(row, "y_squares")?,
                    value_sum_before: real_of(row, "x_sum")?,
                    value_sum_of_squares_before: real_of(row, "x_squares")?,
                    value_sum_of_products: real_of(row, "xy_sum")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading conversion aggregates")
    }

    /// Rows stored for a tenant.
    pub async fn row_counts(&self, tenant: &str) -> Result<RowCounts, StoreError> {
        let row = sqlx::query::<Any>(
            "SELECT (SELECT COUNT(*) FROM exposures WHERE tenant_id = $1) AS exposures, \
                    (SELECT COUNT(*) FROM conversions WHERE tenant_id = $1) AS conversions",
        )
        .bind(tenant.to_owned())
        .fetch_one(&self.readers)
        .await
        .context("counting a tenant's rows")?;
        Ok(RowCounts {
            exposures: count(row.try_get("exposures").context("reading the exposure count")?),
            conversions: count(row.try_get("conversions").context("reading the conversion count")?),
        })
    }
}
