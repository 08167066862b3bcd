//! Tenant configs from KV, cached per isolate: the KV reads that
//! [`cohort_core::edge::config_cache::ConfigCache`] (the policy: TTL, stale-while-revalidate,
//! last known good) asks for.

use std::cell::RefCell;
use std::rc::Rc;

use cohort_core::Tenant;
use cohort_core::edge::TenantKeys;
use cohort_core::edge::config_cache::{CacheKey, Cached, ConfigCache, tenant_from_kv, tenant_id_from_kv};
use worker::{Context, Env};

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
    /// The isolate's cache; created on first use with the deployment's TTL.
    static CACHE: RefCell<Option<ConfigCache<Rc<LoadedTenant>>>> = const { RefCell::new(None) };
}

fn with_cache<R>(settings: &Settings, f: impl FnOnce(&mut ConfigCache<Rc<LoadedTenant>>) -> R) -> R {
    CACHE.with(|cache| {
        f(cache
            .borrow_mut()
            .get_or_insert_with(|| ConfigCache::new(settings.ttl_ms)))
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
                with_cache(&settings, |cache| cache.refresh_failed(&key));
            }
        });
    }
    cached
}

/// Reads from KV what the cache lacks for `host` (at most one read per key). An error (KV down,
/// an invalid config) caches nothing, so the next request tries again.
pub async fn load(env: &Env, settings: &Settings, host: &str) -> Result<(), String> {
    // At most two reads: the host, then its tenant.
    while let Some(key) = with_cache(settings, |cache| cache.missing(host)) {
        read(env, settings, &key).await?;
        // Lets the end-to-end suite prove a trap inside this async call fails open.
        if settings.test_panics.load_host.as_deref() == Some(host) {
            panic!("deliberate panic in the tenant load, for the fail-open test");
        }
    }
    Ok(())
}

/// Reads one key from KV into the cache.
async fn read(env: &Env, settings: &Settings, key: &CacheKey) -> Result<(), String> {
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
            let tenant = tenant_from_kv(id, value.as_deref())?;
            let keys = TenantKeys::derive(&settings.secret, &tenant.id);
            let loaded = Rc::new(LoadedTenant { tenant, keys });
            with_cache(settings, |cache| cache.store_tenant(id, loaded, now));
        }
    }
    Ok(())
}
