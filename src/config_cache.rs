//! Tenant configs from KV, cached per isolate.
//!
//! `host:<hostname>` → tenant id and `tenant:<id>` → config JSON, each compiled once and kept for
//! `CONFIG_TTL_SECONDS`. After that the stale value is served while one background refresh runs;
//! when KV fails or holds an invalid config the last known good value stays in use. A miss costs at
//! most one KV read per key; a hit costs none.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use cohort_core::edge::TenantKeys;
use cohort_core::{MasterSecret, Tenant};
use worker::{Context, Env, KvStore};

use crate::log;
use crate::settings::Settings;

/// A compiled tenant with its derived keys.
pub struct LoadedTenant {
    /// The compiled config.
    pub tenant: Tenant,
    /// Keys derived from the platform secret.
    pub keys: TenantKeys,
}

struct Entry<T> {
    value: T,
    fetched_at_ms: f64,
    refreshing: bool,
}

#[derive(Default)]
struct Cache {
    /// `None` caches "no tenant serves this host" so unknown hosts cost no KV reads either.
    hosts: HashMap<String, Entry<Option<String>>>,
    tenants: HashMap<String, Entry<Rc<LoadedTenant>>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The cached value for `key`, and whether this caller should start its background refresh (the
/// entry is past its TTL and no refresh is running yet).
fn lookup<T: Clone>(entries: &mut HashMap<String, Entry<T>>, key: &str, now_ms: f64, ttl_ms: f64) -> Option<(T, bool)> {
    let entry = entries.get_mut(key)?;
    let start_refresh = now_ms - entry.fetched_at_ms >= ttl_ms && !entry.refreshing;
    entry.refreshing |= start_refresh;
    Some((entry.value.clone(), start_refresh))
}

/// What the isolate's cache knows about a host, without reading KV.
pub enum Cached {
    /// No tenant claims the host (cached too, so unknown hosts cost no KV reads).
    NoTenant,
    /// The tenant serving the host.
    Tenant(Rc<LoadedTenant>),
    /// The host or its tenant has not been read in this isolate yet: [`load`] it.
    NotLoaded,
}

/// The cached answer for `host`. An entry past its TTL is still served, and the first caller to
/// see it stale starts the one background refresh (`ctx.wait_until`).
pub fn cached(env: &Env, ctx: &Context, settings: &Settings, host: &str, now_ms: f64) -> Cached {
    let cached_host = CACHE.with(|cache| lookup(&mut cache.borrow_mut().hosts, host, now_ms, settings.ttl_ms));
    let tenant_id = match cached_host {
        None => return Cached::NotLoaded,
        Some((value, start_refresh)) => {
            if start_refresh {
                spawn_refresh(env, ctx, settings, Key::Host(host.to_owned()));
            }
            value
        }
    };
    let Some(tenant_id) = tenant_id else {
        return Cached::NoTenant;
    };
    let cached_tenant =
        CACHE.with(|cache| lookup(&mut cache.borrow_mut().tenants, &tenant_id, now_ms, settings.ttl_ms));
    match cached_tenant {
        None => Cached::NotLoaded,
        Some((loaded, start_refresh)) => {
            if start_refresh {
                spawn_refresh(env, ctx, settings, Key::Tenant(tenant_id));
            }
            Cached::Tenant(loaded)
        }
    }
}

/// Reads from KV what the cache lacks for `host` (at most one read per key) and returns the tenant
/// serving it. An error (KV down, an invalid config) caches nothing, so the next request tries again.
pub async fn load(env: &Env, settings: &Settings, host: &str, now_ms: f64) -> worker::Result<Option<Rc<LoadedTenant>>> {
    let known_host = CACHE.with(|cache| cache.borrow().hosts.get(host).map(|entry| entry.value.clone()));
    let tenant_id = match known_host {
        Some(value) => value,
        None => {
            let value = read_host(&env.kv(&settings.binding)?, host).await?;
            store_host(host, value.clone(), now_ms);
            value
        }
    };
    let Some(tenant_id) = tenant_id else { return Ok(None) };
    if let Some(loaded) = CACHE.with(|cache| cache.borrow().tenants.get(&tenant_id).map(|entry| entry.value.clone())) {
        return Ok(Some(loaded));
    }
    let loaded = Rc::new(read_tenant(&env.kv(&settings.binding)?, &tenant_id, &settings.secret).await?);
    store_tenant(&tenant_id, loaded.clone(), now_ms);
    Ok(Some(loaded))
}

/// The tenant serving `host`, or `None` for hosts no tenant claims; reads KV on a miss.
pub async fn tenant_for_host(
    env: &Env,
    ctx: &Context,
    settings: &Settings,
    host: &str,
    now_ms: f64,
) -> worker::Result<Option<Rc<LoadedTenant>>> {
    match cached(env, ctx, settings, host, now_ms) {
        Cached::Tenant(loaded) => Ok(Some(loaded)),
        Cached::NoTenant => Ok(None),
        Cached::NotLoaded => load(env, settings, host, now_ms).await,
    }
}

enum Key {
    Host(String),
    Tenant(String),
}

fn spawn_refresh(env: &Env, ctx: &Context, settings: &Settings, key: Key) {
    let env = env.clone();
    let settings = settings.clone();
    ctx.wait_until(async move {
        let now_ms = worker::Date::now().as_millis() as f64;
        let outcome = match env.kv(&settings.binding) {
            Err(error) => Err(error),
            Ok(kv) => match &key {
                Key::Host(host) => read_host(&kv, host).await.map(|value| store_host(host, value, now_ms)),
                Key::Tenant(id) => read_tenant(&kv, id, &settings.secret)
                    .await
                    .map(|loaded| store_tenant(id, Rc::new(loaded), now_ms)),
            },
        };
        if let Err(error) = outcome {
            // Keep serving the last known good value; try again on a later request.
            let name = match &key {
                Key::Host(host) => format!("host:{host}"),
                Key::Tenant(id) => format!("tenant:{id}"),
            };
            log::event(
                "config.refresh_failed",
                &[("key", &name), ("error", &error.to_string())],
            );
            CACHE.with(|cache| {
                let mut cache = cache.borrow_mut();
                match &key {
                    Key::Host(host) => cache.hosts.get_mut(host).map(|e| e.refreshing = false),
                    Key::Tenant(id) => cache.tenants.get_mut(id).map(|e| e.refreshing = false),
                };
            });
        }
    });
}

async fn read_host(kv: &KvStore, host: &str) -> worker::Result<Option<String>> {
    let value = kv
        .get(&format!("host:{host}"))
        .text()
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(value.map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()))
}

async fn read_tenant(kv: &KvStore, tenant_id: &str, secret: &MasterSecret) -> worker::Result<LoadedTenant> {
    let key = format!("tenant:{tenant_id}");
    let json = kv
        .get(&key)
        .text()
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?
        .ok_or_else(|| worker::Error::RustError(format!("{key} is missing")))?;
    let tenant = Tenant::from_json(&json).map_err(|e| worker::Error::RustError(format!("{key}: {e}")))?;
    if tenant.id != tenant_id {
        return Err(worker::Error::RustError(format!(
            "{key} holds the config of tenant `{}`",
            tenant.id
        )));
    }
    let keys = TenantKeys::derive(secret, &tenant.id);
    Ok(LoadedTenant { tenant, keys })
}

fn store_host(host: &str, value: Option<String>, now_ms: f64) {
    CACHE.with(|cache| {
        cache.borrow_mut().hosts.insert(
            host.to_owned(),
            Entry {
                value,
                fetched_at_ms: now_ms,
                refreshing: false,
            },
        );
    });
}

fn store_tenant(tenant_id: &str, loaded: Rc<LoadedTenant>, now_ms: f64) {
    CACHE.with(|cache| {
        cache.borrow_mut().tenants.insert(
            tenant_id.to_owned(),
            Entry {
                value: loaded,
                fetched_at_ms: now_ms,
                refreshing: false,
            },
        );
    });
}
