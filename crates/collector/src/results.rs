//! `GET /v1/tenants/{tenant}/experiments/{experiment}/results`: per-variant units, per-metric
//! comparisons against the control, the sample-ratio-mismatch test, and the settings they were
//! computed under. docs/collector.md ("Results" and "Statistics") documents the document.
//!
//! The expected split and the control come, in this order, from the query
//! (`?weights=control:5000,green:5000`, the first listed variant is the control, as in configs;
//! optionally `&control=KEY`), from the tenant's config if the collector was started with one
//! that holds the experiment (for the tenant holdout, `_holdout`, from the config's `holdout`), or
//! else an equal split over the variants seen, with the variant named `control` (else the first in
//! key order) as the control.
//!
//! Each metric becomes one figure per exposed unit (did it convert; the sum of its values, capped
//! as its definition says) and the same figure before the unit's exposure (the CUPED covariate).
//! The database sums them per variant in one statement, with each metric's window, caps and
//! winsorisation quantile written into the query, so a results read returns a few rows whatever
//! the number of units.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cohort_core::{DeviceClass, MetricDefinition, MetricDirection, MetricKind};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::authorize_results;
use crate::error::ApiError;
use crate::stats::{Adjustment, ArmSums, Comparison, Inference, SampleRatioTest, compare, sample_ratio_test};
use crate::store::{ExposureFilter, MetricAggregate, MetricShape};
use crate::tenant_configs::ConfiguredExperiment;

/// How far before a unit's first exposure its events count as pre-exposure activity (the CUPED
/// covariate): two weeks, long enough for weekly habits, short enough to stay relevant. The
/// figures kept at ingest count the same lookback, so whole-experiment results read them.
pub const PRE_EXPOSURE_LOOKBACK_MS: i64 = crate::store::KEPT_LOOKBACK_MS;

/// Query parameters of the results endpoint. Every value is parsed here so a bad one is refused
/// with the parameter named; an unknown or repeated parameter is refused too (a typo must not
/// silently fall back to a default).
#[derive(Debug, Default)]
pub struct ResultsQuery {
    /// Expected split, `variant:weight,…` (any positive scale; basis points as in configs).
    pub weights: Option<String>,
    /// The control variant; default the first weighted variant.
    pub control: Option<String>,
    /// `sequential` (default) or `fixed`.
    pub inference: Option<String>,
    /// `holm` (default) or `benjamini_hochberg`.
    pub adjustment: Option<String>,
    /// Only units first exposed under this config version.
    pub config_version: Option<String>,
    /// Only units from this country (two uppercase letters).
    pub country: Option<String>,
    /// Only units on this device class.
    pub device: Option<String>,
    /// Only units first exposed at or after this time, Unix milliseconds.
    pub from: Option<String>,
    /// Only units first exposed before this time, Unix milliseconds.
    pub to: Option<String>,
}

impl ResultsQuery {
    /// From the query string's (name, value) pairs.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<ResultsQuery, ApiError> {
        let mut query = ResultsQuery::default();
        for (name, value) in pairs {
            // One table of names and fields, so the refusal lists exactly what is accepted.
            let mut slots = [
                ("weights", &mut query.weights),
                ("control", &mut query.control),
                ("inference", &mut query.inference),
                ("adjustment", &mut query.adjustment),
                ("config_version", &mut query.config_version),
                ("country", &mut query.country),
                ("device", &mut query.device),
                ("from", &mut query.from),
                ("to", &mut query.to),
            ];
            let known: Vec<&str> = slots.iter().map(|(known, _)| *known).collect();
            let Some((_, slot)) = slots.iter_mut().find(|(known, _)| *known == name) else {
                return Err(ApiError::bad_query(format!(
                    "{name}: not a results parameter; they are {}",
                    known.join(", ")
                )));
            };
            if slot.replace(value).is_some() {
                return Err(ApiError::bad_query(format!("{name}: given more than once")));
            }
        }
        Ok(query)
    }
}

/// Where the expected split came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitSource {
    /// The `weights` query parameter.
    Query,
    /// The experiment's weights in the tenant's config.
    Config,
    /// The weights of each config version that assigned units, mixed in proportion to the units
    /// each assigned (the weights changed while the experiment ran).
    ConfigVersions,
    /// No weights given: equal split over the variants seen.
    EqualOverObserved,
}

