//! `GET /v1/tenants/{tenant}/experiments` (what a tenant runs, from its config and its data) and
//! `GET /v1/tenants/{tenant}/experiments/{experiment}/timeline` (first exposures over time).
//!
//! The tenant holdout's membership records (experiment `_holdout`) list like an experiment named
//! [`HOLDOUT_NAME`], with `holdout` (the control) and `rest` as variants.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cohort_core::Status;
use cohort_core::exposure::{HOLDOUT_EXPERIMENT, HOLDOUT_VARIANT};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::authorize_results;
use crate::error::ApiError;
use crate::store::{StoreError, TimelineCount, VariantExposureSummary};
use crate::tenant_configs::ConfiguredExperiment;
pub use crate::tenant_configs::HOLDOUT_NAME;

/// Largest bucket: one day.
pub const MAX_BUCKET_SECONDS: u64 = 86_400;
/// Points the default bucket size aims to stay within.
pub const TARGET_POINTS: u64 = 200;
/// Most points one timeline answers; a smaller bucket over a long span is refused.
pub const MAX_POINTS: u64 = 10_000;
/// Bucket sizes the default is chosen from, so points fall on round clock times.
const NICE_BUCKET_SECONDS: &[u64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
];

/// One variant in the listing.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListedVariant {
    /// Variant key.
    pub key: String,
    /// Configured weight in basis points; absent for a variant only the data shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Units whose first exposure was to this variant.
    pub exposed_units: u64,
}

/// One experiment in the listing.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListedExperiment {
    /// Experiment key.
    pub key: String,
    /// Name from the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Status from the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Configured variants in config order (control first), then variants only the data shows.
    pub variants: Vec<ListedVariant>,
    /// Units exposed to any variant.
    pub exposed_units: u64,
    /// Earliest first exposure, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_exposure_ms: Option<i64>,
    /// Latest first exposure, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exposure_ms: Option<i64>,
    /// Whether the tenant's config declares it.
    pub in_config: bool,
}

/// The listing document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExperimentList {
    /// Tenant id.
    pub tenant: String,
    /// Configured experiments in config order, then experiments only the data shows, by key,
    /// then the tenant holdout when it has records.
    pub experiments: Vec<ListedExperiment>,
}

/// What the tenant's config declares about one listed key.
#[derive(Debug, Default)]
struct Declared {
    name: Option<String>,
    status: Option<Status>,
    /// Variants in config order (control first), with their weights.
    variants: Vec<(String, u32)>,
    in_config: bool,
}

impl Declared {
    fn experiment(configured: &ConfiguredExperiment) -> Declared {
        Declared {
            name: configured.name.clone(),
            status: Some(configured.status),
            variants: configured
                .variants
                .iter()
                .map(|variant| (variant.key.clone(), variant.weight))
                .collect(),
            in_config: true,
        }
    }

    /// What the config says about `experiment`: nothing for a key it does not declare. The
    /// tenant holdout's records keep their name without a config (or with a holdout of 0).
    fn of(experiment: &str, configured: Option<&ConfiguredExperiment>) -> Declared {
        match configured {
            Some(configured) => Declared::experiment(configured),
            None if experiment == HOLDOUT_EXPERIMENT => Declared {
                name: Some(HOLDOUT_NAME.to_owned()),
                ..Declared::default()
            },
            None => Declared::default(),
        }
    }

    fn weight(&self, variant: &str) -> Option<u32> {
        self.variants
            .iter()
            .find(|(key, _)| key == variant)
            .map(|&(_, weight)| weight)
    }
}

