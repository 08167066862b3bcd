//! The shared vector suite (`testdata/*.json`, read through `cohort-vectors`). Each test runs
//! natively under `cargo test` and in headless Chromium under `wasm-bindgen-test`
//! (scripts/test.sh), so both builds of the engine are held to the same expected values.

use cohort_core::bucket::{self, BucketRange, HashKey, growthbook};
use cohort_core::secrets::CookieKey;
use cohort_core::{Condition, Context, CookieError, StickyCookie, StickyEntry, Tenant};
use cohort_vectors::{ConditionExpectation, CookieErrorKind, HoldoutVariant, MAX_AGE_SECONDS};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test(unsupported = test)]
fn bucketing_vectors() {
    let cases = cohort_vectors::bucketing().cases;
    assert!(cases.len() >= 100);
    for case in &cases {
        let key = HashKey::from_hex(&case.hash_key).unwrap();
        let hash = bucket::hash64(&key, &case.seed, &case.unit);
        assert_eq!(format!("{hash:016x}"), case.hash, "hash of {case:?}");
        assert_eq!(
            bucket::bucket(&key, &case.seed, &case.unit),
            case.bucket,
            "bucket of {case:?}"
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn range_vectors() {
    let cases = cohort_vectors::bucketing().ranges;
    assert!(cases.len() >= 40);
    for case in &cases {
        let ranges = bucket::variant_ranges(&case.weights, case.coverage);
        let ranges: Vec<[u32; 2]> = ranges.iter().map(|r: &BucketRange| [r.start, r.end]).collect();
        assert_eq!(ranges, case.ranges, "{case:?}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn growthbook_vectors() {
    let vectors = cohort_vectors::bucketing();
    assert!(vectors.growthbook_v2.len() >= 30 && vectors.growthbook_v1.len() >= 30);
    for case in &vectors.growthbook_v2 {
        assert_eq!(
            growthbook::bucket_v2(&case.seed, &case.unit),
            case.bucket,
            "v2 {case:?}"
        );
    }
    for case in &vectors.growthbook_v1 {
        assert_eq!(
            growthbook::bucket_v1(&case.seed, &case.unit),
            case.bucket,
            "v1 {case:?}"
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn condition_vectors() {
    let cases = cohort_vectors::conditions().cases;
    assert!(cases.len() >= 100);
    for case in &cases {
        let name = &case.name;
        match (Condition::compile(&case.condition), &case.expected) {
            (Ok(condition), ConditionExpectation::Evaluates { matches, .. }) => {
                assert_eq!(condition.matches(&case.attributes), *matches, "{name}");
            }
            (Err(error), ConditionExpectation::Rejected { error_contains }) => {
                assert!(
                    error.to_string().contains(error_contains.as_str()),
                    "{name}: `{error}` lacks `{error_contains}`"
                );
            }
            (Ok(_), ConditionExpectation::Rejected { .. }) => panic!("{name}: compiled, expected an error"),
            (Err(error), ConditionExpectation::Evaluates { .. }) => panic!("{name}: {error}"),
        }
    }
}

fn error_kind(error: &CookieError) -> CookieErrorKind {
    match error {
        CookieError::Oversized { .. } => CookieErrorKind::Oversized,
        CookieError::NotBase64 => CookieErrorKind::NotBase64,
        CookieError::Truncated => CookieErrorKind::Truncated,
        CookieError::UnsupportedFormat(_) => CookieErrorKind::UnsupportedFormat,
        CookieError::BadMac => CookieErrorKind::BadMac,
        CookieError::Stale { .. } => CookieErrorKind::Stale,
        // `CookieError` is non-exhaustive: any kind added later reads as malformed here.
        _ => CookieErrorKind::Malformed,
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn cookie_vectors() {
    let vectors = cohort_vectors::cookies();
    let key = CookieKey(
        cohort_core::encoding::hex_decode(&vectors.cookie_key)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert!(vectors.valid.len() >= 4);
    for case in &vectors.valid {
        let cookie = StickyCookie {
            unit_id: case.unit.clone(),
            config_version: case.config_version,
            issued_at: case.issued_at,
            assignments: case
                .assignments
                .iter()
                .map(|a| StickyEntry {
                    experiment_id: a.experiment_id,
                    variant: a.variant,
                    exposed: a.exposed,
                })
                .collect(),
        };
        assert_eq!(cookie.encode(&key), case.value, "{}", case.name);
        assert!(case.value.len() < 400);
        assert_eq!(
            StickyCookie::decode(&case.value, &key, cookie.issued_at, MAX_AGE_SECONDS),
            Ok(cookie)
        );
    }
    assert!(vectors.invalid.len() >= 7);
    for case in &vectors.invalid {
        let error = StickyCookie::decode(&case.value, &key, 1_795_981_624, MAX_AGE_SECONDS).expect_err(&case.name);
        assert!(case.error.admits(error_kind(&error)), "{}: got {error:?}", case.name);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn evaluation_vectors() {
    let vectors = cohort_vectors::evaluations();
    let tenant = Tenant::from_value(vectors.config).expect("vector config is valid");
    assert!(vectors.cases.len() >= 25);
    for case in &vectors.cases {
        let context = &case.context;
        let sticky: Vec<StickyEntry> = context
            .sticky
            .iter()
            .map(|entry| StickyEntry {
                experiment_id: tenant.experiment(&entry.experiment).unwrap().cookie_id,
                variant: entry.variant,
                exposed: entry.exposed,
            })
            .collect();
        let evaluation = tenant.evaluate(&Context {
            unit_id: &context.unit,
            attributes: &context.attributes,
            path: &context.path,
            now_ms: context.now,
            sticky: &sticky,
            forced: &context.forced,
        });
        let actual: Vec<Value> = evaluation.decisions.iter().map(|d| d.to_json()).collect();
        let expected = serde_json::to_value(&case.expected).unwrap();
        assert_eq!(Value::Array(actual), expected, "context {context:?}");
        assert_eq!(
            tenant.holdout_variant(&context.unit),
            case.holdout.map(HoldoutVariant::as_str),
            "holdout record of {}",
            context.unit
        );
    }
}