/// One variant's exposure count.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VariantUnits {
    /// Variant key.
    pub variant: String,
    /// Units whose first exposure was to this variant.
    pub exposed_units: u64,
    /// Expected share of units under the split.
    pub expected_share: f64,
}

/// One variant's figures for one metric.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VariantMetric {
    /// Variant key.
    pub variant: String,
    /// Units that converted within the metric's window after their first exposure.
    pub converted_units: u64,
    /// converted_units / exposed_units.
    pub conversion_rate: f64,
    /// Mean (capped) value per exposed unit, units without a conversion counting 0; absent for
    /// conversion metrics.
    pub mean_value: Option<f64>,
    /// Conversion rate versus the control; absent for the control.
    pub conversion_vs_control: Option<Comparison>,
    /// Mean value versus the control; absent for the control and for conversion metrics.
    pub value_vs_control: Option<Comparison>,
}

/// The caps applied to a value metric's per-unit values.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Capping {
    /// The configured absolute cap.
    pub absolute: Option<f64>,
    /// The configured winsorisation quantile.
    pub percentile: Option<f64>,
    /// The cap actually applied to each unit's value (the smaller of the two).
    pub applied_cap: Option<f64>,
}

/// Whether CUPED adjusted a metric's headline comparisons (values for value metrics, else
/// conversions); each comparison carries its own `cuped_theta`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Cuped {
    /// False when no unit had activity before its exposure (nothing to adjust with).
    pub applied: bool,
    /// θ of the first adjusted treatment-versus-control comparison.
    pub theta: Option<f64>,
}

/// One metric across variants.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MetricResults {
    /// Metric key.
    pub metric: String,
    /// Conversion or value.
    pub kind: MetricKind,
    /// Whether the tenant config defines the metric (false: defaults).
    pub defined: bool,
    /// Which way is better.
    pub direction: MetricDirection,
    /// A metric that must not get worse.
    pub guardrail: bool,
    /// Conversion window after the first exposure, if any.
    pub window_hours: Option<u32>,
    /// Capping of value metrics; absent when none is configured.
    pub capping: Option<Capping>,
    /// Variance reduction with pre-exposure activity.
    pub cuped: Cuped,
    /// Per variant, in the order of `variants`.
    pub variants: Vec<VariantMetric>,
}

/// The sample-ratio test and the split it tested against.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SampleRatio {
    /// Where the expected split came from.
    pub expected_split: SplitSource,
    /// The test; absent with fewer than two variants or no units.
    #[serde(flatten)]
    pub test: Option<SampleRatioTest>,
}

/// How the intervals and p-values were computed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct InferenceSettings {
    /// `sequential` or `fixed`.
    pub method: &'static str,
    /// The confidence sequences' tuning (total units they are narrowest at), with `sequential`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequential_tuning: Option<f64>,
    /// What the method allows a reader to conclude.
    pub note: &'static str,
}

/// The multiple-comparison adjustment applied to every p-value of the document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MultipleComparisons {
    /// `holm` or `benjamini_hochberg`.
    pub method: &'static str,
    /// How many p-values the adjustment covers.
    pub comparisons: usize,
}

/// The results document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExperimentResults {
    /// Tenant id.
    pub tenant: String,
    /// Experiment key.
    pub experiment: String,
    /// The variant lifts are measured against.
    pub control: Option<String>,
    /// Level of every interval.
    pub confidence: f64,
    /// How intervals and p-values were computed.
    pub inference: InferenceSettings,
    /// The filters applied to exposed units; empty for all of them.
    pub slice: ExposureFilter,
    /// Per variant, control first.
    pub variants: Vec<VariantUnits>,
    /// Sample-ratio-mismatch check.
    pub sample_ratio: SampleRatio,
    /// The adjustment behind every `p_value_adjusted`.
    pub multiple_comparisons: MultipleComparisons,
    /// Per metric, in key order.
    pub metrics: Vec<MetricResults>,
}

