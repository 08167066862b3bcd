//! The aggregate queries behind results. Every query is scoped by tenant first.

use sqlx::{Any, Row};

use super::{Context, Store, StoreError};

/// One conversion event of an exposed unit, placed relative to the unit's first exposure.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitEvent {
    /// The unit's variant.
    pub variant: String,
    /// Unit id.
    pub unit: String,
    /// Metric key.
    pub metric: String,
    /// The event's value, if it carried one.
    pub value: Option<f64>,
    /// Event time minus the unit's first exposure, milliseconds (negative: before it).
    pub offset_ms: i64,
}

/// Which exposed units an analysis covers: every filter given must hold for a unit's first
/// exposure. The default covers every unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureFilter {
    /// Config version that made the assignment.
    pub config_version: Option<u64>,
    /// Country code.
    pub country: Option<String>,
    /// Device class (`desktop`, `mobile`, ...).
    pub device: Option<String>,
    /// First exposure at or after this time, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// First exposure before this time, Unix milliseconds.
    pub to_ms: Option<i64>,
}

/// A bind value of a dynamically built query.
enum Bind {
    Text(String),
    Integer(i64),
}

impl ExposureFilter {
    /// `AND ...` conditions on the exposures alias `e`, numbered from `$first`, and their values.
    fn conditions(&self, first: usize) -> (String, Vec<Bind>) {
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
        if let Some(from) = self.from_ms {
            add("exposed_at_ms >=", Bind::Integer(from));
        }
        if let Some(to) = self.to_ms {
            add("exposed_at_ms <", Bind::Integer(to));
        }
        (sql, binds)
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
        let (conditions, binds) = filter.conditions(3);
        let sql = format!(
            "SELECT e.variant AS variant, CAST(COUNT(*) AS BIGINT) AS units FROM exposures e \
             WHERE e.tenant_id = $1 AND e.experiment = $2{conditions} GROUP BY e.variant ORDER BY e.variant"
        );
        let query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(experiment.to_owned());
        let rows = bind_all(query, binds)
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

    /// Every conversion event of the units `filter` covers from `lookback_ms` before their
    /// first exposure on, with the unit's variant; results turn them into per-unit figures.
    pub async fn unit_events(
        &self,
        tenant: &str,
        experiment: &str,
        filter: &ExposureFilter,
        lookback_ms: i64,
    ) -> Result<Vec<UnitEvent>, StoreError> {
        // CROSS JOIN makes SQLite walk the tenant's conversions and look each unit's exposure up
        // by primary key: conversions are usually far fewer than exposed units. PostgreSQL's
        // planner reorders freely. Per-unit sums happen in the caller, because conversion windows
        // and caps differ per metric.
        let (conditions, binds) = filter.conditions(4);
        let sql = format!(
            "SELECT e.variant AS variant, c.unit_id AS unit, c.metric AS metric, c.value AS value, \
                    CAST(c.occurred_at_ms - e.exposed_at_ms AS BIGINT) AS offset_ms \
             FROM conversions c CROSS JOIN exposures e \
             WHERE c.tenant_id = $1 AND e.tenant_id = c.tenant_id AND e.experiment = $2 \
               AND e.unit_id = c.unit_id AND c.occurred_at_ms >= e.exposed_at_ms - $3{conditions}"
        );
        let query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(experiment.to_owned())
            .bind(lookback_ms);
        let rows = bind_all(query, binds)
            .fetch_all(&self.readers)
            .await
            .context("reading the units' conversions")?;
        rows.iter()
            .map(|row| {
                Ok(UnitEvent {
                    variant: row.try_get("variant")?,
                    unit: row.try_get("unit")?,
                    metric: row.try_get("metric")?,
                    value: row.try_get("value")?,
                    offset_ms: row.try_get("offset_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading conversion events")
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
