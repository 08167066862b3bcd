//! The browser exports compute what the edge computes: the shared vectors (`cohort-vectors`),
//! through the JSON and object APIs pages use, and refuse bad input with typed errors. Runs
//! natively and in headless Chromium (`wasm-pack test`, scripts/test.sh).

// clippy.toml lets tests unwrap, but clippy only knows `#[test]` functions as tests; on wasm32
// these are `#[wasm_bindgen_test]` ones.
#![cfg_attr(target_arch = "wasm32", allow(clippy::unwrap_used))]

use cohort_browser::{Engine, EngineError, EngineErrorKind, bucket, match_condition};
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

/// The vector config with one field replaced, as JSON text.
fn vector_config_with(pointer: &str, value: Value) -> String {
    let mut config = cohort_vectors::evaluations().config;
    *config.pointer_mut(pointer).expect("the vector config has the field") = value;
    config.to_string()
}

#[wasm_bindgen_test(unsupported = test)]
fn config_errors_name_the_offending_path() {
    let error = Engine::new(&vector_config_with("/experiments/1/variants/2/weight", 3000.into())).err();
    assert_eq!(
        error,
        Some(EngineError {
            kind: EngineErrorKind::Config,
            path: Some("experiments[1].variants".into()),
            message: "experiments[1].variants: weights sum to 9000, expected 10000".into(),
        })
    );
    let error = Engine::new("{").err().expect("not JSON");
    assert_eq!((error.kind, error.path.as_deref()), (EngineErrorKind::Config, Some("")));
    assert_eq!(error.kind.as_str(), "config");
}

#[wasm_bindgen_test(unsupported = test)]
fn call_errors_name_the_wrong_input() {
    let engine = Engine::new(&cohort_vectors::evaluations().config.to_string()).expect("vector config compiles");
    let kind_and_message = |error: EngineError| {
        assert_eq!(error.path, None, "only config errors have a path");
        (error.kind.as_str(), error.message)
    };
    let (kind, message) = kind_and_message(engine.evaluate(r#"{"path": "/"}"#).unwrap_err());
    assert_eq!(kind, "context");
    assert!(message.starts_with("context: missing field `unit`"), "{message}");
    let (kind, message) = kind_and_message(bucket("abc", "seed", "unit").unwrap_err());
    assert_eq!(
        (kind, message.as_str()),
        ("hash_key", "hash key must be 32 hex characters")
    );
    let (kind, message) = kind_and_message(match_condition("{", "{}").unwrap_err());
    assert_eq!(kind, "condition");
    assert!(message.starts_with("condition: "), "{message}");
    let (kind, message) = kind_and_message(match_condition(r#"{"a": {"$bogus": 1}}"#, "{}").unwrap_err());
    assert_eq!(kind, "condition");
    assert!(message.contains("$bogus"), "{message}");
    let (kind, message) = kind_and_message(match_condition("{}", "[").unwrap_err());
    assert_eq!(kind, "attributes");
    assert!(message.starts_with("attributes: "), "{message}");
}

/// The JavaScript built-ins the wasm32 tests call.
#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = JSON, js_name = stringify)]
        pub fn stringify(value: &JsValue) -> String;
        #[wasm_bindgen(js_namespace = JSON, js_name = parse)]
        pub fn parse(text: &str) -> JsValue;
        #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
        pub fn get(target: &JsValue, key: &str) -> JsValue;
        #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
        pub fn set(target: &JsValue, key: &str, value: &JsValue) -> bool;
        #[wasm_bindgen(js_name = Error)]
        pub type Error;
        #[wasm_bindgen(constructor, js_class = Error)]
        pub fn new(message: &str) -> Error;
    }
}

/// The export itself, as a page calls it: a JavaScript object in, a JavaScript object out.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test]
fn assign_export_matches_the_evaluation_vectors() {
    use js::{parse, stringify};
    use wasm_bindgen::JsValue;
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

/// The typed exports, as a page calls them: the config and each context as objects, the
/// decisions back as objects.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test]
fn decisions_export_matches_the_evaluation_vectors() {
    let vectors = cohort_vectors::evaluations();
    let engine = Engine::from_config(&js::parse(&vectors.config.to_string())).expect("vector config compiles");
    assert_eq!(engine.version(), 12.0);
    let mut checked = 0;
    for case in vectors.cases.iter().filter(|c| c.context.sticky.is_empty()) {
        let context = serde_json::to_string(&case.context).unwrap();
        let decisions = engine.decisions(&js::parse(&context)).expect("valid context");
        let got: Value = serde_json::from_str(&js::stringify(&decisions)).unwrap();
        assert_eq!(got, serde_json::to_value(&case.expected).unwrap(), "context {context}");
        checked += 1;
    }
    assert!(checked >= 20);
}

/// What a page catches: an `Error` named `EngineError` with the kind and, for configs, the path.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test]
fn thrown_errors_carry_their_kind_and_path() {
    use wasm_bindgen::{JsCast, JsValue};

    let config = js::parse(&vector_config_with("/experiments/1/variants/2/weight", 3000.into()));
    let thrown = JsValue::from(Engine::from_config(&config).err().expect("weights do not sum to 10000"));
    assert!(thrown.is_instance_of::<js::Error>());
    assert!(cohort_browser::is_engine_error(&thrown));
    assert_eq!(js::get(&thrown, "name").as_string().as_deref(), Some("EngineError"));
    assert_eq!(js::get(&thrown, "kind").as_string().as_deref(), Some("config"));
    assert_eq!(
        js::get(&thrown, "path").as_string().as_deref(),
        Some("experiments[1].variants")
    );
    assert_eq!(
        js::get(&thrown, "message").as_string().as_deref(),
        Some("experiments[1].variants: weights sum to 9000, expected 10000")
    );
    let thrown = JsValue::from(bucket("abc", "seed", "unit").unwrap_err());
    assert!(cohort_browser::is_engine_error(&thrown));
    assert!(js::get(&thrown, "path").is_undefined());

    assert!(!cohort_browser::is_engine_error(&js::Error::new("other").into()));
    assert!(!cohort_browser::is_engine_error(&JsValue::from_str("EngineError")));
    assert!(!cohort_browser::is_engine_error(&JsValue::UNDEFINED));
    let missing = Engine::from_config(&JsValue::UNDEFINED).err().expect("no config");
    assert_eq!(missing.message, "a tenant config is a JSON object");
}

/// Arguments `JSON.stringify` refuses are refused as the caller's error, like any other bad input.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test]
fn unserialisable_arguments_are_engine_errors() {
    let engine = Engine::new(&cohort_vectors::evaluations().config.to_string()).expect("vector config compiles");
    let cyclic = js::parse(r#"{"country": "DE"}"#);
    js::set(&cyclic, "self", &cyclic);
    let error = engine.assign("u", &cyclic, None, None).expect_err("a cycle");
    assert_eq!(error.kind, EngineErrorKind::Attributes);
    assert!(
        error.message.starts_with("attributes: not serialisable: "),
        "{}",
        error.message
    );
    let error = engine.decisions(&cyclic).expect_err("a cycle");
    assert_eq!(error.kind, EngineErrorKind::Context);
    let error = engine
        .decisions(&wasm_bindgen::JsValue::UNDEFINED)
        .expect_err("no context");
    assert_eq!(error.message, "context: expected an object with a `unit`");
    let error = Engine::from_config(&cyclic).err().expect("a cycle");
    assert_eq!(error.kind, EngineErrorKind::Config);
}
