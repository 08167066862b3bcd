//! Cohort's edge worker: a thin adapter from workerd requests to `cohort-core` and back.
//!
//! Per request: find the tenant by hostname (KV, cached per isolate), let the engine decide
//! everything ([`cohort_core::edge::plan`]), then carry the plan out: origin URL and headers, HTML
//! edits, `Set-Cookie`, cache policy, and exposure beacons after the response. Anything that fails
//! serves the origin's response untouched (fail open); the worker never answers 5xx itself.
//!
//! Tenant pages take the one-call path of [`page`] (driven by `src/entry.mjs`); the first-party
//! endpoints under `/_cohort/` and the delivery queue's consumer are served here through the
//! `worker` crate.

mod beacon;
mod config_cache;
mod delivery;
mod log;
mod page;
mod settings;

use cohort_core::Tenant;
use cohort_core::delivery::Kind;
use cohort_core::edge::{self, Geo, Plan, Visit};
use config_cache::LoadedTenant;
use settings::{Settings, settings, var};
use worker::wasm_bindgen::JsValue;
use worker::{Context, Env, Fetch, Method, Request, RequestInit, RequestRedirect, Response, Result, Url, event};

const ASSIGNMENTS_ENDPOINT: &str = "/_cohort/assignments";
const TRACK_ENDPOINT: &str = "/_cohort/track";
const MAX_TRACK_BODY: usize = 16 * 1024;
/// Headers that mark a prefetch or prerender, joined with `;` into `Visit::purpose`
/// (`src/entry.mjs` keeps the same list for pages).
const PURPOSE_HEADERS: [&str; 4] = ["sec-purpose", "purpose", "x-purpose", "x-moz"];

#[event(fetch)]
pub async fn fetch(mut request: Request, env: Env, ctx: Context) -> Result<Response> {
    // A request with a body is copied first so failing open can still send the body; one without
    // is simply reused. (A panic is caught by `src/entry.mjs`, which keeps its own copy.)
    let spare = match request.method() {
        Method::Get | Method::Head => None,
        _ => Some(request.clone()?),
    };
    match serve(&mut request, &env, &ctx).await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => pass_through(request, &env).await,
        Err(error) => {
            log::event("fail_open", &[("step", "endpoint"), ("error", &error.to_string())]);
            pass_through(spare.unwrap_or(request), &env).await
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

pub(crate) fn random_bytes() -> Result<[u8; 16]> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| worker::Error::RustError(format!("getrandom: {e}")))?;
    Ok(bytes)
}

