//! The dashboard's API over stored data: the experiment listing (config ∪ data), the exposure
//! timeline, results that take their split from a loaded config, and the static file routes.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cohort_collector::{Dashboard, RateLimits, TenantConfigs};
use cohort_core::beacon::EXPOSURES_PATH;
use common::*;
use serde_json::Value;

/// A config for `tenant`: `cta` (control 2000 / green 8000, named) and `draft-only` (nothing
/// exposed yet).
fn config_for(tenant: &str) -> String {
    format!(
        r#"{{"schema": 1, "tenant": "{tenant}", "version": 2, "hostnames": ["{tenant}.example"],
        "hash_key": "000102030405060708090a0b0c0d0e0f",
        "experiments": [
          {{"key": "cta", "name": "Green buy button", "status": "running",
            "variants": [{{"key": "control", "weight": 2000}}, {{"key": "green", "weight": 8000}}]}},
          {{"key": "draft-only", "status": "draft",
            "variants": [{{"key": "a", "weight": 5000}}, {{"key": "b", "weight": 5000}}]}}
        ]}}"#
    )
}

async fn harness_with_config(tenant: &str) -> Harness {
    let mut configs = TenantConfigs::default();
    configs.insert_json(&config_for(tenant)).unwrap();
    Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await
}

/// Posts exposures of `experiment`: per (variant, units, first offset ms, step ms).
async fn expose(harness: &Harness, tenant: &str, experiment: &str, plan: &[(&str, usize, i64, i64)]) {
    let mut exposures = Vec::new();
    for &(variant, units, first_ms, step_ms) in plan {
        for i in 0..units {
            let mut record = exposure(tenant, experiment, &format!("{experiment}-{variant}-{i}"), variant);
            record.timestamp = at(first_ms + step_ms * i as i64);
            exposures.push(record);
        }
    }
    for chunk in exposures.chunks(500) {
        let (status, _, body) = harness
            .post_signed(EXPOSURES_PATH, tenant, now_seconds(), &json(chunk))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn find<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item["key"] == key)
        .unwrap_or_else(|| panic!("no `{key}` in {list}"))
}

