//! What the edge worker does with one request, decided without I/O.
//!
//! The worker (`src/`) reads a platform request into a [`serve::Request`], calls [`serve::serve`]
//! and carries the [`serve::Served`] out: a page's origin request and edits ([`origin`]), an
//! endpoint's answer, or the request passed on untouched, and the records it beacons through its
//! [`outbox`]. [`plan`] is the engine's part: assignment, cookie, exposures. The isolate's config
//! cache policy is [`config_cache`]; the queue consumer's is [`crate::delivery::consumer`]. Keeping
//! every decision here makes it testable natively and identical on every platform.

mod bot_list;
pub mod bots;
pub mod config_cache;
pub mod origin;
pub mod outbox;
pub mod serve;
pub mod settings;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{Action, Status};
use crate::cookie::{StickyCookie, StickyEntry, unit_id_from_random};
use crate::evaluate::{Context, Outcome};
use crate::exposure::{Conversion, DeviceClass, Exposure, HOLDOUT_EXPERIMENT};
use crate::preview::Preview;
use crate::secrets::{BeaconKey, CookieKey, MasterSecret};
use crate::tenant::Tenant;
pub use bots::is_bot;

/// Sticky cookie lifetime: browsers cap cookies at 400 days.
pub const COOKIE_MAX_AGE_SECONDS: i64 = 400 * 24 * 3600;
/// A cookie whose contents did not change is re-issued after this long, so active visitors' cookies
/// never reach the stale limit.
pub const COOKIE_REFRESH_SECONDS: i64 = 7 * 24 * 3600;
/// Cookie name when the cookie is host-only (`__Host-` requires Secure, Path=/ and no Domain).
pub const HOST_COOKIE_NAME: &str = "__Host-cohort";
/// Cookie name when the tenant shares the cookie across subdomains.
pub const DOMAIN_COOKIE_NAME: &str = "cohort";
/// Query parameter carrying a QA preview token.
pub const PREVIEW_PARAM: &str = "cohort_preview";
/// Request header telling the origin the visitor's variants: `exp=variant, exp2=variant`.
pub const ASSIGNMENTS_HEADER: &str = "cohort-assignments";
/// Most conversion events one `/_cohort/track` request may carry.
pub const MAX_TRACK_EVENTS: usize = 20;

/// The per-tenant keys the edge needs, derived once when the tenant's config is loaded.
#[derive(Debug, Clone)]
pub struct TenantKeys {
    /// Sticky cookie MAC key.
    pub cookie: CookieKey,
    /// Beacon signing key.
    pub beacon: BeaconKey,
    /// Preview-link key.
    pub preview: [u8; 32],
}

impl TenantKeys {
    /// Derives `tenant`'s keys from the platform secret.
    pub fn derive(secret: &MasterSecret, tenant: &str) -> TenantKeys {
        TenantKeys {
            cookie: secret.cookie_key(tenant),
            beacon: secret.beacon_key(tenant),
            preview: secret.preview_key(tenant),
        }
    }
}

/// Geography the CDN attaches to a request (`request.cf` on Cloudflare).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Region (state, province) name.
    pub region: Option<String>,
    /// City name.
    pub city: Option<String>,
    /// Autonomous system number of the visitor's network.
    pub asn: Option<u32>,
    /// Edge location (IATA code) that served the request.
    pub colo: Option<String>,
}

impl Geo {
    /// The geography from the CDN's raw fields, as JavaScript hands them over: an empty text is
    /// unknown, and an ASN is kept only when it is a whole number that fits in 32 bits.
    pub fn from_raw(
        country: Option<String>,
        region: Option<String>,
        city: Option<String>,
        asn: Option<f64>,
        colo: Option<String>,
    ) -> Geo {
        let known = |text: Option<String>| text.filter(|t| !t.is_empty());
        Geo {
            country: known(country),
            region: known(region),
            city: known(city),
            asn: asn
                .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX))
                .map(|n| n as u32),
            colo: known(colo),
        }
    }
}

/// What a request says about its visitor: the headers the engine reads and the CDN's geography.
#[derive(Debug, Clone, Default)]
pub struct Visitor<'a> {
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// `Accept-Language`.
    pub accept_language: &'a str,
    /// `Referer`.
    pub referer: &'a str,
    /// `Cookie`.
    pub cookie_header: &'a str,
    /// `Sec-GPC`.
    pub sec_gpc: &'a str,
    /// The header the tenant's `edge.unit_id_header` names; empty when it names none or the
    /// request lacks it.
    pub unit_id_header: &'a str,
    /// The prefetch/prerender headers (`Sec-Purpose`, `Purpose`, `X-Purpose`, `X-Moz`) joined with `;`.
    pub purpose: &'a str,
    /// CDN geography.
    pub geo: Geo,
    /// The CDN's own bot verdict, where the zone has one.
    pub bot_management: BotManagement,
}

/// Cloudflare Bot Management's verdict on a request (`request.cf.botManagement`): absent on zones
/// without the product, and then only the user agent decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotManagement {
    /// 1 (automated) to 99 (human); `None` when not scored.
    pub score: Option<u8>,
    /// A crawler Cloudflare has verified (search engines, monitors).
    pub verified_bot: bool,
}

impl BotManagement {
    /// Scores below this are "likely automated" in Cloudflare's bands (1 is "automated").
    pub const AUTOMATED_BELOW: u8 = 30;

    /// From the platform's raw values: a score outside 1–99 or not whole is no score.
    pub fn from_raw(score: Option<f64>, verified_bot: Option<bool>) -> BotManagement {
        BotManagement {
            score: score
                .filter(|s| s.fract() == 0.0 && (1.0..=99.0).contains(s))
                .map(|s| s as u8),
            verified_bot: verified_bot.unwrap_or(false),
        }
    }

    /// Whether the CDN says the request is automated.
    pub fn is_automated(self) -> bool {
        self.verified_bot || self.score.is_some_and(|score| score < Self::AUTOMATED_BELOW)
    }
}

