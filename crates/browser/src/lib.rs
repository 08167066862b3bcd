//! Cohort's engine for web pages: the same assignments the edge computes, from JavaScript.
//!
//! A thin adapter: JSON strings in, JSON strings out, every decision made by `cohort-core`.
//!
//! ```js
//! import init, { Engine } from "./pkg/cohort_browser.js";
//! await init();
//! const engine = new Engine(configJson);          // validated and compiled once
//! const decisions = JSON.parse(engine.evaluate(JSON.stringify({
//!   unit: "visitor-1", path: location.pathname, attributes: { country: "DE" },
//! })));
//! ```

use std::collections::BTreeMap;

use cohort_core::bucket::HashKey;
use cohort_core::{Context, Tenant};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// A compiled tenant config, evaluated many times.
#[wasm_bindgen]
pub struct Engine {
    tenant: Tenant,
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
