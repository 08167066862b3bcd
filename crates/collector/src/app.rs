//! The HTTP service: configuration, shared state, routes, and serving with a graceful drain.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use cohort_core::secrets::MasterSecret;
use tokio::net::TcpListener;

use crate::control::Publisher;
use crate::control::edge_kv::{EdgeKv, KvClient};
use crate::dashboard;
use crate::dashboard::Dashboard;
use crate::metrics::Metrics;
use crate::openapi::OPERATIONS;
use crate::rate_limit::{RateLimiter, RateLimits};
use crate::srm_monitor::SrmTrigger;
use crate::store::{Store, StoreError};
use crate::tenant_configs::TenantConfigs;

/// Largest request body accepted: 1,000 records of a few hundred bytes each fit with room.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the collector needs besides its database.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The platform master secret every tenant key derives from.
    pub secret: MasterSecret,
    /// Request body limit in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Per-tenant ingest rates.
    pub rate_limits: RateLimits,
    /// Start-up tenant configs, imported into the database when newer than its stored versions
    /// ([`crate::control::import_configs`]). May be empty.
    pub tenant_configs: TenantConfigs,
    /// Where config versions are published; `None` stores them without publishing.
    pub edge_kv: Option<EdgeKv>,
    /// The dashboard's files: embedded, from a directory, or none.
    pub dashboard: Dashboard,
    /// When set, `/metrics` answers only requests bearing this token (its series name tenants).
    pub metrics_token: Option<String>,
    /// How long a request may take before it is answered 503
    /// ([`crate::http::DEFAULT_REQUEST_TIMEOUT`] unless an operator sets it).
    pub request_timeout: std::time::Duration,
    /// Tuning parameter of the sequential intervals (the total sample size they are narrowest
    /// at); [`crate::stats::DEFAULT_SEQUENTIAL_TUNING`] unless an operator sets it.
    pub sequential_tuning: f64,
}

/// State shared by every request.
#[derive(Clone)]
pub struct AppState {
    /// Configuration.
    pub config: Arc<CollectorConfig>,
    /// The database.
    pub store: Store,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Per-tenant token buckets.
    pub rate_limiter: Arc<RateLimiter>,
    /// Counts newly stored exposures for the sample-ratio monitor ([`crate::srm_monitor`]).
    pub srm_trigger: Arc<SrmTrigger>,
    /// Publishes config versions to the edge.
    pub publisher: Arc<Publisher>,
}

impl AppState {
    /// State for a collector over `store`.
    pub fn new(config: CollectorConfig, store: Store) -> AppState {
        AppState {
            rate_limiter: Arc::new(RateLimiter::new(config.rate_limits.clone())),
            publisher: Arc::new(Publisher::new(config.edge_kv.clone().map(KvClient::new))),
            config: Arc::new(config),
            store,
            metrics: Arc::new(Metrics::default()),
            srm_trigger: Arc::new(SrmTrigger::default()),
        }
    }

    /// What the database holds of `tenant`'s config (its latest stored version), for results and
    /// listings. Read per request, so every collector replica sees a change at once.
    pub async fn tenant_configs(&self, tenant: &str) -> Result<TenantConfigs, StoreError> {
        let mut configs = TenantConfigs::default();
        if let Some(latest) = self.store.latest_config(tenant).await?
            && let Err(error) = configs.insert_json(&latest.document)
        {
            tracing::error!(%error, tenant, version = latest.version, "a stored config does not load");
        }
        Ok(configs)
    }

    /// Queues the rebuild of the metric figures kept at ingest for each of `tenant`'s metrics
    /// whose window the latest config changed ([`crate::store::StaleMetric`]), so the figures fit
    /// before results ask, while the metric may still have few events. Results fall back to the
    /// events for a stale metric meanwhile, so a failure here is logged, not returned.
    pub async fn refit_kept_metrics(&self, tenant: &str) {
        let stale = match self.tenant_configs(tenant).await {
            Ok(configs) => {
                let shapes = crate::results::metric_shapes(&configs, tenant);
                self.store.stale_kept_metrics(tenant, &shapes).await
            }
            Err(error) => Err(error),
        };
        match stale {
            Ok(stale) => self.store.queue_kept_rebuilds(tenant, &stale),
            Err(error) => tracing::warn!(%error, tenant, "checking the kept metric figures failed"),
        }
    }
}

pub(crate) async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// Readiness, unlike liveness (`/healthz`): the database answers and holds every migration this
/// build needs, so a load balancer sends traffic only to a collector that can serve it.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.missing_migrations().await {
        Ok(missing) if missing.is_empty() => (StatusCode::OK, "ready\n".to_owned()),
        Ok(missing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database lacks migrations {missing:?}\n"),
        ),
        Err(error) => {
            tracing::error!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n".to_owned())
        }
    }
}

pub(crate) async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    if let Some(expected) = &state.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        if !cohort_core::secrets::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return crate::error::ApiError::new(
                StatusCode::UNAUTHORIZED,
                cohort_core::wire::ErrorCode::BadToken,
                "expected `Authorization: Bearer <metrics token>`",
            )
            .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&state.store.writer_timings()),
    )
        .into_response()
}

/// Every route of the collector; the dashboard's unless it is off.
pub fn router(state: AppState) -> Router {
    // The API's routes come from the table its OpenAPI description is written from.
    let mut routes: Vec<(&str, MethodRouter<AppState>)> = Vec::new();
    for operation in OPERATIONS {
        match routes.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, route)) => *route = (operation.mount)(std::mem::take(route)),
            None => routes.push((operation.path, (operation.mount)(MethodRouter::new()))),
        }
    }
    let mut router = Router::new();
    for (path, route) in routes {
        router = router.route(path, route);
    }
    let (metrics, timeout) = (state.metrics.http.clone(), state.config.request_timeout);
    if state.config.dashboard != Dashboard::Off {
        router = router
            .route("/", get(dashboard::redirect))
            .route("/dashboard", get(dashboard::redirect))
            .route(dashboard::DASHBOARD_PATH, get(dashboard::index))
            .route("/dashboard/{*path}", get(dashboard::file));
    }
    crate::http::with_layers(router.with_state(state), metrics, timeout)
}

/// Serves until `shutdown` completes, then stops accepting connections, lets in-flight requests
/// finish (their batches commit and are answered), and closes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    store.close().await;
    served
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C: draining"),
        () = terminate => tracing::info!("SIGTERM: draining"),
    }
}
