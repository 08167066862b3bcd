//! The browser exports compute what the edge computes: the shared evaluation vectors, through the
//! JSON API pages use. Runs natively and in headless Chromium (scripts/test.sh).

use cohort_browser::{Engine, bucket};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const EVALUATIONS: &str = include_str!("../../../testdata/evaluations.json");
const BUCKETING: &str = include_str!("../../../testdata/bucketing.json");

#[wasm_bindgen_test(unsupported = test)]
fn engine_matches_the_evaluation_vectors() {
    let vectors: Value = serde_json::from_str(EVALUATIONS).unwrap();
    let engine = Engine::new(&vectors["config"].to_string()).expect("vector config compiles");
    assert_eq!(engine.version(), 12.0);
    let mut checked = 0;
    // Pages have no sticky cookie to pass (it is HttpOnly); those cases are the edge's.
    for case in vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["context"].get("sticky").is_none())
    {
        let decisions: Value = serde_json::from_str(&engine.evaluate(&case["context"].to_string()).unwrap()).unwrap();
        assert_eq!(decisions, case["expected"], "context {}", case["context"]);
        checked += 1;
    }
    assert!(checked >= 20);
}

#[wasm_bindgen_test(unsupported = test)]
fn bucket_export_matches_the_bucketing_vectors() {
    let vectors: Value = serde_json::from_str(BUCKETING).unwrap();
    for case in vectors["cases"].as_array().unwrap().iter().take(50) {
        let got = bucket(
            case["hash_key"].as_str().unwrap(),
            case["seed"].as_str().unwrap(),
            case["unit"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(u64::from(got), case["bucket"].as_u64().unwrap(), "{case}");
    }
}