/// Variants in display order: the config's (control first), then those only the data shows,
/// with the control leading when there is no config (as results order them): `control`, or
/// `holdout` for the tenant holdout.
fn variant_order(experiment: &str, declared: &Declared, observed: &[&str]) -> Vec<String> {
    let mut order: Vec<String> = declared.variants.iter().map(|(key, _)| key.clone()).collect();
    let mut extra: Vec<&str> = observed
        .iter()
        .copied()
        .filter(|variant| !order.iter().any(|known| known == variant))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    let control = if experiment == HOLDOUT_EXPERIMENT {
        HOLDOUT_VARIANT
    } else {
        "control"
    };
    if order.is_empty()
        && let Some(position) = extra.iter().position(|v| *v == control)
    {
        let control = extra.remove(position);
        extra.insert(0, control);
    }
    order.extend(extra.into_iter().map(str::to_owned));
    order
}

fn list_experiments(
    tenant: &str,
    configured: &[ConfiguredExperiment],
    holdout: Option<&ConfiguredExperiment>,
    summaries: &[VariantExposureSummary],
) -> ExperimentList {
    let mut observed: BTreeMap<&str, Vec<&VariantExposureSummary>> = BTreeMap::new();
    for summary in summaries {
        observed.entry(&summary.experiment).or_default().push(summary);
    }
    let listed = |key: &str, declared: Declared| {
        let rows = observed.get(key).map_or(&[][..], Vec::as_slice);
        let observed_variants: Vec<&str> = rows.iter().map(|row| row.variant.as_str()).collect();
        let variants = variant_order(key, &declared, &observed_variants)
            .into_iter()
            .map(|variant| ListedVariant {
                weight: declared.weight(&variant),
                exposed_units: rows
                    .iter()
                    .find(|row| row.variant == variant)
                    .map_or(0, |row| row.units),
                key: variant,
            })
            .collect();
        ListedExperiment {
            key: key.to_owned(),
            name: declared.name,
            status: declared.status,
            variants,
            exposed_units: rows.iter().map(|row| row.units).sum(),
            first_exposure_ms: rows.iter().map(|row| row.first_exposure_ms).min(),
            last_exposure_ms: rows.iter().map(|row| row.last_exposure_ms).max(),
            in_config: declared.in_config,
        }
    };
    let mut experiments: Vec<ListedExperiment> = configured
        .iter()
        .map(|experiment| listed(&experiment.key, Declared::experiment(experiment)))
        .collect();
    for key in observed.keys() {
        if *key != HOLDOUT_EXPERIMENT && !configured.iter().any(|experiment| experiment.key == *key) {
            experiments.push(listed(key, Declared::default()));
        }
    }
    // The holdout compares the tenant's experiments as a whole with none, so it comes after them.
    if observed.contains_key(HOLDOUT_EXPERIMENT) {
        experiments.push(listed(HOLDOUT_EXPERIMENT, Declared::of(HOLDOUT_EXPERIMENT, holdout)));
    }
    ExperimentList {
        tenant: tenant.to_owned(),
        experiments,
    }
}

pub(crate) async fn experiments(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ExperimentList>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let summaries = state
        .store
        .exposure_summaries(&tenant)
        .await
        .map_err(|error| ApiError::read_unavailable("the experiment list", &tenant, None, &error))?;
    let configs = &state
        .tenant_configs(&tenant)
        .await
        .map_err(|error| ApiError::read_unavailable("the experiment list", &tenant, None, &error))?;
    Ok(Json(list_experiments(
        &tenant,
        configs.experiments(&tenant),
        configs.experiment(&tenant, HOLDOUT_EXPERIMENT),
        &summaries,
    )))
}

/// Query parameters of the timeline.
#[derive(Debug, Default, Deserialize)]
pub struct TimelineQuery {
    /// Bucket width in seconds, 1..=86400; chosen from the span when absent. Read as text so a
    /// malformed value gets this endpoint's own error.
    pub bucket_seconds: Option<String>,
}

/// One bucket of the timeline.
#[derive(Debug, Serialize, PartialEq, schemars::JsonSchema)]
pub struct TimelinePoint {
    /// Bucket start, Unix milliseconds.
    pub start_ms: i64,
    /// Units first exposed in the bucket, per variant (every listed variant, zeros included).
    pub units: BTreeMap<String, u64>,
}

