//! The one call into the Wasm per request, and the tenant load a cold isolate awaits first.
//!
//! These exports become methods of the worker's entrypoint class (worker-build's glue), so a trap
//! inside one re-initialises the Wasm instance for the next request.

use cohort_core::edge::Visitor;
use cohort_core::edge::private_cache_control as cache_control_rule;
use cohort_core::edge::serve::{Request, serve};
use cohort_core::wire::Kind;
use worker::wasm_bindgen::prelude::*;
use worker::{Context, Env};

use crate::config_cache;
use crate::js::RequestFacts;
use crate::settings::settings;
use crate::{beacon, log, now_ms, random_bytes};
use cohort_core::edge::config_cache::Cached;

/// Decides one request (`facts`: the entry's `RequestFacts`; `body`: a `POST` body under
/// `/_cohort/`). Returns `None` when the host's tenant is not in this isolate's cache yet (the
/// entry awaits [`load_tenant`] and asks again), `""` for a host no tenant claims, and otherwise
/// the JSON of a [`cohort_core::edge::serve::Handling`]. Exposures and conversions are queued for
/// delivery after the response. An error or a panic: the entry passes the request on untouched.
#[wasm_bindgen(js_name = handle)]
pub fn handle(
    env: Env,
    ctx: worker::worker_sys::Context,
    facts: JsValue,
    body: Option<Vec<u8>>,
) -> Result<Option<String>, JsError> {
    let settings = settings(&env).map_err(|e| JsError::new(&e))?;
    let facts = RequestFacts::read(&facts);
    let url = cohort_core::edge::origin::UrlParts::parse(&facts.url)
        .ok_or_else(|| JsError::new(&format!("request URL `{}` is not absolute http(s)", facts.url)))?;
    // Lets the end-to-end suite prove that even a panic fails open; unset in every real deployment.
    if settings.test_panics.path.as_deref() == Some(url.path) {
        panic!("deliberate panic for the fail-open test");
    }
    let host = url.host.to_ascii_lowercase();
    let now = now_ms();
    let ctx = Context::new(ctx);
    let loaded = match config_cache::lookup(&env, &ctx, &settings, &host, now as f64) {
        Cached::Missing(_) => return Ok(None),
        Cached::NoTenant => return Ok(Some(String::new())),
        Cached::Tenant(loaded) => loaded,
    };
    let unit_id_header = match &loaded.tenant.edge.unit_id_header {
        Some(name) => facts.header(name),
        None => String::new(),
    };
    let request = Request {
        method: &facts.method,
        url: &facts.url,
        visitor: Visitor {
            user_agent: &facts.user_agent,
            accept_language: &facts.accept_language,
            referer: &facts.referer,
            cookie_header: &facts.cookie,
            sec_gpc: &facts.sec_gpc,
            unit_id_header: &unit_id_header,
            purpose: &facts.purpose,
            geo: facts.geo,
            bot_management: facts.bot_management,
        },
        body: body.as_deref(),
        client_ip: &facts.client_ip,
        track_limit: facts.track_limit,
    };
    let random = random_bytes().map_err(|e| JsError::new(&e))?;
    let served = serve(
        &loaded.tenant,
        &loaded.keys,
        request,
        facts.origin_override.as_deref(),
        now,
        random,
    )
    .map_err(|e| JsError::new(&e))?;
    for line in &served.log {
        let fields: Vec<(&str, &str)> = line.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        log::event(line.event, &fields);
    }
    let tenant = &loaded.tenant.id;
    let key = loaded.keys.beacon;
    for (kind, records) in [
        (Kind::Exposures, served.exposures),
        (Kind::Conversions, served.conversions),
    ] {
        if !records.is_empty() {
            beacon::enqueue(&ctx, &env, &settings, kind, tenant, key, records);
        }
    }
    serde_json::to_string(&served.handling)
        .map(Some)
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Reads the tenant serving `host` into the isolate's cache (at most one KV read per key); a KV
/// error or an invalid config rejects, and the entry fails open.
#[wasm_bindgen(
    js_name = loadTenant,
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
pub async fn load_tenant(env: Env, ctx: worker::worker_sys::Context, host: String) -> Result<(), JsError> {
    let settings = settings(&env).map_err(|e| JsError::new(&e))?;
    config_cache::load(&env, &Context::new(ctx), &settings, &host.to_ascii_lowercase())
        .await
        .map_err(|e| JsError::new(&e))
}

/// `Cache-Control` for a personalised response, from the origin's (the rule is
/// [`cohort_core::edge::private_cache_control`]'s).
#[wasm_bindgen(js_name = privateCacheControl)]
pub fn private_cache_control(origin: Option<String>) -> String {
    cache_control_rule(origin.as_deref())
}
