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
use cohort_core::evaluate::{Decision, Outcome, Reason, Source};
use cohort_core::{Context, Tenant};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
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
    serde_json::to_string(&DecisionsJson(&evaluation.decisions)).map_err(|e| format!("decisions: {e}"))
}

/// The decisions as [`Decision::to_json`] renders them, byte for byte (`serde_json::Value` sorts
/// object keys, so the fields go out in that order), but serialised straight into the output
/// string: building a `Value` per decision and printing it through `Display` took most of a page's
/// `evaluate` call (bench/js/engine.mjs, `node --cpu-prof`).
struct DecisionsJson<'a, 't>(&'a [Decision<'t>]);

impl Serialize for DecisionsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for decision in self.0 {
            seq.serialize_element(&DecisionJson(decision))?;
        }
        seq.end()
    }
}

struct DecisionJson<'a, 't>(&'a Decision<'t>);

impl Serialize for DecisionJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let experiment = &self.0.experiment.key;
        match &self.0.outcome {
            Outcome::Assigned {
                variant,
                source,
                bucket,
                log_exposure,
            } => {
                let mut map = serializer.serialize_map(Some(5))?;
                map.serialize_entry("bucket", bucket)?;
                map.serialize_entry("experiment", experiment)?;
                map.serialize_entry("exposure", log_exposure)?;
                map.serialize_entry(
                    "source",
                    match source {
                        Source::Bucketed => "bucketed",
                        Source::Sticky => "sticky",
                        Source::Forced => "forced",
                        Source::Winner => "winner",
                    },
                )?;
                map.serialize_entry("variant", &self.0.experiment.variants[*variant].key)?;
                map.end()
            }
            Outcome::Excluded(reason) => {
                let mut map = serializer.serialize_map(None)?;
                if let Reason::HeldOut { bucket }
                | Reason::OutsideLayer { bucket }
                | Reason::OutsideCoverage { bucket } = reason
                {
                    map.serialize_entry("bucket", bucket)?;
                }
                map.serialize_entry("experiment", experiment)?;
                if let Reason::UnknownForcedVariant(variant) = reason {
                    map.serialize_entry("forced_variant", variant)?;
                }
                map.serialize_entry("reason", reason.code())?;
                map.end()
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct serialiser writes exactly what `Decision::to_json` + `Value::to_string` wrote.
    #[test]
    fn decisions_json_is_byte_identical_to_to_json() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../testdata/evaluations.json")).unwrap();
        let tenant = Tenant::from_json(&vectors["config"].to_string()).unwrap();
        let mut checked = 0;
        for case in vectors["cases"].as_array().unwrap() {
            let context = &case["context"];
            if context.get("sticky").is_some() {
                continue;
            }
            let got = evaluate_tenant(&tenant, &context.to_string(), || 0).unwrap();
            let parsed: ContextJson = serde_json::from_value(context.clone()).unwrap();
            let evaluation = tenant.evaluate(&Context {
                unit_id: &parsed.unit,
                attributes: &parsed.attributes,
                path: &parsed.path,
                now_ms: parsed.now.unwrap_or(0),
                sticky: &[],
                forced: &parsed.forced,
            });
            let want = serde_json::Value::Array(evaluation.decisions.iter().map(|d| d.to_json()).collect()).to_string();
            assert_eq!(got, want, "context {context}");
            checked += 1;
        }
        assert!(checked >= 20);
    }
}
