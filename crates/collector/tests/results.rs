//! The results endpoint over stored data: counts, conversions after first exposure, the tests'
//! figures, the sample-ratio alarm, and tenant isolation of read tokens.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use axum::http::StatusCode;
use cohort_collector::results::PRE_EXPOSURE_LOOKBACK_MS;
use cohort_core::beacon::{EVENTS_PATH, EXPOSURES_PATH};
use common::*;
use serde_json::Value;

/// control: 200 units, 20 buyers spending 10 each; green: 180 units, 36 buyers spending 15 each.
/// Plus noise that must not count: a purchase before its unit's exposure, and another tenant's data.
async fn seed(harness: &Harness, tenant: &str) {
    let mut exposures = Vec::new();
    let mut events = Vec::new();
    for (variant, units, buyers, spend) in [("control", 200, 20, 10.0), ("green", 180, 36, 15.0)] {
        for i in 0..units {
            let unit = format!("{variant}-{i}");
            exposures.push(exposure(tenant, "cta", &unit, variant));
            if i < buyers {
                // Two purchases per buyer: the per-unit value is their sum.
                events.push(conversion(
                    tenant,
                    &format!("{unit}-a"),
                    &unit,
                    "purchase",
                    Some(spend / 2.0),
                    at(1000),
                ));
                events.push(conversion(
                    tenant,
                    &format!("{unit}-b"),
                    &unit,
                    "purchase",
                    Some(spend / 2.0),
                    at(2000),
                ));
            }
            if i % 10 == 0 {
                events.push(conversion(tenant, &format!("{unit}-s"), &unit, "signup", None, at(0)));
            }
        }
    }
    // Before the pre-exposure lookback: neither an outcome nor a CUPED covariate.
    events.push(conversion(
        tenant,
        "early",
        "green-100",
        "purchase",
        Some(1000.0),
        at(-PRE_EXPOSURE_LOOKBACK_MS - 1),
    ));
    for chunk in exposures.chunks(100) {
        let (status, _, body) = harness
            .post_signed(EXPOSURES_PATH, tenant, now_seconds(), &json(chunk))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for chunk in events.chunks(100) {
        let (status, _, body) = harness
            .post_signed(EVENTS_PATH, tenant, now_seconds(), &json(chunk))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn results_uri(tenant: &str, query: &str) -> String {
    format!("/v1/tenants/{tenant}/experiments/cta/results{query}")
}

#[tokio::test]
async fn results_count_units_and_conversions_after_exposure() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    seed(&harness, &tenant).await;
    let token = secret().results_read_token(&tenant);
    let (status, _, results) = harness
        .get(
            &results_uri(&tenant, "?weights=control:5000,green:5000&inference=fixed"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["inference"]["method"], "fixed");
    assert_eq!(results["metrics"][0]["cuped"]["applied"], false, "no pre-exposure data");
    assert_eq!(results["control"], "control");
    assert_eq!(results["variants"][0]["exposed_units"], 200);
    assert_eq!(results["variants"][1]["exposed_units"], 180);

    let purchase = metric(&results, "purchase");
    let green = &purchase["variants"][1];
    assert_eq!(
        (green["variant"].as_str(), green["converted_units"].as_u64()),
        (Some("green"), Some(36))
    );
    assert!((green["conversion_rate"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    assert!((green["mean_value"].as_f64().unwrap() - 36.0 * 15.0 / 180.0).abs() < 1e-9);
    assert!(purchase["variants"][0]["conversion_vs_control"].is_null());

    // Expected figures from scipy (an independent implementation), not from this crate's own
    // functions: stats.norm.sf on the pooled z; stats.ttest_ind(equal_var=False) on the per-unit
    // values; stats.chisquare against an equal split.
    let conversion = &green["conversion_vs_control"];
    assert!((conversion["p_value"].as_f64().unwrap() - 0.006_035_467_586_545_973).abs() < 1e-12);
    assert!((conversion["absolute_lift"].as_f64().unwrap() - 0.1).abs() < 1e-12);
    let value = &green["value_vs_control"];
    assert!(
        (value["p_value"].as_f64().unwrap() - 7.365_817_372_865_962e-5).abs() < 1e-12,
        "{value}"
    );
    assert!((value["absolute_ci"]["low"].as_f64().unwrap() - 1.022_606_099_733_250_2).abs() < 1e-9);

    // A metric without values reports rates only.
    let signup = metric(&results, "signup");
    assert_eq!(signup["variants"][1]["converted_units"], 18);
    assert!(signup["variants"][1]["mean_value"].is_null() && signup["variants"][1]["value_vs_control"].is_null());

    let srm = &results["sample_ratio"];

    assert_eq!(
        (srm["expected_split"].as_str(), srm["mismatch"].as_bool()),
        (Some("query"), Some(false))
    );
    assert!((srm["p_value"].as_f64().unwrap() - 0.304_901_788_178_785_44).abs() < 1e-12);
}

#[tokio::test]
async fn a_skewed_split_raises_the_srm_alarm() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    seed(&harness, &tenant).await;
    let token = secret().results_read_token(&tenant);
    let (status, _, results) = harness
        .get(&results_uri(&tenant, "?weights=control:9000,green:1000"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results["sample_ratio"]["mismatch"], true, "{results}");

    // Without weights: an equal split over the variants seen, control first.
    let (_, _, results) = harness.get(&results_uri(&tenant, ""), Some(&token)).await;
    assert_eq!(results["sample_ratio"]["expected_split"], "equal_over_observed");
    assert_eq!(results["variants"][0]["variant"], "control");
}

#[tokio::test]
async fn read_tokens_read_only_their_own_tenant() {
    let harness = Harness::new().await;
    let (tenant, other) = (unique_tenant("shop"), unique_tenant("news"));
    seed(&harness, &tenant).await;
    let uri = results_uri(&tenant, "");
    for token in [
        Some(secret().results_read_token(&other)),
        Some("garbage".to_owned()),
        None,
    ] {
        let (status, _, body) = harness.get(&uri, token.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["error"]["code"].as_str().unwrap().ends_with("token"), "{body}");
        assert!(body.get("variants").is_none());
    }
    // The other tenant's own token over its own (empty) namespace sees nothing of this tenant.
    let token = secret().results_read_token(&other);
    let (status, _, results) = harness.get(&results_uri(&other, ""), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results["variants"], Value::Array(vec![]));
    assert_eq!(results["metrics"], Value::Array(vec![]));
}

#[tokio::test]
async fn bad_weights_are_400() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let token = secret().results_read_token(&tenant);
    let (status, _, body) = harness
        .get(&results_uri(&tenant, "?weights=control"), Some(&token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_query"))
    );
}
