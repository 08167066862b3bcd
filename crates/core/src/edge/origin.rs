//! The request a tenant page sends to its origin: URL (override origin, split-URL route), the
//! headers the plan adds, the per-variant cache key, and the assignments script for the page.

use serde::Serialize;

use super::Plan;
use crate::config::Action;
use crate::tenant::Tenant;

/// A request URL cut into the parts the origin request changes. Request URLs reach the worker
/// absolute and normalised by the runtime, so cutting at the first `/`, `?` and `#` after the
/// scheme is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `scheme://`.
    pub scheme: &'a str,
    /// Host, without port, as written.
    pub host: &'a str,
    /// `:port`, or empty.
    pub port: &'a str,
    /// Path, `/` at least.
    pub path: &'a str,
    /// Query without `?` (empty when none).
    pub query: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Cuts an absolute `http(s)` URL; `None` for anything else.
    pub fn parse(url: &'a str) -> Option<UrlParts<'a>> {
        let split = url.find("://")? + 3;
        let scheme = &url[..split];
        if !scheme.eq_ignore_ascii_case("http://") && !scheme.eq_ignore_ascii_case("https://") {
            return None;
        }
        let rest = &url[split..];
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        // Credentials never reach a worker; refuse rather than guess.
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = match authority.rfind(':') {
            Some(colon) if !authority.ends_with(']') => authority.split_at(colon),
            _ => (authority, ""),
        };
        let rest = &rest[authority_end..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = if path.is_empty() { "/" } else { path };
        Some(UrlParts {
            scheme,
            host,
            port,
            path,
            query,
        })
    }
}

/// What the worker does with a tenant's page: the origin request to make, and what to do with the
/// response. Serialised for the worker's JavaScript entry (`page` answers of `src/entry.mjs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PagePlan {
    /// The URL to fetch: the request's own, the override origin's, or a variant's route.
    pub origin: String,
    /// Headers set on the origin request (`x-forwarded-host`, `cohort-assignments`, ...).
    pub headers: Vec<(String, String)>,
    /// Cache key of the origin fetch, per variant, for personalised responses.
    pub cache_key: Option<String>,
    /// `Set-Cookie` for the response when the sticky cookie changed.
    pub set_cookie: Option<String>,
    /// The response depends on the visitor: never stored in a shared cache.
    pub personalised: bool,
    /// HTML edits, in the order they apply (only ever applied to `text/html`).
    pub actions: Vec<Action>,
    /// The assignments script's JSON, `<` escaped, for pages that use the browser build.
    pub assignments: Option<String>,
}

fn join(authority: &str, path: &str, query: &str) -> String {
    if query.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{authority}{path}?{query}")
    }
}

