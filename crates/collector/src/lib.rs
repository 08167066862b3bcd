//! Cohort's origin collector: receives signed exposure and conversion beacons from edge workers,
//! stores them durably in SQLite or PostgreSQL, and turns them into experiment results.
//!
//! Request path: size limit → signature (per-tenant key from the master secret) → parse →
//! per-tenant rate limit → validation → one all-or-nothing write, answered 2xx only after it
//! committed. See `docs/collector.md`.
//!
//! # Example
//! ```no_run
//! use cohort_collector::{
//!     AppState, CollectorConfig, Dashboard, RateLimits, Store, TenantConfigs, WriterOptions, serve, shutdown_signal,
//! };
//! use cohort_core::secrets::MasterSecret;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite://data/cohort.db", WriterOptions::default()).await?;
//! let config = CollectorConfig {
//!     secret: MasterSecret::new("a-platform-secret-of-32-bytes-or-more")?,
//!     max_body_bytes: cohort_collector::DEFAULT_MAX_BODY_BYTES,
//!     rate_limits: RateLimits::uniform(20_000.0),
//!     tenant_configs: TenantConfigs::default(),
//!     edge_kv: None,
//!     metrics_token: None,
//!     dashboard: Dashboard::Off,
//!     request_timeout: cohort_collector::http::DEFAULT_REQUEST_TIMEOUT,
//!     sequential_tuning: cohort_collector::stats::DEFAULT_SEQUENTIAL_TUNING,
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
//! serve(listener, AppState::new(config, store), shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod app;
mod auth;
pub mod control;
mod dashboard;
pub mod error;
pub mod experiments;
pub mod http;
mod ingest;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod results;
pub mod selectors;
pub mod srm_monitor;
pub mod stats;
pub mod store;
pub mod tenant_configs;

pub use app::{AppState, CollectorConfig, DEFAULT_MAX_BODY_BYTES, router, serve, shutdown_signal};
pub use dashboard::Dashboard;
pub use ingest::Accepted;
pub use rate_limit::{Rate, RateLimits};
pub use srm_monitor::SrmMonitorOptions;
pub use store::{Backend, Store, StoreError, WriterOptions};
pub use tenant_configs::{TenantConfigError, TenantConfigs};