/// The platform-free facts of one page view.
#[derive(Debug, Clone, Default)]
pub struct Visit<'a> {
    /// Full request URL.
    pub url: &'a str,
    /// Hostname without port.
    pub host: &'a str,
    /// Path, percent-encoded as received.
    pub path: &'a str,
    /// Query string without `?`.
    pub query: &'a str,
    /// The visitor.
    pub visitor: Visitor<'a>,
}

/// Why a visitor is served the default experience with no cookie and no exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// A known bot or crawler.
    Bot,
    /// A prefetch or prerender the visitor may never see.
    Prefetch,
    /// The browser sends `Sec-GPC: 1`.
    GlobalPrivacyControl,
    /// The tenant's opt-out cookie is present.
    OptedOut,
}

impl Exclusion {
    /// Stable code for logs.
    pub fn code(self) -> &'static str {
        match self {
            Exclusion::Bot => "bot",
            Exclusion::Prefetch => "prefetch",
            Exclusion::GlobalPrivacyControl => "gpc",
            Exclusion::OptedOut => "opted_out",
        }
    }
}

/// One experiment the visitor is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Experiment key.
    pub experiment: String,
    /// Variant key.
    pub variant: String,
}

/// Everything the worker does for one request.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Set when the visitor is not experimented on.
    pub exclusion: Option<Exclusion>,
    /// The visitor's unit id (none for excluded visitors).
    pub unit_id: Option<String>,
    /// Variants served, in config order.
    pub assignments: Vec<Assignment>,
    /// Split-URL routing: replacement origin path (with query) and/or host. The first
    /// experiment with a route action decides.
    pub route_path: Option<String>,
    /// Replacement origin host.
    pub route_host: Option<String>,
    /// Headers to add to the origin request, `cohort-assignments` included.
    pub origin_headers: Vec<(String, String)>,
    /// HTML edits for the response, in config order.
    pub html_actions: Vec<Action>,
    /// A `Set-Cookie` value when the sticky cookie must change.
    pub set_cookie: Option<String>,
    /// Exposures to beacon after the response; for a newly issued unit of a tenant with a holdout,
    /// led by its holdout membership record ([`crate::exposure::HOLDOUT_EXPERIMENT`]).
    pub exposures: Vec<Exposure>,
    /// Why the incoming cookie was refused, for the log (a missing cookie is not an error).
    pub cookie_problem: Option<String>,
    /// Why a preview token was ignored, for the log.
    pub preview_problem: Option<String>,
}

impl Plan {
    /// Whether the response depends on the visitor: it must not be stored in a shared cache.
    pub fn is_personalised(&self) -> bool {
        self.set_cookie.is_some() || !self.assignments.is_empty()
    }

    /// A cache-key suffix that differs between variants, for caching origin responses per variant.
    pub fn variant_signature(&self) -> String {
        self.assignments
            .iter()
            .map(|a| format!("{}={}", a.experiment, a.variant))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The visitor's assignments as JSON (`/_cohort/assignments` and the injected script).
    pub fn assignments_json(&self) -> Value {
        let assignments: Map<String, Value> = self
            .assignments
            .iter()
            .map(|a| (a.experiment.clone(), Value::String(a.variant.clone())))
            .collect();
        json!({ "unit": self.unit_id, "assignments": assignments })
    }
}

/// Decides everything for one page view of `tenant`. `random_unit` seeds a new unit id when the
/// visitor has no valid cookie; `now_ms` is the current time.
pub fn plan(tenant: &Tenant, keys: &TenantKeys, visit: &Visit<'_>, now_ms: i64, random_unit: [u8; 16]) -> Plan {
    plan_request(tenant, keys, visit, now_ms, random_unit, Shown::Page)
}

/// The plan of a request that shows the visitor nothing (`/_cohort/track`): the unit, its cookie
/// and a new unit's holdout record, but no experiment is assigned or exposed. An exposure means the
/// visitor was shown the variant; logged when a conversion arrives instead, it would count the
/// converting units of every experiment without paths as exposed, converted and all.
pub fn plan_unit(tenant: &Tenant, keys: &TenantKeys, visit: &Visit<'_>, now_ms: i64, random_unit: [u8; 16]) -> Plan {
    plan_request(tenant, keys, visit, now_ms, random_unit, Shown::Nothing)
}

/// What a request shows the visitor, which decides whether it assigns and exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A page: experiments are assigned, and exposed when their paths match.
    Page,
    /// Nothing (a first-party endpoint): only the unit and its cookie.
    Nothing,
}

