//! The aggregate queries behind results. Every query is scoped by tenant first.

use sqlx::{Any, Row};

use super::{Context, Store, StoreError};

/// Per (variant, metric): the units that converted after their first exposure, and the sums of
/// their per-unit values (a unit's value is the sum of its conversions' values).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionAggregate {
    /// Variant key.
    pub variant: String,
    /// Metric key.
    pub metric: String,
    /// Units with at least one conversion at or after their first exposure.
    pub converted_units: u64,
    /// Units among them whose conversions carried a value.
    pub valued_units: u64,
    /// Σ per-unit value.
    pub value_sum: f64,
    /// Σ per-unit value².
    pub value_sum_of_squares: f64,
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

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// Exposed units per variant of one experiment, sorted by variant key.
    pub async fn exposed_units(&self, tenant: &str, experiment: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query::<Any>(
            "SELECT variant, COUNT(*) AS units FROM exposures WHERE tenant_id = $1 AND experiment = $2 \
             GROUP BY variant ORDER BY variant",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .fetch_all(&self.readers)
        .await
        .context("counting exposed units")?;
        rows.iter()
            .map(|row| Ok((row.try_get("variant")?, count(row.try_get("units")?))))
            .collect::<Result<_, sqlx::Error>>()
            .context("reading exposed units")
    }

    /// Every experiment and variant in a tenant's exposures with its units and first and last
    /// exposure, sorted by experiment then variant: one grouped query over the tenant's rows.
    pub async fn exposure_summaries(&self, tenant: &str) -> Result<Vec<VariantExposureSummary>, StoreError> {
        let rows = sqlx::query::<Any>(
            "SELECT experiment, variant, CAST(COUNT(*) AS BIGINT) AS units, \
                    CAST(MIN(exposed_at_ms) AS BIGINT) AS first_ms, CAST(MAX(exposed_at_ms) AS BIGINT) AS last_ms \
             FROM exposures WHERE tenant_id = $1 \
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
            "SELECT CAST(MIN(exposed_at_ms) AS BIGINT) AS first_ms, CAST(MAX(exposed_at_ms) AS BIGINT) AS last_ms \
             FROM exposures WHERE tenant_id = $1 AND experiment = $2",
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
        // timestamps are positive (validated from 2020 on), so both floor identically.
        let rows = sqlx::query::<Any>(
            "SELECT bucket, variant, CAST(COUNT(*) AS BIGINT) AS units \
             FROM (SELECT CAST(exposed_at_ms / CAST($3 AS BIGINT) AS BIGINT) AS bucket, variant \
                   FROM exposures WHERE tenant_id = $1 AND experiment = $2) bucketed \
             GROUP BY bucket, variant ORDER BY bucket, variant",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .bind(bucket_ms)
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

    /// Conversions after first exposure, per variant and metric, of one experiment.
    pub async fn conversion_aggregates(
        &self,
        tenant: &str,
        experiment: &str,
    ) -> Result<Vec<ConversionAggregate>, StoreError> {
        // The inner query sums each unit's conversions at or after its first exposure; the outer
        // one aggregates units. CASTs pin the result types, which the two databases otherwise
        // choose differently (PostgreSQL sums BIGINT into NUMERIC, SQLite sums nothing into 0).
        // CROSS JOIN makes SQLite walk the tenant's conversions and look each unit's exposure up
        // by primary key: conversions are usually far fewer than exposed units (1M exposed units
        // with 100k conversions: 0.45 s instead of 1.4 s). PostgreSQL's planner reorders freely.
        let rows = sqlx::query::<Any>(
            "SELECT variant, metric, \
                    CAST(COUNT(*) AS BIGINT) AS converted_units, \
                    CAST(SUM(valued) AS BIGINT) AS valued_units, \
                    CAST(SUM(unit_value) AS DOUBLE PRECISION) AS value_sum, \
                    CAST(SUM(unit_value * unit_value) AS DOUBLE PRECISION) AS value_sum_of_squares \
             FROM (SELECT e.variant AS variant, c.metric AS metric, \
                          CAST(COALESCE(SUM(c.value), 0.0) AS DOUBLE PRECISION) AS unit_value, \
                          CASE WHEN COUNT(c.value) > 0 THEN 1 ELSE 0 END AS valued \
                   FROM conversions c CROSS JOIN exposures e \
                   WHERE c.tenant_id = $1 AND e.tenant_id = c.tenant_id AND e.experiment = $2 \
                     AND e.unit_id = c.unit_id AND c.occurred_at_ms >= e.exposed_at_ms \
                   GROUP BY c.unit_id, c.metric, e.variant) per_unit \
             GROUP BY variant, metric ORDER BY metric, variant",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .fetch_all(&self.readers)
        .await
        .context("aggregating conversions")?;
        rows.iter()
            .map(|row| {
                Ok(ConversionAggregate {
                    variant: row.try_get("variant")?,
                    metric: row.try_get("metric")?,
                    converted_units: count(row.try_get("converted_units")?),
                    valued_units: count(row.try_get("valued_units")?),
                    value_sum: row.try_get::<Option<f64>, _>("value_sum")?.unwrap_or(0.0),
                    value_sum_of_squares: row.try_get::<Option<f64>, _>("value_sum_of_squares")?.unwrap_or(0.0),
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
