//! The isolate's cache of tenant configs read from KV, as a policy with time passed in.
//!
//! `host:<hostname>` → tenant id and `tenant:<id>` → compiled config are each kept for a TTL.
//! After that the stale value is still served while one background refresh runs; when KV fails or
//! holds an invalid config the last known good value stays in use. A miss costs at most one KV
//! read per key; a hit costs none. "No tenant serves this host" is cached too, so unknown hosts
//! cost no KV reads either. The worker holds one cache per isolate and does the KV reads it asks
//! for.
//!
//! One worker serves every tenant, so the cache is bounded ([`CacheLimits`]): compiled tenants by
//! their bytes (measured by the caller as the compile's retained heap), least recently used first
//! out; hosts by count, with hosts no tenant serves in a pool of their own so a flood of made-up
//! `Host` headers cannot push real ones out; and KV reads of hosts the cache has never seen by a
//! per-second allowance, so such a flood cannot turn into a flood of KV reads. Concurrent loads of
//! one key share one read ([`ConfigCache::begin_read`]).

use std::collections::{HashMap, VecDeque};

use crate::tenant::Tenant;
use crate::wire::{host_key, tenant_key};

/// How long a granted read may run before the key is granted to another request. KV answers in
/// milliseconds; a read this old belongs to a request the runtime cancelled mid-await, whose drop
/// guard never ran, and without this bound the key would wait forever.
pub const ABANDONED_READ_MS: f64 = 2000.0;

/// How long after a failed refresh of a key the next one may start. While KV is down every request
/// would otherwise start another read of every stale key it touches.
pub const REFRESH_RETRY_MS: f64 = 1000.0;

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
    /// This key has not been read in this isolate yet (or was dropped): read it, store it
    /// ([`ConfigCache::store_host`], [`ConfigCache::store_tenant`]), ask again.
    Missing(CacheKey),
}

/// What a request that needs a key read should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTurn {
    /// Read it, then call [`ConfigCache::end_read`].
    Read,
    /// Another request is reading it: wait a moment, then look again. (Workers cannot wake one
    /// request from another's: a request that awaits only another request's work is cancelled as
    /// hung. So a waiter polls on its own timer.)
    Wait,
    /// The isolate's allowance of reads of never-seen hosts is spent this second: serve the
    /// request untouched without reading.
    Refused,
}

/// The bounds of one isolate's cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheLimits {
    /// Bytes of compiled tenants kept (as measured when each was stored).
    pub tenant_bytes: usize,
    /// Hosts a tenant serves.
    pub hosts: usize,
    /// Hosts no tenant serves.
    pub unknown_hosts: usize,
    /// KV reads of hosts the cache does not hold, per second (and at most this many at once).
    pub host_reads_per_second: f64,
}

impl CacheLimits {
    /// A Workers isolate has 128 MB for everything; a compiled tenant takes about 10 KiB (a
    /// typical config) to about 270 KiB (200 experiments), so 48 MiB holds hundreds to thousands.
    pub const DEFAULT_TENANT_BYTES: usize = 48 * 1024 * 1024;
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            tenant_bytes: Self::DEFAULT_TENANT_BYTES,
            hosts: 20_000,
            unknown_hosts: 5_000,
            host_reads_per_second: 50.0,
        }
    }
}

/// Counters and sizes of one isolate's cache, for its periodic log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (a tenant, or no tenant).
    pub hits: u64,
    /// Lookups that needed a KV read first.
    pub misses: u64,
    /// KV reads started: loads and background refreshes.
    pub kv_reads: u64,
    /// Loads refused by the host-read allowance (the request passed through untouched).
    pub host_reads_refused: u64,
    /// Tenants dropped to stay within the byte budget.
    pub evicted_tenants: u64,
    /// Hosts dropped to stay within their counts.
    pub evicted_hosts: u64,
    /// Compiled tenants held.
    pub tenants: usize,
    /// Their bytes.
    pub tenant_bytes: usize,
    /// Hosts a tenant serves, held.
    pub hosts: usize,
    /// Hosts no tenant serves, held.
    pub unknown_hosts: usize,
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    fetched_at_ms: f64,
    /// No refresh starts before this: infinity while one runs, a moment after one failed.
    retry_at_ms: f64,
    /// The lookup count when it was last used: the least recently used entry has the smallest.
    used: u64,
    /// Bytes it holds (tenants only).
    bytes: usize,
}

