//! The shared vector suite (`testdata/*.json`). Each test runs natively under `cargo test` and in
//! headless Chromium under `wasm-bindgen-test` (scripts/test.sh), so both builds of the engine are
//! held to the same expected values.

use std::collections::BTreeMap;

use cohort_core::bucket::{self, BucketRange, HashKey, growthbook};
use cohort_core::keys::CookieKey;
use cohort_core::{Condition, Context, CookieError, StickyCookie, StickyEntry, Tenant};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const BUCKETING: &str = include_str!("../../../testdata/bucketing.json");
const CONDITIONS: &str = include_str!("../../../testdata/conditions.json");
const COOKIES: &str = include_str!("../../../testdata/cookies.json");
const EVALUATIONS: &str = include_str!("../../../testdata/evaluations.json");

fn load(text: &str) -> Value {
    serde_json::from_str(text).expect("vector file is JSON")
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is a string in {value}"))
}

fn u64_of(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is a number in {value}"))
}

#[wasm_bindgen_test(unsupported = test)]
fn bucketing_vectors() {
    let vectors = load(BUCKETING);
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for case in cases {
        let key = HashKey::from_hex(str_of(case, "hash_key")).unwrap();
        let (seed, unit) = (str_of(case, "seed"), str_of(case, "unit"));
        let hash = bucket::hash64(&key, seed, unit);
        assert_eq!(format!("{hash:016x}"), str_of(case, "hash"), "hash of {case}");
        assert_eq!(
            u64::from(bucket::bucket(&key, seed, unit)),
            u64_of(case, "bucket"),
            "bucket of {case}"
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn range_vectors() {
    for case in load(BUCKETING)["ranges"].as_array().unwrap() {
        let weights: Vec<u32> = serde_json::from_value(case["weights"].clone()).unwrap();
        let expected: Vec<[u32; 2]> = serde_json::from_value(case["ranges"].clone()).unwrap();
        let ranges = bucket::variant_ranges(&weights, u64_of(case, "coverage") as u32);
        let ranges: Vec<[u32; 2]> = ranges.iter().map(|r: &BucketRange| [r.start, r.end]).collect();
        assert_eq!(ranges, expected, "{case}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn growthbook_vectors() {
    for case in load(BUCKETING)["growthbook_v2"].as_array().unwrap() {
        let bucket = growthbook::bucket_v2(str_of(case, "seed"), str_of(case, "unit"));
        assert_eq!(u64::from(bucket), u64_of(case, "bucket"), "{case}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn condition_vectors() {
    let vectors = load(CONDITIONS);
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for case in cases {
        let name = str_of(case, "name");
        match (Condition::compile(&case["condition"]), case.get("error")) {
            (Ok(condition), None) => {
                let expected = case["expected"].as_bool().unwrap();
                assert_eq!(condition.matches(&case["attributes"]), expected, "{name}");
            }
            (Err(error), Some(expected)) => {
                let expected = expected.as_str().unwrap();
                assert!(
                    error.to_string().contains(expected),
                    "{name}: `{error}` lacks `{expected}`"
                );
            }
            (Ok(_), Some(_)) => panic!("{name}: compiled, expected an error"),
            (Err(error), None) => panic!("{name}: {error}"),
        }
    }
}

fn error_kind(error: &CookieError) -> &'static str {
    match error {
        CookieError::Oversized { .. } => "oversized",
        CookieError::NotBase64 => "not_base64",
        CookieError::Truncated => "truncated",
        CookieError::UnsupportedFormat(_) => "unsupported_format",
        CookieError::BadMac => "bad_mac",
        CookieError::Stale { .. } => "stale",
        _ => "malformed",
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn cookie_vectors() {
    const MAX_AGE: i64 = 34_560_000;
    let vectors = load(COOKIES);
    let key = CookieKey(
        cohort_core::encoding::hex_decode(str_of(&vectors, "cookie_key"))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    for case in vectors["valid"].as_array().unwrap() {
        let cookie = StickyCookie {
            unit_id: str_of(case, "unit").to_owned(),
            config_version: u64_of(case, "config_version"),
            issued_at: u64_of(case, "issued_at") as i64,
            assignments: case["assignments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| StickyEntry {
                    experiment_id: u64_of(a, "experiment_id") as u32,
                    variant: u64_of(a, "variant") as u8,
                    exposed: a["exposed"].as_bool().unwrap(),
                })
                .collect(),
        };
        let value = str_of(case, "value");
        assert_eq!(cookie.encode(&key), value, "{}", str_of(case, "name"));
        assert!(value.len() < 400);
        assert_eq!(StickyCookie::decode(value, &key, cookie.issued_at, MAX_AGE), Ok(cookie));
    }
    for case in vectors["invalid"].as_array().unwrap() {
        let error =
            StickyCookie::decode(str_of(case, "value"), &key, 1_795_981_624, MAX_AGE).expect_err(str_of(case, "name"));
        let expected = str_of(case, "error");
        assert!(
            expected == "any" || expected == error_kind(&error),
            "{}: got {error:?}",
            str_of(case, "name")
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn evaluation_vectors() {
    let vectors = load(EVALUATIONS);
    let tenant = Tenant::from_value(vectors["config"].clone()).expect("vector config is valid");
    for case in vectors["cases"].as_array().unwrap() {
        let context = &case["context"];
        let forced: BTreeMap<String, String> =
            serde_json::from_value(context.get("forced").cloned().unwrap_or(Value::Null)).unwrap_or_default();
        let sticky: Vec<StickyEntry> = context
            .get("sticky")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| StickyEntry {
                        experiment_id: tenant.experiment(str_of(e, "experiment")).unwrap().cookie_id,
                        variant: u64_of(e, "variant") as u8,
                        exposed: e["exposed"].as_bool().unwrap(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let evaluation = tenant.evaluate(&Context {
            unit_id: str_of(context, "unit"),
            attributes: &context["attributes"],
            path: str_of(context, "path"),
            now_ms: context["now"].as_i64().unwrap(),
            sticky: &sticky,
            forced: &forced,
        });
        let actual: Vec<Value> = evaluation.decisions.iter().map(|d| d.to_json()).collect();
        assert_eq!(Value::Array(actual), case["expected"], "context {context}");
        let unit = str_of(context, "unit");
        assert_eq!(
            tenant.holdout_variant(unit),
            case["holdout"].as_str(),
            "holdout record of {unit}"
        );
    }
}
