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

/// The cases a page can ask about (no sticky cookie, no QA override) with the variant each
/// assigned experiment gets, as `Engine.assign`'s object has them.
fn page_cases() -> Vec<(cohort_vectors::EvaluationCase, serde_json::Map<String, Value>)> {
    cohort_vectors::evaluations()
        .cases
        .into_iter()
        .filter(|case| case.context.sticky.is_empty() && case.context.forced.is_empty())
        .map(|case| {
            let variants = case
                .expected
                .iter()
                .filter_map(|decision| match decision {
                    cohort_vectors::ExpectedDecision::Assigned(a) => {
                        Some((a.experiment.clone(), Value::String(a.variant.clone())))
                    }
                    cohort_vectors::ExpectedDecision::Excluded(_) => None,
                })
                .collect();
            (case, variants)
        })
        .collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn assignments_match_the_evaluation_vectors() {
    let vectors = cohort_vectors::evaluations();
    let tenant = cohort_core::Tenant::from_json(&vectors.config.to_string()).expect("vector config compiles");
    let cases = page_cases();
    assert!(cases.len() >= 20);
    for (case, expected) in &cases {
        let c = &case.context;
        let got: serde_json::Map<String, Value> =
            cohort_browser::assignments(&tenant, &c.unit, &c.attributes, &c.path, c.now)
                .map(|(e, v)| {
                    let experiment = &tenant.experiments[e];
                    (
                        experiment.key.clone(),
                        Value::String(experiment.variants[v].key.clone()),
                    )
                })
                .collect();
        assert_eq!(&got, expected, "context {c:?}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn attributes_must_be_an_object() {
    assert_eq!(cohort_browser::parse_attributes(None), Ok(Value::Null));
    assert!(cohort_browser::parse_attributes(Some(r#"{"a":1}"#)).is_ok());
    let err = cohort_browser::parse_attributes(Some("[1]")).unwrap_err();
    assert!(err.contains("expected an object"), "{err}");
    let err = cohort_browser::parse_attributes(Some("{")).unwrap_err();
    assert!(err.starts_with("attributes:"), "{err}");
}

/// The export itself, as a page calls it: a JavaScript object in, a JavaScript object out.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test]
fn assign_export_matches_the_evaluation_vectors() {
    use wasm_bindgen::prelude::*;
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = JSON, js_name = stringify)]
        fn stringify(value: &JsValue) -> String;
        #[wasm_bindgen(js_namespace = JSON, js_name = parse)]
        fn parse(text: &str) -> JsValue;
    }
    let engine = Engine::new(&cohort_vectors::evaluations().config.to_string()).expect("vector config compiles");
    // `assign` refuses attributes that are not an object (checked below); the engine under it
    // reads them as none, which the native test covers.
    for (case, expected) in page_cases()
        .into_iter()
        .filter(|(case, _)| case.context.attributes.is_object())
    {
        let c = &case.context;
        let attributes = parse(&c.attributes.to_string());
        let result = engine
            .assign(&c.unit, &attributes, Some(c.path.clone()), Some(c.now as f64))
            .expect("valid attributes");
        let got: serde_json::Map<String, Value> = serde_json::from_str(&stringify(&result)).unwrap();
        assert_eq!(got, expected, "context {c:?}");
    }
    assert!(engine.assign("u", &parse("[1]"), None, None).is_err());
    assert!(engine.assign("u", &JsValue::UNDEFINED, None, None).is_ok());
}
