//! Results as an analyst relies on them: hostile values refused or capped, metric definitions
//! (window, cap, direction, guardrail), sequential and fixed-horizon inference, CUPED from
//! pre-exposure activity, adjusted p-values, slices, and the tenant holdout.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use axum::http::StatusCode;
use cohort_collector::{Dashboard, RateLimits, TenantConfigs};
use cohort_core::beacon::{EVENTS_PATH, EXPOSURES_PATH};
use cohort_core::{Conversion, DeviceClass, Exposure};
use common::*;
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;

/// `cta` (control 5000 / green 5000) with a value metric capped at 100, a conversion metric with
/// a one-hour window, and a lower-is-better guardrail; holdout 500.
fn config_for(tenant: &str) -> String {
    format!(
        r#"{{"schema": 1, "tenant": "{tenant}", "version": 2, "hostnames": ["{tenant}.example"],
        "hash_key": "000102030405060708090a0b0c0d0e0f", "holdout": 500,
        "experiments": [{{"key": "cta", "status": "running",
            "variants": [{{"key": "control", "weight": 5000}}, {{"key": "green", "weight": 5000}}]}}],
        "metrics": [
          {{"key": "revenue", "kind": "value", "cap": 100}},
          {{"key": "purchase", "kind": "conversion", "window_hours": 1}},
          {{"key": "refund", "kind": "conversion", "direction": "lower", "guardrail": true}}
        ]}}"#
    )
}

async fn harness_for(tenant: &str) -> Harness {
    let mut configs = TenantConfigs::default();
    configs.insert_json(&config_for(tenant)).unwrap();
    Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await
}

async fn post<T: serde::Serialize>(harness: &Harness, path: &str, tenant: &str, records: &[T]) -> (StatusCode, Value) {
    let mut last = (StatusCode::OK, Value::Null);
    for chunk in records.chunks(500) {
        let (status, _, body) = harness.post_signed(path, tenant, now_seconds(), &json(chunk)).await;
        if status != StatusCode::OK {
            return (status, body);
        }
        last = (status, body);
    }
    last
}

fn event(tenant: &str, id: &str, unit: &str, metric: &str, value: Option<f64>, offset_ms: i64) -> Conversion {
    conversion(tenant, id, unit, metric, value, at(offset_ms))
}

async fn results(harness: &Harness, tenant: &str, experiment: &str, query: &str) -> (StatusCode, Value) {
    let token = secret().results_read_token(tenant);
    let uri = format!("/v1/tenants/{tenant}/experiments/{experiment}/results{query}");
    let (status, _, body) = harness.get(&uri, Some(&token)).await;
    (status, body)
}

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

/// Every figure of every comparison is a number, and a p-value never comes without its estimate
/// and interval (JSON turns a non-finite number into null, so null is what this catches).
fn assert_consistent(results: &Value) {
    for metric in results["metrics"].as_array().unwrap() {
        for variant in metric["variants"].as_array().unwrap() {
            let rate = number(&variant["conversion_rate"], "conversion_rate");
            assert!((0.0..=1.0).contains(&rate), "{variant}");
            if metric["kind"] == "value" {
                number(&variant["mean_value"], "mean_value");
            }
            for key in ["conversion_vs_control", "value_vs_control"] {
                let comparison = &variant[key];
                if comparison.is_null() {
                    continue;
                }
                let lift = number(&comparison["absolute_lift"], "absolute_lift");
                let low = number(&comparison["absolute_ci"]["low"], "low");
                let high = number(&comparison["absolute_ci"]["high"], "high");
                assert!(low <= lift && lift <= high, "{comparison}");
                if !comparison["p_value"].is_null() {
                    let p = number(&comparison["p_value"], "p");
                    let adjusted = number(&comparison["p_value_adjusted"], "p adjusted");
                    assert!(
                        (0.0..=1.0).contains(&p) && p <= adjusted && adjusted <= 1.0,
                        "{comparison}"
                    );
                    assert_eq!(comparison["significant"], adjusted < 0.05, "{comparison}");
                }
            }
        }
    }
}