/// The analysis settings a query asks for, validated.
#[derive(Debug, Clone, PartialEq)]
struct Analysis {
    inference: Inference,
    adjustment: Adjustment,
}

const SEQUENTIAL_NOTE: &str = "Always-valid intervals and p-values: they stay valid however often the results are looked at, and an experiment may stop as soon as a verdict is better or worse.";
const FIXED_NOTE: &str = "Fixed-horizon intervals and p-values: valid only when read once, at a sample size chosen before the experiment started; looking repeatedly and stopping at the first significant result inflates false positives.";

fn parse_analysis(query: &ResultsQuery, sequential_tuning: f64) -> Result<Analysis, ApiError> {
    let inference = match query.inference.as_deref() {
        None | Some("sequential") => Inference::Sequential {
            tuning: sequential_tuning,
        },
        Some("fixed") => Inference::Fixed,
        Some(other) => {
            return Err(ApiError::bad_query(format!(
                "inference: `{other}` is not `sequential` or `fixed`"
            )));
        }
    };
    let adjustment = match query.adjustment.as_deref() {
        None | Some("holm") => Adjustment::Holm,
        Some("benjamini_hochberg") => Adjustment::BenjaminiHochberg,
        Some(other) => {
            return Err(ApiError::bad_query(format!(
                "adjustment: `{other}` is not `holm` or `benjamini_hochberg`"
            )));
        }
    };
    Ok(Analysis { inference, adjustment })
}

fn parse_slice(query: &ResultsQuery) -> Result<ExposureFilter, ApiError> {
    let config_version = query
        .config_version
        .as_deref()
        .map(|text| {
            text.parse::<u64>()
                .ok()
                .filter(|version| *version >= 1 && i64::try_from(*version).is_ok())
                .ok_or_else(|| ApiError::bad_query(format!("config_version: `{text}` is not a version (1 or more)")))
        })
        .transpose()?;
    let country = query
        .country
        .as_deref()
        .map(|text| {
            if text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(text.to_owned())
            } else {
                Err(ApiError::bad_query(format!(
                    "country: `{text}` is not a two-letter country code like DE"
                )))
            }
        })
        .transpose()?;
    let device = query
        .device
        .as_deref()
        .map(|text| {
            [
                DeviceClass::Desktop,
                DeviceClass::Mobile,
                DeviceClass::Tablet,
                DeviceClass::Other,
            ]
            .into_iter()
            .find(|device| device.as_str() == text)
            .map(DeviceClass::as_str)
            .ok_or_else(|| {
                ApiError::bad_query(format!("device: `{text}` is not one of desktop, mobile, tablet, other"))
            })
        })
        .transpose()?;
    let time = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| {
                text.parse::<i64>()
                    .ok()
                    .filter(|ms| *ms >= 0)
                    .ok_or_else(|| ApiError::bad_query(format!("{name}: `{text}` is not a Unix time in milliseconds")))
            })
            .transpose()
    };
    let from_ms = time("from", &query.from)?;
    let to_ms = time("to", &query.to)?;
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && to <= from
    {
        return Err(ApiError::bad_query(format!("to: {to} is not after from ({from})")));
    }
    Ok(ExposureFilter {
        config_version,
        country,
        device: device.map(str::to_owned),
        from_ms,
        to_ms,
    })
}

/// Parses `a:5000,b:5000` into ordered (variant, weight) pairs.
fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, ApiError> {
    let mut weights: Vec<(String, f64)> = Vec::new();
    for pair in text.split(',').filter(|pair| !pair.is_empty()) {
        let (variant, weight) = pair
            .split_once(':')
            .ok_or_else(|| ApiError::bad_query(format!("weights: `{pair}` is not `variant:weight`")))?;
        let weight: f64 = weight
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| ApiError::bad_query(format!("weights: `{weight}` is not a non-negative number")))?;
        if weights.iter().any(|(seen, _)| seen == variant) {
            return Err(ApiError::bad_query(format!("weights: `{variant}` is listed twice")));
        }
        weights.push((variant.to_owned(), weight));
    }
    if weights.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
        return Err(ApiError::bad_query("weights: at least one weight must be positive"));
    }
    Ok(weights)
}