/// The response of a first-party endpoint, or `None` for anything else and for hosts no tenant
/// claims (passed through). Tenant pages come here only if `src/entry.mjs` is bypassed.
async fn serve(request: &mut Request, env: &Env, ctx: &Context) -> Result<Option<Response>> {
    let settings = settings(env)?;
    let url = request.url()?;
    let endpoint = match (request.method(), url.path()) {
        (Method::Get, ASSIGNMENTS_ENDPOINT) => ASSIGNMENTS_ENDPOINT,
        (Method::Post, TRACK_ENDPOINT) => TRACK_ENDPOINT,
        _ => return Ok(None),
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let now = now_ms();
    let Some(loaded) = config_cache::tenant_for_host(env, ctx, &settings, &host, now as f64).await? else {
        return Ok(None);
    };
    let headers = request.headers();
    let header = |name: &str| headers.get(name).ok().flatten().unwrap_or_default();
    let (user_agent, accept_language, referer, cookie_header, sec_gpc) = (
        header("user-agent"),
        header("accept-language"),
        header("referer"),
        header("cookie"),
        header("sec-gpc"),
    );
    let purpose = PURPOSE_HEADERS.map(header).join(";");
    let cf = js_field(request.inner(), "cf");
    // The assignments endpoint answers for the page a single-page app is showing.
    let page_path = match endpoint {
        ASSIGNMENTS_ENDPOINT => edge::query_param(url.query().unwrap_or(""), "path").unwrap_or_else(|| "/".into()),
        _ => url.path().to_owned(),
    };
    let visit = Visit {
        url: url.as_str(),
        host: &host,
        path: &page_path,
        query: url.query().unwrap_or(""),
        user_agent: &user_agent,
        accept_language: &accept_language,
        referer: &referer,
        cookie_header: &cookie_header,
        sec_gpc: &sec_gpc,
        purpose: &purpose,
        geo: geo(&cf),
    };
    let plan = decide(env, ctx, &settings, &loaded, &visit, now)?;

    let response = match endpoint {
        ASSIGNMENTS_ENDPOINT => {
            let response = Response::from_json(&plan.assignments_json())?;
            finish(response, &plan, "no-store")
        }
        _ => track(request, env, &settings, ctx, &loaded, &plan, now).await,
    };
    response.map(Some)
}

/// Adds `Set-Cookie` and the endpoint's `Cache-Control`.
fn finish(response: Response, plan: &Plan, cache_control: &str) -> Result<Response> {
    let headers = response.headers().clone();
    if let Some(cookie) = &plan.set_cookie {
        headers.append("set-cookie", cookie)?;
    }
    headers.set("cache-control", cache_control)?;
    Ok(response.with_headers(headers))
}

/// `POST /_cohort/track`: conversions for the visitor's unit, forwarded signed to the collector.
async fn track(
    request: &mut Request,
    env: &Env,
    settings: &Settings,
    ctx: &Context,
    loaded: &LoadedTenant,
    plan: &Plan,
    now: i64,
) -> Result<Response> {
    let Some(unit) = &plan.unit_id else {
        // Bots, GPC and opted-out visitors are not tracked.
        return finish(Response::empty()?.with_status(204), plan, "no-store");
    };
    let body = request.bytes().await?;
    if body.len() > MAX_TRACK_BODY {
        return finish(
            Response::error(format!("body over {MAX_TRACK_BODY} bytes"), 413)?,
            plan,
            "no-store",
        );
    }
    let conversions = match edge::track_events(&body, &loaded.tenant.id, unit, now, random_bytes()?) {
        Ok(conversions) => conversions,
        Err(reason) => {
            let error = serde_json::json!({ "error": { "code": "invalid_event", "message": reason } });
            return finish(Response::from_json(&error)?.with_status(400), plan, "no-store");
        }
    };
    let accepted = conversions.len();
    let records = conversions
        .iter()
        .map(serde_json::to_string)
        .collect::<serde_json::Result<_>>()?;
    let route = route(env, settings);
    beacon::enqueue(ctx, route, Kind::Events, &loaded.tenant.id, loaded.keys.beacon, records);
    let response = Response::from_json(&serde_json::json!({ "accepted": accepted }))?.with_status(202);
    finish(response, plan, "no-store")
}

/// The engine's plan for one visit, with what must happen whatever the response: an ignored
/// preview token is logged and the exposures are queued (pages and endpoints alike).
pub(crate) fn decide(
    env: &Env,
    ctx: &Context,
    settings: &Settings,
    loaded: &LoadedTenant,
    visit: &Visit<'_>,
    now: i64,
) -> Result<Plan> {
    let plan = edge::plan(&loaded.tenant, &loaded.keys, visit, now, random_bytes()?);
    if let Some(problem) = &plan.preview_problem {
        log::event("preview_ignored", &[("tenant", &loaded.tenant.id), ("reason", problem)]);
    }
    if !plan.exposures.is_empty() {
        let records = plan
            .exposures
            .iter()
            .map(serde_json::to_string)
            .collect::<serde_json::Result<_>>()?;
        let route = route(env, settings);
        beacon::enqueue(
            ctx,
            route,
            Kind::Exposures,
            &loaded.tenant.id,
            loaded.keys.beacon,
            records,
        );
    }
    Ok(plan)
}

/// Where this request's records go: the delivery queue if it is bound, the collector as fallback.
fn route(env: &Env, settings: &Settings) -> beacon::Route {
    beacon::Route {
        queue: env
            .queue(&settings.queue_binding)
            .map_err(|e| format!("queue binding {}: {e}", settings.queue_binding)),
        collector: settings.collector_url.clone(),
    }
}

/// The edge's geography from `request.cf`. Read field by field from the JS object: any of them may
/// be missing (and the `worker` crate's typed getters panic on a missing `colo`).
fn geo(cf: &JsValue) -> Geo {
    let field = |name: &str| {
        if cf.is_object() {
            js_field(cf, name)
        } else {
            JsValue::UNDEFINED
        }
    };
    geo_from_fields(
        field("country"),
        field("region"),
        field("city"),
        field("asn"),
        field("colo"),
    )
}

/// `target[name]`, or `undefined` when it cannot be read.
pub(crate) fn js_field(target: &JsValue, name: &str) -> JsValue {
    worker::js_sys::Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The geography from `request.cf`'s fields; one that is missing, empty or of the wrong type is
/// unknown.
pub(crate) fn geo_from_fields(country: JsValue, region: JsValue, city: JsValue, asn: JsValue, colo: JsValue) -> Geo {
    let text = |value: JsValue| value.as_string().filter(|v| !v.is_empty());
    Geo {
        country: text(country),
        region: text(region),
        city: text(city),
        asn: asn
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX))
            .map(|n| n as u32),
        colo: text(colo),
    }
}

/// A tenant's configured origin, else `ORIGIN_OVERRIDE`.
pub(crate) fn origin_override<'a>(global: Option<&'a str>, tenant: Option<&'a Tenant>) -> Option<&'a str> {
    tenant.and_then(|t| t.edge.origin.as_deref()).or(global)
}

/// The origin URL for a request: the override's scheme and authority with the request's path and
/// query, or the request's own URL in production.
pub(crate) fn origin_url(url: &Url, base: Option<&str>) -> Result<Url> {
    let Some(base) = base else {
        return Ok(url.clone());
    };
    let mut origin = Url::parse(base).map_err(|e| worker::Error::RustError(format!("origin `{base}`: {e}")))?;
    origin.set_path(url.path());
    origin.set_query(url.query());
    Ok(origin)
}

/// A request to `target` carrying `request`'s method and body, redirects passed to the visitor.
fn forward(request: &Request, target: &Url, headers: worker::Headers) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(request.method())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if let Some(body) = request.inner().body() {
        init.with_body(Some(body.into()));
    }
    Request::new_with_init(target.as_str(), &init)
}

/// Sends a request to its origin untouched: unknown hosts, and every failure (fail open).
async fn pass_through(request: Request, env: &Env) -> Result<Response> {
    let url = request.url()?;
    let global = var(env, "ORIGIN_OVERRIDE");
    let target = origin_url(&url, global.as_deref())?;
    let outgoing = if target == url {
        request
    } else {
        let headers = request.headers().clone();
        headers.set("x-forwarded-host", url.host_str().unwrap_or_default())?;
        forward(&request, &target, headers)?
    };
    match Fetch::Request(outgoing).send().await {
        Ok(response) => Ok(response),
        Err(error) => {
            // The origin itself is unreachable: nothing of ours to fall back on.
            log::event("origin_unreachable", &[("error", &error.to_string())]);
            Response::error("Bad Gateway: origin unreachable", 502)
        }
    }
}
