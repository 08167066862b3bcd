//! Tenant configs from KV, cached per isolate: the KV reads that
//! [`cohort_core::edge::config_cache::ConfigCache`] (the policy: TTL, stale-while-revalidate,
//! last known good, byte and count bounds, one read per key, the host-read allowance) asks for.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cohort_core::Tenant;
use cohort_core::edge::TenantKeys;
use cohort_core::edge::config_cache::{CacheKey, Cached, ConfigCache, ReadTurn, tenant_from_kv, tenant_id_from_kv};
use futures_channel::oneshot;
use worker::{Context, Delay, Env};

use crate::log;
use crate::now_ms;
use crate::settings::Settings;

/// A compiled tenant with its derived keys.
pub struct LoadedTenant {
    /// The compiled config.
    pub tenant: Tenant,
    /// Keys derived from the platform secret.
    pub keys: TenantKeys,
}

thread_local! {
    /// The isolate's cache; created on first use with the deployment's TTL and limits.
    static CACHE: RefCell<Option<ConfigCache<Rc<LoadedTenant>>>> = const { RefCell::new(None) };
    /// When the cache's counters were last logged.
    static STATS_LOGGED_AT: RefCell<f64> = const { RefCell::new(0.0) };
}

fn with_cache<R>(settings: &Settings, f: impl FnOnce(&mut ConfigCache<Rc<LoadedTenant>>) -> R) -> R {
    CACHE.with(|cache| {
        f(cache
            .borrow_mut()
            .get_or_insert_with(|| ConfigCache::new(settings.ttl_ms, settings.cache_limits)))
    })
}

/// The cached answer for `host` (`Missing`: not read in this isolate yet, [`load`] it); starts the
/// background refreshes the policy asks for.
pub fn lookup(env: &Env, ctx: &Context, settings: &Rc<Settings>, host: &str, now_ms: f64) -> Cached<Rc<LoadedTenant>> {
    let (cached, refresh) = with_cache(settings, |cache| cache.lookup(host, now_ms));
    for key in refresh {
        let env = env.clone();
        let settings = settings.clone();
        ctx.wait_until(async move {
            if let Err(error) = read(&env, &settings, &key).await {
                // Keep serving the last known good value; a later request tries again.
                log::event("config.refresh_failed", &[("key", &key.kv_key()), ("error", &error)]);
                with_cache(&settings, |cache| cache.refresh_failed(&key, crate::now_ms() as f64));
            }
        });
    }
    log_stats_when_due(settings, now_ms);
    cached
}

/// How often a request waiting for another request's read of a key looks again. It waits on its
/// own timer: workerd cancels as hung a request that awaits only another request's work, so one
/// request cannot wake another.
const READ_WAIT_POLL: Duration = Duration::from_millis(5);

/// Ends a granted read when dropped, however the read ends: stored, failed, or its task dropped.
/// (Should the runtime abandon the task without ever dropping it, the cache grants its key again
/// after `ABANDONED_READ_MS`.)
struct ReadInProgress {
    settings: Rc<Settings>,
    key: CacheKey,
}

impl Drop for ReadInProgress {
    fn drop(&mut self) {
        with_cache(&self.settings, |cache| cache.end_read(&self.key));
    }
}