/// Everything the figures are computed from, already fetched.
#[derive(Debug)]
struct Observations {
    exposed: Vec<(String, u64)>,
    aggregates: Vec<MetricAggregate>,
}

/// Variants seen but not in the split are expected to get nothing (an SRM signal).
fn add_unexpected_variants(mut weights: Vec<(String, f64)>, exposed: &[(String, u64)]) -> Vec<(String, f64)> {
    for (variant, _) in exposed {
        if !weights.iter().any(|(key, _)| key == variant) {
            weights.push((variant.clone(), 0.0));
        }
    }
    weights
}

/// Orders variants control first and attaches expected weights: from the query, else from the
/// experiment's config, else equal over the variants seen.
pub(crate) fn expected_split(
    query: &ResultsQuery,
    configured: Option<&ConfiguredExperiment>,
    version_mix: Option<&[(String, f64)]>,
    exposed: &[(String, u64)],
) -> Result<(Vec<(String, f64)>, SplitSource), ApiError> {
    let mut split = match (&query.weights, configured, version_mix) {
        (Some(text), _, _) => (
            add_unexpected_variants(parse_weights(text)?, exposed),
            SplitSource::Query,
        ),
        (None, Some(_), Some(mix)) => (
            add_unexpected_variants(mix.to_vec(), exposed),
            SplitSource::ConfigVersions,
        ),
        (None, Some(configured), None) => {
            let weights = configured
                .variants
                .iter()
                .map(|variant| (variant.key.clone(), f64::from(variant.weight)))
                .collect();
            (add_unexpected_variants(weights, exposed), SplitSource::Config)
        }
        (None, None, _) => {
            let mut variants: Vec<(String, f64)> = exposed.iter().map(|(v, _)| (v.clone(), 1.0)).collect();
            if let Some(position) = variants.iter().position(|(v, _)| v == "control") {
                let control = variants.remove(position);
                variants.insert(0, control);
            }
            (variants, SplitSource::EqualOverObserved)
        }
    };
    if let Some(control) = &query.control {
        let position = split.0.iter().position(|(v, _)| v == control).ok_or_else(|| {
            ApiError::bad_query(format!("control: no variant `{control}` in the weights or the data"))
        })?;
        let entry = split.0.remove(position);
        split.0.insert(0, entry);
    }
    Ok(split)
}

/// How the aggregate query turns each of `tenant`'s defined metrics into per-unit figures.
pub fn metric_shapes(configs: &crate::tenant_configs::TenantConfigs, tenant: &str) -> Vec<MetricShape> {
    configs.metrics(tenant).iter().map(metric_shape).collect()
}

/// How the aggregate query turns a defined metric's events into per-unit figures.
fn metric_shape(definition: &MetricDefinition) -> MetricShape {
    let is_value = definition.kind == MetricKind::Value;
    MetricShape {
        key: definition.key.clone(),
        window_ms: definition.window_ms,
        upper_cap: definition.cap.filter(|_| is_value),
        lower_cap: definition.cap.filter(|_| is_value).map(|cap| -cap),
        winsorize: definition.winsorize_percentile.filter(|_| is_value),
    }
}

