//! The worker's deployment settings (`wrangler.toml` vars and secrets), read from the variables
//! by name. A value that is set but unusable is an error naming the variable: the worker then
//! fails open on every request and logs why, rather than running on a guess.

use crate::delivery::RetryPolicy;
use crate::edge::config_cache::CacheLimits;
use crate::secrets::MasterSecret;

const MIB: usize = 1024 * 1024;

/// Freshness of cached configs when `CONFIG_TTL_SECONDS` is not set.
pub const DEFAULT_TTL_SECONDS: f64 = 60.0;
/// Longest `CONFIG_TTL_SECONDS` accepted (a day): KV itself is eventually consistent within about
/// a minute, and a longer TTL only delays every config change.
pub const MAX_TTL_SECONDS: f64 = 86_400.0;

/// The worker's settings (not `Debug`: they hold the platform secret).
#[derive(Clone)]
pub struct Settings {
    /// KV binding name (`CONFIG_KV_BINDING`, default `CONFIG`).
    pub binding: String,
    /// Freshness of cached entries, milliseconds (`CONFIG_TTL_SECONDS`).
    pub ttl_ms: f64,
    /// Platform secret (`COHORT_SECRET`).
    pub secret: MasterSecret,
    /// Collector base URL without a trailing slash (`COLLECTOR_URL`); beacons are dropped (and
    /// logged) without it.
    pub collector_url: Option<String>,
    /// Producer binding of the delivery queue (`BEACON_QUEUE_BINDING`, default `BEACONS`).
    pub queue_binding: String,
    /// Producer binding of the dead-letter queue (`DEAD_LETTER_QUEUE_BINDING`, default `DEAD_LETTERS`).
    pub dead_letter_binding: String,
    /// Name of the dead-letter queue, whose batches are logged, not delivered (`DEAD_LETTER_QUEUE`,
    /// default `cohort-beacons-dlq`).
    pub dead_letter_queue: String,
    /// How long one collector request may take, answer read in full, before it counts as failed
    /// and is retried (`COLLECTOR_TIMEOUT_SECONDS`, default 30: the collector's own request timeout,
    /// so a collector that answers at all answers first).
    pub collector_timeout_ms: f64,
    /// How the consumer retries (`DELIVERY_RETRY_BASE_SECONDS`, `DELIVERY_RETRY_MAX_SECONDS`,
    /// `DELIVERY_MAX_ATTEMPTS`, each defaulting to [`RetryPolicy::DEFAULT`]).
    pub retry: RetryPolicy,
    /// Bounds of the isolate's config cache (`CONFIG_CACHE_MIB`, `CONFIG_CACHE_HOSTS`,
    /// `CONFIG_CACHE_UNKNOWN_HOSTS`, `CONFIG_CACHE_HOST_READS_PER_SECOND`).
    pub cache_limits: CacheLimits,
    /// How often an isolate logs its cache's counters (`CONFIG_CACHE_STATS_SECONDS`, default 60).
    pub cache_stats_interval_ms: f64,
    /// Deliberate panics for the end-to-end fail-open tests; all unset in real deployments.
    pub test_panics: TestPanics,
    /// Milliseconds every config read waits before asking KV (`COHORT_TEST_KV_READ_DELAY_MS`, a
    /// whole number above 0), so the end-to-end suite can hold a cold load open; unset (no wait)
    /// in every real deployment.
    pub test_kv_read_delay_ms: u32,
}

/// Where the worker panics on purpose, so the end-to-end suite can prove each path fails open:
/// the synchronous decision, the asynchronous tenant load, and the queue consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestPanics {
    /// `handle` panics for requests to this path (`COHORT_TEST_PANIC_PATH`).
    pub path: Option<String>,
    /// Loading the tenant of this host panics after its first KV read (`COHORT_TEST_PANIC_HOST`).
    pub load_host: Option<String>,
    /// The queue consumer panics after its first collector request when a batch carries records
    /// of this tenant (`COHORT_TEST_PANIC_DELIVERY_TENANT`).
    pub delivery_tenant: Option<String>,
}

