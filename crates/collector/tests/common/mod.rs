//! Shared test harness: a collector router over a fresh SQLite file, or over the PostgreSQL
//! server named by `COHORT_TEST_DATABASE_URL` (scripts/postgres.sh sets it), so one suite runs
//! against both databases. Tests isolate themselves by tenant id, as tenants are isolated in
//! production.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use cohort_collector::control::edge_kv::EdgeKv;
use cohort_collector::{
    AppState, Backend, CollectorConfig, Dashboard, RateLimits, Store, TenantConfigs, WriterOptions, router,
};
use cohort_core::beacon::sign_batch;
use cohort_core::secrets::MasterSecret;
use cohort_core::{Conversion, Exposure};
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "collector-test-secret-of-at-least-32-bytes";
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn secret() -> MasterSecret {
    MasterSecret::new(SECRET).unwrap()
}

pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A tenant id no other test (or earlier run against the same PostgreSQL) uses.
pub fn unique_tenant(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Harness {
    pub app: Router,
    pub state: AppState,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_rate_limits(RateLimits::uniform(1_000_000.0)).await
    }

    pub async fn with_rate_limits(rate_limits: RateLimits) -> Harness {
        Harness::with_config(rate_limits, TenantConfigs::default(), Dashboard::Off).await
    }

    /// A collector that knows `tenant_configs` and serves `dashboard`.
    pub async fn with_config(rate_limits: RateLimits, tenant_configs: TenantConfigs, dashboard: Dashboard) -> Harness {
        Harness::build(rate_limits, tenant_configs, dashboard, None).await
    }

    /// A collector that publishes config versions to `edge_kv`.
    pub async fn publishing_to(edge_kv: EdgeKv) -> Harness {
        Harness::build(
            RateLimits::uniform(1_000_000.0),
            TenantConfigs::default(),
            Dashboard::Off,
            Some(edge_kv),
        )
        .await
    }

    async fn build(
        rate_limits: RateLimits,
        tenant_configs: TenantConfigs,
        dashboard: Dashboard,
        edge_kv: Option<EdgeKv>,
    ) -> Harness {
        let (url, dir) = match std::env::var("COHORT_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let dir = tempfile::tempdir().unwrap();
                (format!("sqlite://{}/cohort.db", dir.path().display()), Some(dir))
            }
        };
        let store = Store::open(&url, WriterOptions::default()).await.unwrap();
        let expected_backend = if dir.is_some() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(store.backend(), expected_backend, "{url}");
        let config = CollectorConfig {
            secret: secret(),
            max_body_bytes: MAX_BODY_BYTES,
            rate_limits,
            tenant_configs,
            edge_kv,
            metrics_token: None,
            dashboard,
            request_timeout: cohort_collector::http::DEFAULT_REQUEST_TIMEOUT,
            sequential_tuning: cohort_collector::stats::DEFAULT_SEQUENTIAL_TUNING,
        };
        let state = AppState::new(config, store);
        cohort_collector::control::import_configs(&state).await.unwrap();
        Harness {
            app: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, body)
    }

    /// Signs `body` as `tenant` at `now` and posts it to `path`.
    pub async fn post_signed(&self, path: &str, tenant: &str, now: i64, body: &str) -> (StatusCode, HeaderMap, Value) {
        self.send(signed_request(path, tenant, now, body)).await
    }

    pub async fn counts(&self, tenant: &str) -> (u64, u64) {
        let counts = self.state.store.row_counts(tenant).await.unwrap();
        (counts.exposures, counts.conversions)
    }

    /// Sends `body` as JSON with `method` to `uri`, with a bearer `token` if given.
    pub async fn send_json(&self, method: &str, uri: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let (status, _, answer) = self.send(request.body(Body::from(body.to_string())).unwrap()).await;
        (status, answer)
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }
}

pub fn signed_request(path: &str, tenant: &str, now: i64, body: &str) -> Request<Body> {
    let headers = sign_batch(&secret().beacon_key(tenant), tenant, now, body.as_bytes());
    Request::post(path)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("cohort-tenant", headers.tenant)
        .header("cohort-timestamp", headers.timestamp)
        .header("cohort-signature", headers.signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// Milliseconds of a fixed, plausible day (2027-01-15), plus an offset.
pub fn at(offset_ms: i64) -> i64 {
    1_800_000_000_000 + offset_ms
}

pub fn exposure(tenant: &str, experiment: &str, unit: &str, variant: &str) -> Exposure {
    Exposure {
        country: Some("DE".into()),
        ..Exposure::new(tenant, experiment, variant, unit, 1, at(0))
    }
}

pub fn conversion(tenant: &str, id: &str, unit: &str, metric: &str, value: Option<f64>, timestamp: i64) -> Conversion {
    Conversion {
        id: id.into(),
        tenant: tenant.into(),
        unit: unit.into(),
        metric: metric.into(),
        value,
        timestamp,
    }
}

pub fn json<T: serde::Serialize + ?Sized>(records: &T) -> String {
    serde_json::to_string(records).unwrap()
}

/// The metric named `name` in a results document.
pub fn metric<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {results}"))
}

/// A runtime for the store's async calls and a proptest runner of `cases` cases. Failing cases are
/// saved to `regressions` (relative to the crate) and replayed first; commit them.
pub fn property_runner(
    cases: u32,
    regressions: &'static str,
) -> (tokio::runtime::Runtime, proptest::test_runner::TestRunner) {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    });
    (runtime, runner)
}
