//! Per-tenant token buckets, counted in records, so one noisy tenant cannot starve the others:
//! each tenant drains only its own bucket.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained records per second.
    pub records_per_second: f64,
    /// Most records accepted at once after a quiet period.
    pub burst: f64,
}

/// The default rate and per-tenant overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Rate of every tenant without an override.
    pub default: Rate,
    /// Overrides by tenant id.
    pub per_tenant: HashMap<String, Rate>,
}

impl RateLimits {
    /// The same rate for every tenant, with a burst of two seconds' worth.
    pub fn uniform(records_per_second: f64) -> RateLimits {
        RateLimits {
            default: Rate {
                records_per_second,
                burst: records_per_second * 2.0,
            },
            per_tenant: HashMap::new(),
        }
    }

    fn rate(&self, tenant: &str) -> Rate {
        self.per_tenant.get(tenant).copied().unwrap_or(self.default)
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// The buckets of every tenant seen so far.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets start full.
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `records` tokens from `tenant`'s bucket, or says how long until enough are there.
    ///
    /// A batch larger than the burst passes when the bucket is full and leaves it in debt, so
    /// the largest allowed batch is never refused forever.
    pub fn try_acquire(&self, tenant: &str, records: usize, now: Instant) -> Result<(), Duration> {
        let rate = self.limits.rate(tenant);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: rate.burst,
            refilled_at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.records_per_second).min(rate.burst);
        bucket.refilled_at = now;
        let needed = (records as f64).min(rate.burst);
        if bucket.tokens >= needed {
            bucket.tokens -= records as f64;
            return Ok(());
        }
        let wait = (needed - bucket.tokens) / rate.records_per_second;
        Err(Duration::from_secs_f64(wait.min(3600.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_are_per_tenant() {
        let mut limits = RateLimits::uniform(100.0);
        limits.per_tenant.insert(
            "big".into(),
            Rate {
                records_per_second: 1000.0,
                burst: 1000.0,
            },
        );
        let limiter = RateLimiter::new(limits);
        let start = Instant::now();
        assert_eq!(limiter.try_acquire("shop", 150, start), Ok(()));
        let wait = limiter.try_acquire("shop", 100, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Another tenant is unaffected, and an override applies.
        assert_eq!(limiter.try_acquire("news", 200, start), Ok(()));
        assert_eq!(limiter.try_acquire("big", 1000, start), Ok(()));
        assert_eq!(
            limiter.try_acquire("shop", 100, start + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn oversized_batches_pass_on_a_full_bucket_and_leave_debt() {
        let limiter = RateLimiter::new(RateLimits::uniform(10.0));
        let start = Instant::now();
        assert_eq!(limiter.try_acquire("shop", 50, start), Ok(()));
        assert!(limiter.try_acquire("shop", 1, start + Duration::from_secs(2)).is_err());
        assert_eq!(limiter.try_acquire("shop", 1, start + Duration::from_secs(4)), Ok(()));
    }
}
