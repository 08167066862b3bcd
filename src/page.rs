//! Tenant pages: one call into the Wasm per request.
//!
//! `src/entry.mjs` does a page request's plumbing in JavaScript (reading headers, the origin
//! fetch, streaming the HTML edits, response headers) and crosses into the Wasm once:
//! [`plan_page`] runs the engine and returns everything it decided as one JSON document. Driving
//! the same work from Rust through the `worker` crate cost tenths of a millisecond of CPU per
//! request more, spent in wrapping JS objects and in dozens of crossings, not in the engine
//! (`make bench-edge`, bench/edge/results.md). Decisions stay here; the entry only carries them out.
//!
//! These exports become methods of the worker's entrypoint class (worker-build's glue), so a
//! trap inside one re-initialises the Wasm instance like a trap in `fetch` does.

use cohort_core::edge::{self, Plan, Visit};
use cohort_core::{Action, Tenant};
use serde::Serialize;
use worker::wasm_bindgen::prelude::*;
use worker::{Context, Env, Result, Url};

use crate::config_cache::{self, Cached, LoadedTenant};
use crate::settings::{Settings, settings};
use crate::{decide, geo_from_fields, now_ms, origin_override, origin_url};

/// What the entry does with a tenant's page (`planPage`'s JSON).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PagePlan<'a> {
    /// The URL to fetch: the request's own, the override origin's, or a variant's route.
    origin: String,
    /// Headers set on the origin request (`x-forwarded-host`, `cohort-assignments`, ...).
    headers: Vec<(&'a str, &'a str)>,
    /// Cache key of the origin fetch, per variant, for personalised responses.
    cache_key: Option<String>,
    /// `Set-Cookie` for the response when the sticky cookie changed.
    set_cookie: Option<&'a str>,
    /// The response depends on the visitor: never stored in a shared cache.
    personalised: bool,
    /// HTML edits, in the order they apply (only ever applied to `text/html`).
    actions: &'a [Action],
    /// The assignments script's JSON, `<` escaped, for pages that use the browser build.
    assignments: Option<String>,
}

/// Plans one page request. Returns `None` when the host's tenant is not cached in this isolate yet
/// (the entry awaits [`load_tenant`] and asks again), `""` for a host no tenant claims (passed
/// through untouched), and otherwise the [`PagePlan`] JSON. An error or a panic: the entry serves
/// the origin's response untouched.
#[wasm_bindgen(js_name = planPage)]
#[allow(clippy::too_many_arguments)]
pub fn plan_page(
    env: Env,
    ctx: worker::worker_sys::Context,
    url: &str,
    user_agent: &str,
    accept_language: &str,
    referer: &str,
    cookie_header: &str,
    sec_gpc: &str,
    purpose: &str,
    country: JsValue,
    region: JsValue,
    city: JsValue,
    asn: JsValue,
    colo: JsValue,
) -> std::result::Result<Option<String>, JsError> {
    let settings = settings(&env).map_err(js_error)?;
    let url = Url::parse(url).map_err(|e| JsError::new(&format!("request URL: {e}")))?;
    // Lets the end-to-end suite prove that even a panic fails open; unset in every real deployment.
    if settings.test_panic_path.as_deref() == Some(url.path()) {
        panic!("deliberate panic for the fail-open test");
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let now = now_ms();
    let ctx = Context::new(ctx);
    let loaded = match config_cache::cached(&env, &ctx, &settings, &host, now as f64) {
        Cached::NotLoaded => return Ok(None),
        Cached::NoTenant => return Ok(Some(String::new())),
        Cached::Tenant(loaded) => loaded,
    };
    let visit = Visit {
        url: url.as_str(),
        host: &host,
        path: url.path(),
        query: url.query().unwrap_or(""),
        user_agent,
        accept_language,
        referer,
        cookie_header,
        sec_gpc,
        purpose,
        // Read by the entry from `request.cf`.
        geo: geo_from_fields(country, region, city, asn, colo),
    };
    let plan = decide(&env, &ctx, &settings, &loaded, &visit, now).map_err(js_error)?;
    page_plan(&settings, &loaded, &plan, &url, &host)
        .map(Some)
        .map_err(js_error)
}

/// Reads the tenant serving `host` into the isolate's cache (at most one KV read per key); a KV
/// error or an invalid config rejects, and the entry fails open.
#[wasm_bindgen(
    js_name = loadTenant,
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
pub async fn load_tenant(env: Env, host: String) -> std::result::Result<(), JsError> {
    let settings = settings(&env).map_err(js_error)?;
    config_cache::load(&env, &settings, &host.to_ascii_lowercase(), now_ms() as f64)
        .await
        .map(|_| ())
        .map_err(js_error)
}

/// `Cache-Control` for a personalised response, from the origin's (see
/// [`edge::private_cache_control`]).
#[wasm_bindgen(js_name = privateCacheControl)]
pub fn private_cache_control(origin: Option<String>) -> String {
    edge::private_cache_control(origin.as_deref())
}

fn js_error(error: worker::Error) -> JsError {
    JsError::new(&error.to_string())
}

/// The engine's plan as the entry carries it out.
fn page_plan(settings: &Settings, loaded: &LoadedTenant, plan: &Plan, url: &Url, host: &str) -> Result<String> {
    let tenant: &Tenant = &loaded.tenant;
    let base = origin_override(settings.origin_override.as_deref(), Some(tenant));
    let mut origin = origin_url(url, base)?;
    if let Some(path) = &plan.route_path {
        let (path, query) = path
            .split_once('?')
            .map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
        origin.set_path(path);
        if query.is_some() {
            origin.set_query(query);
        }
    }
    let mut forwarded_host = host;
    if let Some(route_host) = &plan.route_host {
        if base.is_some() {
            // A loopback origin serves every host; tell it which one the variant wants.
            forwarded_host = route_host;
        } else {
            origin
                .set_host(Some(route_host))
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
        }
    }
    let mut headers = vec![("x-forwarded-host", forwarded_host)];
    headers.extend(
        plan.origin_headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    // Cached origin responses are kept apart per variant, never shared across variants.
    let cache_key = plan
        .is_personalised()
        .then(|| format!("{origin}#cohort:{}", plan.variant_signature()));
    let inject = tenant.edge.inject_assignments && plan.unit_id.is_some();
    // `<` cannot appear raw inside the script element, or a value could close it early.
    let assignments = inject.then(|| plan.assignments_json().to_string().replace('<', "\\u003c"));
    let page = PagePlan {
        origin: origin.into(),
        headers,
        cache_key,
        set_cookie: plan.set_cookie.as_deref(),
        personalised: plan.is_personalised(),
        actions: &plan.html_actions,
        assignments,
    };
    Ok(serde_json::to_string(&page)?)
}