/// One metric's comparisons of every variant against the first (the control).
fn metric_results(
    definition: MetricDefinition,
    per_variant: &HashMap<&str, &MetricAggregate>,
    split: &[(String, f64)],
    units_of: &dyn Fn(&str) -> u64,
    applied_cap: Option<f64>,
    inference: Inference,
) -> MetricResults {
    let is_value = definition.kind == MetricKind::Value;
    let arms = |arm: &dyn Fn(u64, &MetricAggregate) -> ArmSums| -> Vec<ArmSums> {
        split
            .iter()
            .map(|(variant, _)| {
                let units = units_of(variant);
                per_variant.get(variant.as_str()).map_or(
                    ArmSums {
                        units,
                        ..ArmSums::default()
                    },
                    |aggregate| arm(units, aggregate),
                )
            })
            .collect()
    };
    // Conversions are 0/1 figures: their sums of squares are the sums themselves.
    let conversion_arms = arms(&|units, a| ArmSums {
        units,
        sum: a.converted_units as f64,
        sum_of_squares: a.converted_units as f64,
        pre_sum: a.active_before_units as f64,
        pre_sum_of_squares: a.active_before_units as f64,
        sum_of_products: a.converted_and_active_before_units as f64,
    });
    let value_arms = arms(&|units, a| ArmSums {
        units,
        sum: a.value_sum,
        sum_of_squares: a.value_sum_of_squares,
        pre_sum: a.value_sum_before,
        pre_sum_of_squares: a.value_sum_of_squares_before,
        sum_of_products: a.value_sum_of_products,
    });

    let variants: Vec<VariantMetric> = split
        .iter()
        .enumerate()
        .map(|(index, (variant, _))| {
            let is_control = index == 0;
            VariantMetric {
                variant: variant.clone(),
                converted_units: per_variant.get(variant.as_str()).map_or(0, |a| a.converted_units),
                conversion_rate: conversion_arms[index].mean(),
                mean_value: is_value.then(|| value_arms[index].mean()),
                conversion_vs_control: (!is_control)
                    .then(|| compare(&conversion_arms[0], &conversion_arms[index], true, inference))
                    .flatten(),
                value_vs_control: (!is_control && is_value)
                    .then(|| compare(&value_arms[0], &value_arms[index], false, inference))
                    .flatten(),
            }
        })
        .collect();
    // The metric's headline comparison: values for value metrics, else conversions.
    let headline = |v: &VariantMetric| {
        if is_value {
            v.value_vs_control
        } else {
            v.conversion_vs_control
        }
    };
    let thetas: Vec<f64> = variants
        .iter()
        .filter_map(|v| headline(v).and_then(|c| c.cuped_theta))
        .collect();
    MetricResults {
        metric: definition.key.clone(),
        kind: definition.kind,
        defined: definition.defined,
        direction: definition.direction,
        guardrail: definition.guardrail,
        window_hours: definition.window_hours(),
        capping: (is_value && (definition.cap.is_some() || definition.winsorize_percentile.is_some())).then_some(
            Capping {
                absolute: definition.cap,
                percentile: definition.winsorize_percentile,
                applied_cap,
            },
        ),
        cuped: Cuped {
            applied: !thetas.is_empty(),
            theta: thetas.first().copied(),
        },
        variants,
    }
}

/// Adjusts every p-value of the document together and records each comparison's verdict.
fn adjust_p_values(metrics: &mut [MetricResults], adjustment: Adjustment) -> usize {
    let mut comparisons: Vec<(&mut Comparison, bool)> = Vec::new();
    for metric in metrics.iter_mut() {
        let higher_is_better = metric.direction == MetricDirection::Higher;
        for variant in &mut metric.variants {
            for comparison in [&mut variant.conversion_vs_control, &mut variant.value_vs_control]
                .into_iter()
                .flatten()
            {
                if comparison.p_value.is_some() {
                    comparisons.push((comparison, higher_is_better));
                }
            }
        }
    }
    let p_values: Vec<f64> = comparisons.iter().map(|(c, _)| c.p_value.unwrap_or(1.0)).collect();
    for ((comparison, higher_is_better), adjusted) in comparisons.into_iter().zip(adjustment.adjust(&p_values)) {
        comparison.decide(adjusted, higher_is_better);
    }
    p_values.len()
}

/// Everything a results document is computed from besides the data.
struct Request<'a> {
    tenant: &'a str,
    experiment: &'a str,
    query: &'a ResultsQuery,
    analysis: Analysis,
    slice: ExposureFilter,
    configured: Option<&'a ConfiguredExperiment>,
    version_mix: Option<&'a [(String, f64)]>,
    definition: &'a dyn Fn(&str) -> Option<MetricDefinition>,
}

