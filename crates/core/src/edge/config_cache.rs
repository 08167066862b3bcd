//! The isolate's cache of tenant configs read from KV, as a policy with time passed in.
//!
//! `host:<hostname>` → tenant id and `tenant:<id>` → compiled config are each kept for a TTL.
//! After that the stale value is still served while one background refresh runs; when KV fails or
//! holds an invalid config the last known good value stays in use. A miss costs at most one KV
//! read per key; a hit costs none. "No tenant serves this host" is cached too, so unknown hosts
//! cost no KV reads either. The worker holds one cache per isolate and does the KV reads it asks
//! for.

use std::collections::HashMap;

use crate::tenant::Tenant;
use crate::wire::{host_key, tenant_key};

/// A KV key the cache wants read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// `host:<hostname>`.
    Host(String),
    /// `tenant:<id>`.
    Tenant(String),
}

impl CacheKey {
    /// The KV key.
    pub fn kv_key(&self) -> String {
        match self {
            CacheKey::Host(host) => host_key(host),
            CacheKey::Tenant(id) => tenant_key(id),
        }
    }
}

/// What the cache knows about a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached<T> {
    /// No tenant claims the host.
    NoTenant,
    /// The tenant serving the host.
    Tenant(T),
    /// This key has not been read in this isolate yet: read it, [`ConfigCache::store`] it, ask again.
    Missing(CacheKey),
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    fetched_at_ms: f64,
    refreshing: bool,
}

/// The cache: hosts and tenants (`T`, the compiled config with whatever the worker derives from it).
#[derive(Debug)]
pub struct ConfigCache<T> {
    ttl_ms: f64,
    hosts: HashMap<String, Entry<Option<String>>>,
    tenants: HashMap<String, Entry<T>>,
}

impl<T: Clone> ConfigCache<T> {
    /// An empty cache whose entries are fresh for `ttl_ms`.
    pub fn new(ttl_ms: f64) -> ConfigCache<T> {
        ConfigCache {
            ttl_ms,
            hosts: HashMap::new(),
            tenants: HashMap::new(),
        }
    }

    /// The cached answer for `host` at `now_ms`, and the keys whose background refresh the caller
    /// should start now (an entry past its TTL with no refresh running yet; the first caller to
    /// see it stale gets it, later callers do not).
    pub fn lookup(&mut self, host: &str, now_ms: f64) -> (Cached<T>, Vec<CacheKey>) {
        let mut refresh = Vec::new();
        let Some(entry) = self.hosts.get_mut(host) else {
            return (Cached::Missing(CacheKey::Host(host.to_owned())), refresh);
        };
        if start_refresh(entry, now_ms, self.ttl_ms) {
            refresh.push(CacheKey::Host(host.to_owned()));
        }
        let Some(tenant_id) = entry.value.clone() else {
            return (Cached::NoTenant, refresh);
        };
        let Some(entry) = self.tenants.get_mut(&tenant_id) else {
            return (Cached::Missing(CacheKey::Tenant(tenant_id)), refresh);
        };
        if start_refresh(entry, now_ms, self.ttl_ms) {
            refresh.push(CacheKey::Tenant(tenant_id));
        }
        (Cached::Tenant(entry.value.clone()), refresh)
    }

    /// The first key a cold lookup of `host` lacks (host, then its tenant), or `None` when both
    /// are cached. Unlike [`ConfigCache::lookup`] it starts no refresh: it is for the load a cold
    /// isolate awaits.
    pub fn missing(&self, host: &str) -> Option<CacheKey> {
        match self.hosts.get(host) {
            None => Some(CacheKey::Host(host.to_owned())),
            Some(Entry { value: None, .. }) => None,
            Some(Entry {
                value: Some(tenant_id), ..
            }) => (!self.tenants.contains_key(tenant_id)).then(|| CacheKey::Tenant(tenant_id.clone())),
        }
    }

    /// Stores what KV holds for a host: the tenant id, or `None` when no tenant claims it.
    pub fn store_host(&mut self, host: &str, tenant_id: Option<String>, now_ms: f64) {
        self.hosts.insert(
            host.to_owned(),
            Entry {
                value: tenant_id,
                fetched_at_ms: now_ms,
                refreshing: false,
            },
        );
    }

    /// Stores a tenant read from KV.
    pub fn store_tenant(&mut self, tenant_id: &str, value: T, now_ms: f64) {
        self.tenants.insert(
            tenant_id.to_owned(),
            Entry {
                value,
                fetched_at_ms: now_ms,
                refreshing: false,
            },
        );
    }

    /// A refresh of `key` failed: the last known good value stays, and a later lookup may try again.
    pub fn refresh_failed(&mut self, key: &CacheKey) {
        let refreshing = match key {
            CacheKey::Host(host) => self.hosts.get_mut(host).map(|e| &mut e.refreshing),
            CacheKey::Tenant(id) => self.tenants.get_mut(id).map(|e| &mut e.refreshing),
        };
        if let Some(refreshing) = refreshing {
            *refreshing = false;
        }
    }
}

