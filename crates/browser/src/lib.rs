//! Cohort's engine for web pages: the same assignments the edge computes, from JavaScript.
//!
//! A thin adapter; every decision is made by `cohort-core`. Built into the npm package
//! `@cohort/engine` by `scripts/build-browser.sh` (README.md is the package's documentation).
//! Two ways to ask:
//!
//! ```js
//! import init, { Engine } from "@cohort/engine";
//! await init();
//! const engine = Engine.fromConfig(config);       // validated and compiled once
//! // What a page needs: the variant of each experiment the visitor is in, as a plain object
//! // ({"checkout-button": "green", ...}), built by the Wasm without a JSON document in between.
//! const variants = engine.assign("visitor-1", { country: "DE" }, location.pathname);
//! // Every decision with its reason (for tools, debugging and the CLI's format).
//! const decisions = engine.decisions({ unit: "visitor-1", path: location.pathname, attributes: { country: "DE" } });
//! ```
//!
//! `new Engine(configJson)` and `evaluate(contextJson)` take and give the same as JSON text. The
//! TypeScript declarations (`TenantConfig`, `Decision`, `EngineError`, ...) are written by hand in
//! `typescript.rs`, from the config and decision formats of docs/config.md and testdata/README.md.

use std::collections::BTreeMap;

use cohort_core::bucket::HashKey;
use cohort_core::{Context, Outcome, Tenant};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

mod typescript;

/// A compiled tenant config, evaluated many times.
#[wasm_bindgen]
pub struct Engine {
    tenant: Tenant,
    /// The experiment and variant keys as JavaScript strings, made on the first `assign` so that
    /// each call only links existing strings into a fresh object.
    #[cfg(target_arch = "wasm32")]
    keys: std::cell::OnceCell<objects::Keys>,
}

/// The request context as JSON, mirroring [`cohort_core::Context`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextJson {
    unit: String,
    #[serde(default)]
    attributes: serde_json::Value,
    #[serde(default = "root_path")]
    path: String,
    /// Unix milliseconds; the page's clock when absent.
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    forced: BTreeMap<String, String>,
}

fn root_path() -> String {
    "/".into()
}

/// Why an export refused its input. Pages catch it as an `Error` whose `name` is `EngineError`,
/// with `kind` and, for config errors, `path` set (the `EngineError` type of the declarations);
/// the message is the one this error displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// Which input was wrong.
    pub kind: EngineErrorKind,
    /// For config errors, the JSON path of the offending value
    /// (`experiments[2].variants[1].weight`; empty for the document itself); `None` otherwise.
    pub path: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

/// The input an [`EngineError`] is about; its `kind` in JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineErrorKind {
    /// The tenant config (`new Engine`, `Engine.fromConfig`).
    Config,
    /// The evaluation context (`evaluate`, `decisions`).
    Context,
    /// The visitor's attributes (`assign`, `matchCondition`).
    Attributes,
    /// The targeting condition (`matchCondition`).
    Condition,
    /// The bucketing key (`bucket`).
    HashKey,
}

impl EngineErrorKind {
    /// The name JavaScript sees in the error's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineErrorKind::Config => "config",
            EngineErrorKind::Context => "context",
            EngineErrorKind::Attributes => "attributes",
            EngineErrorKind::Condition => "condition",
            EngineErrorKind::HashKey => "hash_key",
        }
    }
}

impl EngineError {
    fn new(kind: EngineErrorKind, message: impl Into<String>) -> EngineError {
        EngineError {
            kind,
            path: None,
            message: message.into(),
        }
    }

    fn config(error: &cohort_core::ConfigError) -> EngineError {
        EngineError {
            kind: EngineErrorKind::Config,
            path: Some(error.path.clone()),
            message: error.to_string(),
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &JsValue, value: &JsValue) -> bool;
}

/// What JavaScript catches: an `Error` (with its stack) carrying the kind and path as properties,
/// so pages can tell a bad config from a bad call without parsing messages.
impl From<EngineError> for JsValue {
    fn from(error: EngineError) -> JsValue {
        let thrown = JsValue::from(JsError::new(&error.message));
        reflect_set(&thrown, &"name".into(), &"EngineError".into());
        reflect_set(&thrown, &"kind".into(), &error.kind.as_str().into());
        if let Some(path) = &error.path {
            reflect_set(&thrown, &"path".into(), &path.into());
        }
        thrown
    }
}

#[wasm_bindgen]
impl Engine {
    /// Validates and compiles a tenant config given as JSON text (`Engine.fromConfig` takes the
    /// object); throws an `EngineError` of kind `config` naming the JSON path on bad input.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str) -> Result<Engine, EngineError> {
        Ok(Engine {
            tenant: Tenant::from_json(config_json).map_err(|e| EngineError::config(&e))?,
            #[cfg(target_arch = "wasm32")]
            keys: std::cell::OnceCell::new(),
        })
    }

