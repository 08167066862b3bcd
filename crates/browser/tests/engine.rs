//! The browser exports compute what the edge computes: the shared vectors (`cohort-vectors`),
//! through the JSON API pages use. Runs natively and in headless Chromium (scripts/test.sh).

use cohort_browser::{Engine, bucket};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test(unsupported = test)]
fn engine_matches_the_evaluation_vectors() {
    let vectors = cohort_vectors::evaluations();
    let engine = Engine::new(&vectors.config.to_string()).expect("vector config compiles");
    assert_eq!(engine.version(), 12.0);
    let mut checked = 0;
    // Pages have no sticky cookie to pass (it is HttpOnly); those cases are the edge's.
    for case in vectors.cases.iter().filter(|c| c.context.sticky.is_empty()) {
        // Without sticky assignments the vector's context is the JSON `Engine.evaluate` takes.
        let context = serde_json::to_string(&case.context).unwrap();
        let decisions: Value = serde_json::from_str(&engine.evaluate(&context).unwrap()).unwrap();
        assert_eq!(
            decisions,
            serde_json::to_value(&case.expected).unwrap(),
            "context {context}"
        );
        checked += 1;
    }
    assert!(checked >= 20);
}

#[wasm_bindgen_test(unsupported = test)]
fn bucket_export_matches_the_bucketing_vectors() {
    let cases = cohort_vectors::bucketing().cases;
    assert!(cases.len() >= 50);
    for case in cases.iter().take(50) {
        let got = bucket(&case.hash_key, &case.seed, &case.unit).unwrap();
        assert_eq!(got, case.bucket, "{case:?}");
    }
}
