//! Cohort's engine for web pages: the same assignments the edge computes, from JavaScript.
//!
//! A thin adapter; every decision is made by `cohort-core`. Two ways to ask:
//!
//! ```js
//! import init, { Engine } from "./pkg/cohort_browser.js";
//! await init();
//! const engine = new Engine(configJson);          // validated and compiled once
//! // What a page needs: the variant of each experiment the visitor is in, as a plain object
//! // ({"checkout-button": "green", ...}), built by the Wasm without a JSON document in between.
//! const variants = engine.assign("visitor-1", { country: "DE" }, location.pathname);
//! // Every decision with its reason, as JSON (for tools, debugging and the CLI's format).
//! const decisions = JSON.parse(engine.evaluate(JSON.stringify({
//!   unit: "visitor-1", path: location.pathname, attributes: { country: "DE" },
//! })));
//! ```

use std::collections::BTreeMap;

use cohort_core::bucket::HashKey;
use cohort_core::{Context, Outcome, Tenant};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// A compiled tenant config, evaluated many times.
#[wasm_bindgen]
pub struct Engine {
    tenant: Tenant,
    /// The experiment and variant keys as JavaScript strings, made on the first `assign` so that
    /// each call only links existing strings into a fresh object.
    #[cfg(target_arch = "wasm32")]
    keys: std::cell::OnceCell<assign::Keys>,
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

#[wasm_bindgen]
impl Engine {
    /// Validates and compiles a tenant config; throws an error naming the JSON path on bad input.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str) -> Result<Engine, JsError> {
        Ok(Engine {
            tenant: Tenant::from_json(config_json).map_err(|e| JsError::new(&e.to_string()))?,
            #[cfg(target_arch = "wasm32")]
            keys: std::cell::OnceCell::new(),
        })
    }

    /// Evaluates every experiment for a context JSON; returns a JSON array of decisions.
    pub fn evaluate(&self, context_json: &str) -> Result<String, JsError> {
        evaluate_tenant(&self.tenant, context_json, now_ms).map_err(|e| JsError::new(&e))
    }

    /// The config version this engine was built from.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.tenant.version as f64
    }
}

/// The unit's bucket in `[0, 10000)` for a seed under a 32-hex-character hash key.
#[wasm_bindgen]
pub fn bucket(hash_key_hex: &str, seed: &str, unit: &str) -> Result<u32, JsError> {
    let key = HashKey::from_hex(hash_key_hex).ok_or_else(|| JsError::new("hash key must be 32 hex characters"))?;
    Ok(cohort_core::bucket::bucket(&key, seed, unit))
}

/// Evaluates a targeting condition (JSON) against attributes (JSON).
#[wasm_bindgen(js_name = matchCondition)]
pub fn match_condition(condition_json: &str, attributes_json: &str) -> Result<bool, JsError> {
    let condition: serde_json::Value =
        serde_json::from_str(condition_json).map_err(|e| JsError::new(&format!("condition: {e}")))?;
    let attributes: serde_json::Value =
        serde_json::from_str(attributes_json).map_err(|e| JsError::new(&format!("attributes: {e}")))?;
    let compiled = cohort_core::Condition::compile(&condition).map_err(|e| JsError::new(&e.to_string()))?;
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
mod assign {
    use wasm_bindgen::prelude::*;

    use super::{Engine, assignments, now_ms, parse_attributes};

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = JSON, js_name = stringify)]
        fn json_stringify(value: &JsValue) -> Option<String>;
        #[wasm_bindgen(js_namespace = Object, js_name = create)]
        fn object_create(prototype: &JsValue) -> JsValue;
        #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
        fn reflect_set(target: &JsValue, key: &JsValue, value: &JsValue) -> bool;
    }

    /// Experiment keys, and each experiment's variant keys, as JavaScript strings.
    pub(super) struct Keys {
        experiments: Vec<JsValue>,
        variants: Vec<Vec<JsValue>>,
    }

    #[wasm_bindgen]
    impl Engine {
        /// The variant of every experiment the visitor is in, as an object from experiment key to
        /// variant key (experiments the visitor is not in are absent). `attributes` is a plain
        /// object (or undefined), `path` defaults to `/`, `now` (Unix ms) to the page's clock.
        /// Throws when the attributes are not a JSON object.
        #[wasm_bindgen(unchecked_return_type = "Record<string, string>")]
        pub fn assign(
            &self,
            unit: &str,
            #[wasm_bindgen(unchecked_param_type = "Record<string, unknown> | undefined")] attributes: &JsValue,
            path: Option<String>,
            now: Option<f64>,
        ) -> Result<JsValue, JsError> {
            // JSON.stringify is the engine's own, much faster than walking the object from Wasm.
            let text = if attributes.is_undefined() || attributes.is_null() {
                None
            } else {
                Some(json_stringify(attributes).ok_or_else(|| JsError::new("attributes: not serialisable"))?)
            };
            let attributes = parse_attributes(text.as_deref()).map_err(|e| JsError::new(&e))?;
            let now_ms = now.map_or_else(now_ms, |now| now as i64);
            let keys = self.keys.get_or_init(|| Keys {
                experiments: self
                    .tenant
                    .experiments
                    .iter()
                    .map(|e| JsValue::from_str(&e.key))
                    .collect(),
                variants: self
                    .tenant
                    .experiments
                    .iter()
                    .map(|e| e.variants.iter().map(|v| JsValue::from_str(&v.key)).collect())
                    .collect(),
            });
            // A prototype-less object: experiment keys such as `constructor` stay plain keys.
            let result = object_create(&JsValue::NULL);
            for (experiment, variant) in
                assignments(&self.tenant, unit, &attributes, path.as_deref().unwrap_or("/"), now_ms)
            {
                reflect_set(
                    &result,
                    &keys.experiments[experiment],
                    &keys.variants[experiment][variant],
                );
            }
            Ok(result)
        }
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
