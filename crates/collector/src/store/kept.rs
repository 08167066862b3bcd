//! Metric figures kept at ingest (DESIGN.md, "Results at scale"): the results of a whole
//! experiment read a few rows of per-variant totals, the winsorising quantile and the units its
//! caps change, instead of joining every conversion to its unit's exposure.
//!
//! Migration 4 keeps two tables with triggers on exposures and conversions, in the inserting
//! transaction: `unit_metric_figures` (per experiment, unit and metric: events and value sums
//! after the first exposure within the metric's window and in the lookback before it) and
//! `variant_metric_totals` (their sums per variant, before any cap). The caps are applied here,
//! at read time: the totals hold uncapped figures, and the units a cap changes, found by range
//! reads of two indexes, swap their uncapped contribution for the capped one.
//!
//! A metric's figures fit one window, recorded in `metric_windows`. When a definition's window
//! differs, that metric's results come from the join and a rebuild is queued to the writer.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Any, AnyConnection, Connection, Row};

use super::read::{MetricAggregate, MetricShape};
use super::{Backend, Context, Store, StoreError};

/// The lookback before the first exposure the kept figures count (the CUPED covariate's), in
/// milliseconds: 14 days. Migration 4's SQL holds the same number.
pub const KEPT_LOOKBACK_MS: i64 = 14 * 24 * 3_600_000;

/// A metric whose kept figures were built for another window than its definition's (a metric the
/// tenant's config does not define is read with no window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleMetric {
    /// Metric key.
    pub metric: String,
    /// The window its definition asks for.
    pub window_ms: Option<i64>,
}

/// The figures of a unit read back individually, because a bound may change them.
struct OutlyingUnit {
    variant: String,
    after_sum: f64,
    before_sum: f64,
    magnitude: i64,
}

/// One metric's uncapped totals of one variant's units in one magnitude band, as stored.
struct BandTotals {
    variant: String,
    magnitude: i64,
    converted_units: u64,
    active_before_units: u64,
    both_units: u64,
    valued: bool,
    sums: Sums,
}

/// Σy, Σy², Σx, Σx², Σxy.
#[derive(Debug, Clone, Copy, Default)]
struct Sums([f64; 5]);

impl Sums {
    fn of_unit(y: f64, x: f64) -> Sums {
        Sums([y, y * y, x, x * x, x * y])
    }
}

/// The lower edges of magnitude bands 1 to 5, as migration 4's `magnitude` column draws them: a
/// unit's band is how many of these the larger of |after_sum| and |before_sum| reaches.
const MAGNITUDE_BAND_EDGES: [f64; 5] = [1.0, 100.0, 10_000.0, 1_000_000.0, 100_000_000.0];

fn magnitude_band(magnitude: f64) -> i64 {
    MAGNITUDE_BAND_EDGES.iter().filter(|&&edge| magnitude >= edge).count() as i64
}

