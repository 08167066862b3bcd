//! One request to a tenant's host, decided start to finish as data: a page to fetch and rewrite,
//! an answer of the worker's own endpoints (`/_cohort/assignments`, `/_cohort/track`), or the
//! request passed on untouched; plus the records to beacon and the lines to log. The worker only
//! carries out the [`Served`] it gets back.

use serde::Serialize;

use super::origin::{PagePlan, UrlParts, page_plan};
use super::{TenantKeys, Visit, Visitor, plan, plan_unit, query_param, track_events};
use crate::tenant::Tenant;
use crate::wire::{ErrorCode, ErrorDetail, RecordJson};

/// Paths under this prefix are the worker's own; the rest of a tenant's host is its site.
pub const ENDPOINT_PREFIX: &str = "/_cohort/";
/// `GET`: the visitor's unit and assignments, for single-page apps (`?path=` names the page).
pub const ASSIGNMENTS_PATH: &str = "/_cohort/assignments";
/// `POST`: conversion events for the visitor's unit.
pub const TRACK_PATH: &str = "/_cohort/track";
/// The rate-limit bindings `/_cohort/track` is checked against (`[[ratelimits]]` in
/// wrangler.toml): one key per unit and one per client address, each per tenant.
pub const TRACK_UNIT_LIMITER: &str = "TRACK_UNIT_LIMITER";
/// See [`TRACK_UNIT_LIMITER`].
pub const TRACK_IP_LIMITER: &str = "TRACK_IP_LIMITER";
/// The period both limiters count over (wrangler.toml's `period`), which a refused visitor is
/// told to wait (`Retry-After`).
pub const TRACK_LIMIT_PERIOD_SECONDS: u32 = 60;

/// Largest `/_cohort/track` body read.
pub const MAX_TRACK_BODY: usize = 16 * 1024;

/// The request facts the edge decides on: what the worker reads from the platform's request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Absolute URL.
    pub url: &'a str,
    /// The visitor's headers and geography.
    pub visitor: Visitor<'a>,
    /// The body of a `POST` to an endpoint (read by the worker before deciding), else `None`.
    pub body: Option<&'a [u8]>,
    /// The client's address (`CF-Connecting-IP`), empty when unknown.
    pub client_ip: &'a str,
    /// What the rate limiters said about this request, once the worker asked them.
    pub track_limit: TrackLimit,
}

/// Where a `/_cohort/track` request stands with its rate limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrackLimit {
    /// Not asked yet: [`serve`] answers [`Handling::Limit`] with the keys to ask about.
    #[default]
    Unchecked,
    /// Every limiter let it through (or none is bound: the limits fail open).
    Within,
    /// A limiter refused it: 429.
    Exceeded,
}

/// One rate-limit check the worker makes: `env[binding].limit({ key })`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitKey {
    /// The binding's name.
    pub binding: &'static str,
    /// The key counted.
    pub key: String,
}

/// An answer the worker gives itself, without the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

/// How the worker handles the request. Serialised for `src/entry.mjs` with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Handling {
    /// Pass the request on untouched.
    Pass,
    /// Fetch the origin as planned and apply the plan to its response.
    Page(PagePlan),
    /// Answer with this.
    Reply(Reply),
    /// Ask these rate limiters, then decide again with the verdict ([`TrackLimit`]).
    Limit {
        /// The checks, all of which must pass.
        keys: Vec<LimitKey>,
    },
}

/// One structured log line: an event name and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Event name, e.g. `preview_ignored`.
    pub event: &'static str,
    /// Its fields.
    pub fields: Vec<(&'static str, String)>,
}

/// Everything decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// What to do with the request.
    pub handling: Handling,
    /// Exposures to beacon (after the response).
    pub exposures: Vec<RecordJson>,
    /// Conversions to beacon (after the response).
    pub conversions: Vec<RecordJson>,
    /// Lines to log.
    pub log: Vec<LogLine>,
}