fn plan_request(
    tenant: &Tenant,
    keys: &TenantKeys,
    visit: &Visit<'_>,
    now_ms: i64,
    random_unit: [u8; 16],
    shown: Shown,
) -> Plan {
    let now = now_ms.div_euclid(1000);
    let mut plan = Plan::default();
    if let Some(exclusion) = exclusion(tenant, visit) {
        plan.exclusion = Some(exclusion);
        // The default experience includes winners already shipped to everyone.
        for experiment in &tenant.experiments {
            if let (Status::Stopped, Some(winner)) = (experiment.status, experiment.winner)
                && experiment.paths.matches(visit.path)
            {
                add_variant(&mut plan, &experiment.key, &experiment.variants[winner]);
            }
        }
        finish_headers(&mut plan);
        return plan;
    }

    let cookie_name = cookie_name(tenant);
    let incoming = cookie_value(visit.visitor.cookie_header, cookie_name);
    let previous = match incoming.map(|value| StickyCookie::decode(value, &keys.cookie, now, COOKIE_MAX_AGE_SECONDS)) {
        Some(Ok(cookie)) => Some(cookie),
        Some(Err(error)) => {
            plan.cookie_problem = Some(error.to_string());
            None
        }
        None => None,
    };
    // A site's own unit id wins over Cohort's, and a sticky cookie issued to another unit does
    // not carry over to it (its assignments belong to that unit).
    let site_unit = site_unit_id(tenant, &visit.visitor, &mut plan);
    let previous = previous.filter(|cookie| site_unit.is_none_or(|unit| cookie.unit_id == unit));
    let unit_id = match (site_unit, &previous) {
        (Some(unit), _) => unit.to_owned(),
        (None, Some(cookie)) => cookie.unit_id.clone(),
        (None, None) => unit_id_from_random(random_unit),
    };
    let sticky: &[StickyEntry] = previous.as_ref().map_or(&[], |c| &c.assignments);

    let mut forced = BTreeMap::new();
    if let Some(token) = query_param(visit.query, PREVIEW_PARAM) {
        match Preview::verify(&token, &keys.preview, &tenant.id, now) {
            Ok(preview) => forced = preview.forced,
            Err(error) => plan.preview_problem = Some(error.to_string()),
        }
    }

    let device = device_class(visit.visitor.user_agent);
    let mut attributes = attributes(visit, device);
    if let Some(object) = attributes.as_object_mut() {
        object.insert("id".into(), Value::String(unit_id.clone()));
    }
    let country = visit.visitor.geo.country.clone().filter(|c| c.len() == 2);
    // Holdout membership is recorded once per unit: when its id is issued (no cookie, or one that
    // failed verification). Returning units were recorded when they were new.
    if previous.is_none()
        && let Some(variant) = tenant.holdout_variant(&unit_id)
    {
        plan.exposures.push(Exposure {
            country: country.clone(),
            device: Some(device),
            ..Exposure::new(
                &tenant.id,
                HOLDOUT_EXPERIMENT,
                variant,
                &unit_id,
                tenant.version,
                now_ms,
            )
        });
    }
    // Nothing is shown: the cookie keeps its assignments as they are.
    if shown == Shown::Nothing {
        finish_headers(&mut plan);
        let kept = sticky.to_vec();
        return with_cookie(plan, tenant, keys, previous, unit_id, kept, now);
    }
    let evaluation = tenant.evaluate(&Context {
        unit_id: &unit_id,
        attributes: &attributes,
        path: visit.path,
        now_ms,
        sticky,
        forced: &forced,
    });
    for decision in &evaluation.decisions {
        if let Outcome::Assigned {
            variant, log_exposure, ..
        } = decision.outcome
        {
            let experiment = decision.experiment;
            add_variant(&mut plan, &experiment.key, &experiment.variants[variant]);
            if log_exposure {
                let variant = &experiment.variants[variant].key;
                plan.exposures.push(Exposure {
                    country: country.clone(),
                    device: Some(device),
                    ..Exposure::new(&tenant.id, &experiment.key, variant, &unit_id, tenant.version, now_ms)
                });
            }
        }
    }
    finish_headers(&mut plan);
    let assignments = evaluation.sticky_after(sticky);
    with_cookie(plan, tenant, keys, previous, unit_id, assignments, now)
}

/// Sets the sticky cookie (when it changed) and the unit on `plan`.
fn with_cookie(
    mut plan: Plan,
    tenant: &Tenant,
    keys: &TenantKeys,
    previous: Option<StickyCookie>,
    unit_id: String,
    assignments: Vec<StickyEntry>,
    now: i64,
) -> Plan {
    let next = StickyCookie {
        unit_id: unit_id.clone(),
        config_version: tenant.version,
        issued_at: now,
        assignments,
    };
    let unchanged = previous.as_ref().is_some_and(|old| {
        old.unit_id == next.unit_id
            && old.config_version == next.config_version
            && old.assignments == next.assignments
            && now - old.issued_at < COOKIE_REFRESH_SECONDS
    });
    if !unchanged {
        plan.set_cookie = Some(set_cookie_header(tenant, &next.encode(&keys.cookie)));
    }
    plan.unit_id = Some(unit_id);
    plan
}

fn add_variant(plan: &mut Plan, experiment: &str, variant: &crate::tenant::Variant) {
    plan.assignments.push(Assignment {
        experiment: experiment.to_owned(),
        variant: variant.key.clone(),
    });
    for action in &variant.actions {
        match action {
            Action::Route { path, host } => {
                if plan.route_path.is_none() && plan.route_host.is_none() {
                    plan.route_path.clone_from(path);
                    plan.route_host.clone_from(host);
                }
            }
            Action::RequestHeader { name, value } => plan.origin_headers.push((name.clone(), value.clone())),
            html => plan.html_actions.push(html.clone()),
        }
    }
}

fn finish_headers(plan: &mut Plan) {
    if !plan.assignments.is_empty() {
        let value = plan
            .assignments
            .iter()
            .map(|a| format!("{}={}", a.experiment, a.variant))
            .collect::<Vec<_>>()
            .join(", ");
        plan.origin_headers.push((ASSIGNMENTS_HEADER.to_owned(), value));
    }
}

/// Bots, prefetches, GPC and opted-out visitors are not experimented on.
pub fn exclusion(tenant: &Tenant, visit: &Visit<'_>) -> Option<Exclusion> {
    if visit.visitor.bot_management.is_automated() || is_bot(visit.visitor.user_agent) {
        return Some(Exclusion::Bot);
    }
    let purpose = visit.visitor.purpose.to_ascii_lowercase();
    if purpose.contains("prefetch") || purpose.contains("prerender") {
        return Some(Exclusion::Prefetch);
    }
    if visit.visitor.sec_gpc.trim() == "1" {
        return Some(Exclusion::GlobalPrivacyControl);
    }
    if let Some(name) = &tenant.edge.opt_out_cookie
        && cookie_value(visit.visitor.cookie_header, name).is_some()
    {
        return Some(Exclusion::OptedOut);
    }
    None
}