fn compute(request: Request<'_>, data: Observations) -> Result<ExperimentResults, ApiError> {
    let (split, split_source) = expected_split(request.query, request.configured, request.version_mix, &data.exposed)?;
    let units: HashMap<&str, u64> = data.exposed.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    let units_of = |variant: &str| units.get(variant).copied().unwrap_or(0);
    let weight_total: f64 = split.iter().map(|(_, w)| w).sum();

    let variants = split
        .iter()
        .map(|(variant, weight)| VariantUnits {
            variant: variant.clone(),
            exposed_units: units_of(variant),
            expected_share: if weight_total > 0.0 { weight / weight_total } else { 0.0 },
        })
        .collect();
    let observed: Vec<u64> = split.iter().map(|(v, _)| units_of(v)).collect();
    let weights: Vec<f64> = split.iter().map(|(_, w)| *w).collect();
    let sample_ratio = SampleRatio {
        expected_split: split_source,
        test: sample_ratio_test(&observed, &weights),
    };

    let mut by_metric: BTreeMap<&str, HashMap<&str, &MetricAggregate>> = BTreeMap::new();
    for aggregate in &data.aggregates {
        by_metric
            .entry(&aggregate.metric)
            .or_default()
            .insert(&aggregate.variant, aggregate);
    }
    let mut metrics: Vec<MetricResults> = by_metric
        .iter()
        .map(|(metric, per_variant)| {
            let definition = (request.definition)(metric)
                .unwrap_or_else(|| MetricDefinition::default_for(metric, per_variant.values().any(|a| a.has_values)));
            let applied_cap = per_variant.values().find_map(|a| a.upper_cap);
            metric_results(
                definition,
                per_variant,
                &split,
                &units_of,
                applied_cap,
                request.analysis.inference,
            )
        })
        .collect();
    let comparisons = adjust_p_values(&mut metrics, request.analysis.adjustment);

    let (method, sequential_tuning, note) = match request.analysis.inference {
        Inference::Sequential { tuning } => ("sequential", Some(tuning), SEQUENTIAL_NOTE),
        Inference::Fixed => ("fixed", None, FIXED_NOTE),
    };
    Ok(ExperimentResults {
        tenant: request.tenant.to_owned(),
        experiment: request.experiment.to_owned(),
        control: split.first().map(|(v, _)| v.clone()),
        confidence: crate::stats::CONFIDENCE,
        inference: InferenceSettings {
            method,
            sequential_tuning,
            note,
        },
        slice: request.slice,
        variants,
        sample_ratio,
        multiple_comparisons: MultipleComparisons {
            method: request.analysis.adjustment.as_str(),
            comparisons,
        },
        metrics,
    })
}