/// The cache: hosts and tenants (`T`, the compiled config with whatever the worker derives from it).
#[derive(Debug)]
pub struct ConfigCache<T> {
    ttl_ms: f64,
    limits: CacheLimits,
    hosts: HashMap<String, Entry<Option<String>>>,
    /// Unknown hosts in the order they were stored, for dropping the oldest.
    unknown_order: VecDeque<String>,
    tenants: HashMap<String, Entry<T>>,
    /// Keys being read, with when each read was granted.
    reading: HashMap<CacheKey, f64>,
    /// Host reads the allowance still has, refilled continuously up to its per-second rate.
    host_read_tokens: f64,
    tokens_at_ms: f64,
    clock: u64,
    stats: CacheStats,
}

impl<T: Clone> ConfigCache<T> {
    /// An empty cache whose entries are fresh for `ttl_ms`, within `limits`.
    pub fn new(ttl_ms: f64, limits: CacheLimits) -> ConfigCache<T> {
        ConfigCache {
            ttl_ms,
            limits,
            hosts: HashMap::new(),
            unknown_order: VecDeque::new(),
            tenants: HashMap::new(),
            reading: HashMap::new(),
            host_read_tokens: limits.host_reads_per_second,
            tokens_at_ms: f64::NEG_INFINITY,
            clock: 0,
            stats: CacheStats::default(),
        }
    }

    /// The cached answer for `host` at `now_ms`, and the keys whose background refresh the caller
    /// should start now (an entry past its TTL with no refresh running yet; the first caller to
    /// see it stale gets it, later callers do not).
    pub fn lookup(&mut self, host: &str, now_ms: f64) -> (Cached<T>, Vec<CacheKey>) {
        let (cached, refresh) = self.answer(host, now_ms);
        match cached {
            Cached::Missing(_) => self.stats.misses += 1,
            Cached::NoTenant | Cached::Tenant(_) => self.stats.hits += 1,
        }
        self.stats.kv_reads += refresh.len() as u64;
        (cached, refresh)
    }