fn start_refresh<T>(entry: &mut Entry<T>, now_ms: f64, ttl_ms: f64) -> bool {
    let start = now_ms - entry.fetched_at_ms >= ttl_ms && !entry.refreshing;
    entry.refreshing |= start;
    start
}

/// The tenant id a `host:` value names: trimmed; empty or absent means no tenant.
pub fn tenant_id_from_kv(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned)
}

/// Compiles the config a `tenant:<tenant_id>` value holds; the error names the key and what is
/// wrong (missing, invalid, or the config of another tenant).
pub fn tenant_from_kv(tenant_id: &str, value: Option<&str>) -> Result<Tenant, String> {
    let key = tenant_key(tenant_id);
    let json = value.ok_or_else(|| format!("{key} is missing"))?;
    let tenant = Tenant::from_json(json).map_err(|e| format!("{key}: {e}"))?;
    if tenant.id != tenant_id {
        return Err(format!("{key} holds the config of tenant `{}`", tenant.id));
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: f64 = 60_000.0;

    #[test]
    fn a_cold_cache_asks_for_the_host_then_the_tenant() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL);
        assert_eq!(
            cache.lookup("shop.example", 0.0),
            (Cached::Missing(CacheKey::Host("shop.example".into())), vec![])
        );
        cache.store_host("shop.example", Some("shop".into()), 0.0);
        assert_eq!(
            cache.lookup("shop.example", 1.0),
            (Cached::Missing(CacheKey::Tenant("shop".into())), vec![])
        );
        assert_eq!(cache.missing("shop.example"), Some(CacheKey::Tenant("shop".into())));
        cache.store_tenant("shop", 7, 1.0);
        assert_eq!(cache.missing("shop.example"), None);
        assert_eq!(cache.lookup("shop.example", 2.0), (Cached::Tenant(7), vec![]));
        cache.store_host("other.example", None, 2.0);
        assert_eq!(cache.lookup("other.example", 3.0), (Cached::NoTenant, vec![]));
    }

    #[test]
    fn a_stale_entry_is_served_while_exactly_one_refresh_runs() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL);
        cache.store_host("shop.example", Some("shop".into()), 0.0);
        cache.store_tenant("shop", 7, 0.0);
        assert_eq!(cache.lookup("shop.example", TTL - 1.0), (Cached::Tenant(7), vec![]));
        assert_eq!(cache.missing("shop.example"), None, "stale is not missing");
        let (cached, refresh) = cache.lookup("shop.example", TTL);
        assert_eq!(cached, Cached::Tenant(7), "stale, still served");
        assert_eq!(
            refresh,
            vec![CacheKey::Host("shop.example".into()), CacheKey::Tenant("shop".into())]
        );
        assert_eq!(
            cache.lookup("shop.example", TTL + 5.0),
            (Cached::Tenant(7), vec![]),
            "one refresh at a time"
        );
        // The host refresh failed (KV down): the last known good value stays, and the next look
        // tries again; the tenant refresh succeeded with a new config.
        cache.refresh_failed(&CacheKey::Host("shop.example".into()));
        cache.store_tenant("shop", 8, TTL + 10.0);
        let (cached, refresh) = cache.lookup("shop.example", TTL + 20.0);
        assert_eq!(cached, Cached::Tenant(8));
        assert_eq!(refresh, vec![CacheKey::Host("shop.example".into())]);
        assert_eq!(CacheKey::Host("a.example".into()).kv_key(), "host:a.example");
        assert_eq!(CacheKey::Tenant("shop".into()).kv_key(), "tenant:shop");
    }

    #[test]
    fn kv_values_are_read_strictly() {
        assert_eq!(tenant_id_from_kv(Some(" shop\n")), Some("shop".into()));
        assert_eq!(tenant_id_from_kv(Some("  ")), None);
        assert_eq!(tenant_id_from_kv(None), None);
        assert_eq!(tenant_from_kv("shop", None).unwrap_err(), "tenant:shop is missing");
        assert!(
            tenant_from_kv("shop", Some("{ nope"))
                .unwrap_err()
                .starts_with("tenant:shop: ")
        );
        let news = r#"{"schema":1,"tenant":"news","version":1,"hostnames":["news.example"],
            "hash_key":"000102030405060708090a0b0c0d0e0f","experiments":[]}"#;
        assert_eq!(
            tenant_from_kv("shop", Some(news)).unwrap_err(),
            "tenant:shop holds the config of tenant `news`"
        );
        assert_eq!(tenant_from_kv("news", Some(news)).unwrap().id, "news");
    }
}