/// `units` per variant of `cta`, first exposed at `at(0)`.
fn exposures(tenant: &str, units: usize) -> Vec<Exposure> {
    ["control", "green"]
        .iter()
        .flat_map(|variant| (0..units).map(move |i| exposure(tenant, "cta", &format!("{variant}-{i}"), variant)))
        .collect()
}

#[tokio::test]
async fn a_hostile_value_is_refused_naming_the_field_and_changes_nothing() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    assert_eq!(
        post(&harness, EXPOSURES_PATH, &tenant, &exposures(&tenant, 50)).await.0,
        StatusCode::OK
    );
    let before = harness.counts(&tenant).await;
    for (i, value) in [1e308, -1e308, 2e9].into_iter().enumerate() {
        let hostile = event(&tenant, &format!("evil-{i}"), "green-1", "revenue", Some(value), 10);
        let (status, body) = post(&harness, EVENTS_PATH, &tenant, &[hostile]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("value"), "{message}");
    }
    assert_eq!(harness.counts(&tenant).await, before, "a refused batch stores nothing");
}

#[tokio::test]
async fn extreme_accepted_values_are_capped_and_every_figure_stays_finite() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    post(&harness, EXPOSURES_PATH, &tenant, &exposures(&tenant, 100)).await;
    let mut events = Vec::new();
    for i in 0..30 {
        events.push(event(
            &tenant,
            &format!("c{i}"),
            &format!("control-{i}"),
            "revenue",
            Some(20.0),
            10,
        ));
        events.push(event(
            &tenant,
            &format!("g{i}"),
            &format!("green-{i}"),
            "revenue",
            Some(25.0),
            10,
        ));
    }
    // One visitor (or buggy client) at the bound, many times over.
    for i in 0..3 {
        events.push(event(
            &tenant,
            &format!("huge{i}"),
            "green-99",
            "revenue",
            Some(1e9),
            20,
        ));
    }
    // An undefined metric gets no cap: its figures must still be finite.
    for i in 0..3 {
        events.push(event(&tenant, &format!("raw{i}"), "green-98", "tip", Some(1e9), 20));
        events.push(event(&tenant, &format!("neg{i}"), "control-98", "tip", Some(-1e9), 20));
    }
    assert_eq!(post(&harness, EVENTS_PATH, &tenant, &events).await.0, StatusCode::OK);
    for inference in ["sequential", "fixed"] {
        let (status, results) = results(&harness, &tenant, "cta", &format!("?inference={inference}")).await;
        assert_eq!(status, StatusCode::OK, "{results}");
        assert_consistent(&results);
        let revenue = metric(&results, "revenue");
        assert_eq!(revenue["capping"]["applied_cap"], 100.0);
        let green_mean = number(&revenue["variants"][1]["mean_value"], "mean");
        // 30 units at 25 and one at the cap of 100, over 100 units.
        assert!(
            (green_mean - (30.0 * 25.0 + 100.0) / 100.0).abs() < 1e-9,
            "{green_mean}"
        );
        let tip = metric(&results, "tip");
        assert_eq!(
            (tip["kind"].as_str(), tip["defined"].as_bool()),
            (Some("value"), Some(false))
        );
    }
}

