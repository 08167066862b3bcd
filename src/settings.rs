//! The worker's environment bindings (`wrangler.toml` vars and secrets), read once per isolate:
//! they never change while an isolate lives.

use std::cell::RefCell;
use std::rc::Rc;

use cohort_core::MasterSecret;
use worker::{Env, Result};

const DEFAULT_TTL_SECONDS: f64 = 60.0;
const DEFAULT_KV_BINDING: &str = "CONFIG";

/// The worker's environment bindings, read once per isolate.
#[derive(Clone)]
pub struct Settings {
    /// KV binding name.
    pub binding: String,
    /// Freshness of cached entries.
    pub ttl_ms: f64,
    /// Platform secret.
    pub secret: MasterSecret,
    /// Collector base URL (no trailing slash); beacons are dropped (and logged) without it.
    pub collector_url: Option<String>,
    /// Origin for every tenant's traffic (local runs); a tenant's `edge.origin` wins.
    pub origin_override: Option<String>,
    /// A path that panics on purpose, for the fail-open test; unset in real deployments.
    pub test_panic_path: Option<String>,
}

/// A non-empty text binding.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty())
}

thread_local! {
    /// Environment bindings never change within an isolate: read them once.
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// The bindings, read on the first request of the isolate.
pub fn settings(env: &Env) -> Result<Rc<Settings>> {
    if let Some(settings) = SETTINGS.with(|cell| cell.borrow().clone()) {
        return Ok(settings);
    }
    let secret = env
        .secret("COHORT_SECRET")
        .map(|s| s.to_string())
        .ok()
        .or_else(|| var(env, "COHORT_SECRET"))
        .ok_or_else(|| worker::Error::RustError("COHORT_SECRET is not set".into()))?;
    let secret = MasterSecret::new(secret).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let ttl_seconds = var(env, "CONFIG_TTL_SECONDS")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(DEFAULT_TTL_SECONDS);
    let settings = Rc::new(Settings {
        binding: var(env, "CONFIG_KV_BINDING").unwrap_or_else(|| DEFAULT_KV_BINDING.into()),
        ttl_ms: ttl_seconds * 1000.0,
        secret,
        collector_url: var(env, "COLLECTOR_URL").map(|url| url.trim_end_matches('/').to_owned()),
        origin_override: var(env, "ORIGIN_OVERRIDE"),
        test_panic_path: var(env, "COHORT_TEST_PANIC_PATH"),
    });
    SETTINGS.with(|cell| *cell.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}