/// A value bounded as the results bound it: the upper bound first, then the lower.
fn bounded(value: f64, upper: Option<f64>, lower: Option<f64>) -> f64 {
    match (upper, lower) {
        (Some(upper), _) if value > upper => upper,
        (_, Some(lower)) if value < lower => lower,
        _ => value,
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// The metrics whose kept figures do not fit `shapes`' windows: a defined metric built for
    /// another window, or an undefined one built for a window since removed.
    pub async fn stale_kept_metrics(
        &self,
        tenant: &str,
        shapes: &[MetricShape],
    ) -> Result<Vec<StaleMetric>, StoreError> {
        let rows = sqlx::query::<Any>("SELECT metric, window_ms FROM metric_windows WHERE tenant_id = $1")
            .bind(tenant.to_owned())
            .fetch_all(&self.readers)
            .await
            .context("reading the kept metrics' windows")?;
        let mut kept = HashMap::new();
        for row in &rows {
            let metric: String = row.try_get("metric").context("reading a kept metric")?;
            let window: i64 = row.try_get("window_ms").context("reading a kept window")?;
            kept.insert(metric, window);
        }
        let mut stale: Vec<StaleMetric> = shapes
            .iter()
            .filter(|shape| kept.get(&shape.key).copied() != shape.window_ms)
            .map(|shape| StaleMetric {
                metric: shape.key.clone(),
                window_ms: shape.window_ms,
            })
            .collect();
        let defined: HashSet<&str> = shapes.iter().map(|shape| shape.key.as_str()).collect();
        stale.extend(
            kept.into_keys()
                .filter(|metric| !defined.contains(metric.as_str()))
                .map(|metric| StaleMetric {
                    metric,
                    window_ms: None,
                }),
        );
        stale.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(stale)
    }

    /// Rebuilds one metric's kept figures of a tenant for `window_ms`, through the writer, after
    /// the writes queued before it; answers whether they were built for another window. Ingest
    /// waits while it runs: it reads every exposure of the tenant's units with the metric's events.
    pub async fn rebuild_kept_metric(
        &self,
        tenant: &str,
        metric: &str,
        window_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.writer.rebuild_kept(tenant, metric, window_ms).await
    }

    /// Queues the rebuild of each stale metric without waiting.
    pub(crate) fn queue_kept_rebuilds(&self, tenant: &str, stale: &[StaleMetric]) {
        for metric in stale {
            self.writer.queue_rebuild_kept(tenant, &metric.metric, metric.window_ms);
        }
    }

    /// Per (variant, metric) of the whole experiment, from the kept figures: every metric with
    /// events except those in `excluded`, capped as `shapes` define. Also answers the metrics only
    /// the join can answer: those whose bounds would change a unit without events (a bound that
    /// excludes zero); the caller reads them from the events.
    ///
    /// With bounds, `B` is the smaller of the upper bound and the lower one's size. A unit whose
    /// |after_sum| and |before_sum| are both at most `B` is not capped; every other unit is read
    /// back (range reads of the two sum indexes) and counted with its capped figures. Bands below
    /// `B`'s are summed whole; `B`'s own band is summed less the uncapped figures of its units read
    /// back, so the subtraction involves figures within a factor of 100 of `B`, never a whale's
    /// figures from a total they dwarf; bands above are not summed (all their units were read).
    pub(crate) async fn kept_metric_aggregates(
        &self,
        tenant: &str,
        experiment: &str,
        shapes: &[MetricShape],
        excluded: &HashSet<String>,
    ) -> Result<(Vec<MetricAggregate>, Vec<String>), StoreError> {
        let rows = sqlx::query::<Any>(
            "SELECT metric, variant, magnitude, converted_units, active_before_units, both_units, valued, \
                    y_sum, y_squares, x_sum, x_squares, xy_sum \
             FROM variant_metric_totals WHERE tenant_id = $1 AND experiment = $2 \
             ORDER BY metric, variant, magnitude",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .fetch_all(&self.readers)
        .await
        .context("reading the kept totals")?;
        let mut per_metric: BTreeMap<String, Vec<BandTotals>> = BTreeMap::new();
        for row in &rows {
            let metric: String = row.try_get("metric").context("reading a kept metric")?;
            if excluded.contains(&metric) {
                continue;
            }
            let totals = (|| -> Result<BandTotals, sqlx::Error> {
                Ok(BandTotals {
                    variant: row.try_get("variant")?,
                    magnitude: row.try_get("magnitude")?,
                    converted_units: count(row.try_get("converted_units")?),
                    active_before_units: count(row.try_get("active_before_units")?),
                    both_units: count(row.try_get("both_units")?),
                    valued: row.try_get::<i64, _>("valued")? > 0,
                    sums: Sums([
                        row.try_get("y_sum")?,
                        row.try_get("y_squares")?,
                        row.try_get("x_sum")?,
                        row.try_get("x_squares")?,
                        row.try_get("xy_sum")?,
                    ]),
                })
            })()
            .context("reading kept totals")?;
            per_metric.entry(metric).or_default().push(totals);
        }
        let mut aggregates = Vec::new();
        let mut unanswered = Vec::new();
        for (metric, bands) in per_metric {
            let shape = shapes.iter().find(|shape| shape.key == metric);
            let converted: u64 = bands.iter().map(|band| band.converted_units).sum();
            let upper = match shape {
                Some(shape) => self.upper_bound(tenant, experiment, shape, converted).await?,
                None => None,
            };
            let lower = shape.and_then(|shape| shape.lower_cap);
            if upper.is_some_and(|upper| upper <= 0.0) || lower.is_some_and(|lower| lower >= 0.0) {
                unanswered.push(metric);
                continue;
            }
            let bound = match (upper, lower) {
                (None, None) => None,
                _ => Some(
                    upper
                        .unwrap_or(f64::INFINITY)
                        .min(lower.map_or(f64::INFINITY, |lower| -lower)),
                ),
            };
            let (summed_bands, outlying) = match bound {
                Some(bound) => (
                    magnitude_band(bound),
                    self.outlying_units(tenant, experiment, &metric, bound).await?,
                ),
                None => (i64::MAX, Vec::new()),
            };
            let mut per_variant: BTreeMap<&str, MetricAggregate> = BTreeMap::new();
            for band in &bands {
                let aggregate = per_variant.entry(&band.variant).or_insert_with(|| MetricAggregate {
                    variant: band.variant.clone(),
                    metric: metric.clone(),
                    upper_cap: upper,
                    ..MetricAggregate::default()
                });
                aggregate.converted_units += band.converted_units;
                aggregate.active_before_units += band.active_before_units;
                aggregate.converted_and_active_before_units += band.both_units;
                aggregate.has_values |= band.valued;
                if band.magnitude <= summed_bands {
                    add_sums(aggregate, band.sums, 1.0);
                }
            }
            for unit in &outlying {
                let Some(aggregate) = per_variant.get_mut(unit.variant.as_str()) else {
                    continue;
                };
                if unit.magnitude <= summed_bands {
                    add_sums(aggregate, Sums::of_unit(unit.after_sum, unit.before_sum), -1.0);
                }
                let capped = Sums::of_unit(
                    bounded(unit.after_sum, upper, lower),
                    bounded(unit.before_sum, upper, lower),
                );
                add_sums(aggregate, capped, 1.0);
            }
            aggregates.extend(per_variant.into_values());
        }
        Ok((aggregates, unanswered))
    }

    /// A metric's upper bound: its winsorising quantile over the `converted` units' sums (the
    /// nearest rank, the smallest value whose rank reaches q·k), when positive and below its
    /// absolute cap, else that cap. The quantile is one walk down an index, (1 − q)·k entries long.
    async fn upper_bound(
        &self,
        tenant: &str,
        experiment: &str,
        shape: &MetricShape,
        converted: u64,
    ) -> Result<Option<f64>, StoreError> {
        let Some(q) = shape.winsorize else {
            return Ok(shape.upper_cap);
        };
        // Computed as the join computes it: the product in floating point, compared to ranks.
        let target = q * converted as f64;
        let rank = (target.ceil().max(1.0)) as u64;
        if converted == 0 || rank > converted {
            return Ok(shape.upper_cap);
        }
        let quantile: f64 = sqlx::query_scalar::<Any, f64>(
            "SELECT after_sum FROM unit_metric_figures \
             WHERE tenant_id = $1 AND experiment = $2 AND metric = $3 AND after_events > 0 \
             ORDER BY after_sum DESC LIMIT 1 OFFSET $4",
        )
        .bind(tenant.to_owned())
        .bind(experiment.to_owned())
        .bind(shape.key.clone())
        .bind(i64::try_from(converted - rank).unwrap_or(i64::MAX))
        .fetch_one(&self.readers)
        .await
        .context("reading a winsorising quantile")?;
        Ok(match shape.upper_cap {
            Some(absolute) if quantile <= 0.0 || quantile >= absolute => Some(absolute),
            None if quantile <= 0.0 => None,
            _ => Some(quantile),
        })
    }

    /// The units of one metric with |after_sum| or |before_sum| above `bound`: four range reads
    /// of the two sum indexes, each unit once.
    async fn outlying_units(
        &self,
        tenant: &str,
        experiment: &str,
        metric: &str,
        bound: f64,
    ) -> Result<Vec<OutlyingUnit>, StoreError> {
        let mut units: HashMap<String, OutlyingUnit> = HashMap::new();
        for (column, comparison, limit) in [
            ("after", ">", bound),
            ("after", "<", -bound),
            ("before", ">", bound),
            ("before", "<", -bound),
        ] {
            let sql = format!(
                "SELECT unit_id, variant, after_sum, before_sum, magnitude FROM unit_metric_figures \
                 WHERE tenant_id = $1 AND experiment = $2 AND metric = $3 \
                   AND {column}_events > 0 AND {column}_sum {comparison} $4"
            );
            let rows = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
                .bind(tenant.to_owned())
                .bind(experiment.to_owned())
                .bind(metric.to_owned())
                .bind(limit)
                .fetch_all(&self.readers)
                .await
                .context("reading the units a bound may change")?;
            for row in &rows {
                let unit = (|| -> Result<(String, OutlyingUnit), sqlx::Error> {
                    Ok((
                        row.try_get("unit_id")?,
                        OutlyingUnit {
                            variant: row.try_get("variant")?,
                            after_sum: row.try_get("after_sum")?,
                            before_sum: row.try_get("before_sum")?,
                            magnitude: row.try_get("magnitude")?,
                        },
                    ))
                })()
                .context("reading a unit's figures")?;
                units.insert(unit.0, unit.1);
            }
        }
        Ok(units.into_values().collect())
    }
}

fn add_sums(aggregate: &mut MetricAggregate, sums: Sums, sign: f64) {
    let Sums([y, y_squares, x, x_squares, xy]) = sums;
    aggregate.value_sum += sign * y;
    aggregate.value_sum_of_squares += sign * y_squares;
    aggregate.value_sum_before += sign * x;
    aggregate.value_sum_of_squares_before += sign * x_squares;
    aggregate.value_sum_of_products += sign * xy;
}

/// The columns a rebuild fills the unit figures with from their view.
const FIGURE_COLUMNS: &str =
    "tenant_id, experiment, unit_id, metric, variant, after_events, after_sum, before_events, before_sum, valued";

/// Rebuilds one metric's kept figures of a tenant for `window_ms` from its events, in one
/// transaction on the writer's connection; `Ok(false)` when they were already built for it. On
/// PostgreSQL the transaction first locks out inserts into exposures and conversions (other
/// collectors' included), whose triggers would otherwise update the figures being rebuilt.
pub(crate) async fn rebuild(
    connection: &mut AnyConnection,
    backend: Backend,
    tenant: &str,
    metric: &str,
    window_ms: Option<i64>,
) -> Result<bool, StoreError> {
    let began = std::time::Instant::now();
    let mut transaction = connection.begin().await.context("beginning a rebuild")?;
    if backend == Backend::Postgres {
        sqlx::query::<Any>("LOCK TABLE exposures, conversions IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *transaction)
            .await
            .context("locking out inserts for a rebuild")?;
    }
    let current: Option<i64> =
        sqlx::query_scalar::<Any, i64>("SELECT window_ms FROM metric_windows WHERE tenant_id = $1 AND metric = $2")
            .bind(tenant.to_owned())
            .bind(metric.to_owned())
            .fetch_optional(&mut *transaction)
            .await
            .context("reading a kept metric's window")?;
    if current == window_ms {
        return Ok(false);
    }
    let mut statements = vec![
        "DELETE FROM metric_windows WHERE tenant_id = $1 AND metric = $2".to_owned(),
        "DELETE FROM variant_metric_totals WHERE tenant_id = $1 AND metric = $2".to_owned(),
        "DELETE FROM unit_metric_figures WHERE tenant_id = $1 AND metric = $2".to_owned(),
    ];
    if let Some(window) = window_ms {
        statements.push(format!(
            "INSERT INTO metric_windows (tenant_id, metric, window_ms) VALUES ($1, $2, {window})"
        ));
    }
    // The figures' insert trigger sums them into the emptied totals.
    statements.push(format!(
        "INSERT INTO unit_metric_figures ({FIGURE_COLUMNS}) SELECT {FIGURE_COLUMNS} \
         FROM unit_metric_figures_from_events WHERE tenant_id = $1 AND metric = $2"
    ));
    for statement in statements {
        sqlx::query::<Any>(sqlx::AssertSqlSafe(statement))
            .bind(tenant.to_owned())
            .bind(metric.to_owned())
            .execute(&mut *transaction)
            .await
            .context("rebuilding a kept metric")?;
    }
    transaction.commit().await.context("committing a rebuild")?;
    tracing::info!(
        tenant,
        metric,
        window_ms,
        seconds = began.elapsed().as_secs_f64(),
        "kept metric figures rebuilt"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_counts_the_same_lookback_and_value_bound() {
        let sql = concat!(
            include_str!("../../migrations/0004_kept_metric_figures/tables.sql"),
            include_str!("../../migrations/0004_kept_metric_figures/on_conversion.sql"),
        );
        assert!(sql.contains(&KEPT_LOOKBACK_MS.to_string()));
        assert_eq!(cohort_core::MAX_CONVERSION_VALUE, 1e9);
        assert!(sql.contains("WHEN NEW.value > 1e9 THEN 1e9"));
    }

    #[test]
    fn magnitude_bands_follow_the_migrations_edges() {
        let sql = include_str!("../../migrations/0004_kept_metric_figures/tables.sql");
        for edge in MAGNITUDE_BAND_EDGES {
            assert!(sql.contains(&format!("ABS(after_sum) < {edge:.1}")), "{edge}");
        }
        assert_eq!(
            [0.0, 0.99, 1.0, 99.9, 100.0, 1e4, 999_999.0, 1e6, 1e8, 1e9].map(magnitude_band),
            [0, 0, 1, 1, 2, 3, 3, 4, 5, 5]
        );
    }

    #[test]
    fn bounds_apply_the_upper_first() {
        assert_eq!(bounded(5.0, Some(3.0), Some(-3.0)), 3.0);
        assert_eq!(bounded(-5.0, Some(3.0), Some(-3.0)), -3.0);
        assert_eq!(bounded(1.0, Some(3.0), None), 1.0);
        assert_eq!(bounded(1.0, None, None), 1.0);
    }
}