#[tokio::test]
async fn definitions_decide_window_direction_and_guardrail_verdicts() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    post(&harness, EXPOSURES_PATH, &tenant, &exposures(&tenant, 1000)).await;
    let mut events = Vec::new();
    for i in 0..1000 {
        // Purchases: control 10 % in the window; green 10 % in it plus 30 % just after it, which
        // the one-hour window must leave out.
        if i % 10 == 0 {
            events.push(event(
                &tenant,
                &format!("cp{i}"),
                &format!("control-{i}"),
                "purchase",
                None,
                10,
            ));
            events.push(event(
                &tenant,
                &format!("gp{i}"),
                &format!("green-{i}"),
                "purchase",
                None,
                10,
            ));
        }
        if i % 10 < 3 {
            events.push(event(
                &tenant,
                &format!("late{i}"),
                &format!("green-{i}"),
                "purchase",
                None,
                HOUR_MS + 1,
            ));
        }
        // Refunds (lower is better): 2 % in control, 20 % in green.
        if i % 50 == 0 {
            events.push(event(
                &tenant,
                &format!("cr{i}"),
                &format!("control-{i}"),
                "refund",
                None,
                10,
            ));
        }
        if i % 5 == 0 {
            events.push(event(
                &tenant,
                &format!("gr{i}"),
                &format!("green-{i}"),
                "refund",
                None,
                10,
            ));
        }
    }
    post(&harness, EVENTS_PATH, &tenant, &events).await;
    let (_, results) = results(&harness, &tenant, "cta", "").await;
    assert_consistent(&results);
    assert_eq!(
        results["inference"]["method"], "sequential",
        "sequential is the default"
    );
    assert_eq!(results["multiple_comparisons"]["method"], "holm");

    let purchase = metric(&results, "purchase");
    assert_eq!(purchase["window_hours"], 1);
    assert_eq!(
        purchase["variants"][1]["converted_units"], 100,
        "late purchases are outside the window"
    );
    assert_eq!(
        purchase["variants"][1]["conversion_vs_control"]["verdict"],
        "inconclusive"
    );

    let refund = metric(&results, "refund");
    assert_eq!(
        (refund["direction"].as_str(), refund["guardrail"].as_bool()),
        (Some("lower"), Some(true))
    );
    let comparison = &refund["variants"][1]["conversion_vs_control"];
    assert!(number(&comparison["absolute_lift"], "lift") > 0.0);
    assert_eq!(comparison["verdict"], "worse", "more refunds are worse: {comparison}");
}

#[tokio::test]
async fn sequential_intervals_are_wider_than_fixed_and_cuped_uses_pre_exposure_activity() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    post(&harness, EXPOSURES_PATH, &tenant, &exposures(&tenant, 400)).await;
    let mut events = Vec::new();
    for i in 0..400 {
        for (variant, extra) in [("control", 0.0), ("green", 4.0)] {
            let unit = format!("{variant}-{i}");
            // Habitual spenders spend before and after their exposure; the rest do not.
            let habit = f64::from((i % 7) as u32) * 10.0;
            if habit > 0.0 {
                events.push(event(
                    &tenant,
                    &format!("{unit}-pre"),
                    &unit,
                    "revenue",
                    Some(habit),
                    -HOUR_MS,
                ));
            }
            let spend = (habit + extra + f64::from((i % 3) as u32)).min(99.0);
            events.push(event(
                &tenant,
                &format!("{unit}-post"),
                &unit,
                "revenue",
                Some(spend),
                10,
            ));
        }
    }
    post(&harness, EVENTS_PATH, &tenant, &events).await;
    // Outcomes are the post-exposure spends only; the pre-exposure ones are the covariate.
    for (index, extra) in [(0, 0.0), (1, 4.0)] {
        let expected: f64 = (0..400)
            .map(|i| (f64::from((i % 7) as u32) * 10.0 + extra + f64::from((i % 3) as u32)).min(99.0))
            .sum::<f64>()
            / 400.0;
        let (_, fixed) = results(&harness, &tenant, "cta", "?inference=fixed").await;
        let mean = number(&metric(&fixed, "revenue")["variants"][index]["mean_value"], "mean");
        assert!(
            (mean - expected).abs() < 1e-9,
            "variant {index}: mean {mean}, expected {expected}"
        );
    }
    let width = |results: &Value| {
        let ci = &metric(results, "revenue")["variants"][1]["value_vs_control"]["absolute_ci"];
        number(&ci["high"], "high") - number(&ci["low"], "low")
    };
    let (_, sequential) = results(&harness, &tenant, "cta", "").await;
    let (_, fixed) = results(&harness, &tenant, "cta", "?inference=fixed").await;
    assert_consistent(&sequential);
    assert_consistent(&fixed);
    assert_eq!(fixed["inference"]["method"], "fixed");
    assert!(width(&sequential) > width(&fixed), "always-valid intervals cost width");
    let cuped = &metric(&fixed, "revenue")["cuped"];
    assert_eq!(cuped["applied"], true, "{cuped}");
    assert!(number(&cuped["theta"], "theta") > 0.5, "{cuped}");
}