/// Coarse device class from the user agent.
pub fn device_class(user_agent: &str) -> DeviceClass {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("ipad") || ua.contains("tablet") || (ua.contains("android") && !ua.contains("mobile")) {
        DeviceClass::Tablet
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("ipod") {
        DeviceClass::Mobile
    } else if ua.contains("windows") || ua.contains("macintosh") || ua.contains("x11") || ua.contains("cros") {
        DeviceClass::Desktop
    } else {
        DeviceClass::Other
    }
}

/// Targeting attributes of a visit: `url`, `host`, `path`, `query` (object), `language`,
/// `languages`, `device`, `browser`, `referrer`, `cookies` (the site's own, not Cohort's), and the
/// edge's geography (`country`, `region`, `city`, `asn`, `colo`). [`plan`] adds the unit's `id`.
pub fn attributes(visit: &Visit<'_>, device: DeviceClass) -> Value {
    let languages: Vec<Value> = visit
        .visitor
        .accept_language
        .split(',')
        .filter_map(|part| part.split(';').next().map(str::trim))
        .filter(|tag| !tag.is_empty() && *tag != "*")
        .map(|tag| Value::String(tag.to_owned()))
        .collect();
    let query: Map<String, Value> = visit
        .query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key != PREVIEW_PARAM).then(|| (percent_decode(key), Value::String(percent_decode(value))))
        })
        .collect();
    let cookies: Map<String, Value> = cookie_pairs(visit.visitor.cookie_header)
        .filter(|(name, _)| *name != HOST_COOKIE_NAME && *name != DOMAIN_COOKIE_NAME)
        .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
        .collect();
    let mut attributes = json!({
        "url": visit.url,
        "host": visit.host,
        "path": visit.path,
        "query": query,
        "device": device.as_str(),
        "browser": browser(visit.visitor.user_agent),
        "cookies": cookies,
    });
    let object = attributes.as_object_mut().expect("built as an object");
    if let Some(Value::String(first)) = languages.first() {
        object.insert("language".into(), Value::String(first.clone()));
    }
    object.insert("languages".into(), Value::Array(languages));
    if !visit.visitor.referer.is_empty() {
        object.insert("referrer".into(), Value::String(visit.visitor.referer.to_owned()));
    }
    let geo = &visit.visitor.geo;
    for (key, value) in [
        ("country", &geo.country),
        ("region", &geo.region),
        ("city", &geo.city),
        ("colo", &geo.colo),
    ] {
        if let Some(value) = value {
            object.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(asn) = geo.asn {
        object.insert("asn".into(), json!(asn));
    }
    attributes
}

fn browser(user_agent: &str) -> &'static str {
    // Order matters: Edge and Opera also say Chrome; Chrome also says Safari.
    let ua = user_agent;
    if ua.contains("Edg/") {
        "edge"
    } else if ua.contains("OPR/") {
        "opera"
    } else if ua.contains("Firefox/") {
        "firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        "chrome"
    } else if ua.contains("Safari/") {
        "safari"
    } else {
        "other"
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match text.get(i + 1..i + 3).and_then(crate::encoding::hex_decode) {
                Some(byte) => {
                    out.push(byte[0]);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        Some((
            name.trim(),
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value),
        ))
    })
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    cookie_pairs(header).find(|(n, _)| *n == name).map(|(_, value)| value)
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// The site's own unit id: the tenant's `edge.unit_id_header`, else its `edge.unit_id_cookie`,
/// whichever the request carries a usable value of first: 1 to 64 visible ASCII characters (what
/// the sticky cookie can store). An unusable value is reported as the request's cookie problem
/// and passed over.
fn site_unit_id<'h>(tenant: &Tenant, visitor: &Visitor<'h>, plan: &mut Plan) -> Option<&'h str> {
    let from_header = tenant
        .edge
        .unit_id_header
        .as_deref()
        .filter(|_| !visitor.unit_id_header.is_empty())
        .map(|name| ("header", name, visitor.unit_id_header));
    let from_cookie = tenant
        .edge
        .unit_id_cookie
        .as_deref()
        .and_then(|name| Some(("cookie", name, cookie_value(visitor.cookie_header, name)?)));
    [from_header, from_cookie]
        .into_iter()
        .flatten()
        .find_map(|(source, name, value)| {
            let usable = !value.is_empty()
                && value.len() <= crate::cookie::MAX_UNIT_ID_LEN
                && value.bytes().all(|b| b.is_ascii_graphic());
            if !usable && plan.cookie_problem.is_none() {
                plan.cookie_problem = Some(format!(
                    "unit id {source} `{name}`: not 1 to {} visible ASCII characters; passed over",
                    crate::cookie::MAX_UNIT_ID_LEN
                ));
            }
            usable.then_some(value)
        })
}

/// The sticky cookie's name for `tenant`.
pub fn cookie_name(tenant: &Tenant) -> &'static str {
    if tenant.edge.cookie_domain.is_some() {
        DOMAIN_COOKIE_NAME
    } else {
        HOST_COOKIE_NAME
    }
}

fn set_cookie_header(tenant: &Tenant, value: &str) -> String {
    let scope = match &tenant.edge.cookie_domain {
        Some(domain) => format!("{DOMAIN_COOKIE_NAME}={value}; Domain={domain}"),
        None => format!("{HOST_COOKIE_NAME}={value}"),
    };
    format!("{scope}; Path=/; Max-Age={COOKIE_MAX_AGE_SECONDS}; Secure; HttpOnly; SameSite=Lax")
}

/// `Cache-Control` for a personalised response: never stored by shared caches. `public`,
/// `s-maxage` and `proxy-revalidate` are dropped and `private` added; the browser's own directives
/// (`max-age`, `no-store`, ...) are kept.
pub fn private_cache_control(origin: Option<&str>) -> String {
    let mut directives: Vec<&str> = origin
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let name = d.split('=').next().unwrap_or("").trim().to_ascii_lowercase();
            !matches!(name.as_str(), "public" | "private" | "s-maxage" | "proxy-revalidate")
        })
        .collect();
    directives.insert(0, "private");
    directives.join(", ")
}

/// A conversion event as a page posts it to `/_cohort/track`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackEvent {
    metric: String,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    id: Option<String>,
}