    /// Evaluates every experiment for a context given as JSON text (an `EvaluationContext`);
    /// returns the `Decision[]` as JSON text (`decisions` takes and gives objects). Throws an
    /// `EngineError` of kind `context` on a bad context.
    pub fn evaluate(&self, context_json: &str) -> Result<String, EngineError> {
        evaluate_tenant(&self.tenant, context_json, now_ms).map_err(|e| EngineError::new(EngineErrorKind::Context, e))
    }

    /// The config version this engine was built from.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.tenant.version as f64
    }
}

/// The unit's bucket in `[0, 10000)` for a seed under a 32-hex-character hash key; throws an
/// `EngineError` of kind `hash_key` for any other key.
#[wasm_bindgen]
pub fn bucket(hash_key_hex: &str, seed: &str, unit: &str) -> Result<u32, EngineError> {
    let key = HashKey::from_hex(hash_key_hex)
        .ok_or_else(|| EngineError::new(EngineErrorKind::HashKey, "hash key must be 32 hex characters"))?;
    Ok(cohort_core::bucket::bucket(&key, seed, unit))
}

/// Evaluates a targeting condition (JSON text of a `Condition`) against attributes (JSON text);
/// throws an `EngineError` of kind `condition` or `attributes` naming the one that is wrong.
#[wasm_bindgen(js_name = matchCondition)]
pub fn match_condition(condition_json: &str, attributes_json: &str) -> Result<bool, EngineError> {
    let condition: serde_json::Value = serde_json::from_str(condition_json)
        .map_err(|e| EngineError::new(EngineErrorKind::Condition, format!("condition: {e}")))?;
    let attributes: serde_json::Value = serde_json::from_str(attributes_json)
        .map_err(|e| EngineError::new(EngineErrorKind::Attributes, format!("attributes: {e}")))?;
    let compiled = cohort_core::Condition::compile(&condition)
        .map_err(|e| EngineError::new(EngineErrorKind::Condition, e.to_string()))?;
    Ok(compiled.matches(&attributes))
}

/// Each experiment the unit is assigned to, as `(experiment index, variant index)` in config order:
/// what `Engine.assign` turns into an object.
pub fn assignments<'t>(
    tenant: &'t Tenant,
    unit: &str,
    attributes: &serde_json::Value,
    path: &str,
    now_ms: i64,
) -> impl Iterator<Item = (usize, usize)> + 't {
    let forced = BTreeMap::new();
    let evaluation = tenant.evaluate(&Context {
        unit_id: unit,
        attributes,
        path,
        now_ms,
        sticky: &[],
        forced: &forced,
    });
    evaluation
        .decisions
        .into_iter()
        .enumerate()
        .filter_map(|(index, decision)| match decision.outcome {
            Outcome::Assigned { variant, .. } => Some((index, variant)),
            Outcome::Excluded(_) => None,
        })
}

/// Parses the attributes a page passes as JSON text (`JSON.stringify` of its object).
pub fn parse_attributes(json: Option<&str>) -> Result<serde_json::Value, String> {
    match json {
        None => Ok(serde_json::Value::Null),
        Some(text) => match serde_json::from_str(text) {
            Ok(value @ (serde_json::Value::Object(_) | serde_json::Value::Null)) => Ok(value),
            Ok(_) => Err("attributes: expected an object of attributes".into()),
            Err(e) => Err(format!("attributes: {e}")),
        },
    }
}

#[cfg(target_arch = "wasm32")]
pub use objects::is_engine_error;

/// The exports that take and give JavaScript objects rather than JSON text; they call into
/// JavaScript, which only exists on wasm32.
#[cfg(target_arch = "wasm32")]
mod objects {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    use super::{Engine, EngineError, EngineErrorKind, Tenant, assignments, evaluate_tenant, now_ms, parse_attributes};

    #[wasm_bindgen]
    extern "C" {
        /// Throws on a cycle or a BigInt: caught, so that such an argument is refused with an
        /// `EngineError` like any other bad input.
        #[wasm_bindgen(catch, js_namespace = JSON, js_name = stringify)]
        fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(js_namespace = JSON, js_name = parse)]
        fn json_parse(text: &str) -> JsValue;
        #[wasm_bindgen(js_namespace = Object, js_name = create)]
        fn object_create(prototype: &JsValue) -> JsValue;