impl Served {
    fn new(handling: Handling) -> Served {
        Served {
            handling,
            exposures: Vec::new(),
            conversions: Vec::new(),
            log: Vec::new(),
        }
    }
}

/// Which endpoint a request under [`ENDPOINT_PREFIX`] is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Assignments,
    Track,
}

fn endpoint(method: &str, path: &str) -> Option<Endpoint> {
    match (method, path) {
        ("GET", ASSIGNMENTS_PATH) => Some(Endpoint::Assignments),
        ("POST", TRACK_PATH) => Some(Endpoint::Track),
        _ => None,
    }
}

/// Decides one request to `tenant`'s host. `override_origin` is the worker's `ORIGIN_OVERRIDE`
/// (a tenant's own `edge.origin` wins). `random` seeds a new unit id (first half) and the ids of
/// conversions sent without one (second half). An error (a URL that is not absolute http(s)):
/// the worker passes the request on untouched.
pub fn serve(
    tenant: &Tenant,
    keys: &TenantKeys,
    request: Request<'_>,
    override_origin: Option<&str>,
    now_ms: i64,
    random: [u8; 32],
) -> Result<Served, String> {
    let url =
        UrlParts::parse(request.url).ok_or_else(|| format!("request URL `{}` is not absolute http(s)", request.url))?;
    let own = url.path.starts_with(ENDPOINT_PREFIX);
    let endpoint = if own {
        match endpoint(request.method, url.path) {
            Some(endpoint) => Some(endpoint),
            // Not ours to answer: the origin decides what a stray `/_cohort/` request gets.
            None => return Ok(Served::new(Handling::Pass)),
        }
    } else {
        None
    };
    let host = url.host.to_ascii_lowercase();
    // KV's `host:` and `tenant:` keys are written separately and propagate independently, so a
    // host can briefly name a tenant whose config no longer claims it: such a request is not
    // that tenant's to change (docs/control-plane.md, "Publishing").
    if !tenant.hostnames.contains(&host) {
        let mut served = Served::new(Handling::Pass);
        served.log.push(LogLine {
            event: "host_not_claimed",
            fields: vec![("tenant", tenant.id.clone()), ("host", host)],
        });
        return Ok(served);
    }
    // The assignments endpoint answers for the page a single-page app is showing.
    let page_path = match endpoint {
        Some(Endpoint::Assignments) => query_param(url.query, "path").unwrap_or_else(|| "/".into()),
        _ => url.path.to_owned(),
    };
    let visit = Visit {
        url: request.url,
        host: &host,
        path: &page_path,
        query: url.query,
        visitor: request.visitor,
    };
    let (unit_random, event_random) = split(random);
    // A conversion shows the visitor nothing, so it assigns and exposes nothing either.
    let mut plan = if endpoint == Some(Endpoint::Track) {
        plan_unit(tenant, keys, &visit, now_ms, unit_random)
    } else {
        plan(tenant, keys, &visit, now_ms, unit_random)
    };
    let mut log = Vec::new();
    if let Some(problem) = plan.preview_problem.take() {
        log.push(LogLine {
            event: "preview_ignored",
            fields: vec![("tenant", tenant.id.clone()), ("reason", problem)],
        });
    }
    let exposures = plan
        .exposures
        .iter()
        .map(RecordJson::of)
        .collect::<serde_json::Result<_>>()
        .map_err(|e| format!("exposure: {e}"))?;
    if endpoint == Some(Endpoint::Track) {
        match request.track_limit {
            TrackLimit::Unchecked => {
                let mut keys = Vec::new();
                if let Some(unit) = &plan.unit_id {
                    keys.push(LimitKey {
                        binding: TRACK_UNIT_LIMITER,
                        key: format!("{}:{unit}", tenant.id),
                    });
                }
                if !request.client_ip.is_empty() {
                    keys.push(LimitKey {
                        binding: TRACK_IP_LIMITER,
                        key: format!("{}:{}", tenant.id, request.client_ip),
                    });
                }
                return Ok(Served::new(Handling::Limit { keys }));
            }
            TrackLimit::Exceeded => {
                let mut error = ErrorDetail::new(
                    ErrorCode::RateLimited,
                    format!("too many events from this visitor or address; retry in {TRACK_LIMIT_PERIOD_SECONDS} s"),
                );
                error.retry_after_seconds = Some(TRACK_LIMIT_PERIOD_SECONDS);
                let mut refused = reply(429, Some(error.to_body()), plan.set_cookie.as_deref());
                refused
                    .headers
                    .push(("retry-after".to_owned(), TRACK_LIMIT_PERIOD_SECONDS.to_string()));
                let mut served = Served::new(Handling::Reply(refused));
                served.log.push(LogLine {
                    event: "track_rate_limited",
                    fields: vec![("tenant", tenant.id.clone())],
                });
                return Ok(served);
            }
            TrackLimit::Within => {}
        }
    }
    let mut conversions = Vec::new();
    let handling = match endpoint {
        None => {
            let base = tenant.edge.origin.as_deref().or(override_origin);
            Handling::Page(page_plan(tenant, plan, &url, request.url, base))
        }
        Some(Endpoint::Assignments) => Handling::Reply(reply(
            200,
            Some(plan.assignments_json().to_string()),
            plan.set_cookie.as_deref(),
        )),
        Some(Endpoint::Track) => {
            let (reply, accepted) = track(tenant, &plan, request.body.unwrap_or_default(), now_ms, event_random);
            conversions = accepted;
            Handling::Reply(reply)
        }
    };
    Ok(Served {
        handling,
        exposures,
        conversions,
        log,
    })
}