/// The expected split when the experiment's weights differ between the config versions that
/// assigned its units: each version's weights (as stored by the control plane; the latest
/// config's for a version it does not hold) count in proportion to the units it assigned. `None`
/// when every version split as the latest config does.
pub(crate) async fn version_mix(
    state: &AppState,
    tenant: &str,
    configured: &ConfiguredExperiment,
    slice: &ExposureFilter,
) -> Result<Option<Vec<(String, f64)>>, crate::store::StoreError> {
    let latest: Vec<(String, f64)> = configured
        .variants
        .iter()
        .map(|v| (v.key.clone(), f64::from(v.weight)))
        .collect();
    let mut mix: Vec<(String, f64)> = latest.iter().map(|(key, _)| (key.clone(), 0.0)).collect();
    let mut differs = false;
    for (version, units) in state
        .store
        .exposed_units_by_version(tenant, &configured.key, slice)
        .await?
    {
        let stored = state.store.config_version(tenant, version).await?;
        let weights = stored
            .and_then(|v| serde_json::from_str::<cohort_core::TenantConfig>(&v.document).ok())
            .and_then(|config| config.experiments.into_iter().find(|e| e.key == configured.key))
            .map(|e| {
                e.variants
                    .into_iter()
                    .map(|v| (v.key, f64::from(v.weight)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| latest.clone());
        differs |= weights != latest;
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            continue;
        }
        for (key, weight) in weights {
            let share = units as f64 * weight / total;
            match mix.iter_mut().find(|(k, _)| *k == key) {
                Some((_, sum)) => *sum += share,
                None => mix.push((key, share)),
            }
        }
    }
    Ok(differs.then_some(mix))
}

pub(crate) async fn results(
    State(state): State<AppState>,
    Path((tenant, experiment)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Json<ExperimentResults>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let query = ResultsQuery::from_pairs(pairs)?;
    let analysis = parse_analysis(&query, state.config.sequential_tuning)?;
    let slice = parse_slice(&query)?;
    let unavailable = |error| ApiError::read_unavailable("results", &tenant, Some(&experiment), &error);
    let configs = &state.tenant_configs(&tenant).await.map_err(unavailable)?;

    let shapes = metric_shapes(configs, &tenant);
    // Two independent reads: run them side by side on two read connections.
    let (exposed, aggregates) = tokio::try_join!(
        state.store.exposed_units_where(&tenant, &experiment, &slice),
        state
            .store
            .metric_aggregates(&tenant, &experiment, &slice, PRE_EXPOSURE_LOOKBACK_MS, &shapes),
    )
    .map_err(unavailable)?;
    let configured = configs.experiment(&tenant, &experiment);
    let version_mix = match configured {
        Some(configured) if query.weights.is_none() => version_mix(&state, &tenant, configured, &slice)
            .await
            .map_err(unavailable)?,
        _ => None,
    };
    let definition = |metric: &str| configs.metric(&tenant, metric).cloned();
    let request = Request {
        tenant: &tenant,
        experiment: &experiment,
        query: &query,
        analysis,
        slice,
        configured,
        version_mix: version_mix.as_deref(),
        definition: &definition,
    };
    let observations = Observations { exposed, aggregates };
    Ok(Json(compute(request, observations)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_in_order_and_reject_nonsense() {
        assert_eq!(
            parse_weights("control:5000,green:5000").unwrap(),
            vec![("control".to_owned(), 5000.0), ("green".to_owned(), 5000.0)]
        );
        for bad in ["control", "control:-1", "a:1,a:2", "a:0", "a:x"] {
            assert_eq!(
                parse_weights(bad).unwrap_err().detail.code,
                cohort_core::wire::ErrorCode::BadQuery,
                "{bad}"
            );
        }
    }

    #[test]
    fn without_weights_control_leads_and_the_split_is_equal() {
        let exposed = vec![("blue".to_owned(), 10), ("control".to_owned(), 12)];
        let (split, source) = expected_split(&ResultsQuery::default(), None, None, &exposed).unwrap();
        assert_eq!(source, SplitSource::EqualOverObserved);
        assert_eq!(split, vec![("control".to_owned(), 1.0), ("blue".to_owned(), 1.0)]);
        let query = ResultsQuery {
            weights: Some("a:9000,b:1000".into()),
            control: Some("b".into()),
            ..ResultsQuery::default()
        };
        let (split, _) = expected_split(&query, None, None, &[("c".to_owned(), 1)]).unwrap();
        assert_eq!(
            split,
            vec![
                ("b".to_owned(), 1000.0),
                ("a".to_owned(), 9000.0),
                ("c".to_owned(), 0.0)
            ]
        );
    }

    #[test]
    fn a_configured_split_applies_unless_the_query_names_one() {
        use crate::tenant_configs::ConfiguredVariant;
        let configured = ConfiguredExperiment {
            key: "cta".into(),
            name: None,
            status: cohort_core::Status::Running,
            variants: vec![
                ConfiguredVariant {
                    key: "base".into(),
                    weight: 2000,
                },
                ConfiguredVariant {
                    key: "alt".into(),
                    weight: 8000,
                },
            ],
        };
        let exposed = vec![("alt".to_owned(), 8), ("base".to_owned(), 2), ("stray".to_owned(), 1)];
        let (split, source) = expected_split(&ResultsQuery::default(), Some(&configured), None, &exposed).unwrap();
        assert_eq!(source, SplitSource::Config);
        assert_eq!(
            split,
            vec![
                ("base".to_owned(), 2000.0),
                ("alt".to_owned(), 8000.0),
                ("stray".to_owned(), 0.0)
            ]
        );
        let query = ResultsQuery {
            weights: Some("alt:1,base:1".into()),
            ..ResultsQuery::default()
        };
        let (split, source) = expected_split(&query, Some(&configured), None, &exposed).unwrap();
        assert_eq!(source, SplitSource::Query);
        assert_eq!(split[0], ("alt".to_owned(), 1.0));
    }
}