        /// Any `Error`: what `isEngineError` recognises and `JSON.stringify` throws.
        #[wasm_bindgen(js_name = Error)]
        type ErrorObject;
        #[wasm_bindgen(method, getter)]
        fn name(this: &ErrorObject) -> JsValue;
        #[wasm_bindgen(method, getter)]
        fn message(this: &ErrorObject) -> JsValue;
    }

    /// An argument as JSON text (JavaScript's own `JSON.stringify`, much faster than walking the
    /// object from Wasm); `Ok(None)` for `undefined` and `null`.
    fn json_text(value: &JsValue, kind: EngineErrorKind) -> Result<Option<String>, EngineError> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let not_serialisable = |reason: Option<String>| {
            let reason = reason.map(|reason| format!(": {reason}")).unwrap_or_default();
            EngineError::new(kind, format!("{}: not serialisable{reason}", kind.as_str()))
        };
        let text = json_stringify(value).map_err(|thrown| {
            not_serialisable(thrown.dyn_ref::<ErrorObject>().and_then(|e| e.message().as_string()))
        })?;
        // A function or a symbol stringifies to undefined.
        text.as_string().map(Some).ok_or_else(|| not_serialisable(None))
    }

    /// Experiment keys, and each experiment's variant keys, as JavaScript strings.
    pub(super) struct Keys {
        experiments: Vec<JsValue>,
        variants: Vec<Vec<JsValue>>,
    }

    #[wasm_bindgen]
    impl Engine {
        /// Validates and compiles a tenant config object (what `JSON.parse` of the config file
        /// gives); throws an `EngineError` of kind `config` naming the JSON path on bad input.
        #[wasm_bindgen(js_name = fromConfig)]
        pub fn from_config(
            #[wasm_bindgen(unchecked_param_type = "TenantConfig")] config: &JsValue,
        ) -> Result<Engine, EngineError> {
            // Missing altogether: the engine's own "a tenant config is a JSON object".
            let text = json_text(config, EngineErrorKind::Config)?.unwrap_or_else(|| "null".into());
            Engine::new(&text)
        }

        /// Every experiment's decision for a context, in config order: the variant and how it was
        /// chosen, or why the visitor is not in the experiment. Throws an `EngineError` of kind
        /// `context` on a bad context.
        #[wasm_bindgen(unchecked_return_type = "Decision[]")]
        pub fn decisions(
            &self,
            #[wasm_bindgen(unchecked_param_type = "EvaluationContext")] context: &JsValue,
        ) -> Result<JsValue, EngineError> {
            let text = json_text(context, EngineErrorKind::Context)?.ok_or_else(|| {
                EngineError::new(EngineErrorKind::Context, "context: expected an object with a `unit`")
            })?;
            let decisions = evaluate_tenant(&self.tenant, &text, now_ms)
                .map_err(|e| EngineError::new(EngineErrorKind::Context, e))?;
            Ok(json_parse(&decisions))
        }

        /// The variant of every experiment the visitor is in, as an object from experiment key to
        /// variant key (experiments the visitor is not in are absent). `attributes` is a plain
        /// object (or undefined), `path` defaults to `/`, `now` (Unix ms) to the page's clock.
        /// Throws an `EngineError` of kind `attributes` when they are not a JSON object.
        #[wasm_bindgen(unchecked_return_type = "Assignments")]
        pub fn assign(
            &self,
            unit: &str,
            #[wasm_bindgen(unchecked_param_type = "Attributes | undefined")] attributes: &JsValue,
            path: Option<String>,
            now: Option<f64>,
        ) -> Result<JsValue, EngineError> {
            let text = json_text(attributes, EngineErrorKind::Attributes)?;
            let attributes =
                parse_attributes(text.as_deref()).map_err(|e| EngineError::new(EngineErrorKind::Attributes, e))?;
            let now_ms = now.map_or_else(now_ms, |now| now as i64);
            let keys = self.keys.get_or_init(|| keys(&self.tenant));
            // A prototype-less object: experiment keys such as `constructor` stay plain keys.
            let result = object_create(&JsValue::NULL);
            for (experiment, variant) in
                assignments(&self.tenant, unit, &attributes, path.as_deref().unwrap_or("/"), now_ms)
            {
                super::reflect_set(
                    &result,
                    &keys.experiments[experiment],
                    &keys.variants[experiment][variant],
                );
            }
            Ok(result)
        }
    }

    fn keys(tenant: &Tenant) -> Keys {
        Keys {
            experiments: tenant.experiments.iter().map(|e| JsValue::from_str(&e.key)).collect(),
            variants: tenant
                .experiments
                .iter()
                .map(|e| e.variants.iter().map(|v| JsValue::from_str(&v.key)).collect())
                .collect(),
        }
    }

    /// Whether a caught value is an error the engine threw (narrows it to `EngineError`).
    #[wasm_bindgen(js_name = isEngineError, unchecked_return_type = "value is EngineError")]
    pub fn is_engine_error(#[wasm_bindgen(unchecked_param_type = "unknown")] value: &JsValue) -> bool {
        value
            .dyn_ref::<ErrorObject>()
            .is_some_and(|error| error.name().as_string().as_deref() == Some("EngineError"))
    }
}

/// Shared by the export and native tests: parse the context, evaluate, render JSON.
pub fn evaluate_tenant(tenant: &Tenant, context_json: &str, clock: fn() -> i64) -> Result<String, String> {
    let context: ContextJson = serde_json::from_str(context_json).map_err(|e| format!("context: {e}"))?;
    let now_ms = context.now.unwrap_or_else(clock);
    let evaluation = tenant.evaluate(&Context {
        unit_id: &context.unit,
        attributes: &context.attributes,
        path: &context.path,
        now_ms,
        sticky: &[],
        forced: &context.forced,
    });
    serde_json::to_string(&evaluation.decisions).map_err(|e| format!("decisions: {e}"))
}

#[cfg(target_arch = "wasm32")]
fn now_ms() -> i64 {
    js_sys_now() as i64
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn js_sys_now() -> f64;
}

#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
