//! The collector's own monitoring, read from `GET /metrics` as Prometheus would: the scheduled
//! sample-ratio check (started directly and by a burst of exposures) and the delivery-lag
//! histogram. Nothing here calls the results endpoint: the gauges must not need a reader.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cohort_collector::srm_monitor;
use cohort_collector::{Dashboard, RateLimits, SrmMonitorOptions, TenantConfigs};
use cohort_core::beacon::EXPOSURES_PATH;
use cohort_core::exposure::HOLDOUT_EXPERIMENT;
use common::*;

/// `skewed` and `fair`, both 50/50, and a 10 % holdout.
fn config_for(tenant: &str) -> String {
    format!(
        r#"{{"schema": 1, "tenant": "{tenant}", "version": 1, "hostnames": ["{tenant}.example"],
        "hash_key": "000102030405060708090a0b0c0d0e0f", "holdout": 1000,
        "experiments": [
          {{"key": "skewed", "status": "running",
            "variants": [{{"key": "control", "weight": 5000}}, {{"key": "green", "weight": 5000}}]}},
          {{"key": "fair", "status": "running",
            "variants": [{{"key": "control", "weight": 5000}}, {{"key": "green", "weight": 5000}}]}}
        ]}}"#
    )
}

async fn harness_with_config(tenant: &str) -> Harness {
    let mut configs = TenantConfigs::default();
    configs.insert_json(&config_for(tenant)).unwrap();
    Harness::with_config(RateLimits::uniform(1_000_000.0), configs, Dashboard::Off).await
}

/// Posts `units` exposures per variant, unit ids numbered from `first_unit`.
async fn expose(harness: &Harness, tenant: &str, experiment: &str, plan: &[(&str, usize)], first_unit: usize) {
    let mut exposures = Vec::new();
    for &(variant, units) in plan {
        for i in first_unit..first_unit + units {
            exposures.push(exposure(tenant, experiment, &format!("{variant}-{i}"), variant));
        }
    }
    for chunk in exposures.chunks(500) {
        let (status, _, body) = harness
            .post_signed(EXPOSURES_PATH, tenant, now_seconds(), &json(chunk))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn metrics(harness: &Harness) -> String {
    let (status, headers, body) = harness.get("/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    body.as_str().expect("/metrics is text").to_owned()
}

/// The value of the sample `series` (name and labels exactly as exported), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().unwrap_or_else(|_| panic!("`{line}` has no number")))
    })
}

fn srm_series(name: &str, tenant: &str, experiment: &str) -> String {
    format!("{name}{{tenant=\"{tenant}\",experiment=\"{experiment}\"}}")
}