    /// [`ConfigCache::lookup`]'s answer, uncounted; marks what it used as used now.
    fn answer(&mut self, host: &str, now_ms: f64) -> (Cached<T>, Vec<CacheKey>) {
        self.clock += 1;
        let clock = self.clock;
        let mut refresh = Vec::new();
        let Some(entry) = self.hosts.get_mut(host) else {
            return (Cached::Missing(CacheKey::Host(host.to_owned())), refresh);
        };
        entry.used = clock;
        if start_refresh(entry, now_ms, self.ttl_ms) {
            refresh.push(CacheKey::Host(host.to_owned()));
        }
        let Some(tenant_id) = entry.value.clone() else {
            return (Cached::NoTenant, refresh);
        };
        let Some(entry) = self.tenants.get_mut(&tenant_id) else {
            return (Cached::Missing(CacheKey::Tenant(tenant_id)), refresh);
        };
        entry.used = clock;
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

    /// Whether the caller should read `key` now (see [`ReadTurn`]). A host the cache has never
    /// held costs one of the isolate's host reads for this second. A read granted more than
    /// [`ABANDONED_READ_MS`] ago counts as abandoned (its request was cancelled mid-read and never
    /// ended it), so the key is granted again.
    pub fn begin_read(&mut self, key: &CacheKey, now_ms: f64) -> ReadTurn {
        if let Some(&granted_ms) = self.reading.get(key)
            && now_ms - granted_ms < ABANDONED_READ_MS
        {
            return ReadTurn::Wait;
        }
        if let CacheKey::Host(host) = key
            && !self.hosts.contains_key(host)
        {
            let rate = self.limits.host_reads_per_second;
            let elapsed_seconds = ((now_ms - self.tokens_at_ms) / 1000.0).max(0.0);
            self.host_read_tokens = (self.host_read_tokens + elapsed_seconds * rate).min(rate);
            self.tokens_at_ms = now_ms;
            if self.host_read_tokens < 1.0 {
                self.stats.host_reads_refused += 1;
                return ReadTurn::Refused;
            }
            self.host_read_tokens -= 1.0;
        }
        self.reading.insert(key.clone(), now_ms);
        self.stats.kv_reads += 1;
        ReadTurn::Read
    }

    /// The read [`ConfigCache::begin_read`] granted has ended, stored or failed.
    pub fn end_read(&mut self, key: &CacheKey) {
        self.reading.remove(key);
    }

    /// Stores what KV holds for a host: the tenant id, or `None` when no tenant claims it.
    pub fn store_host(&mut self, host: &str, tenant_id: Option<String>, now_ms: f64) {
        self.clock += 1;
        let unknown = tenant_id.is_none();
        let was_unknown = self.hosts.get(host).map(|e| e.value.is_none());
        let entry = Entry {
            value: tenant_id,
            fetched_at_ms: now_ms,
            retry_at_ms: f64::NEG_INFINITY,
            used: self.clock,
            bytes: 0,
        };
        self.hosts.insert(host.to_owned(), entry);
        if was_unknown == Some(true) && !unknown {
            self.unknown_order.retain(|h| h != host);
        }
        if unknown && was_unknown != Some(true) {
            self.unknown_order.push_back(host.to_owned());
        }
        self.evict_hosts(host);
    }

    /// Stores a tenant read from KV, whose compiled form holds `bytes`; drops the least recently
    /// used others while the total would pass the budget.
    pub fn store_tenant(&mut self, tenant_id: &str, value: T, bytes: usize, now_ms: f64) {
        self.clock += 1;
        let entry = Entry {
            value,
            fetched_at_ms: now_ms,
            retry_at_ms: f64::NEG_INFINITY,
            used: self.clock,
            bytes,
        };
        if let Some(previous) = self.tenants.insert(tenant_id.to_owned(), entry) {
            self.stats.tenant_bytes -= previous.bytes;
        }
        self.stats.tenant_bytes += bytes;
        while self.stats.tenant_bytes > self.limits.tenant_bytes && self.tenants.len() > 1 {
            let oldest = self
                .tenants
                .iter()
                .filter(|(id, _)| id.as_str() != tenant_id)
                .min_by_key(|(_, entry)| entry.used)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            if let Some(dropped) = self.tenants.remove(&oldest) {
                self.stats.tenant_bytes -= dropped.bytes;
                self.stats.evicted_tenants += 1;
            }
        }
    }

    /// Keeps each pool of hosts within its count, never dropping `kept` (just stored).
    fn evict_hosts(&mut self, kept: &str) {
        while self.unknown_order.len() > self.limits.unknown_hosts {
            let Some(oldest) = self.unknown_order.pop_front() else {
                break;
            };
            if oldest != kept && self.hosts.remove(&oldest).is_some() {
                self.stats.evicted_hosts += 1;
            }
        }
        let known = self.hosts.len() - self.unknown_order.len();
        if known > self.limits.hosts {
            let oldest = self
                .hosts
                .iter()
                .filter(|(host, entry)| entry.value.is_some() && host.as_str() != kept)
                .min_by_key(|(_, entry)| entry.used)
                .map(|(host, _)| host.clone());
            if let Some(oldest) = oldest {
                self.hosts.remove(&oldest);
                self.stats.evicted_hosts += 1;
            }
        }
    }

    /// A refresh of `key` failed at `now_ms`: the last known good value stays, and a lookup from
    /// [`REFRESH_RETRY_MS`] on tries again.
    pub fn refresh_failed(&mut self, key: &CacheKey, now_ms: f64) {
        let retry_at_ms = match key {
            CacheKey::Host(host) => self.hosts.get_mut(host).map(|e| &mut e.retry_at_ms),
            CacheKey::Tenant(id) => self.tenants.get_mut(id).map(|e| &mut e.retry_at_ms),
        };
        if let Some(retry_at_ms) = retry_at_ms {
            *retry_at_ms = now_ms + REFRESH_RETRY_MS;
        }
    }

    /// The counters so far and the sizes now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            tenants: self.tenants.len(),
            hosts: self.hosts.len() - self.unknown_order.len(),
            unknown_hosts: self.unknown_order.len(),
            ..self.stats
        }
    }
}