impl Settings {
    /// Reads the settings through `var`, which gives a variable's value or `None` when it is not
    /// set (an empty value counts as not set).
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let secret = var("COHORT_SECRET").ok_or("COHORT_SECRET is not set")?;
        let secret = MasterSecret::new(secret).map_err(|e| format!("COHORT_SECRET: {e}"))?;
        let ttl_seconds = match var("CONFIG_TTL_SECONDS") {
            None => DEFAULT_TTL_SECONDS,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.0..=MAX_TTL_SECONDS).contains(s))
                .ok_or_else(|| format!("CONFIG_TTL_SECONDS `{text}`: expected seconds from 0 to {MAX_TTL_SECONDS}"))?,
        };
        let count = |name: &str, default: u32| -> Result<u32, String> {
            match var(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} `{text}`: expected a whole number above 0")),
            }
        };
        let default = RetryPolicy::DEFAULT;
        let retry = RetryPolicy {
            base_delay_seconds: count("DELIVERY_RETRY_BASE_SECONDS", default.base_delay_seconds)?,
            max_delay_seconds: count("DELIVERY_RETRY_MAX_SECONDS", default.max_delay_seconds)?,
            max_attempts: count("DELIVERY_MAX_ATTEMPTS", default.max_attempts)?,
        };
        if retry.base_delay_seconds > retry.max_delay_seconds {
            return Err(format!(
                "DELIVERY_RETRY_BASE_SECONDS {} is above DELIVERY_RETRY_MAX_SECONDS {}",
                retry.base_delay_seconds, retry.max_delay_seconds
            ));
        }
        let default_limits = CacheLimits::default();
        let cache_limits = CacheLimits {
            tenant_bytes: count("CONFIG_CACHE_MIB", (default_limits.tenant_bytes / MIB) as u32)? as usize * MIB,
            hosts: count("CONFIG_CACHE_HOSTS", default_limits.hosts as u32)? as usize,
            unknown_hosts: count("CONFIG_CACHE_UNKNOWN_HOSTS", default_limits.unknown_hosts as u32)? as usize,
            host_reads_per_second: f64::from(count(
                "CONFIG_CACHE_HOST_READS_PER_SECOND",
                default_limits.host_reads_per_second as u32,
            )?),
        };
        let cache_stats_interval_ms = f64::from(count("CONFIG_CACHE_STATS_SECONDS", 60)?) * 1000.0;
        let collector_timeout_ms = f64::from(count("COLLECTOR_TIMEOUT_SECONDS", 30)?) * 1000.0;
        let collector_url = match var("COLLECTOR_URL") {
            None => None,
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => return Err(format!("COLLECTOR_URL `{url}`: expected an http(s) URL")),
        };
        Ok(Settings {
            binding: var("CONFIG_KV_BINDING").unwrap_or_else(|| "CONFIG".into()),
            ttl_ms: ttl_seconds * 1000.0,
            secret,
            collector_url,
            collector_timeout_ms,
            queue_binding: var("BEACON_QUEUE_BINDING").unwrap_or_else(|| "BEACONS".into()),
            dead_letter_binding: var("DEAD_LETTER_QUEUE_BINDING").unwrap_or_else(|| "DEAD_LETTERS".into()),
            dead_letter_queue: var("DEAD_LETTER_QUEUE").unwrap_or_else(|| "cohort-beacons-dlq".into()),
            retry,
            cache_limits,
            cache_stats_interval_ms,
            test_panics: TestPanics {
                path: var("COHORT_TEST_PANIC_PATH"),
                load_host: var("COHORT_TEST_PANIC_HOST"),
                delivery_tenant: var("COHORT_TEST_PANIC_DELIVERY_TENANT"),
            },
            test_kv_read_delay_ms: count("COHORT_TEST_KV_READ_DELAY_MS", 0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Settings::read(|name| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    /// The error reading `pairs` gives (`Settings` is not `Debug`, so no `unwrap_err`).
    fn error(pairs: &[(&str, &str)]) -> String {
        match read(pairs) {
            Ok(_) => panic!("{pairs:?} accepted"),
            Err(error) => error,
        }
    }

    const SECRET: (&str, &str) = ("COHORT_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn cache_limits_default_and_read_from_their_variables() {
        let settings = read(&[SECRET]).unwrap();
        assert_eq!(settings.cache_limits, CacheLimits::default());
        assert_eq!(settings.cache_stats_interval_ms, 60_000.0);
        let settings = read(&[
            SECRET,
            ("CONFIG_CACHE_MIB", "8"),
            ("CONFIG_CACHE_HOSTS", "100"),
            ("CONFIG_CACHE_UNKNOWN_HOSTS", "10"),
            ("CONFIG_CACHE_HOST_READS_PER_SECOND", "5"),
            ("CONFIG_CACHE_STATS_SECONDS", "1"),
        ])
        .unwrap();
        assert_eq!(
            settings.cache_limits,
            CacheLimits {
                tenant_bytes: 8 * MIB,
                hosts: 100,
                unknown_hosts: 10,
                host_reads_per_second: 5.0
            }
        );
        assert_eq!(settings.cache_stats_interval_ms, 1000.0);
        assert!(error(&[SECRET, ("CONFIG_CACHE_MIB", "0")]).starts_with("CONFIG_CACHE_MIB `0`"));
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let settings = read(&[SECRET, ("CONFIG_TTL_SECONDS", "")]).unwrap();
        assert_eq!(settings.binding, "CONFIG");
        assert_eq!(settings.ttl_ms, 60_000.0);
        assert_eq!(settings.collector_url, None);
        assert_eq!(
            (settings.queue_binding.as_str(), settings.dead_letter_binding.as_str()),
            ("BEACONS", "DEAD_LETTERS")
        );
        assert_eq!(settings.dead_letter_queue, "cohort-beacons-dlq");
        assert_eq!(settings.retry, RetryPolicy::DEFAULT);
        assert_eq!(settings.collector_timeout_ms, 30_000.0);
        assert_eq!(settings.test_panics, TestPanics::default());
        assert_eq!(settings.test_kv_read_delay_ms, 0);
    }

    #[test]
    fn set_values_are_used() {
        let settings = read(&[
            SECRET,
            ("CONFIG_TTL_SECONDS", "1.5"),
            ("COLLECTOR_URL", "https://collector.example/"),
            ("DELIVERY_RETRY_BASE_SECONDS", "1"),
            ("DELIVERY_RETRY_MAX_SECONDS", "4"),
            ("DELIVERY_MAX_ATTEMPTS", "3"),
            ("COLLECTOR_TIMEOUT_SECONDS", "5"),
        ])
        .unwrap();
        assert_eq!(settings.ttl_ms, 1_500.0);
        assert_eq!(settings.collector_timeout_ms, 5_000.0);
        assert_eq!(settings.collector_url.as_deref(), Some("https://collector.example"));
        assert_eq!(
            settings.retry,
            RetryPolicy {
                base_delay_seconds: 1,
                max_delay_seconds: 4,
                max_attempts: 3
            }
        );
    }

    #[test]
    fn unusable_values_are_errors_naming_the_variable() {
        assert_eq!(error(&[]), "COHORT_SECRET is not set");
        assert!(error(&[("COHORT_SECRET", "short")]).starts_with("COHORT_SECRET: "));
        for (name, value) in [
            ("CONFIG_TTL_SECONDS", "soon"),
            ("CONFIG_TTL_SECONDS", "-1"),
            ("CONFIG_TTL_SECONDS", "1e9"),
            ("DELIVERY_MAX_ATTEMPTS", "0"),
            ("DELIVERY_RETRY_BASE_SECONDS", "ten"),
            ("COLLECTOR_URL", "collector.example"),
            ("COLLECTOR_TIMEOUT_SECONDS", "0"),
        ] {
            let error = error(&[SECRET, (name, value)]);
            assert!(
                error.starts_with(&format!("{name} `{value}`")),
                "{name}={value}: {error}"
            );
        }
        let inverted = error(&[
            SECRET,
            ("DELIVERY_RETRY_BASE_SECONDS", "60"),
            ("DELIVERY_RETRY_MAX_SECONDS", "10"),
        ]);
        assert!(inverted.contains("above DELIVERY_RETRY_MAX_SECONDS"), "{inverted}");
    }
}