#[tokio::test]
async fn slices_filter_units_by_version_country_device_and_time() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    let mut records = Vec::new();
    for i in 0..40 {
        for variant in ["control", "green"] {
            let mut record = exposure(&tenant, "cta", &format!("{variant}-{i}"), variant);
            record.config_version = if i < 10 { 1 } else { 2 };
            record.country = Some(if i % 2 == 0 { "DE" } else { "FR" }.to_owned());
            record.device = Some(if i % 4 == 0 {
                DeviceClass::Mobile
            } else {
                DeviceClass::Desktop
            });
            record.timestamp = at(i64::from(i) * HOUR_MS);
            records.push(record);
        }
    }
    post(&harness, EXPOSURES_PATH, &tenant, &records).await;
    let units = |results: &Value| results["variants"][1]["exposed_units"].as_u64().unwrap();
    for (query, expected) in [
        (String::new(), 40),
        ("?config_version=1".to_owned(), 10),
        ("?country=FR".to_owned(), 20),
        ("?device=mobile".to_owned(), 10),
        (format!("?from={}&to={}", at(5 * HOUR_MS), at(15 * HOUR_MS)), 10),
        ("?country=DE&device=mobile&config_version=2".to_owned(), 7),
    ] {
        let (status, results) = results(&harness, &tenant, "cta", &query).await;
        assert_eq!(status, StatusCode::OK, "{results}");
        assert_eq!(units(&results), expected, "{query}");
    }
    let (_, sliced) = results(&harness, &tenant, "cta", "?country=DE&device=mobile").await;
    assert_eq!(
        sliced["slice"],
        serde_json::json!({"country": "DE", "device": "mobile"})
    );
}

#[tokio::test]
async fn bad_analysis_parameters_are_400_naming_the_parameter() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    for (query, parameter) in [
        ("?inference=bayesian", "inference"),
        ("?adjustment=none", "adjustment"),
        ("?config_version=0", "config_version"),
        ("?country=de", "country"),
        ("?device=watch", "device"),
        ("?from=yesterday", "from"),
        ("?from=20&to=10", "to"),
        ("?adjustement=holm", "adjustement"),
        ("?country=DE&country=FR", "country"),
    ] {
        let (status, body) = results(&harness, &tenant, "cta", query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_query");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{parameter}:")), "{query}: {message}");
    }
}

#[tokio::test]
async fn the_holdout_is_compared_with_everyone_else_at_its_configured_share() {
    let tenant = unique_tenant("shop");
    let harness = harness_for(&tenant).await;
    let mut records = Vec::new();
    let mut events = Vec::new();
    for i in 0..400 {
        let variant = if i < 20 { "holdout" } else { "rest" };
        let unit = format!("u{i}");
        records.push(exposure(&tenant, "_holdout", &unit, variant));
        if i % 4 == 0 {
            events.push(event(&tenant, &format!("p{i}"), &unit, "purchase", None, 10));
        }
    }
    assert_eq!(
        post(&harness, EXPOSURES_PATH, &tenant, &records).await.0,
        StatusCode::OK
    );
    post(&harness, EVENTS_PATH, &tenant, &events).await;
    let (status, results) = results(&harness, &tenant, "_holdout", "").await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["control"], "holdout");
    assert_eq!(results["sample_ratio"]["expected_split"], "config");
    assert_eq!(results["variants"][0]["expected_share"], 0.05);
    assert_eq!(results["sample_ratio"]["mismatch"], false, "{results}");
    let purchase = metric(&results, "purchase");
    assert_eq!(purchase["variants"][0]["converted_units"], 5);
    assert_consistent(&results);
}