/// The timeline document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Timeline {
    /// Tenant id.
    pub tenant: String,
    /// Experiment key.
    pub experiment: String,
    /// Bucket width in seconds.
    pub bucket_seconds: u64,
    /// Variants in display order (the config's first).
    pub variants: Vec<String>,
    /// Consecutive buckets from the first exposure's to the last one's; empty without exposures.
    pub points: Vec<TimelinePoint>,
}

fn parse_bucket_seconds(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|seconds| (1..=MAX_BUCKET_SECONDS).contains(seconds))
        .ok_or_else(|| {
            ApiError::bad_query(format!(
                "bucket_seconds: `{text}` is not a whole number of seconds from 1 to {MAX_BUCKET_SECONDS}"
            ))
        })
}

/// The smallest round bucket that covers `span_ms` in at most [`TARGET_POINTS`] points (a day
/// when even that is too small).
fn default_bucket_seconds(span_ms: i64) -> u64 {
    let span_seconds = u64::try_from(span_ms).unwrap_or(0).div_ceil(1000);
    NICE_BUCKET_SECONDS
        .iter()
        .copied()
        .find(|bucket| span_seconds / bucket < TARGET_POINTS)
        .unwrap_or(MAX_BUCKET_SECONDS)
}

/// Consecutive points from bucket `first` to `last`, every variant present in each.
fn fill_points(
    first: i64,
    last: i64,
    bucket_ms: i64,
    variants: &[String],
    counts: &[TimelineCount],
) -> Vec<TimelinePoint> {
    let by_bucket: HashMap<(i64, &str), u64> = counts
        .iter()
        .map(|count| ((count.bucket, count.variant.as_str()), count.units))
        .collect();
    (first..=last)
        .map(|bucket| TimelinePoint {
            start_ms: bucket * bucket_ms,
            units: variants
                .iter()
                .map(|variant| {
                    let units = by_bucket.get(&(bucket, variant.as_str())).copied().unwrap_or(0);
                    (variant.clone(), units)
                })
                .collect(),
        })
        .collect()
}