/// The plan for a tenant's page. `base` is the origin every request goes to instead of its own
/// host (the tenant's `edge.origin`, else the worker's `ORIGIN_OVERRIDE`).
pub fn page_plan(tenant: &Tenant, plan: Plan, url: &UrlParts<'_>, request_url: &str, base: Option<&str>) -> PagePlan {
    let mut path = url.path;
    let mut query = url.query;
    if let Some(route) = &plan.route_path {
        match route.split_once('?') {
            Some((route_path, route_query)) => (path, query) = (route_path, route_query),
            None => path = route,
        }
    }
    let mut forwarded_host = url.host;
    let origin = match (base, &plan.route_host) {
        (Some(base), route_host) => {
            // A loopback origin serves every host; tell it which one the variant wants.
            if let Some(route_host) = route_host {
                forwarded_host = route_host;
            }
            join(base.trim_end_matches('/'), path, query)
        }
        (None, Some(route_host)) => join(&format!("{}{route_host}{}", url.scheme, url.port), path, query),
        (None, None) if plan.route_path.is_none() => request_url.to_owned(),
        (None, None) => join(&format!("{}{}{}", url.scheme, url.host, url.port), path, query),
    };
    let mut headers = Vec::with_capacity(plan.origin_headers.len() + 1);
    headers.push(("x-forwarded-host".to_owned(), forwarded_host.to_owned()));
    let personalised = plan.is_personalised();
    // Cached origin responses are kept apart per variant, never shared across variants.
    let cache_key = personalised.then(|| format!("{origin}#cohort:{}", plan.variant_signature()));
    let inject = tenant.edge.inject_assignments && plan.unit_id.is_some();
    // `<` cannot appear raw inside the script element, or a value could close it early.
    let assignments = inject.then(|| plan.assignments_json().to_string().replace('<', "\\u003c"));
    headers.extend(plan.origin_headers);
    PagePlan {
        origin,
        headers,
        cache_key,
        set_cookie: plan.set_cookie,
        personalised,
        actions: plan.html_actions,
        assignments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::Assignment;
    use serde_json::json;

    #[test]
    fn urls_are_cut_at_authority_path_and_query() {
        let url = UrlParts::parse("https://shop.example:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(
            (url.scheme, url.host, url.port, url.path, url.query),
            ("https://", "shop.example", ":8443", "/a/b", "x=1&y=2")
        );
        let bare = UrlParts::parse("http://shop.example?q").unwrap();
        assert_eq!(
            (bare.host, bare.port, bare.path, bare.query),
            ("shop.example", "", "/", "q")
        );
        let ipv6 = UrlParts::parse("http://[::1]/").unwrap();
        assert_eq!((ipv6.host, ipv6.port), ("[::1]", ""));
        let ipv6_port = UrlParts::parse("http://[::1]:8787/x").unwrap();
        assert_eq!((ipv6_port.host, ipv6_port.port), ("[::1]", ":8787"));
        for bad in ["/relative", "ftp://x/", "https:///path", "https://user@host/"] {
            assert_eq!(UrlParts::parse(bad), None, "{bad}");
        }
    }

    fn tenant(inject: bool) -> Tenant {
        Tenant::from_json(
            &json!({
                "schema": 1, "tenant": "shop", "version": 1, "hostnames": ["shop.example"],
                "hash_key": "000102030405060708090a0b0c0d0e0f",
                "edge": {"inject_assignments": inject},
                "experiments": []
            })
            .to_string(),
        )
        .unwrap()
    }

    fn assigned(route_path: Option<&str>, route_host: Option<&str>) -> Plan {
        Plan {
            unit_id: Some("u1".into()),
            assignments: vec![Assignment {
                experiment: "hero".into(),
                variant: "</script>".into(),
            }],
            route_path: route_path.map(str::to_owned),
            route_host: route_host.map(str::to_owned),
            origin_headers: vec![("cohort-assignments".into(), "hero=b".into())],
            ..Plan::default()
        }
    }

    const URL: &str = "https://shop.example/products/1?ref=mail";

    #[test]
    fn without_an_override_the_request_goes_to_its_own_url_or_its_route() {
        let url = UrlParts::parse(URL).unwrap();
        let tenant = tenant(false);
        let untouched = page_plan(&tenant, Plan::default(), &url, URL, None);
        assert_eq!(untouched.origin, URL);
        assert_eq!(
            untouched.headers,
            vec![("x-forwarded-host".into(), "shop.example".into())]
        );
        assert_eq!((untouched.cache_key, untouched.personalised), (None, false));

        let routed = page_plan(&tenant, assigned(Some("/v2/products"), None), &url, URL, None);
        assert_eq!(
            routed.origin, "https://shop.example/v2/products?ref=mail",
            "route without query keeps it"
        );
        let routed = page_plan(
            &tenant,
            assigned(Some("/v2?x=1"), Some("beta.shop.example")),
            &url,
            URL,
            None,
        );
        assert_eq!(
            routed.origin, "https://beta.shop.example/v2?x=1",
            "route query replaces it"
        );
        assert_eq!(routed.headers[0].1, "shop.example");
        assert_eq!(routed.headers[1], ("cohort-assignments".into(), "hero=b".into()));
        assert_eq!(
            routed.cache_key.as_deref(),
            Some("https://beta.shop.example/v2?x=1#cohort:hero=</script>")
        );
    }

    #[test]
    fn an_override_origin_gets_the_path_and_the_route_host_as_forwarded_host() {
        let url = UrlParts::parse(URL).unwrap();
        let plan = page_plan(
            &tenant(false),
            assigned(None, Some("beta.shop.example")),
            &url,
            URL,
            Some("http://127.0.0.1:8788/"),
        );
        assert_eq!(plan.origin, "http://127.0.0.1:8788/products/1?ref=mail");
        assert_eq!(plan.headers[0], ("x-forwarded-host".into(), "beta.shop.example".into()));
    }

    #[test]
    fn the_assignments_script_cannot_close_its_element() {
        let url = UrlParts::parse(URL).unwrap();
        let plan = page_plan(&tenant(true), assigned(None, None), &url, URL, None);
        let script = plan.assignments.unwrap();
        assert!(!script.contains('<'), "{script}");
        let back: serde_json::Value = serde_json::from_str(&script).unwrap();
        assert_eq!(back["assignments"]["hero"], "</script>");
        assert_eq!(
            page_plan(&tenant(false), assigned(None, None), &url, URL, None).assignments,
            None
        );
        let anonymous = Plan {
            unit_id: None,
            ..assigned(None, None)
        };
        assert_eq!(page_plan(&tenant(true), anonymous, &url, URL, None).assignments, None);
    }
}