fn start_refresh<T>(entry: &mut Entry<T>, now_ms: f64, ttl_ms: f64) -> bool {
    let start = now_ms - entry.fetched_at_ms >= ttl_ms && now_ms >= entry.retry_at_ms;
    if start {
        // Until this refresh stores the key or fails, no other starts.
        entry.retry_at_ms = f64::INFINITY;
    }
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
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, CacheLimits::default());
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
        cache.store_tenant("shop", 7, 100, 1.0);
        assert_eq!(cache.missing("shop.example"), None);
        assert_eq!(cache.lookup("shop.example", 2.0), (Cached::Tenant(7), vec![]));
        cache.store_host("other.example", None, 2.0);
        assert_eq!(cache.lookup("other.example", 3.0), (Cached::NoTenant, vec![]));
    }

    #[test]
    fn a_stale_entry_is_served_while_exactly_one_refresh_runs() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, CacheLimits::default());
        cache.store_host("shop.example", Some("shop".into()), 0.0);
        cache.store_tenant("shop", 7, 100, 0.0);
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
        // The host refresh failed (KV down): the last known good value stays, and a look from
        // REFRESH_RETRY_MS on tries again; the tenant refresh succeeded with a new config.
        cache.refresh_failed(&CacheKey::Host("shop.example".into()), TTL + 10.0);
        cache.store_tenant("shop", 8, 100, TTL + 10.0);
        let (cached, refresh) = cache.lookup("shop.example", TTL + 20.0);
        assert_eq!(cached, Cached::Tenant(8));
        assert_eq!(refresh, vec![], "not again at once: KV is down");
        let (_, refresh) = cache.lookup("shop.example", TTL + 10.0 + REFRESH_RETRY_MS);
        assert_eq!(refresh, vec![CacheKey::Host("shop.example".into())]);
        assert_eq!(CacheKey::Host("a.example".into()).kv_key(), "host:a.example");
        assert_eq!(CacheKey::Tenant("shop".into()).kv_key(), "tenant:shop");
    }

    fn limits(tenant_bytes: usize, hosts: usize, unknown_hosts: usize, host_reads_per_second: f64) -> CacheLimits {
        CacheLimits {
            tenant_bytes,
            hosts,
            unknown_hosts,
            host_reads_per_second,
        }
    }

    #[test]
    fn tenants_beyond_the_byte_budget_drop_the_least_recently_used() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, limits(300, 100, 100, 100.0));
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            cache.store_host(&format!("{id}.example"), Some(id.into()), 0.0);
            cache.store_tenant(id, i as u32, 100, 0.0);
        }
        assert_eq!(cache.lookup("a.example", 1.0).0, Cached::Tenant(0), "a is used again");
        cache.store_host("d.example", Some("d".into()), 2.0);
        cache.store_tenant("d", 3, 100, 2.0);
        assert_eq!(
            cache.lookup("b.example", 3.0).0,
            Cached::Missing(CacheKey::Tenant("b".into()))
        );
        for (host, value) in [("a.example", 0), ("c.example", 2), ("d.example", 3)] {
            assert_eq!(cache.lookup(host, 3.0).0, Cached::Tenant(value), "{host}");
        }
        let stats = cache.stats();
        assert_eq!((stats.tenants, stats.tenant_bytes, stats.evicted_tenants), (3, 300, 1));
        // A tenant larger than the whole budget is still served, alone.
        cache.store_tenant("huge", 9, 1000, 4.0);
        assert_eq!((cache.stats().tenants, cache.stats().tenant_bytes), (1, 1000));
        // Storing a tenant again replaces its bytes instead of adding them.
        cache.store_tenant("huge", 9, 250, 5.0);
        assert_eq!(cache.stats().tenant_bytes, 250);
    }

    #[test]
    fn a_flood_of_unknown_hosts_never_pushes_out_known_ones() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, limits(1000, 2, 3, 100.0));
        cache.store_host("shop.example", Some("shop".into()), 0.0);
        cache.store_host("news.example", Some("news".into()), 0.0);
        for n in 0..50 {
            cache.store_host(&format!("random-{n}.example"), None, 1.0);
        }
        let stats = cache.stats();
        assert_eq!((stats.hosts, stats.unknown_hosts, stats.evicted_hosts), (2, 3, 47));
        assert_eq!(
            cache.missing("shop.example"),
            Some(CacheKey::Tenant("shop".into())),
            "still known"
        );
        assert_eq!(
            cache.lookup("random-49.example", 2.0).0,
            Cached::NoTenant,
            "the newest unknown stay"
        );
        assert_eq!(
            cache.lookup("random-0.example", 2.0).0,
            Cached::Missing(CacheKey::Host("random-0.example".into()))
        );
        // Known hosts beyond their count drop the least recently used; an unknown host that a
        // tenant claims later moves to the known pool.
        assert_eq!(
            cache.lookup("news.example", 3.0).0,
            Cached::Missing(CacheKey::Tenant("news".into()))
        );
        cache.store_host("random-49.example", Some("blog".into()), 4.0);
        assert_eq!(cache.stats().unknown_hosts, 2);
        assert_eq!(
            cache.missing("shop.example"),
            Some(CacheKey::Host("shop.example".into())),
            "dropped"
        );
        assert_eq!(
            cache.missing("news.example"),
            Some(CacheKey::Tenant("news".into())),
            "kept"
        );
    }

    #[test]
    fn one_read_per_key_at_a_time_and_never_seen_hosts_within_their_allowance() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, limits(1000, 100, 100, 2.0));
        let host = |n: u32| CacheKey::Host(format!("h{n}.example"));
        assert_eq!(cache.begin_read(&host(1), 0.0), ReadTurn::Read);
        assert_eq!(cache.begin_read(&host(1), 0.0), ReadTurn::Wait, "the same key waits");
        assert_eq!(cache.begin_read(&host(2), 0.0), ReadTurn::Read);
        assert_eq!(cache.begin_read(&host(3), 10.0), ReadTurn::Refused, "two per second");
        assert_eq!(
            cache.begin_read(&host(3), 510.0),
            ReadTurn::Read,
            "half a second refills one"
        );
        assert_eq!(cache.begin_read(&host(4), 520.0), ReadTurn::Refused);
        // Tenant keys and hosts the cache holds (a stale one's reload) spend no allowance.
        assert_eq!(
            cache.begin_read(&CacheKey::Tenant("shop".into()), 520.0),
            ReadTurn::Read
        );
        cache.store_host("h5.example", None, 520.0);
        assert_eq!(cache.begin_read(&host(5), 530.0), ReadTurn::Read);
        cache.end_read(&host(1));
        assert_eq!(
            cache.begin_read(&host(1), 2000.0),
            ReadTurn::Read,
            "ended, so readable again"
        );
        let stats = cache.stats();
        assert_eq!((stats.kv_reads, stats.host_reads_refused), (6, 2));
    }

    #[test]
    fn a_read_never_ended_is_granted_again_once_abandoned() {
        let mut cache: ConfigCache<u32> = ConfigCache::new(TTL, limits(1000, 100, 100, 10.0));
        let shop = CacheKey::Tenant("shop".into());
        assert_eq!(cache.begin_read(&shop, 0.0), ReadTurn::Read);
        assert_eq!(cache.begin_read(&shop, ABANDONED_READ_MS - 1.0), ReadTurn::Wait);
        assert_eq!(
            cache.begin_read(&shop, ABANDONED_READ_MS),
            ReadTurn::Read,
            "its request was cancelled mid-read"
        );
        assert_eq!(
            cache.begin_read(&shop, ABANDONED_READ_MS + 1.0),
            ReadTurn::Wait,
            "the new read is waited for"
        );
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
