//! `GET /v1/tenants/{tenant}/experiments/{experiment}/results`: per-variant units, per-metric
//! conversion and value comparisons against the control, and the sample-ratio-mismatch test.
//!
//! The expected split and the control come, in this order, from the query
//! (`?weights=control:5000,green:5000`, the first listed variant is the control, as in configs;
//! optionally `&control=KEY`), from the tenant's config if the collector was started with one
//! that holds the experiment, or else an equal split over the variants seen, with the variant
//! named `control` (else the first in key order) as the control.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::authorize_results;
use crate::error::ApiError;
use crate::stats::{Comparison, Sample, SampleRatioTest, sample_ratio_test, two_proportion_z_test, welch_t_test};
use crate::store::ConversionAggregate;
use crate::tenant_configs::ConfiguredExperiment;

/// Query parameters of the results endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct ResultsQuery {
    /// Expected split, `variant:weight,…` (any positive scale; basis points as in configs).
    pub weights: Option<String>,
    /// The control variant; default the first weighted variant.
    pub control: Option<String>,
}

/// Where the expected split came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitSource {
    /// The `weights` query parameter.
    Query,
    /// The tenant config the collector was started with.
    Config,
    /// No weights given: equal split over the variants seen.
    EqualOverObserved,
}

/// One variant's exposure count.
#[derive(Debug, Serialize)]
pub struct VariantUnits {
    /// Variant key.
    pub variant: String,
    /// Units whose first exposure was to this variant.
    pub exposed_units: u64,
    /// Expected share of units under the split.
    pub expected_share: f64,
}

/// One variant's figures for one metric.
#[derive(Debug, Serialize)]
pub struct VariantMetric {
    /// Variant key.
    pub variant: String,
    /// Units that converted at or after their first exposure.
    pub converted_units: u64,
    /// converted_units / exposed_units.
    pub conversion_rate: f64,
    /// Mean summed value per exposed unit (units without a conversion count 0); absent for
    /// metrics that never carried a value.
    pub mean_value: Option<f64>,
    /// Conversion rate versus the control (two-proportion z-test); absent for the control.
    pub conversion_vs_control: Option<Comparison>,
    /// Mean value versus the control (Welch's t-test); absent for the control and for metrics
    /// without values.
    pub value_vs_control: Option<Comparison>,
}

/// One metric across variants.
#[derive(Debug, Serialize)]
pub struct MetricResults {
    /// Metric key.
    pub metric: String,
    /// Per variant, in the order of `variants`.
    pub variants: Vec<VariantMetric>,
}

/// The sample-ratio test and the split it tested against.
#[derive(Debug, Serialize)]
pub struct SampleRatio {
    /// Where the expected split came from.
    pub expected_split: SplitSource,
    /// The test; absent with fewer than two variants or no units.
    #[serde(flatten)]
    pub test: Option<SampleRatioTest>,
}

