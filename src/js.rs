//! Raw JavaScript access, in one place: fields of plain JS objects (the entry's request facts,
//! `request.cf`, queue messages) read by name.

use cohort_core::edge::serve::TrackLimit;
use cohort_core::edge::{BotManagement, Geo};
use worker::js_sys::{Function, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};

/// `target[name]`, or `undefined` when it cannot be read.
pub fn field(target: &JsValue, name: &str) -> JsValue {
    if !target.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `target[name]` as text; empty when missing or not a string.
pub fn text(target: &JsValue, name: &str) -> String {
    field(target, name).as_string().unwrap_or_default()
}

/// `{ name: value }`, for options objects the platform takes (`{ delaySeconds }`).
pub fn object(name: &str, value: JsValue) -> JsValue {
    let object = Object::new();
    let _ = Reflect::set(&object, &JsValue::from_str(name), &value);
    object.into()
}

/// The names of the `RequestFacts` object `src/entry.mjs` builds (its JSDoc `@typedef
/// RequestFacts`), in the order [`RequestFacts::read`] reads them. A test holds the two equal.
pub const REQUEST_FIELDS: [&str; 19] = [
    "method",
    "url",
    "userAgent",
    "acceptLanguage",
    "referer",
    "cookie",
    "secGpc",
    "purpose",
    "originOverride",
    "country",
    "region",
    "city",
    "asn",
    "colo",
    "botScore",
    "verifiedBot",
    "headers",
    "clientIp",
    "trackLimit",
];

/// What the entry read from one request (headers, `request.cf`, the deployment's origin override).
pub struct RequestFacts {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// `Accept-Language`.
    pub accept_language: String,
    /// `Referer`.
    pub referer: String,
    /// `Cookie`.
    pub cookie: String,
    /// `Sec-GPC`.
    pub sec_gpc: String,
    /// The prefetch/prerender headers joined with `;`.
    pub purpose: String,
    /// `ORIGIN_OVERRIDE`, when the deployment sets one.
    pub origin_override: Option<String>,
    /// `request.cf`'s geography.
    pub geo: Geo,
    /// `request.cf.botManagement`, on zones that have it.
    pub bot_management: BotManagement,
    /// The request's `Headers`, for a header only the tenant's config names.
    headers: JsValue,
    /// `CF-Connecting-IP`.
    pub client_ip: String,
    /// The rate limiters' verdict on a track request, once the entry asked them.
    pub track_limit: TrackLimit,
}

impl RequestFacts {
    /// Reads the entry's facts object field by field; a missing or mistyped field reads as empty
    /// (unknown, for the geography).
    pub fn read(facts: &JsValue) -> RequestFacts {
        let [
            method,
            url,
            user_agent,
            accept_language,
            referer,
            cookie,
            sec_gpc,
            purpose,
            origin_override,
            country,
            region,
            city,
            asn,
            colo,
            bot_score,
            verified_bot,
            headers,
            client_ip,
            track_limit,
        ] = REQUEST_FIELDS.map(|name| field(facts, name));
        let text = |value: JsValue| value.as_string().unwrap_or_default();
        RequestFacts {
            method: text(method),
            url: text(url),
            user_agent: text(user_agent),
            accept_language: text(accept_language),
            referer: text(referer),
            cookie: text(cookie),
            sec_gpc: text(sec_gpc),
            purpose: text(purpose),
            origin_override: origin_override.as_string().filter(|v| !v.is_empty()),
            geo: Geo::from_raw(
                country.as_string(),
                region.as_string(),
                city.as_string(),
                asn.as_f64(),
                colo.as_string(),
            ),
            bot_management: BotManagement::from_raw(bot_score.as_f64(), verified_bot.as_bool()),
            headers,
            client_ip: text(client_ip),
            track_limit: match track_limit.as_string().as_deref() {
                Some("within") => TrackLimit::Within,
                Some("exceeded") => TrackLimit::Exceeded,
                _ => TrackLimit::Unchecked,
            },
        }
    }

    /// Request header `name` (`Headers.get`), empty when absent or unreadable.
    pub fn header(&self, name: &str) -> String {
        let Ok(get) = Reflect::get(&self.headers, &JsValue::from_str("get")) else {
            return String::new();
        };
        get.dyn_ref::<Function>()
            .and_then(|get| get.call1(&self.headers, &JsValue::from_str(name)).ok())
            .and_then(|value| value.as_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::REQUEST_FIELDS;

    /// The entry's `@typedef {Object} RequestFacts` lists the same properties in the same order.
    #[test]
    fn the_entry_builds_the_facts_this_module_reads() {
        let entry = include_str!("entry.mjs");
        let start = entry
            .find("@typedef {Object} RequestFacts")
            .expect("entry.mjs declares RequestFacts");
        let declared: Vec<&str> = entry[start..]
            .lines()
            .skip(1)
            .take_while(|line| line.trim_start().starts_with("* @property"))
            .filter_map(|line| line.split('}').nth(1)?.split_whitespace().next())
            .map(|name| name.trim_matches(|c| c == '[' || c == ']'))
            .collect();
        assert_eq!(declared, REQUEST_FIELDS);
    }
}