#[tokio::test]
async fn the_listing_joins_the_config_and_the_data() {
    let tenant = unique_tenant("shop");
    let harness = harness_with_config(&tenant).await;
    expose(
        &harness,
        &tenant,
        "cta",
        &[("control", 20, 0, 1000), ("green", 80, 500, 100), ("stray", 1, 9, 0)],
    )
    .await;
    expose(&harness, &tenant, "legacy", &[("control", 3, 60_000, 1)]).await;
    // Another tenant's exposures never show.
    let other = unique_tenant("news");
    expose(&harness, &other, "theirs", &[("control", 5, 0, 1)]).await;

    let token = secret().results_read_token(&tenant);
    let (status, _, list) = harness
        .get(&format!("/v1/tenants/{tenant}/experiments"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["tenant"], tenant.as_str());
    let experiments = &list["experiments"];
    let keys: Vec<&str> = experiments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["cta", "draft-only", "legacy"],
        "config order, then data-only by key"
    );

    let cta = find(experiments, "cta");
    assert_eq!(
        (&cta["name"], &cta["status"], &cta["in_config"], &cta["exposed_units"]),
        (
            &Value::from("Green buy button"),
            &Value::from("running"),
            &Value::from(true),
            &Value::from(101)
        )
    );
    assert_eq!(cta["first_exposure_ms"], at(0));
    assert_eq!(cta["last_exposure_ms"], at(19_000));
    let variants: Vec<(&str, Option<u64>, u64)> = cta["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["key"].as_str().unwrap(),
                v["weight"].as_u64(),
                v["exposed_units"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        variants,
        [
            ("control", Some(2000), 20),
            ("green", Some(8000), 80),
            ("stray", None, 1)
        ]
    );

    let draft = find(experiments, "draft-only");
    assert_eq!(
        (&draft["exposed_units"], &draft["status"]),
        (&Value::from(0), &Value::from("draft"))
    );
    assert!(draft.get("first_exposure_ms").is_none() && draft.get("name").is_none());

    let legacy = find(experiments, "legacy");
    assert_eq!(
        (&legacy["in_config"], &legacy["exposed_units"]),
        (&Value::from(false), &Value::from(3))
    );
    assert!(legacy.get("status").is_none() && legacy["variants"][0].get("weight").is_none());
}

#[tokio::test]
async fn without_configs_the_listing_comes_from_the_data() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    expose(&harness, &tenant, "cta", &[("green", 4, 0, 1), ("control", 6, 0, 1)]).await;
    let token = secret().results_read_token(&tenant);
    let (status, _, list) = harness
        .get(&format!("/v1/tenants/{tenant}/experiments"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cta = find(&list["experiments"], "cta");
    assert_eq!(cta["in_config"], false);
    assert_eq!(cta["variants"][0]["key"], "control", "control leads, as in results");
    assert_eq!(cta["exposed_units"], 10);
}

#[tokio::test]
async fn the_tenant_holdout_lists_after_the_experiments_named_with_the_configs_shares() {
    let tenant = unique_tenant("shop");
    let mut configs = TenantConfigs::default();
    let config = config_for(&tenant).replacen(r#""version": 2,"#, r#""version": 2, "holdout": 500,"#, 1);
    configs.insert_json(&config).unwrap();
    let harness = Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await;
    let token = secret().results_read_token(&tenant);
    let listing = || async {
        let (status, _, list) = harness
            .get(&format!("/v1/tenants/{tenant}/experiments"), Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list
    };
    let keys = |list: &Value| -> Vec<String> {
        list["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        keys(&listing().await),
        ["cta", "draft-only"],
        "no records, no holdout row"
    );

    expose(
        &harness,
        &tenant,
        "_holdout",
        &[("rest", 19, 0, 10), ("holdout", 1, 5, 0)],
    )
    .await;
    expose(&harness, &tenant, "cta", &[("control", 3, 0, 1)]).await;
    expose(&harness, &tenant, "1-legacy", &[("control", 2, 0, 1)]).await;
    let list = listing().await;
    assert_eq!(keys(&list), ["cta", "draft-only", "1-legacy", "_holdout"]);
    let holdout = find(&list["experiments"], "_holdout");
    assert_eq!(
        (
            &holdout["name"],
            &holdout["status"],
            &holdout["in_config"],
            &holdout["exposed_units"]
        ),
        (
            &Value::from("Tenant holdout"),
            &Value::from("running"),
            &Value::from(true),
            &Value::from(20)
        )
    );
    assert_eq!(
        holdout["variants"],
        serde_json::json!([
            {"key": "holdout", "weight": 500, "exposed_units": 1},
            {"key": "rest", "weight": 9500, "exposed_units": 19}
        ])
    );
    let (status, _, timeline) = harness
        .get(
            &format!("/v1/tenants/{tenant}/experiments/_holdout/timeline"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(timeline["variants"], serde_json::json!(["holdout", "rest"]));

    // Without a config the records still list, named, with the holdout leading. (A tenant of its
    // own: configs live in the database, which a PostgreSQL run shares between harnesses.)
    let bare = Harness::new().await;
    let bare_tenant = unique_tenant("bare");
    expose(
        &bare,
        &bare_tenant,
        "_holdout",
        &[("rest", 2, 0, 1), ("holdout", 1, 0, 1)],
    )
    .await;
    let (_, _, list) = bare
        .get(
            &format!("/v1/tenants/{bare_tenant}/experiments"),
            Some(&secret().results_read_token(&bare_tenant)),
        )
        .await;
    let holdout = find(&list["experiments"], "_holdout");
    assert_eq!(
        (&holdout["name"], &holdout["in_config"], &holdout["variants"][0]["key"]),
        (
            &Value::from("Tenant holdout"),
            &Value::from(false),
            &Value::from("holdout")
        )
    );
    assert!(holdout.get("status").is_none() && holdout["variants"][0].get("weight").is_none());
}

#[tokio::test]
async fn the_timeline_counts_first_exposures_per_bucket() {
    let tenant = unique_tenant("shop");
    let harness = harness_with_config(&tenant).await;
    // at(0) is a whole minute: 1_800_000_000_000 ms is divisible by 60_000.
    // control: one unit every 10 s for 20 units (0..190 s); green: 30 units at 65 s.
    expose(
        &harness,
        &tenant,
        "cta",
        &[("control", 20, 0, 10_000), ("green", 30, 65_000, 0)],
    )
    .await;
    let token = secret().results_read_token(&tenant);
    let uri = |query: &str| format!("/v1/tenants/{tenant}/experiments/cta/timeline{query}");

    let (status, _, timeline) = harness.get(&uri("?bucket_seconds=60"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(timeline["bucket_seconds"], 60);
    assert_eq!(timeline["variants"], serde_json::json!(["control", "green"]));
    let points = timeline["points"].as_array().unwrap();
    let starts: Vec<i64> = points.iter().map(|p| p["start_ms"].as_i64().unwrap()).collect();
    assert_eq!(starts, [at(0), at(60_000), at(120_000), at(180_000)]);
    let control: Vec<u64> = points.iter().map(|p| p["units"]["control"].as_u64().unwrap()).collect();
    let green: Vec<u64> = points.iter().map(|p| p["units"]["green"].as_u64().unwrap()).collect();
    assert_eq!(control, [6, 6, 6, 2]);
    assert_eq!(green, [0, 30, 0, 0]);

    // Without bucket_seconds: a round bucket that keeps the 190 s span within 200 points.
    let (status, _, timeline) = harness.get(&uri(""), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timeline["bucket_seconds"], 1);
    let points = timeline["points"].as_array().unwrap();
    assert_eq!(points.len(), 191);
    let total: u64 = points
        .iter()
        .flat_map(|p| p["units"].as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 50);

    // An experiment without exposures has no points, but still its configured variants.
    let (status, _, empty) = harness
        .get(
            &format!("/v1/tenants/{tenant}/experiments/draft-only/timeline"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["variants"], serde_json::json!(["a", "b"]));
    assert_eq!(empty["points"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_bucket_seconds_and_oversized_timelines_are_400() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    // Two units 30 days apart: 1 s buckets would be 2.6 million points.
    expose(&harness, &tenant, "cta", &[("control", 2, 0, 30 * 86_400_000)]).await;
    let token = secret().results_read_token(&tenant);
    for query in ["0", "86401", "-1", "1.5", "abc", "", "1"] {
        let (status, _, body) = harness
            .get(
                &format!("/v1/tenants/{tenant}/experiments/cta/timeline?bucket_seconds={query}"),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_query", "{query}");
        assert!(
            body["error"]["message"].as_str().unwrap().starts_with("bucket_seconds"),
            "{body}"
        );
    }
    let (status, _, timeline) = harness
        .get(&format!("/v1/tenants/{tenant}/experiments/cta/timeline"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timeline["bucket_seconds"], 21_600, "30 days in 6-hour buckets");
    assert_eq!(timeline["points"].as_array().unwrap().len(), 121);
}

#[tokio::test]
async fn the_new_endpoints_need_the_tenants_read_token() {
    let harness = Harness::new().await;
    let (tenant, other) = (unique_tenant("shop"), unique_tenant("news"));
    expose(&harness, &tenant, "cta", &[("control", 2, 0, 1)]).await;
    for uri in [
        format!("/v1/tenants/{tenant}/experiments"),
        format!("/v1/tenants/{tenant}/experiments/cta/timeline"),
    ] {
        for token in [
            Some(secret().results_read_token(&other)),
            Some("garbage".to_owned()),
            None,
        ] {
            let (status, _, body) = harness.get(&uri, token.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
            assert!(body["error"]["code"].as_str().unwrap().ends_with("token"), "{body}");
            assert!(body.get("experiments").is_none() && body.get("points").is_none());
        }
    }
}

#[tokio::test]
async fn results_take_the_split_and_control_from_the_config() {
    let tenant = unique_tenant("shop");
    let harness = harness_with_config(&tenant).await;
    // 50/50 observed against a configured 20/80: a mismatch only the config reveals.
    expose(
        &harness,
        &tenant,
        "cta",
        &[("green", 300, 0, 1), ("control", 300, 0, 1)],
    )
    .await;
    let token = secret().results_read_token(&tenant);
    let uri = format!("/v1/tenants/{tenant}/experiments/cta/results");
    let (status, _, results) = harness.get(&uri, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["sample_ratio"]["expected_split"], "config");
    assert_eq!(results["sample_ratio"]["mismatch"], true);
    assert_eq!(results["control"], "control");
    assert!((results["variants"][1]["expected_share"].as_f64().unwrap() - 0.8).abs() < 1e-12);

    // The query still wins over the config.
    let (_, _, results) = harness
        .get(&format!("{uri}?weights=green:1,control:1"), Some(&token))
        .await;
    assert_eq!(results["sample_ratio"]["expected_split"], "query");
    assert_eq!(
        (&results["control"], &results["sample_ratio"]["mismatch"]),
        (&Value::from("green"), &Value::from(false))
    );
}

async fn dashboard_harness() -> (Harness, tempfile::TempDir, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "do not serve").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("vendor")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>Cohort</title>").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
    std::fs::write(dir.path().join("vendor/uPlot.min.css"), ".u{}").unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let harness = Harness::with_config(
        RateLimits::uniform(1_000_000.0),
        TenantConfigs::default(),
        Dashboard::Directory(root),
    )
    .await;
    (harness, dir, outside)
}

#[tokio::test]
async fn the_dashboard_serves_its_files_with_types_and_no_cache() {
    let (harness, _dir, _outside) = dashboard_harness().await;
    for (uri, content_type, body) in [
        (
            "/dashboard/",
            "text/html; charset=utf-8",
            "<!doctype html><title>Cohort</title>",
        ),
        ("/dashboard/app.js", "text/javascript; charset=utf-8", "console.log(1)"),
        ("/dashboard/vendor/uPlot.min.css", "text/css; charset=utf-8", ".u{}"),
    ] {
        let (status, headers, served) = harness.get(uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{uri}");
        assert_eq!(served, body, "{uri}");
    }
    for uri in ["/", "/dashboard"] {
        let (status, headers, _) = harness.get(uri, None).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{uri}");
        assert_eq!(headers[header::LOCATION], "/dashboard/");
    }
    let (status, headers, body) = harness.get("/dashboard/missing.js", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn the_dashboard_never_serves_outside_its_directory() {
    let (harness, _dir, outside) = dashboard_harness().await;
    let outside_name = outside.path().file_name().unwrap().to_str().unwrap();
    for uri in [
        format!("/dashboard/../{outside_name}/secret.txt"),
        format!("/dashboard/%2e%2e/{outside_name}/secret.txt"),
        format!("/dashboard/vendor/%2E%2E/%2E%2E/{outside_name}/secret.txt"),
        "/dashboard/..%2f..%2fetc%2fpasswd".to_owned(),
        "/dashboard/%2fetc%2fpasswd".to_owned(),
        "/dashboard/..%5c..%5csecret.txt".to_owned(),
        "/dashboard/vendor".to_owned(),
    ] {
        let request = Request::get(uri.as_str()).body(Body::empty()).unwrap();
        let (status, _, body) = harness.send(request).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{uri}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{uri}: {body}");
        assert!(!body.to_string().contains("do not serve"), "{uri}");
    }
}

#[tokio::test]
async fn the_embedded_dashboard_is_served_without_any_files_beside_the_binary() {
    let harness = Harness::with_config(
        RateLimits::uniform(1_000_000.0),
        TenantConfigs::default(),
        Dashboard::Embedded,
    )
    .await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/dashboard");
    for (uri, file, content_type) in [
        ("/dashboard/", "index.html", "text/html; charset=utf-8"),
        ("/dashboard/app.js", "app.js", "text/javascript; charset=utf-8"),
        (
            "/dashboard/vendor/uPlot.iife.min.js",
            "vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let (status, headers, served) = harness.get(uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY), "{uri}");
        assert_eq!(served, std::fs::read_to_string(root.join(file)).unwrap(), "{uri}");
    }
    for (uri, expected) in [
        ("/dashboard/missing.js", StatusCode::NOT_FOUND),
        ("/dashboard/vendor", StatusCode::NOT_FOUND),
        ("/dashboard/..%2FCargo.toml", StatusCode::BAD_REQUEST),
        ("/dashboard/.hidden", StatusCode::BAD_REQUEST),
        ("/dashboard/vendor//uPlot.min.css", StatusCode::BAD_REQUEST),
    ] {
        let (status, _, body) = harness.get(uri, None).await;
        assert_eq!(status, expected, "{uri}: {body}");
    }
}

#[tokio::test]
async fn without_a_dashboard_there_are_no_dashboard_routes() {
    let harness = Harness::new().await;
    for uri in ["/", "/dashboard", "/dashboard/", "/dashboard/index.html"] {
        let (status, _, _) = harness.get(uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}