#[tokio::test]
async fn a_check_exports_which_experiments_are_skewed_without_a_results_reader() {
    let tenant = unique_tenant("shop");
    let harness = harness_with_config(&tenant).await;
    expose(&harness, &tenant, "skewed", &[("control", 700), ("green", 300)], 0).await;
    expose(&harness, &tenant, "fair", &[("control", 500), ("green", 500)], 0).await;
    // Not in the config: expected to split equally over what is seen.
    expose(&harness, &tenant, "unlisted", &[("a", 480), ("b", 520)], 0).await;
    // Holdout membership: 10 % held out, as configured.
    expose(
        &harness,
        &tenant,
        HOLDOUT_EXPERIMENT,
        &[("holdout", 100), ("rest", 900)],
        0,
    )
    .await;
    // A tenant without a config: its holdout has no known share and is not tested.
    let unconfigured = unique_tenant("news");
    expose(
        &harness,
        &unconfigured,
        HOLDOUT_EXPERIMENT,
        &[("holdout", 1), ("rest", 900)],
        0,
    )
    .await;

    let before = metrics(&harness).await;
    assert_eq!(sample(&before, "cohort_srm_checks_total"), Some(0.0), "{before}");
    assert_eq!(sample(&before, "cohort_srm_last_check_timestamp_seconds"), None);
    assert_eq!(
        sample(&before, &srm_series("cohort_srm_mismatch", &tenant, "skewed")),
        None
    );

    let check = srm_monitor::run_check(&harness.state).await.unwrap();
    assert!(
        check.mismatches.contains(&(tenant.clone(), "skewed".to_owned())),
        "{check:?}"
    );
    assert!(
        !check.mismatches.iter().any(|(t, e)| *t == tenant && e != "skewed"),
        "{check:?}"
    );

    let text = metrics(&harness).await;
    let gauge = |name: &str, experiment: &str| sample(&text, &srm_series(name, &tenant, experiment));
    assert_eq!(gauge("cohort_srm_mismatch", "skewed"), Some(1.0), "{text}");
    // 700/300 against 50/50: chi-square 160 on one degree of freedom.
    assert!(gauge("cohort_srm_p_value", "skewed").unwrap() < 1e-30, "{text}");
    for experiment in ["fair", "unlisted", HOLDOUT_EXPERIMENT] {
        assert_eq!(
            gauge("cohort_srm_mismatch", experiment),
            Some(0.0),
            "{experiment}: {text}"
        );
    }
    // Exactly the expected split: chi-square 0.
    assert_eq!(gauge("cohort_srm_p_value", "fair"), Some(1.0));
    assert_eq!(gauge("cohort_srm_p_value", HOLDOUT_EXPERIMENT), Some(1.0));
    assert!(gauge("cohort_srm_p_value", "unlisted").unwrap() > 0.2);
    assert_eq!(
        sample(
            &text,
            &srm_series("cohort_srm_p_value", &unconfigured, HOLDOUT_EXPERIMENT)
        ),
        None,
        "{text}"
    );
    assert_eq!(sample(&text, "cohort_srm_checks_total"), Some(1.0));
    let checked_at = sample(&text, "cohort_srm_last_check_timestamp_seconds").unwrap();
    assert!((checked_at - now_seconds() as f64).abs() < 60.0, "{checked_at}");

    // The skew heals (green catches up) while `fair` breaks; the next check follows both.
    expose(&harness, &tenant, "skewed", &[("green", 400)], 300).await;
    expose(&harness, &tenant, "fair", &[("control", 300)], 500).await;
    let check = srm_monitor::run_check(&harness.state).await.unwrap();
    assert!(
        check.mismatches.contains(&(tenant.clone(), "fair".to_owned())),
        "{check:?}"
    );
    let text = metrics(&harness).await;
    let gauge = |name: &str, experiment: &str| sample(&text, &srm_series(name, &tenant, experiment));
    assert_eq!(gauge("cohort_srm_mismatch", "skewed"), Some(0.0), "{text}");
    assert_eq!(gauge("cohort_srm_p_value", "skewed"), Some(1.0), "{text}");
    assert_eq!(gauge("cohort_srm_mismatch", "fair"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "cohort_srm_checks_total"), Some(2.0));
    assert_eq!(sample(&text, "cohort_srm_check_failures_total"), Some(0.0));
}