/// Turns a `/_cohort/track` body (one event object or an array of up to [`MAX_TRACK_EVENTS`]) into
/// conversions for `unit`. An event without an `id` gets one from `random` (so a retry of the
/// same request is counted twice; pages that retry should send ids). Errors name the event index
/// and field.
pub fn track_events(
    body: &[u8],
    tenant: &str,
    unit: &str,
    now_ms: i64,
    random: [u8; 16],
) -> Result<Vec<Conversion>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return Err("body must be an event object or an array of them".into()),
    };
    if items.is_empty() || items.len() > MAX_TRACK_EVENTS {
        return Err(format!("{} events; send 1 to {MAX_TRACK_EVENTS}", items.len()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let event: TrackEvent = serde_json::from_value(item).map_err(|e| format!("events[{index}]: {e}"))?;
            let id = event
                .id
                .unwrap_or_else(|| format!("{}-{index}", crate::encoding::hex_encode(&random)));
            let conversion = Conversion {
                id,
                tenant: tenant.to_owned(),
                unit: unit.to_owned(),
                metric: event.metric,
                value: event.value,
                timestamp: now_ms,
            };
            conversion.validate().map_err(|e| format!("events[{index}].{e}"))?;
            Ok(conversion)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_MOBILE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36";

    fn tenant(extra: Value) -> Tenant {
        let mut config = json!({
            "schema": 1, "tenant": "shop", "version": 4, "hostnames": ["shop.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "experiments": [
                {"key": "hero", "status": "running", "variants": [
                    {"key": "control", "weight": 0},
                    {"key": "bold", "weight": 10000, "actions": [
                        {"type": "set_text", "selector": "h1", "text": "Hi"},
                        {"type": "request_header", "name": "x-hero", "value": "bold"},
                        {"type": "route", "path": "/v2"}
                    ]}
                ]},
                {"key": "old", "status": "stopped", "winner": "b", "variants": [
                    {"key": "a", "weight": 5000}, {"key": "b", "weight": 5000, "actions": [{"type": "remove", "selector": ".x"}]}
                ]}
            ]
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        Tenant::from_value(config).unwrap()
    }

    fn keys() -> TenantKeys {
        TenantKeys::derive(
            &MasterSecret::new("edge-test-secret-at-least-32-bytes-long").unwrap(),
            "shop",
        )
    }

    fn visit(cookie: &str) -> Visit<'_> {
        Visit {
            url: "https://shop.example/?utm_source=ad",
            host: "shop.example",
            path: "/",
            query: "utm_source=ad",
            visitor: Visitor {
                user_agent: CHROME_MOBILE,
                accept_language: "de-DE,de;q=0.9,en;q=0.8",
                cookie_header: cookie,
                geo: Geo {
                    country: Some("DE".into()),
                    ..Geo::default()
                },
                ..Visitor::default()
            },
        }
    }

    #[test]
    fn a_new_visitor_gets_a_cookie_variant_actions_and_one_exposure() {
        let tenant = tenant(json!({}));
        let plan = plan(&tenant, &keys(), &visit(""), 1_800_000_000_000, [7; 16]);
        assert_eq!(plan.unit_id.as_deref(), Some("07070707070707070707070707070707"));
        assert_eq!(plan.assignments.len(), 2);
        assert_eq!(plan.route_path.as_deref(), Some("/v2"));
        assert!(
            plan.origin_headers
                .contains(&("cohort-assignments".into(), "hero=bold, old=b".into()))
        );
        assert!(plan.origin_headers.contains(&("x-hero".into(), "bold".into())));
        assert_eq!(plan.html_actions.len(), 2);
        assert_eq!(plan.exposures.len(), 1, "winners log no exposures");
        assert_eq!(plan.exposures[0].device, Some(DeviceClass::Mobile));
        assert_eq!(plan.exposures[0].country.as_deref(), Some("DE"));
        assert!(plan.exposures[0].validate().is_ok());
        let cookie = plan.set_cookie.unwrap();
        assert!(cookie.starts_with("__Host-cohort="));
        assert!(cookie.ends_with("; Path=/; Max-Age=34560000; Secure; HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn a_returning_visitor_keeps_the_unit_and_gets_no_new_cookie_or_exposure() {
        let tenant = tenant(json!({}));
        let first = plan(&tenant, &keys(), &visit(""), 1_800_000_000_000, [7; 16]);
        let set_cookie = first.set_cookie.unwrap();
        let value = set_cookie.split(';').next().unwrap();
        let header = format!("other=1; {value}");
        let second = plan(&tenant, &keys(), &visit(&header), 1_800_000_060_000, [9; 16]);
        assert_eq!(second.unit_id, first.unit_id);
        assert_eq!(second.set_cookie, None);
        assert!(second.exposures.is_empty());
        assert_eq!(second.cookie_problem, None);
    }

    #[test]
    fn a_tampered_cookie_starts_a_new_unit() {
        let tenant = tenant(json!({}));
        let plan = plan(
            &tenant,
            &keys(),
            &visit("__Host-cohort=AQAAAAAAAAAAAAAAAAA"),
            1_800_000_000_000,
            [3; 16],
        );
        assert_eq!(plan.unit_id.as_deref(), Some("03030303030303030303030303030303"));
        assert!(plan.cookie_problem.is_some());
        assert!(plan.set_cookie.is_some());
    }

    #[test]
    fn another_tenants_cookie_starts_a_new_unit() {
        // Two tenants alike but for their id and host, sharing the host-only cookie name.
        let shop = tenant(json!({}));
        let news = tenant(json!({"tenant": "news", "hostnames": ["news.example"]}));
        assert_eq!(cookie_name(&shop), cookie_name(&news));
        let secret = MasterSecret::new("edge-test-secret-at-least-32-bytes-long").unwrap();
        let news_keys = TenantKeys::derive(&secret, "news");
        let news_visit = |cookie| Visit {
            url: "https://news.example/",
            host: "news.example",
            ..visit(cookie)
        };

        let minted = plan(&shop, &keys(), &visit(""), 1_800_000_000_000, [7; 16]);
        let shop_cookie = minted.set_cookie.unwrap();
        let shop_cookie = shop_cookie.split(';').next().unwrap();
        let on_news = plan(&news, &news_keys, &news_visit(shop_cookie), 1_800_000_060_000, [9; 16]);
        assert_eq!(on_news.unit_id.as_deref(), Some("09090909090909090909090909090909"));
        assert_ne!(on_news.unit_id, minted.unit_id);
        assert_eq!(
            on_news.cookie_problem,
            Some(crate::cookie::CookieError::BadMac.to_string())
        );
        let news_cookie = on_news.set_cookie.unwrap();
        let news_cookie = news_cookie.split(';').next().unwrap();
        assert_ne!(news_cookie, shop_cookie);

        // news's own cookie is kept, so the refusal above is the key, not the visit.
        let returning = plan(&news, &news_keys, &news_visit(news_cookie), 1_800_000_120_000, [5; 16]);
        assert_eq!(returning.unit_id, on_news.unit_id);
        assert_eq!(returning.cookie_problem, None);
    }

    /// A tenant migrating from GrowthBook: its experiment keeps GrowthBook's hash, and visitors
    /// are bucketed on GrowthBook's `gbuuid` cookie.
    fn migrated_tenant() -> Tenant {
        tenant(json!({
            "edge": {"unit_id_cookie": "gbuuid"},
            "experiments": [{"key": "gb", "status": "running", "hash": "growthbook-v2", "variants": [
                {"key": "control", "weight": 5000}, {"key": "b", "weight": 5000}
            ]}]
        }))
    }

    #[test]
    fn a_site_unit_id_cookie_is_the_unit_and_buckets_as_growthbook_did() {
        let tenant = migrated_tenant();
        let gb_variant = |unit: &str| {
            let bucket = crate::bucket::growthbook::bucket_v2("gb", unit);
            ["control", "b"][crate::bucket::growthbook::choose_variant([5000, 5000], 10_000, bucket).unwrap()]
        };
        for unit in ["gb-visitor-1", "gb-visitor-2", "gb-visitor-3", "gb-visitor-4"] {
            let header = format!("theme=dark; gbuuid={unit}");
            let plan = plan(&tenant, &keys(), &visit(&header), 1_800_000_000_000, [7; 16]);
            assert_eq!(plan.unit_id.as_deref(), Some(unit));
            assert_eq!(plan.assignments[0].variant, gb_variant(unit), "{unit}");
            assert_eq!(plan.exposures[0].unit, unit);
            assert_eq!(plan.cookie_problem, None);
            // Stickiness still rides on Cohort's cookie, issued to the same unit.
            let cookie = plan.set_cookie.unwrap();
            let value = cookie.split(';').next().unwrap();
            let returning = format!("{value}; gbuuid={unit}");
            let again = crate::edge::plan(&tenant, &keys(), &visit(&returning), 1_800_000_060_000, [9; 16]);
            assert_eq!(again.unit_id.as_deref(), Some(unit));
            assert_eq!((again.set_cookie, again.exposures.len()), (None, 0), "returning {unit}");
        }
    }

    #[test]
    fn a_site_unit_id_header_wins_over_the_cookie_and_an_unusable_one_is_passed_over() {
        let tenant = tenant(json!({
            "edge": {"unit_id_cookie": "gbuuid", "unit_id_header": "X-Customer-Id"},
            "experiments": [{"key": "gb", "status": "running", "variants": [
                {"key": "control", "weight": 5000}, {"key": "b", "weight": 5000}
            ]}]
        }));
        let with = |header: &'static str, cookie: &'static str| {
            let mut v = visit(cookie);
            v.visitor.unit_id_header = header;
            plan(&tenant, &keys(), &v, 1_800_000_000_000, [7; 16])
        };
        let both = with("customer-7", "gbuuid=gb-1");
        assert_eq!(both.unit_id.as_deref(), Some("customer-7"));
        assert_eq!(both.exposures[0].unit, "customer-7");
        assert_eq!(
            with("", "gbuuid=gb-1").unit_id.as_deref(),
            Some("gb-1"),
            "no header: the cookie"
        );
        let spaced = with("customer 7", "gbuuid=gb-1");
        assert_eq!(
            spaced.unit_id.as_deref(),
            Some("gb-1"),
            "an unusable header falls back to the cookie"
        );
        assert!(
            spaced
                .cookie_problem
                .unwrap()
                .contains("unit id header `X-Customer-Id`")
        );
        let neither = with(&*"x".repeat(65).leak(), "");
        assert_eq!(neither.unit_id.as_deref(), Some("07070707070707070707070707070707"));
    }

    #[test]
    fn a_sticky_cookie_of_another_unit_does_not_carry_over_to_the_site_unit() {
        let tenant = migrated_tenant();
        let before = plan(&tenant, &keys(), &visit(""), 1_800_000_000_000, [7; 16]);
        assert_eq!(before.unit_id.as_deref(), Some("07070707070707070707070707070707"));
        let cohort_cookie = before.set_cookie.unwrap();
        let cohort_cookie = cohort_cookie.split(';').next().unwrap();
        // The site sets its id later: the unit becomes that id, assigned afresh and exposed again.
        let header = format!("{cohort_cookie}; gbuuid=site-unit-42");
        let after = plan(&tenant, &keys(), &visit(&header), 1_800_000_060_000, [9; 16]);
        assert_eq!(after.unit_id.as_deref(), Some("site-unit-42"));
        assert_eq!(after.exposures.len(), 1);
        assert!(
            after.set_cookie.is_some(),
            "Cohort's cookie is reissued to the site's unit"
        );
    }

    #[test]
    fn an_unusable_site_unit_id_is_reported_and_cohorts_id_used() {
        let migrated = migrated_tenant();
        let long = "x".repeat(crate::cookie::MAX_UNIT_ID_LEN + 1);
        for value in ["", long.as_str(), "has%20space\u{7f}", "tab\tinside"] {
            let header = format!("gbuuid={value}");
            let plan = plan(&migrated, &keys(), &visit(&header), 1_800_000_000_000, [3; 16]);
            assert_eq!(
                plan.unit_id.as_deref(),
                Some("03030303030303030303030303030303"),
                "{value:?}"
            );
            if !value.is_empty() {
                assert!(
                    plan.cookie_problem.as_deref().is_some_and(|p| p.contains("gbuuid")),
                    "{value:?}"
                );
            }
        }
        // Without the setting, the same cookie means nothing.
        let plain = tenant(json!({}));
        let plan = plan(
            &plain,
            &keys(),
            &visit("gbuuid=site-unit-42"),
            1_800_000_000_000,
            [3; 16],
        );
        assert_eq!(plan.unit_id.as_deref(), Some("03030303030303030303030303030303"));
    }

    /// The holdout records in a plan.
    fn holdout_records(plan: &Plan) -> Vec<&Exposure> {
        plan.exposures
            .iter()
            .filter(|e| e.experiment == crate::exposure::HOLDOUT_EXPERIMENT)
            .collect()
    }

    #[test]
    fn a_new_visitor_of_a_holdout_tenant_gets_one_holdout_record_for_its_bucket() {
        let tenant = tenant(json!({"holdout": 5000}));
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..32u8 {
            let plan = plan(&tenant, &keys(), &visit(""), 1_800_000_000_000, [seed; 16]);
            let unit = plan.unit_id.clone().unwrap();
            // The contract: bucket of `holdout:<tenant>` below the holdout's basis points.
            let held_out = crate::bucket::bucket(&tenant.hash_key, "holdout:shop", &unit) < 5000;
            let records = holdout_records(&plan);
            assert_eq!(records.len(), 1, "unit {unit}");
            let record = records[0];
            assert_eq!(record.variant, if held_out { "holdout" } else { "rest" }, "unit {unit}");
            assert_eq!(record.unit, unit);
            assert_eq!(record.id, Exposure::idempotency_id("shop", "_holdout", &unit));
            assert_eq!(record.config_version, 4);
            assert_eq!(record.timestamp, 1_800_000_000_000);
            assert_eq!(record.country.as_deref(), Some("DE"));
            assert_eq!(record.device, Some(DeviceClass::Mobile));
            assert_eq!(record.validate(), Ok(()));
            // A held-out unit is in no running experiment; everyone else is in `hero`.
            let hero = plan.exposures.iter().filter(|e| e.experiment == "hero").count();
            assert_eq!(hero, usize::from(!held_out), "unit {unit}");
            seen.insert(held_out);
        }
        assert_eq!(seen.len(), 2, "32 units at a 50% holdout land on both sides");
    }

    #[test]
    fn holdout_membership_is_recorded_only_when_the_unit_is_issued() {
        let held = tenant(json!({"holdout": 500}));
        let first = plan(&held, &keys(), &visit(""), 1_800_000_000_000, [7; 16]);
        assert_eq!(holdout_records(&first).len(), 1);
        let value = first.set_cookie.unwrap();
        let cookie = value.split(';').next().unwrap();
        // Returning, and returning after the cookie's refresh: the same unit, no second record.
        for later in [60_000, (COOKIE_REFRESH_SECONDS + 60) * 1000] {
            let again = plan(&held, &keys(), &visit(cookie), 1_800_000_000_000 + later, [9; 16]);
            assert_eq!(again.unit_id, first.unit_id);
            assert!(holdout_records(&again).is_empty(), "after {later} ms");
        }
        // A cookie that fails verification is replaced: a new unit, recorded once.
        let replaced = plan(
            &held,
            &keys(),
            &visit("__Host-cohort=AQAAAAAAAAAAAAAAAAA"),
            1_800_000_000_000,
            [3; 16],
        );
        assert_ne!(replaced.unit_id, first.unit_id);
        assert_eq!(holdout_records(&replaced).len(), 1);
        // A tenant without a holdout records no membership.
        let without = plan(
            &tenant(json!({"holdout": 0})),
            &keys(),
            &visit(""),
            1_800_000_000_000,
            [7; 16],
        );
        assert!(holdout_records(&without).is_empty());
        assert_eq!(without.exposures.len(), 1, "the `hero` exposure only");
    }

    #[test]
    fn excluded_visitors_get_only_shipped_winners() {
        let tenant = tenant(json!({"edge": {"opt_out_cookie": "no_tests"}, "holdout": 5000}));
        type Edit = fn(&mut Visit<'static>);
        let cases: [(&str, Edit, Exclusion); 7] = [
            (
                "bot",
                |v| v.visitor.user_agent = "Googlebot/2.1 (+http://www.google.com/bot.html)",
                Exclusion::Bot,
            ),
            (
                "verified bot with a browser's user agent",
                |v| v.visitor.bot_management = BotManagement::from_raw(Some(90.0), Some(true)),
                Exclusion::Bot,
            ),
            (
                "likely automated by score",
                |v| v.visitor.bot_management = BotManagement::from_raw(Some(29.0), None),
                Exclusion::Bot,
            ),
            (
                "prerender by Sec-Purpose",
                |v| v.visitor.purpose = ";prefetch;prerender;",
                Exclusion::Prefetch,
            ),
            (
                "prefetch",
                |v| v.visitor.purpose = "prefetch;prerender",
                Exclusion::Prefetch,
            ),
            ("gpc", |v| v.visitor.sec_gpc = "1", Exclusion::GlobalPrivacyControl),
            (
                "opt-out",
                |v| v.visitor.cookie_header = "no_tests=1",
                Exclusion::OptedOut,
            ),
        ];
        for (name, edit, expected) in cases {
            let mut v = visit("");
            edit(&mut v);
            let plan = plan(&tenant, &keys(), &v, 1_800_000_000_000, [1; 16]);
            assert_eq!(plan.exclusion, Some(expected), "{name}");
            assert_eq!(plan.set_cookie, None, "{name}");
            assert!(plan.exposures.is_empty(), "{name}");
            assert_eq!(plan.unit_id, None, "{name}");
            assert_eq!(
                plan.assignments,
                vec![Assignment {
                    experiment: "old".into(),
                    variant: "b".into()
                }],
                "{name}"
            );
        }
    }

    #[test]
    fn preview_tokens_force_variants_only_when_valid() {
        let tenant = tenant(json!({}));
        let keys = keys();
        let preview = Preview {
            tenant: "shop".into(),
            expires: 1_800_000_600,
            forced: BTreeMap::from([("hero".to_string(), "control".to_string())]),
        };
        let query = format!("cohort_preview={}", preview.sign(&keys.preview));
        let mut v = visit("");
        v.query = &query;
        let forced = plan(&tenant, &keys, &v, 1_800_000_000_000, [1; 16]);
        assert_eq!(
            forced.assignments[0],
            Assignment {
                experiment: "hero".into(),
                variant: "control".into()
            }
        );
        assert!(forced.exposures.is_empty(), "QA traffic logs no exposures");
        let expired = plan(&tenant, &keys, &v, 1_800_000_600_000, [1; 16]);
        assert_eq!(expired.assignments[0].variant, "bold");
        assert_eq!(expired.preview_problem.as_deref(), Some("preview token has expired"));
    }

    #[test]
    fn domain_cookies_when_configured() {
        let tenant = Tenant::from_value(json!({
            "schema": 1, "tenant": "shop", "version": 1, "hostnames": ["www.shop.example", "shop.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f", "edge": {"cookie_domain": "shop.example"}
        }))
        .unwrap();
        let plan = plan(&tenant, &keys(), &visit(""), 1_800_000_000_000, [1; 16]);
        assert!(plan.set_cookie.unwrap().starts_with("cohort="));
    }

    #[test]
    fn attributes_carry_request_and_geo() {
        let mut v = visit("theme=dark; __Host-cohort=abc");
        v.visitor.geo = Geo {
            country: Some("DE".into()),
            region: Some("Bavaria".into()),
            city: None,
            asn: Some(3320),
            colo: Some("MUC".into()),
        };
        let attributes = attributes(&v, DeviceClass::Mobile);
        assert_eq!(attributes["language"], "de-DE");
        assert_eq!(attributes["languages"], json!(["de-DE", "de", "en"]));
        assert_eq!(attributes["query"], json!({"utm_source": "ad"}));
        assert_eq!(attributes["cookies"], json!({"theme": "dark"}));
        assert_eq!(attributes["browser"], "chrome");
        assert_eq!(attributes["asn"], 3320);
        assert_eq!(attributes["colo"], "MUC");
        assert!(attributes.get("city").is_none());
    }

    #[test]
    fn bot_management_scores_decide_only_inside_their_range() {
        let human = BotManagement::from_raw(Some(30.0), Some(false));
        assert!(
            !human.is_automated(),
            "30 is the first score Cloudflare does not call automated"
        );
        assert!(BotManagement::from_raw(Some(1.0), None).is_automated());
        for odd in [0.0, 100.0, 29.5, f64::NAN, -1.0] {
            assert_eq!(
                BotManagement::from_raw(Some(odd), None),
                BotManagement::default(),
                "{odd}"
            );
        }
        assert!(!BotManagement::default().is_automated(), "zones without Bot Management");
        let mut v = visit("");
        v.visitor.bot_management = human;
        assert_eq!(exclusion(&tenant(json!({})), &v), None);
    }

    #[test]
    fn device_classes_and_bots() {
        assert_eq!(device_class(CHROME_MOBILE), DeviceClass::Mobile);
        assert_eq!(
            device_class("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"),
            DeviceClass::Tablet
        );
        assert_eq!(
            device_class("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"),
            DeviceClass::Desktop
        );
        assert!(is_bot("curl/8.5.0") && is_bot("") && is_bot("Mozilla/5.0 (compatible; bingbot/2.0)"));
        assert!(!is_bot(CHROME_MOBILE));
    }

    #[test]
    fn cache_control_becomes_private() {
        assert_eq!(
            private_cache_control(Some("public, max-age=600, s-maxage=3600")),
            "private, max-age=600"
        );
        assert_eq!(private_cache_control(None), "private");
        assert_eq!(private_cache_control(Some("no-store")), "private, no-store");
    }

    #[test]
    fn track_bodies_become_validated_conversions() {
        let events = track_events(
            br#"{"metric": "purchase", "value": 42.5, "id": "order-1"}"#,
            "shop",
            "u1",
            1_800_000_000_000,
            [0; 16],
        )
        .unwrap();
        assert_eq!(events[0].id, "order-1");
        assert_eq!(events[0].value, Some(42.5));
        let many = track_events(
            br#"[{"metric": "signup"}, {"metric": "click"}]"#,
            "shop",
            "u1",
            1_800_000_000_000,
            [0xab; 16],
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_ne!(many[0].id, many[1].id);
        assert!(
            track_events(b"[]", "shop", "u1", 0, [0; 16])
                .unwrap_err()
                .contains("0 events")
        );
        assert!(
            track_events(br#"[{"metric": "a b"}]"#, "shop", "u1", 1_800_000_000_000, [0; 16])
                .unwrap_err()
                .starts_with("events[0].metric")
        );
        assert!(
            track_events(br#"{"metrik": "x"}"#, "shop", "u1", 0, [0; 16])
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            track_events(b"nope", "shop", "u1", 0, [0; 16])
                .unwrap_err()
                .starts_with("body is not JSON")
        );
    }

    #[test]
    fn query_and_cookie_parsing() {
        assert_eq!(
            query_param("a=1&cohort_preview=x%2Ey&b", "cohort_preview").as_deref(),
            Some("x.y")
        );
        assert_eq!(query_param("a=1", "b"), None);
        assert_eq!(cookie_value("a=1; b=\"two\"", "b"), Some("two"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn raw_geography_keeps_only_usable_values() {
        let geo = Geo::from_raw(
            Some("DE".into()),
            Some(String::new()),
            None,
            Some(3320.0),
            Some("FRA".into()),
        );
        assert_eq!(
            geo,
            Geo {
                country: Some("DE".into()),
                region: None,
                city: None,
                asn: Some(3320),
                colo: Some("FRA".into()),
            }
        );
        for bad in [-1.0, 1.5, f64::from(u32::MAX) + 1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Geo::from_raw(None, None, None, Some(bad), None).asn, None, "{bad}");
        }
        assert_eq!(
            Geo::from_raw(None, None, None, Some(f64::from(u32::MAX)), None).asn,
            Some(u32::MAX)
        );
    }
}