pub(crate) async fn timeline(
    State(state): State<AppState>,
    Path((tenant, experiment)): Path<(String, String)>,
    Query(query): Query<TimelineQuery>,
    headers: HeaderMap,
) -> Result<Json<Timeline>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let requested = query.bucket_seconds.as_deref().map(parse_bucket_seconds).transpose()?;
    let unavailable =
        |error: StoreError| ApiError::read_unavailable("the timeline", &tenant, Some(&experiment), &error);
    let configs = &state.tenant_configs(&tenant).await.map_err(unavailable)?;
    let declared = Declared::of(&experiment, configs.experiment(&tenant, &experiment));
    let Some((first_ms, last_ms)) = state
        .store
        .exposure_span(&tenant, &experiment)
        .await
        .map_err(&unavailable)?
    else {
        return Ok(Json(Timeline {
            bucket_seconds: requested.unwrap_or(MAX_BUCKET_SECONDS),
            variants: variant_order(&experiment, &declared, &[]),
            points: Vec::new(),
            tenant,
            experiment,
        }));
    };
    let bucket_seconds = requested.unwrap_or_else(|| default_bucket_seconds(last_ms - first_ms));
    let bucket_ms = i64::try_from(bucket_seconds * 1000).expect("at most a day in milliseconds");
    let (first_bucket, last_bucket) = (first_ms / bucket_ms, last_ms / bucket_ms);
    let points = u64::try_from(last_bucket - first_bucket + 1).unwrap_or(u64::MAX);
    if points > MAX_POINTS {
        return Err(ApiError::bad_query(format!(
            "bucket_seconds: {bucket_seconds} s buckets over this experiment's exposures give {points} points; \
             at most {MAX_POINTS} are served, so choose a larger bucket"
        )));
    }
    let counts = state
        .store
        .exposure_timeline(&tenant, &experiment, bucket_ms)
        .await
        .map_err(&unavailable)?;
    let observed: Vec<&str> = counts.iter().map(|count| count.variant.as_str()).collect();
    let variants = variant_order(&experiment, &declared, &observed);
    Ok(Json(Timeline {
        bucket_seconds,
        points: fill_points(first_bucket, last_bucket, bucket_ms, &variants, &counts),
        variants,
        tenant,
        experiment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_keep_the_span_within_the_target() {
        assert_eq!(default_bucket_seconds(0), 1);
        assert_eq!(default_bucket_seconds(199_000), 1);
        assert_eq!(default_bucket_seconds(200_000), 2);
        assert_eq!(default_bucket_seconds(3_600_000), 30);
        assert_eq!(default_bucket_seconds(86_400_000), 600);
        assert_eq!(default_bucket_seconds(400 * 86_400_000), MAX_BUCKET_SECONDS);
        for span_ms in [1, 59_999, 7_200_000, 30 * 86_400_000] {
            let bucket = default_bucket_seconds(span_ms) as i64 * 1000;
            let points = span_ms / bucket + 1;
            assert!(points <= TARGET_POINTS as i64, "{span_ms}: {points} points");
        }
    }

    #[test]
    fn bucket_seconds_must_be_a_whole_number_within_a_day() {
        assert_eq!(parse_bucket_seconds("60").unwrap(), 60);
        assert_eq!(parse_bucket_seconds("86400").unwrap(), 86_400);
        for bad in ["0", "86401", "-5", "1.5", "", "ten"] {
            assert_eq!(
                parse_bucket_seconds(bad).unwrap_err().detail.code,
                cohort_core::wire::ErrorCode::BadQuery,
                "{bad}"
            );
        }
    }

    #[test]
    fn points_are_consecutive_with_zeros_for_quiet_buckets() {
        let variants = vec!["control".to_owned(), "green".to_owned()];
        let counts = vec![
            TimelineCount {
                bucket: 10,
                variant: "green".into(),
                units: 3,
            },
            TimelineCount {
                bucket: 12,
                variant: "control".into(),
                units: 2,
            },
        ];
        let points = fill_points(10, 12, 1000, &variants, &counts);
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].start_ms, 10_000);
        assert_eq!(points[0].units["green"], 3);
        assert_eq!(points[1].units.values().sum::<u64>(), 0);
        assert_eq!(points[2].units["control"], 2);
    }

    #[test]
    fn variants_follow_the_config_then_the_data() {
        assert_eq!(
            variant_order("x", &Declared::default(), &["b", "control", "a"]),
            ["control", "a", "b"]
        );
        let configured = ConfiguredExperiment {
            key: "x".into(),
            name: None,
            status: Status::Running,
            variants: vec![
                crate::tenant_configs::ConfiguredVariant {
                    key: "z".into(),
                    weight: 5000,
                },
                crate::tenant_configs::ConfiguredVariant {
                    key: "control".into(),
                    weight: 5000,
                },
            ],
        };
        assert_eq!(
            variant_order("x", &Declared::experiment(&configured), &["stray", "control"]),
            ["z", "control", "stray"]
        );
    }

    #[test]
    fn the_holdout_lists_its_control_first_with_the_configs_shares() {
        let unconfigured = Declared::of(HOLDOUT_EXPERIMENT, None);
        assert_eq!(unconfigured.name.as_deref(), Some(HOLDOUT_NAME));
        assert_eq!((unconfigured.status, unconfigured.in_config), (None, false));
        assert_eq!(
            variant_order(HOLDOUT_EXPERIMENT, &unconfigured, &["rest", "holdout"]),
            ["holdout", "rest"]
        );
        let holdout = ConfiguredExperiment::holdout(500);
        let configured = Declared::of(HOLDOUT_EXPERIMENT, Some(&holdout));
        assert_eq!((configured.status, configured.in_config), (Some(Status::Running), true));
        assert_eq!(
            (configured.weight("holdout"), configured.weight("rest")),
            (Some(500), Some(9500))
        );
        assert_eq!(
            variant_order(HOLDOUT_EXPERIMENT, &configured, &["rest"]),
            ["holdout", "rest"]
        );
    }
}