/// Polls `/metrics` until `cohort_srm_checks_total` reaches `count`.
async fn wait_for_checks(harness: &Harness, count: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(harness).await;
        if sample(&text, "cohort_srm_checks_total") >= Some(count) {
            return text;
        }
        assert!(Instant::now() < deadline, "no check number {count}:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_burst_of_new_exposures_starts_a_check_before_the_schedule() {
    let tenant = unique_tenant("shop");
    let harness = harness_with_config(&tenant).await;
    let monitor = srm_monitor::spawn(
        harness.state.clone(),
        SrmMonitorOptions {
            interval: Duration::from_secs(3600),
            burst_records: 100,
        },
    );
    // The first check runs at start; the next scheduled one is an hour away.
    wait_for_checks(&harness, 1.0).await;

    expose(&harness, &tenant, "skewed", &[("control", 40), ("green", 10)], 0).await;
    assert_eq!(harness.state.srm_trigger.stored_since_check(), 50);
    // Re-sent exposures are not new and do not count toward the burst. The count is updated before
    // the response, and a check would have reset it, so no waiting is needed.
    expose(&harness, &tenant, "skewed", &[("control", 40), ("green", 10)], 0).await;
    assert_eq!(harness.state.srm_trigger.stored_since_check(), 50);
    let text = metrics(&harness).await;
    assert_eq!(sample(&text, "cohort_srm_checks_total"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, &srm_series("cohort_srm_mismatch", &tenant, "skewed")),
        None
    );

    // 50 + 60 new exposures pass the burst of 100.
    expose(&harness, &tenant, "skewed", &[("control", 55), ("green", 5)], 1000).await;
    let text = wait_for_checks(&harness, 2.0).await;
    assert_eq!(
        sample(&text, &srm_series("cohort_srm_mismatch", &tenant, "skewed")),
        Some(1.0),
        "{text}"
    );
    monitor.abort();
    let _ = monitor.await;
    // Stopped, it checks no more; a direct check still finds the same (other tenants' rows may
    // share a PostgreSQL test database, so only this tenant's findings count).
    let check = srm_monitor::run_check(&harness.state).await.unwrap();
    let mine: Vec<_> = check.mismatches.iter().filter(|(t, _)| *t == tenant).collect();
    assert_eq!(mine, [&(tenant.clone(), "skewed".to_owned())]);
    let text = metrics(&harness).await;
    assert_eq!(sample(&text, "cohort_srm_checks_total"), Some(3.0), "{text}");
}

#[tokio::test]
async fn delivery_lag_counts_each_new_exposure_from_its_own_timestamp() {
    let tenant = unique_tenant("shop");
    let harness = Harness::new().await;
    let now_ms = now_seconds() * 1000;
    let late: Vec<_> = (0..10)
        .map(|i| cohort_core::Exposure::new(&tenant, "cta", "control", &format!("late-{i}"), 1, now_ms - 90_000))
        .collect();
    // Stamped ahead of the collector's clock (edge clock skew): counted as no lag.
    let ahead: Vec<_> = (0..5)
        .map(|i| cohort_core::Exposure::new(&tenant, "cta", "control", &format!("ahead-{i}"), 1, now_ms + 60_000))
        .collect();
    for batch in [&late, &late, &ahead] {
        let (status, _, body) = harness
            .post_signed(EXPOSURES_PATH, &tenant, now_seconds(), &json(batch))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let text = metrics(&harness).await;
    let bucket = |le: &str| sample(&text, &format!("cohort_delivery_lag_seconds_bucket{{le=\"{le}\"}}"));
    // The re-sent batch stored nothing new and adds nothing.
    assert_eq!(sample(&text, "cohort_delivery_lag_seconds_count"), Some(15.0), "{text}");
    assert_eq!(bucket("1"), Some(5.0), "{text}");
    assert_eq!(bucket("60"), Some(5.0));
    assert_eq!(bucket("120"), Some(15.0));
    assert_eq!(bucket("+Inf"), Some(15.0));
    let sum = sample(&text, "cohort_delivery_lag_seconds_sum").unwrap();
    assert!((900.0..960.0).contains(&sum), "{sum}");
}

/// A request body that never finishes arriving, as from a client that stalls mid-upload.
struct StalledBody;

impl http_body::Body for StalledBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn requests_are_counted_by_route_template_timed_out_and_compressed() {
    let harness = Harness::new().await;
    let tenant = unique_tenant("shop");
    let mut config = (*harness.state.config).clone();
    config.request_timeout = Duration::from_millis(200);
    let state = cohort_collector::AppState {
        config: std::sync::Arc::new(config),
        ..harness.state.clone()
    };
    let app = cohort_collector::router(state);

    // A stalled upload is cut off with 503 instead of holding a connection and a task forever.
    let mut stalled = signed_request(EXPOSURES_PATH, &tenant, now_seconds(), "[]");
    *stalled.body_mut() = axum::body::Body::new(StalledBody);
    let started = Instant::now();
    let response = tower::ServiceExt::oneshot(app.clone(), stalled).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    let listing = format!("/v1/tenants/{tenant}/experiments");
    let response = tower::ServiceExt::oneshot(
        app.clone(),
        axum::http::Request::get(listing)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let gzip = axum::http::Request::get("/metrics")
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), gzip).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let plain = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app, plain).await.unwrap();
    let text = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    for (series, count) in [
        (
            r#"cohort_http_requests_total{method="POST",route="/v1/exposures",status="503"}"#,
            1.0,
        ),
        (
            r#"cohort_http_requests_total{method="GET",route="/v1/tenants/{tenant}/experiments",status="401"}"#,
            1.0,
        ),
        (
            r#"cohort_http_requests_total{method="GET",route="/metrics",status="200"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(count), "{series} in\n{text}");
    }
    assert!(!text.contains(&tenant), "a tenant's name never becomes a route label");
    assert!(
        sample(&text, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 1e6),
        "{text}"
    );
}
