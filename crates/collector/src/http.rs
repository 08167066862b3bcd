//! What every request gets on its way through the collector: a tracing span (tower-http; its
//! events are at debug level, so `RUST_LOG=tower_http=debug` shows each request), a time limit,
//! gzip for clients that accept it, and the request metrics below, which `/metrics` exports with
//! the process's own (CPU, memory, file descriptors; the `prometheus` crate's process collector).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// How long a request may take, unless an operator sets `--request-timeout-seconds`: a batch
/// commits in milliseconds and results for a million units take about a second.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bounds (seconds) of the request duration histogram's buckets.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The `route` label of a request no route matched: its path would let any client add series.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Request counts and durations by method, route template and status, and the process metrics.
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "cohort_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("a valid metric definition");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "cohort_http_request_duration_seconds",
                "Time from a request's arrival to its response's headers, by method and route template.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("a valid metric definition");
        let registry = Registry::new();
        registry.register(Box::new(requests.clone())).expect("registered once");
        registry.register(Box::new(durations.clone())).expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        HttpMetrics {
            registry,
            requests,
            durations,
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request.
    pub fn observe(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        self.requests.with_label_values(&[method, route, status.as_str()]).inc();
        self.durations
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Appends the request and process metrics in the text exposition format.
    pub fn render(&self, out: &mut String) {
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), out) {
            tracing::error!(%error, "rendering the HTTP and process metrics");
        }
    }
}

/// Standard methods by name; anything else is one label value, so clients cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE.to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&method, &route, response.status(), started.elapsed());
    response
}

/// `router` with the layers every route gets. The layers wrap each route (and the fallback), so
/// the metrics see the matched route template; the timeout sits inside them, so a request cut
/// short is counted with its 503.
pub fn with_layers(router: Router, metrics: Arc<HttpMetrics>, timeout: Duration) -> Router {
    router
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(middleware::from_fn_with_state(metrics, record))
        .layer(TraceLayer::new_for_http())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_durations_and_the_process() {
        let metrics = HttpMetrics::default();
        let route = "/v1/tenants/{tenant}/experiments";
        metrics.observe(&Method::GET, route, StatusCode::OK, Duration::from_millis(3));
        metrics.observe(&Method::GET, route, StatusCode::OK, Duration::from_millis(30));
        metrics.observe(
            &Method::from_bytes(b"BREW").unwrap(),
            UNMATCHED_ROUTE,
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(
            text.contains(&format!(
                "cohort_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"200\"}} 2\n"
            )),
            "{text}"
        );
        assert!(text.contains("cohort_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1\n"));
        assert!(text.contains(&format!(
            "cohort_http_request_duration_seconds_bucket{{method=\"GET\",route=\"{route}\",le=\"0.005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "cohort_http_request_duration_seconds_bucket{{method=\"GET\",route=\"{route}\",le=\"0.05\"}} 2\n"
        )));
        #[cfg(target_os = "linux")]
        for process in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
        ] {
            assert!(text.contains(process), "{process} in {text}");
        }
    }
}