fn split(random: [u8; 32]) -> ([u8; 16], [u8; 16]) {
    let mut first = [0u8; 16];
    let mut second = [0u8; 16];
    first.copy_from_slice(&random[..16]);
    second.copy_from_slice(&random[16..]);
    (first, second)
}

/// An endpoint's answer: never cached, with the sticky cookie when it changed.
fn reply(status: u16, json_body: Option<String>, set_cookie: Option<&str>) -> Reply {
    let mut headers = vec![("cache-control".to_owned(), "no-store".to_owned())];
    if json_body.is_some() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    if let Some(cookie) = set_cookie {
        headers.push(("set-cookie".to_owned(), cookie.to_owned()));
    }
    Reply {
        status,
        headers,
        body: json_body.unwrap_or_default(),
    }
}

/// `POST /_cohort/track`: conversions for the visitor's unit (bots, GPC and opted-out visitors are
/// not tracked: 204).
fn track(tenant: &Tenant, plan: &super::Plan, body: &[u8], now_ms: i64, random: [u8; 16]) -> (Reply, Vec<RecordJson>) {
    let cookie = plan.set_cookie.as_deref();
    let Some(unit) = &plan.unit_id else {
        return (reply(204, None, cookie), Vec::new());
    };
    if body.len() > MAX_TRACK_BODY {
        let error = ErrorDetail::new(ErrorCode::BodyTooLarge, format!("body over {MAX_TRACK_BODY} bytes"));
        return (reply(413, Some(error.to_body()), cookie), Vec::new());
    }
    let conversions = match track_events(body, &tenant.id, unit, now_ms, random) {
        Ok(conversions) => conversions,
        Err(reason) => {
            let error = ErrorDetail::new(ErrorCode::InvalidEvent, reason);
            return (reply(400, Some(error.to_body()), cookie), Vec::new());
        }
    };
    let records: Vec<RecordJson> = match conversions.iter().map(RecordJson::of).collect() {
        Ok(records) => records,
        Err(error) => {
            let error = ErrorDetail::new(ErrorCode::InvalidEvent, error.to_string());
            return (reply(400, Some(error.to_body()), cookie), Vec::new());
        }
    };
    let accepted = format!(r#"{{"accepted":{}}}"#, records.len());
    (reply(202, Some(accepted), cookie), records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterSecret;
    use crate::wire::ErrorDetail;
    use serde_json::{Value, json};

    const CHROME: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
    const NOW: i64 = 1_800_000_000_000;

    fn tenant() -> (Tenant, TenantKeys) {
        let tenant = Tenant::from_json(
            &json!({
                "schema": 1, "tenant": "shop", "version": 3, "hostnames": ["shop.example"],
                "hash_key": "000102030405060708090a0b0c0d0e0f",
                "experiments": [{"key": "hero", "status": "running", "paths": ["/products/*"], "variants": [
                    {"key": "control", "weight": 0},
                    {"key": "bold", "weight": 10000, "actions": [{"type": "set_text", "selector": "h1", "text": "Hi"}]}
                ]}]
            })
            .to_string(),
        )
        .unwrap();
        let keys = TenantKeys::derive(&MasterSecret::new("s".repeat(32)).unwrap(), "shop");
        (tenant, keys)
    }

    fn request<'a>(method: &'a str, url: &'a str, body: Option<&'a [u8]>) -> Request<'a> {
        Request {
            method,
            url,
            visitor: Visitor {
                user_agent: CHROME,
                ..Visitor::default()
            },
            body,
            client_ip: "203.0.113.7",
            // The limiters' own test below starts unchecked; the rest have passed them.
            track_limit: TrackLimit::Within,
        }
    }

    fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
        reply.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_host_the_tenant_does_not_claim_passes_untouched_and_is_logged() {
        let (tenant, keys) = tenant();
        for url in [
            "https://other.example/products/1",
            "https://other.example/_cohort/assignments",
        ] {
            let served = serve(&tenant, &keys, request("GET", url, None), None, NOW, [7; 32]).unwrap();
            assert!(matches!(served.handling, Handling::Pass), "{url}");
            assert!(served.exposures.is_empty());
            assert_eq!(served.log.len(), 1);
            assert_eq!(served.log[0].event, "host_not_claimed");
        }
    }

    #[test]
    fn a_page_is_planned_and_its_exposures_leave_beside_the_plan() {
        let (tenant, keys) = tenant();
        let served = serve(
            &tenant,
            &keys,
            request("GET", "https://shop.example/products/1", None),
            Some("http://127.0.0.1:9000"),
            NOW,
            [7; 32],
        )
        .unwrap();
        let Handling::Page(page) = &served.handling else {
            panic!("{:?}", served.handling)
        };
        assert_eq!(page.origin, "http://127.0.0.1:9000/products/1");
        assert!(page.set_cookie.is_some() && page.personalised);
        assert_eq!(page.actions.len(), 1);
        assert_eq!(served.exposures.len(), 1);
        let exposure: Value = serde_json::from_str(served.exposures[0].get()).unwrap();
        assert_eq!(
            (exposure["experiment"].as_str(), exposure["variant"].as_str()),
            (Some("hero"), Some("bold"))
        );
        let json: Value = serde_json::to_value(&served.handling).unwrap();
        assert_eq!(json["kind"], "page");
        assert_eq!(json["origin"], "http://127.0.0.1:9000/products/1");
    }

    #[test]
    fn the_assignments_endpoint_answers_for_the_named_page() {
        let (tenant, keys) = tenant();
        let url = "https://shop.example/_cohort/assignments?path=%2Fproducts%2F9";
        let served = serve(&tenant, &keys, request("GET", url, None), None, NOW, [7; 32]).unwrap();
        let Handling::Reply(reply) = &served.handling else {
            panic!("{:?}", served.handling)
        };
        assert_eq!(reply.status, 200);
        assert_eq!(header(reply, "cache-control"), Some("no-store"));
        assert!(header(reply, "set-cookie").is_some_and(|c| c.starts_with("__Host-cohort=")));
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["assignments"]["hero"], "bold");
        assert_eq!(served.exposures.len(), 1, "an app's page view is an exposure too");
        let elsewhere = serve(
            &tenant,
            &keys,
            request("GET", "https://shop.example/_cohort/assignments", None),
            None,
            NOW,
            [7; 32],
        )
        .unwrap();
        let Handling::Reply(reply) = &elsewhere.handling else {
            panic!()
        };
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["assignments"], json!({}), "the home page runs no experiment");
    }

    #[test]
    fn a_conversion_exposes_nothing_and_leaves_the_exposure_to_the_next_page() {
        // An experiment on every page: a conversion must still not count as being shown it.
        let tenant = Tenant::from_json(
            &json!({
                "schema": 1, "tenant": "shop", "version": 3, "hostnames": ["shop.example"],
                "hash_key": "000102030405060708090a0b0c0d0e0f",
                "experiments": [{"key": "banner", "status": "running", "variants": [
                    {"key": "control", "weight": 0}, {"key": "bold", "weight": 10000}
                ]}]
            })
            .to_string(),
        )
        .unwrap();
        let keys = TenantKeys::derive(&MasterSecret::new("s".repeat(32)).unwrap(), "shop");
        let body = br#"[{"metric":"purchase","value":12.5}]"#;
        let tracked = serve(
            &tenant,
            &keys,
            request("POST", "https://shop.example/_cohort/track", Some(body)),
            None,
            NOW,
            [7; 32],
        )
        .unwrap();
        let Handling::Reply(reply) = &tracked.handling else {
            panic!("{:?}", tracked.handling)
        };
        assert_eq!(reply.status, 202);
        assert_eq!(tracked.conversions.len(), 1);
        assert!(tracked.exposures.is_empty(), "no page was shown");
        let cookie = header(reply, "set-cookie").expect("a new unit's cookie");
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut page = request("GET", "https://shop.example/", None);
        page.visitor.cookie_header = &cookie;
        let viewed = serve(&tenant, &keys, page, None, NOW + 1000, [8; 32]).unwrap();
        assert_eq!(viewed.exposures.len(), 1, "the page that shows it exposes it");
        let exposure: Value = serde_json::from_str(viewed.exposures[0].get()).unwrap();
        assert_eq!(exposure["experiment"], "banner");
        let tracked_unit: Value = serde_json::from_str(tracked.conversions[0].get()).unwrap();
        assert_eq!(exposure["unit"], tracked_unit["unit"], "the same unit");
    }

    #[test]
    fn track_asks_the_limiters_first_and_a_refusal_is_a_429_that_stores_nothing() {
        let (tenant, keys) = tenant();
        let url = "https://shop.example/_cohort/track";
        let body = br#"[{"metric":"purchase","value":12.5}]"#;
        let asked = |limit: TrackLimit, ip: &'static str| {
            let mut request = request("POST", url, Some(body));
            request.track_limit = limit;
            request.client_ip = ip;
            serve(&tenant, &keys, request, None, NOW, [7; 32]).unwrap()
        };
        let first = asked(TrackLimit::Unchecked, "203.0.113.7");
        assert_eq!(
            first.handling,
            Handling::Limit {
                keys: vec![
                    LimitKey {
                        binding: TRACK_UNIT_LIMITER,
                        key: "shop:07070707070707070707070707070707".into()
                    },
                    LimitKey {
                        binding: TRACK_IP_LIMITER,
                        key: "shop:203.0.113.7".into()
                    },
                ]
            }
        );
        assert!(first.conversions.is_empty() && first.exposures.is_empty());
        let json: Value = serde_json::to_value(&first.handling).unwrap();
        assert_eq!(json["kind"], "limit");
        assert_eq!(json["keys"][1]["binding"], "TRACK_IP_LIMITER");
        let Handling::Limit { keys: without_ip } = asked(TrackLimit::Unchecked, "").handling else {
            panic!()
        };
        assert_eq!(without_ip.len(), 1, "no address, no address key");

        let refused = asked(TrackLimit::Exceeded, "203.0.113.7");
        let Handling::Reply(reply) = &refused.handling else {
            panic!("{:?}", refused.handling)
        };
        assert_eq!(reply.status, 429);
        assert_eq!(header(reply, "retry-after"), Some("60"));
        let error = ErrorDetail::from_body(&reply.body).unwrap();
        assert_eq!(
            (error.code, error.retry_after_seconds),
            (ErrorCode::RateLimited, Some(60))
        );
        assert!(refused.conversions.is_empty(), "nothing is stored");
        assert_eq!(refused.log[0].event, "track_rate_limited");
        let accepted = asked(TrackLimit::Within, "203.0.113.7");
        assert_eq!(accepted.conversions.len(), 1);
        // Only the track endpoint is limited.
        let mut page = request("GET", "https://shop.example/products/1", None);
        page.track_limit = TrackLimit::Unchecked;
        let page = serve(&tenant, &keys, page, None, NOW, [7; 32]).unwrap();
        assert!(matches!(page.handling, Handling::Page(_)));
    }

    #[test]
    fn track_accepts_refuses_and_skips_as_documented() {
        let (tenant, keys) = tenant();
        let url = "https://shop.example/_cohort/track";
        let body = br#"[{"metric":"purchase","value":12.5,"id":"o-1"},{"metric":"signup"}]"#;
        let served = serve(&tenant, &keys, request("POST", url, Some(body)), None, NOW, [7; 32]).unwrap();
        let Handling::Reply(reply) = &served.handling else {
            panic!()
        };
        assert_eq!((reply.status, reply.body.as_str()), (202, r#"{"accepted":2}"#));
        assert_eq!(served.conversions.len(), 2);
        let second: Value = serde_json::from_str(served.conversions[1].get()).unwrap();
        assert_eq!(second["id"], "07070707070707070707070707070707-1");

        let bad = serve(
            &tenant,
            &keys,
            request("POST", url, Some(br#"{"metric":"x","value":1e308}"#)),
            None,
            NOW,
            [7; 32],
        )
        .unwrap();
        let Handling::Reply(reply) = &bad.handling else {
            panic!()
        };
        assert_eq!(reply.status, 400);
        let error = ErrorDetail::from_body(&reply.body).unwrap();
        assert_eq!(error.code, ErrorCode::InvalidEvent);
        assert!(error.message.starts_with("events[0].value"), "{}", error.message);
        assert!(bad.conversions.is_empty());

        let huge = vec![b' '; MAX_TRACK_BODY + 1];
        let served = serve(&tenant, &keys, request("POST", url, Some(&huge)), None, NOW, [7; 32]).unwrap();
        let Handling::Reply(reply) = &served.handling else {
            panic!()
        };
        assert_eq!(reply.status, 413);

        let mut bot = request("POST", url, Some(body));
        bot.visitor.user_agent = "Googlebot/2.1";
        let served = serve(&tenant, &keys, bot, None, NOW, [7; 32]).unwrap();
        let Handling::Reply(reply) = &served.handling else {
            panic!()
        };
        assert_eq!((reply.status, reply.body.as_str()), (204, ""));
        assert!(served.conversions.is_empty() && served.exposures.is_empty());
    }

    #[test]
    fn stray_endpoint_requests_and_bad_urls_pass_through() {
        let (tenant, keys) = tenant();
        for (method, url) in [
            ("GET", "https://shop.example/_cohort/track"),
            ("POST", "https://shop.example/_cohort/assignments"),
            ("GET", "https://shop.example/_cohort/other"),
        ] {
            let served = serve(&tenant, &keys, request(method, url, None), None, NOW, [7; 32]).unwrap();
            assert_eq!(served.handling, Handling::Pass, "{method} {url}");
            assert!(served.exposures.is_empty());
        }
        assert!(serve(&tenant, &keys, request("GET", "/relative", None), None, NOW, [7; 32]).is_err());
    }

    #[test]
    fn an_ignored_preview_token_is_logged() {
        let (tenant, keys) = tenant();
        let url = "https://shop.example/products/1?cohort_preview=garbage";
        let served = serve(&tenant, &keys, request("GET", url, None), None, NOW, [7; 32]).unwrap();
        assert_eq!(served.log.len(), 1);
        assert_eq!(served.log[0].event, "preview_ignored");
        assert_eq!(served.log[0].fields[0], ("tenant", "shop".to_owned()));
    }
}