mod property {
    //! Random and extreme records through the real store and endpoint: whatever the collector
    //! accepts, results stay finite and internally consistent.

    use super::*;
    use proptest::prelude::*;

    /// A value from the whole accepted range, with the extremes over-represented.
    fn accepted_value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(cohort_core::MAX_CONVERSION_VALUE)),
            Just(Some(-cohort_core::MAX_CONVERSION_VALUE)),
            Just(Some(0.0)),
            (-1e9f64..=1e9).prop_map(Some),
            (-10.0f64..100.0).prop_map(Some),
        ]
    }

    /// Per variant 0 to 5 units (empty and one-unit variants included), and up to 60 events
    /// over few units, so many land on the same unit, before and after its exposure.
    type Plan = (Vec<usize>, Vec<(usize, usize, usize, Option<f64>, i64)>);

    fn plans() -> impl Strategy<Value = Plan> {
        (
            prop::collection::vec(0usize..6, 2..4),
            prop::collection::vec(
                (0usize..3, 0usize..6, 0usize..3, accepted_value(), -20_000i64..20_000),
                0..60,
            ),
        )
    }

    fn config(tenant: &str, capped: bool) -> String {
        let revenue = if capped {
            r#"{"key": "revenue", "kind": "value", "cap": 50, "winsorize_percentile": 0.9, "window_hours": 1}"#
        } else {
            r#"{"key": "revenue", "kind": "value"}"#
        };
        format!(
            r#"{{"schema": 1, "tenant": "{tenant}", "version": 1, "hostnames": ["{tenant}.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "metrics": [{revenue}, {{"key": "refund", "kind": "conversion", "direction": "lower"}}]}}"#
        )
    }

    async fn check(plan: Plan, capped: bool, inference: &str) {
        let (units, events) = plan;
        let tenant = unique_tenant("prop");
        let mut configs = TenantConfigs::default();
        configs.insert_json(&config(&tenant, capped)).unwrap();
        let harness = Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await;
        let variant = |v: usize| format!("v{v}");
        let exposures: Vec<Exposure> = units
            .iter()
            .enumerate()
            .flat_map(|(v, &n)| (0..n).map(move |i| (v, i)))
            .map(|(v, i)| exposure(&tenant, "cta", &format!("{}-{i}", variant(v)), &variant(v)))
            .collect();
        let conversions: Vec<Conversion> = events
            .iter()
            .enumerate()
            .filter(|(_, (v, i, ..))| units.get(*v).is_some_and(|n| i < n))
            .map(|(k, (v, i, metric, value, offset))| {
                let metric = ["buy", "revenue", "refund"][*metric];
                event(
                    &tenant,
                    &format!("e{k}"),
                    &format!("{}-{i}", variant(*v)),
                    metric,
                    *value,
                    *offset,
                )
            })
            .collect();
        if !exposures.is_empty() {
            assert_eq!(
                post(&harness, EXPOSURES_PATH, &tenant, &exposures).await.0,
                StatusCode::OK
            );
        }
        if !conversions.is_empty() {
            assert_eq!(
                post(&harness, EVENTS_PATH, &tenant, &conversions).await.0,
                StatusCode::OK
            );
        }
        let weights: Vec<String> = (0..units.len()).map(|v| format!("{}:1", variant(v))).collect();
        let query = format!("?inference={inference}&weights={}", weights.join(","));
        let (status, results) = results(&harness, &tenant, "cta", &query).await;
        assert_eq!(status, StatusCode::OK, "{results}");
        assert_consistent(&results);
        for (v, &n) in units.iter().enumerate() {
            assert_eq!(results["variants"][v]["exposed_units"], n as u64, "{results}");
        }
        for metric in results["metrics"].as_array().unwrap() {
            for (v, figures) in metric["variants"].as_array().unwrap().iter().enumerate() {
                assert!(
                    figures["converted_units"].as_u64().unwrap() <= units[v] as u64,
                    "{figures}"
                );
                // Arms big enough to estimate must yield a comparison: a non-finite figure would
                // otherwise vanish into a missing comparison and pass unseen.
                if v > 0 && units[0] >= 1 && units[v] >= 1 {
                    assert!(!figures["conversion_vs_control"].is_null(), "{metric}");
                }
                if v > 0 && metric["kind"] == "value" && units[0] >= 2 && units[v] >= 2 {
                    assert!(!figures["value_vs_control"].is_null(), "{metric}");
                }
                for key in ["conversion_vs_control", "value_vs_control"] {
                    if !figures[key]["p_value"].is_null() {
                        P_VALUES_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if capped && metric["metric"] == "revenue" {
                    let mean = number(&figures["mean_value"], "mean");
                    assert!(mean.abs() <= 50.0 + 1e-9, "capped mean {mean}");
                }
            }
        }
    }

    /// p-values the cases produced: the property must have been checked on real comparisons.
    static P_VALUES_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn any_accepted_records_give_finite_consistent_results() {
        let (runtime, mut runner) = property_runner(48, "proptest-regressions/analysis.txt");
        let strategy = (plans(), any::<bool>(), any::<bool>());
        runner
            .run(&strategy, |(plan, capped, fixed)| {
                runtime.block_on(check(plan, capped, if fixed { "fixed" } else { "sequential" }));
                Ok(())
            })
            .unwrap();
        let seen = P_VALUES_SEEN.load(std::sync::atomic::Ordering::Relaxed);
        assert!(seen > 20, "only {seen} p-values over all cases");
    }
}

#[tokio::test]
async fn winsorisation_caps_at_the_nearest_rank_quantile_of_converted_units() {
    let tenant = unique_tenant("shop");
    let mut configs = TenantConfigs::default();
    configs
        .insert_json(&format!(
            r#"{{"schema": 1, "tenant": "{tenant}", "version": 1, "hostnames": ["{tenant}.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "metrics": [{{"key": "revenue", "kind": "value", "winsorize_percentile": 0.9}},
                        {{"key": "tip", "kind": "value", "winsorize_percentile": 0.9, "cap": 40}}]}}"#
        ))
        .unwrap();
    let harness = Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await;
    post(&harness, EXPOSURES_PATH, &tenant, &exposures(&tenant, 100)).await;
    // 50 converted units per variant spending 1..=50 (control) and 51..=100 (green), in two
    // events each, plus a pre-exposure event that must not count toward the quantile.
    let mut events = Vec::new();
    for i in 0..50 {
        for (variant, spend) in [("control", f64::from(i + 1)), ("green", f64::from(i + 51))] {
            let unit = format!("{variant}-{i}");
            for (part, tip) in [("a", "revenue"), ("b", "revenue"), ("c", "tip")] {
                let value = if tip == "tip" { spend } else { spend / 2.0 };
                events.push(event(&tenant, &format!("{unit}-{part}"), &unit, tip, Some(value), 10));
            }
            events.push(event(
                &tenant,
                &format!("{unit}-pre"),
                &unit,
                "revenue",
                Some(1000.0),
                -HOUR_MS,
            ));
        }
    }
    assert_eq!(post(&harness, EVENTS_PATH, &tenant, &events).await.0, StatusCode::OK);
    let (_, results) = results(&harness, &tenant, "cta", "").await;
    // Nearest rank over the 100 converted units' sums 1..=100: rank ⌈0.9 × 100⌉ = 90.
    let revenue = metric(&results, "revenue");
    assert_eq!(revenue["capping"]["applied_cap"], 90.0, "{revenue}");
    let green_mean = number(&revenue["variants"][1]["mean_value"], "mean");
    let expected: f64 = (51..=100).map(|v| f64::from(v).min(90.0)).sum::<f64>() / 100.0;
    assert!((green_mean - expected).abs() < 1e-9, "{green_mean} vs {expected}");
    // With an absolute cap below the quantile, the absolute cap wins.
    assert_eq!(metric(&results, "tip")["capping"]["applied_cap"], 40.0);
    assert_consistent(&results);
}