/// Reads from KV what the cache lacks for `host` (at most one read per key, shared by concurrent
/// requests). An error (KV down, an invalid config) caches nothing, so the next request tries
/// again. When the isolate's allowance of reads of never-seen hosts is spent, nothing is read and
/// the request passes through untouched (counted in the cache's log line).
///
/// The read itself runs in the request's `wait_until`, which the request then awaits: a request
/// cancelled mid-read (its visitor gone) still finishes the read, so the requests waiting for the
/// same key are not held until the cache gives up on it.
pub async fn load(env: &Env, ctx: &Context, settings: &Rc<Settings>, host: &str) -> Result<(), String> {
    while let Some(key) = with_cache(settings, |cache| cache.missing(host)) {
        match with_cache(settings, |cache| cache.begin_read(&key, now_ms() as f64)) {
            ReadTurn::Refused => return Ok(()),
            // Look again shortly: the read has stored the key, or failed and left it missing
            // (this request then reads it itself).
            ReadTurn::Wait => Delay::from(READ_WAIT_POLL).await,
            ReadTurn::Read => {
                let (done, outcome) = oneshot::channel();
                let (env, in_progress) = (
                    env.clone(),
                    ReadInProgress {
                        settings: settings.clone(),
                        key,
                    },
                );
                ctx.wait_until(async move {
                    let result = read(&env, &in_progress.settings, &in_progress.key).await;
                    drop(in_progress);
                    // The request may be gone; the read counted all the same.
                    let _ = done.send(result);
                });
                outcome
                    .await
                    .map_err(|_| "the config read ended without an answer".to_owned())??;
                // Lets the end-to-end suite prove a trap inside this async call fails open.
                if settings.test_panics.load_host.as_deref() == Some(host) {
                    panic!("deliberate panic in the tenant load, for the fail-open test");
                }
            }
        }
    }
    Ok(())
}

/// Reads one key from KV into the cache. A tenant is stored with the bytes its compile kept on
/// the Wasm heap, which the cache's byte budget counts.
async fn read(env: &Env, settings: &Settings, key: &CacheKey) -> Result<(), String> {
    if settings.test_kv_read_delay_ms > 0 {
        Delay::from(Duration::from_millis(settings.test_kv_read_delay_ms.into())).await;
    }
    let kv = env
        .kv(&settings.binding)
        .map_err(|e| format!("KV binding {}: {e}", settings.binding))?;
    let value = kv
        .get(&key.kv_key())
        .text()
        .await
        .map_err(|e| format!("{}: {e}", key.kv_key()))?;
    let now = now_ms() as f64;
    match key {
        CacheKey::Host(host) => {
            let tenant_id = tenant_id_from_kv(value.as_deref());
            with_cache(settings, |cache| cache.store_host(host, tenant_id, now));
        }
        CacheKey::Tenant(id) => {
            let (loaded, bytes) = crate::heap::retained(|| {
                let tenant = tenant_from_kv(id, value.as_deref())?;
                let keys = TenantKeys::derive(&settings.secret, &tenant.id);
                Ok::<_, String>(Rc::new(LoadedTenant { tenant, keys }))
            });
            let loaded = loaded?;
            with_cache(settings, |cache| cache.store_tenant(id, loaded, bytes, now));
        }
    }
    Ok(())
}

/// Logs the cache's counters and sizes at most once per `CONFIG_CACHE_STATS_SECONDS`.
fn log_stats_when_due(settings: &Settings, now_ms: f64) {
    let due = STATS_LOGGED_AT.with(|logged| {
        let mut logged = logged.borrow_mut();
        let due = now_ms - *logged >= settings.cache_stats_interval_ms;
        if due {
            *logged = now_ms;
        }
        due
    });
    if !due {
        return;
    }
    let stats = with_cache(settings, |cache| cache.stats());
    let fields = [
        ("hits", stats.hits.to_string()),
        ("misses", stats.misses.to_string()),
        ("kv_reads", stats.kv_reads.to_string()),
        ("host_reads_refused", stats.host_reads_refused.to_string()),
        ("evicted_tenants", stats.evicted_tenants.to_string()),
        ("evicted_hosts", stats.evicted_hosts.to_string()),
        ("tenants", stats.tenants.to_string()),
        ("tenant_bytes", stats.tenant_bytes.to_string()),
        ("hosts", stats.hosts.to_string()),
        ("unknown_hosts", stats.unknown_hosts.to_string()),
        ("heap_bytes", crate::heap::live_bytes().to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
    log::event("config.cache", &fields);
}