/// The results document.
#[derive(Debug, Serialize)]
pub struct ExperimentResults {
    /// Tenant id.
    pub tenant: String,
    /// Experiment key.
    pub experiment: String,
    /// The variant lifts are measured against.
    pub control: Option<String>,
    /// Level of every interval.
    pub confidence: f64,
    /// Per variant, control first.
    pub variants: Vec<VariantUnits>,
    /// Sample-ratio-mismatch check.
    pub sample_ratio: SampleRatio,
    /// Per metric, in key order.
    pub metrics: Vec<MetricResults>,
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
struct Observations {
    exposed: Vec<(String, u64)>,
    conversions: Vec<ConversionAggregate>,
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
fn expected_split(
    query: &ResultsQuery,
    configured: Option<&ConfiguredExperiment>,
    exposed: &[(String, u64)],
) -> Result<(Vec<(String, f64)>, SplitSource), ApiError> {
    let mut split = match (&query.weights, configured) {
        (Some(text), _) => (
            add_unexpected_variants(parse_weights(text)?, exposed),
            SplitSource::Query,
        ),
        (None, Some(configured)) => {
            let weights = configured
                .variants
                .iter()
                .map(|variant| (variant.key.clone(), f64::from(variant.weight)))
                .collect();
            (add_unexpected_variants(weights, exposed), SplitSource::Config)
        }
        (None, None) => {
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

fn compute(
    tenant: &str,
    experiment: &str,
    query: &ResultsQuery,
    configured: Option<&ConfiguredExperiment>,
    data: Observations,
) -> Result<ExperimentResults, ApiError> {
    let (split, split_source) = expected_split(query, configured, &data.exposed)?;
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

    let mut by_metric: BTreeMap<&str, HashMap<&str, &ConversionAggregate>> = BTreeMap::new();
    for aggregate in &data.conversions {
        by_metric
            .entry(&aggregate.metric)
            .or_default()
            .insert(&aggregate.variant, aggregate);
    }
    let control = split.first().map(|(v, _)| v.as_str());
    let metrics = by_metric
        .into_iter()
        .map(|(metric, per_variant)| {
            let has_values = per_variant.values().any(|a| a.valued_units > 0);
            let arm = |variant: &str| {
                let aggregate = per_variant.get(variant);
                let n = units_of(variant);
                let converted = aggregate.map_or(0, |a| a.converted_units);
                let sample = aggregate.map_or(Sample::from_sums(n, 0.0, 0.0), |a| {
                    Sample::from_sums(n, a.value_sum, a.value_sum_of_squares)
                });
                (n, converted, sample)
            };
            let (control_n, control_converted, control_sample) = arm(control.unwrap_or_default());
            let variants = split
                .iter()
                .map(|(variant, _)| {
                    let (n, converted, sample) = arm(variant);
                    let is_control = Some(variant.as_str()) == control;
                    VariantMetric {
                        variant: variant.clone(),
                        converted_units: converted,
                        conversion_rate: if n > 0 { converted as f64 / n as f64 } else { 0.0 },
                        mean_value: has_values.then_some(sample.mean),
                        conversion_vs_control: (!is_control)
                            .then(|| two_proportion_z_test(control_converted, control_n, converted, n))
                            .flatten(),
                        value_vs_control: (!is_control && has_values)
                            .then(|| welch_t_test(control_sample, sample))
                            .flatten(),
                    }
                })
                .collect();
            MetricResults {
                metric: metric.to_owned(),
                variants,
            }
        })
        .collect();

    Ok(ExperimentResults {
        tenant: tenant.to_owned(),
        experiment: experiment.to_owned(),
        control: control.map(str::to_owned),
        confidence: crate::stats::CONFIDENCE,
        variants,
        sample_ratio,
        metrics,
    })
}

pub(crate) async fn results(
    State(state): State<AppState>,
    Path((tenant, experiment)): Path<(String, String)>,
    Query(query): Query<ResultsQuery>,
    headers: HeaderMap,
) -> Result<Json<ExperimentResults>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    // Two independent aggregates: run them side by side on two read connections.
    let (exposed, conversions) = tokio::try_join!(
        state.store.exposed_units(&tenant, &experiment),
        state.store.conversion_aggregates(&tenant, &experiment),
    )
    .map_err(|error| ApiError::read_unavailable("results", &tenant, Some(&experiment), &error))?;
    let configured = state.config.tenant_configs.experiment(&tenant, &experiment);
    let results = compute(
        &tenant,
        &experiment,
        &query,
        configured,
        Observations { exposed, conversions },
    )?;
    if results.sample_ratio.test.is_some_and(|test| test.mismatch) {
        state.metrics.record_srm_alarm(&tenant);
        tracing::warn!(tenant, experiment, "sample-ratio mismatch");
    }
    Ok(Json(results))
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
            assert_eq!(parse_weights(bad).unwrap_err().code, "bad_query", "{bad}");
        }
    }

    #[test]
    fn without_weights_control_leads_and_the_split_is_equal() {
        let exposed = vec![("blue".to_owned(), 10), ("control".to_owned(), 12)];
        let (split, source) = expected_split(&ResultsQuery::default(), None, &exposed).unwrap();
        assert_eq!(source, SplitSource::EqualOverObserved);
        assert_eq!(split, vec![("control".to_owned(), 1.0), ("blue".to_owned(), 1.0)]);
        let query = ResultsQuery {
            weights: Some("a:9000,b:1000".into()),
            control: Some("b".into()),
        };
        let (split, _) = expected_split(&query, None, &[("c".to_owned(), 1)]).unwrap();
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
        let (split, source) = expected_split(&ResultsQuery::default(), Some(&configured), &exposed).unwrap();
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
            control: None,
        };
        let (split, source) = expected_split(&query, Some(&configured), &exposed).unwrap();
        assert_eq!(source, SplitSource::Query);
        assert_eq!(split[0], ("alt".to_owned(), 1.0));
    }
}
