//! The worker's environment bindings (`wrangler.toml` vars and secrets), read once per isolate:
//! they never change while an isolate lives. (`ORIGIN_OVERRIDE` is read by `src/entry.mjs`, which
//! needs it to fail open, and handed in with each request's facts.)

use std::cell::RefCell;
use std::rc::Rc;

use cohort_core::MasterSecret;
use cohort_core::delivery::RetryPolicy;
use worker::Env;

const DEFAULT_TTL_SECONDS: f64 = 60.0;
const DEFAULT_KV_BINDING: &str = "CONFIG";
const DEFAULT_QUEUE_BINDING: &str = "BEACONS";
const DEFAULT_DEAD_LETTER_BINDING: &str = "DEAD_LETTERS";
const DEFAULT_DEAD_LETTER_QUEUE: &str = "cohort-beacons-dlq";

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
    /// Producer binding of the delivery queue (beacons go straight to the collector without it).
    pub queue_binding: String,
    /// Producer binding of the dead-letter queue.
    pub dead_letter_binding: String,
    /// Name of the dead-letter queue: batches from it are logged, not delivered.
    pub dead_letter_queue: String,
    /// How the consumer retries while the collector cannot take a message.
    pub retry: RetryPolicy,
    /// A path that panics on purpose, for the fail-open test; unset in real deployments.
    pub test_panic_path: Option<String>,
}

/// A non-empty text binding.
fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty())
}

thread_local! {
    /// Environment bindings never change within an isolate: read them once.
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// The bindings, read on the first request of the isolate.
pub fn settings(env: &Env) -> Result<Rc<Settings>, String> {
    if let Some(settings) = SETTINGS.with(|cell| cell.borrow().clone()) {
        return Ok(settings);
    }
    let secret = env
        .secret("COHORT_SECRET")
        .map(|s| s.to_string())
        .ok()
        .or_else(|| var(env, "COHORT_SECRET"))
        .ok_or("COHORT_SECRET is not set")?;
    let secret = MasterSecret::new(secret).map_err(|e| format!("COHORT_SECRET: {e}"))?;
    let ttl_seconds = var(env, "CONFIG_TTL_SECONDS")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(DEFAULT_TTL_SECONDS);
    let settings = Rc::new(Settings {
        binding: var(env, "CONFIG_KV_BINDING").unwrap_or_else(|| DEFAULT_KV_BINDING.into()),
        ttl_ms: ttl_seconds * 1000.0,
        secret,
        collector_url: var(env, "COLLECTOR_URL").map(|url| url.trim_end_matches('/').to_owned()),
        queue_binding: var(env, "BEACON_QUEUE_BINDING").unwrap_or_else(|| DEFAULT_QUEUE_BINDING.into()),
        dead_letter_binding: var(env, "DEAD_LETTER_QUEUE_BINDING")
            .unwrap_or_else(|| DEFAULT_DEAD_LETTER_BINDING.into()),
        dead_letter_queue: var(env, "DEAD_LETTER_QUEUE").unwrap_or_else(|| DEFAULT_DEAD_LETTER_QUEUE.into()),
        retry: retry_policy(env),
        test_panic_path: var(env, "COHORT_TEST_PANIC_PATH"),
    });
    SETTINGS.with(|cell| *cell.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}

/// `DELIVERY_RETRY_BASE_SECONDS`, `DELIVERY_RETRY_MAX_SECONDS` and `DELIVERY_MAX_ATTEMPTS`, each
/// defaulting to [`RetryPolicy::DEFAULT`].
fn retry_policy(env: &Env) -> RetryPolicy {
    let number = |name: &str, default: u32| {
        var(env, name)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let default = RetryPolicy::DEFAULT;
    RetryPolicy {
        base_delay_seconds: number("DELIVERY_RETRY_BASE_SECONDS", default.base_delay_seconds),
        max_delay_seconds: number("DELIVERY_RETRY_MAX_SECONDS", default.max_delay_seconds),
        max_attempts: number("DELIVERY_MAX_ATTEMPTS", default.max_attempts),
    }
}
