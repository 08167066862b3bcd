//! Each engine behind one interface, shared by `peers.rs` and `matrix.rs`: the translation of a
//! workload into the engine's own format, loading that text, a visitor in the engine's own form,
//! one full evaluation (every experiment), and what it assigned, checked against the workload.
//!
//! The peers come from crates.io (dev-dependencies); nothing here copies their code.

use std::collections::HashMap;
use std::hint::black_box;

use cohort_benches::{Assigned, Clause, Cohort, CohortVisitor, Experiment, PeerTargeting, Rule, Visitor, Workload};
use serde_json::{Map, Value, json};

/// The peers, by name and crate (as named in Cargo.lock), in the order figures list them.
pub const PEERS: [(&str, &str); 3] = [
    (Unleash::NAME, Unleash::CRATE),
    (LaunchDarkly::NAME, LaunchDarkly::CRATE),
    (GrowthBook::NAME, GrowthBook::CRATE),
];

pub trait Engine: Sized {
    /// The engine's name in figures and messages.
    const NAME: &'static str;
    /// Its crate as named in Cargo.lock (`cohort-core`: this tree).
    const CRATE: &'static str;
    /// What loading the text gives: the engine ready to evaluate.
    type Loaded;
    /// A visitor in the engine's own form, built once, outside the timed loops.
    type Visitor;

    /// The workload in the engine's own JSON format, or why the engine cannot express it.
    fn text(w: &Workload) -> Result<String, String>;
    /// From the JSON text to a ready engine: what the load figures time.
    fn load(text: &str) -> Self::Loaded;
    fn from_loaded(loaded: Self::Loaded, w: &Workload) -> Self;
    fn visitor(&self, v: &Visitor) -> Self::Visitor;
    /// Every experiment for the visitor, the results kept from the optimiser.
    fn evaluate(&self, v: &Self::Visitor);
    fn assigned(&self, v: &Self::Visitor) -> Assigned;

    fn new(w: &Workload) -> Result<Self, String> {
        let text = Self::text(w)?;
        Ok(Self::from_loaded(Self::load(&text), w))
    }
}

/// An engine with the workload's visitor, checked: it assigns exactly the expected experiments.
pub struct Ready<E: Engine> {
    pub engine: E,
    pub visitor: E::Visitor,
}

impl<E: Engine> Ready<E> {
    /// Err(reason) when the engine cannot express the workload; panics when it assigns otherwise
    /// than expected.
    pub fn new(w: &Workload) -> Result<Self, String> {
        let engine = E::new(w)?;
        let visitor = engine.visitor(&w.visitor);
        w.check(E::NAME, &engine.assigned(&visitor));
        Ok(Ready { engine, visitor })
    }

    pub fn evaluate(&self) {
        self.engine.evaluate(black_box(&self.visitor));
    }

    /// Panics unless the engine really splits: over 100 other visitors with the same attributes,
    /// each expected experiment's first variant gets 30 to 70 of them (50 expected, 4 standard
    /// deviations), and each visitor gets exactly the expected experiments.
    pub fn check_split(&self, w: &Workload) {
        const VISITORS: usize = 100;
        let mut first = vec![0usize; w.experiments.len()];
        for i in 0..VISITORS {
            let visitor = w.visitor.with_id(format!("split-check-visitor-{i}"));
            let assigned = self.engine.assigned(&self.engine.visitor(&visitor));
            w.check(E::NAME, &assigned);
            for (count, ((_, variant), e)) in first.iter_mut().zip(assigned.iter().zip(&w.experiments)) {
                if variant.as_deref() == Some(e.variants[0].0.as_str()) {
                    *count += 1;
                }
            }
        }
        for (count, e) in first.iter().zip(&w.experiments) {
            if w.expected.contains(&e.key) {
                assert!(
                    (30..=70).contains(count),
                    "{}: {}: `{}` got {count} of {VISITORS} visitors, expected about half: the split is not working",
                    E::NAME,
                    e.key,
                    e.variants[0].0
                );
            }
        }
    }
}

/// The peers' form of every experiment, or the first reason one has none.
fn peer_targeting(w: &Workload) -> Result<Vec<(&Experiment, &PeerTargeting)>, String> {
    w.experiments
        .iter()
        .map(|e| e.peer.as_ref().map(|p| (e, p)).map_err(|reason| reason.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cohort: tenant config schema 1 (docs/config.md), compiled once.

impl Engine for Cohort {
    const NAME: &'static str = "cohort";
    const CRATE: &'static str = "cohort-core";
    type Loaded = cohort_core::Tenant;
    type Visitor = CohortVisitor;

    fn text(w: &Workload) -> Result<String, String> {
        Ok(cohort_benches::cohort_config(&w.experiments))
    }
    fn load(text: &str) -> Self::Loaded {
        Cohort::load(text)
    }
    fn from_loaded(tenant: Self::Loaded, _: &Workload) -> Self {
        Cohort { tenant }
    }
    fn visitor(&self, v: &Visitor) -> Self::Visitor {
        CohortVisitor::new(v)
    }
    fn evaluate(&self, v: &Self::Visitor) {
        black_box(Cohort::evaluate(self, v));
    }
    fn assigned(&self, v: &Self::Visitor) -> Assigned {
        Cohort::assigned(self, v)
    }
}

// ---------------------------------------------------------------------------------------------
// Unleash (yggdrasil, the engine every Unleash SDK embeds): one toggle per experiment with one
// flexibleRollout strategy at 100% whose constraints are the targeting and whose strategy variants
// are the split (weights out of 1000, sticky on the user id). Constraints are ANDed and a
// strategy has no OR; properties are strings, so numbers are compared through NUM_* operators.

pub struct Unleash {
    engine: unleash_yggdrasil::EngineState,
    names: Vec<String>,
}

fn unleash_constraint(attribute: &str, clause: &Clause) -> Result<Value, String> {
    let list = |operator: &str, values: &[String]| json!({"operator": operator, "values": values});
    let single = |operator: &str, value: String| json!({"operator": operator, "value": value});
    let mut constraint = match clause {
        Clause::In(v) => list("IN", v),
        Clause::NotIn(v) => list("NOT_IN", v),
        Clause::Gte(n) => single("NUM_GTE", n.to_string()),
        Clause::Lt(n) => single("NUM_LT", n.to_string()),
        Clause::VersionGt(v) => single("SEMVER_GT", v.clone()),
        Clause::VersionLt(v) => single("SEMVER_LT", v.clone()),
        Clause::Regex(r) => single("REGEX", r.clone()),
        Clause::Exists => return Err("no exists operator: constraints test values only".into()),
    };
    constraint["contextName"] = json!(attribute);
    constraint["inverted"] = json!(false);
    constraint["caseInsensitive"] = json!(false);
    Ok(constraint)
}

fn unleash_feature(e: &Experiment, rules: &[Rule]) -> Result<Value, String> {
    let constraints: Vec<Value> =
        match rules {
            [] => vec![],
            [rule] => rule
                .iter()
                .map(|(attribute, clause)| unleash_constraint(attribute, clause))
                .collect::<Result<_, _>>()?,
            _ => return Err(
                "no OR within a strategy: its constraints are ANDed (OR takes a strategy per branch, not translated)"
                    .into(),
            ),
        };
    let variants: Vec<Value> = e
        .variants
        .iter()
        .map(|(k, weight)| json!({"name": k, "weight": weight / 10, "weightType": "variable", "stickiness": "default"}))
        .collect();
    Ok(json!({
        "name": e.key, "type": "experiment", "enabled": true,
        "strategies": [{
            "name": "flexibleRollout",
            "parameters": {"rollout": "100", "stickiness": "default", "groupId": e.key},
            "constraints": constraints,
            "variants": variants,
        }],
    }))
}

impl Engine for Unleash {
    const NAME: &'static str = "unleash";
    const CRATE: &'static str = "unleash-yggdrasil";
    type Loaded = unleash_yggdrasil::EngineState;
    type Visitor = unleash_yggdrasil::Context;

    fn text(w: &Workload) -> Result<String, String> {
        let features = peer_targeting(w)?
            .into_iter()
            .map(|(e, p)| unleash_feature(e, &p.rules))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"version": 2, "features": features}).to_string())
    }
    fn load(text: &str) -> Self::Loaded {
        let features: unleash_yggdrasil::ClientFeatures = serde_json::from_str(text).expect("unleash: ClientFeatures");
        // `EngineState::default()` needs the `wall-clock` feature; a fixed start time does not.
        let engine = unleash_yggdrasil::EngineState::initial_state(Default::default());
        if let Some(warnings) = engine.apply_client_features(features) {
            panic!("unleash: the toggles did not compile cleanly: {warnings:?}");
        }
        engine
    }
    fn from_loaded(engine: Self::Loaded, w: &Workload) -> Self {
        Unleash {
            engine,
            names: w.experiments.iter().map(|e| e.key.clone()).collect(),
        }
    }
    fn visitor(&self, v: &Visitor) -> Self::Visitor {
        let properties: HashMap<String, String> = v.attribute_strings().map(|(k, v)| (k.to_string(), v)).collect();
        unleash_yggdrasil::Context {
            user_id: Some(v.id.clone()),
            session_id: None,
            environment: None,
            app_name: None,
            current_time: None,
            remote_address: None,
            properties: Some(properties),
        }
    }
    fn evaluate(&self, v: &Self::Visitor) {
        for name in &self.names {
            black_box(self.engine.get_variant(black_box(name), v, &None));
        }
    }
    fn assigned(&self, v: &Self::Visitor) -> Assigned {
        self.names
            .iter()
            .map(|name| {
                let variant = self.engine.get_variant(name, v, &None);
                (
                    name.clone(),
                    (variant.feature_enabled && variant.enabled).then_some(variant.name),
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// LaunchDarkly (the server-side evaluation crate its Rust SDK uses): one flag per experiment, one
// rule per branch of the targeting (rules are ORed, a rule's clauses ANDed), each serving the same
// 50/50 `experiment` rollout (weights out of 100000); the fallthrough serves a third "none"
// variation. Without targeting the fallthrough is the rollout.

pub struct LaunchDarkly {
    store: LdStore,
    flags: Vec<launchdarkly_server_sdk_evaluation::Flag>,
}

/// Flags without prerequisites or segments: the store is never consulted, but evaluate needs one.
struct LdStore(HashMap<String, launchdarkly_server_sdk_evaluation::Flag>);

impl launchdarkly_server_sdk_evaluation::Store for LdStore {
    fn flag(&self, flag_key: &str) -> Option<launchdarkly_server_sdk_evaluation::Flag> {
        self.0.get(flag_key).cloned()
    }
    fn segment(&self, _segment_key: &str) -> Option<launchdarkly_server_sdk_evaluation::Segment> {
        None
    }
}

fn ld_clause(attribute: &str, clause: &Clause) -> Result<Value, String> {
    let (op, values, negate) = match clause {
        Clause::In(v) => ("in", json!(v), false),
        Clause::NotIn(v) => ("in", json!(v), true),
        Clause::Gte(n) => ("greaterThanOrEqual", json!([n]), false),
        Clause::Lt(n) => ("lessThan", json!([n]), false),
        Clause::VersionGt(v) => ("semVerGreaterThan", json!([v]), false),
        Clause::VersionLt(v) => ("semVerLessThan", json!([v]), false),
        Clause::Regex(r) => ("matches", json!([r]), false),
        Clause::Exists => return Err("no exists operator: clauses test values only".into()),
    };
    Ok(json!({"contextKind": "user", "attribute": attribute, "op": op, "values": values, "negate": negate}))
}

fn ld_flag(e: &Experiment, rules: &[Rule]) -> Result<Value, String> {
    let rollout = json!({
        "kind": "experiment",
        "variations": e.variants.iter().enumerate()
            .map(|(i, (_, weight))| json!({"variation": i, "weight": weight * 10, "untracked": false}))
            .collect::<Vec<_>>(),
    });
    let mut variations: Vec<Value> = e.variants.iter().map(|(k, _)| json!(k)).collect();
    variations.push(json!("none"));
    let none = variations.len() - 1;
    let rules: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let clauses = rule
                .iter()
                .map(|(attribute, clause)| ld_clause(attribute, clause))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"id": format!("{}-rule-{i}", e.key), "clauses": clauses, "rollout": rollout, "trackEvents": false}))
        })
        .collect::<Result<_, String>>()?;
    let fallthrough = if rules.is_empty() {
        json!({"rollout": rollout})
    } else {
        json!({"variation": none})
    };
    Ok(json!({
        "key": e.key, "version": 1, "on": true, "targets": [], "contextTargets": [], "prerequisites": [],
        "rules": rules, "fallthrough": fallthrough, "offVariation": none, "variations": variations,
        "salt": e.key, "clientSide": false, "trackEvents": false, "trackEventsFallthrough": false,
    }))
}

impl LaunchDarkly {
    fn evaluate_flag<'a>(
        &'a self,
        flag: &'a launchdarkly_server_sdk_evaluation::Flag,
        context: &'a launchdarkly_server_sdk_evaluation::Context,
    ) -> launchdarkly_server_sdk_evaluation::Detail<&'a launchdarkly_server_sdk_evaluation::FlagValue> {
        launchdarkly_server_sdk_evaluation::evaluate(&self.store, flag, context, None)
    }
}

impl Engine for LaunchDarkly {
    const NAME: &'static str = "launchdarkly";
    const CRATE: &'static str = "launchdarkly-server-sdk-evaluation";
    type Loaded = Vec<launchdarkly_server_sdk_evaluation::Flag>;
    type Visitor = launchdarkly_server_sdk_evaluation::Context;

    fn text(w: &Workload) -> Result<String, String> {
        let flags = peer_targeting(w)?
            .into_iter()
            .map(|(e, p)| ld_flag(e, &p.rules))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Array(flags).to_string())
    }
    fn load(text: &str) -> Self::Loaded {
        serde_json::from_str(text).unwrap_or_else(|err| panic!("launchdarkly: flags: {err}"))
    }
    fn from_loaded(flags: Self::Loaded, _: &Workload) -> Self {
        LaunchDarkly {
            store: LdStore(flags.iter().map(|f| (f.key.clone(), f.clone())).collect()),
            flags,
        }
    }
    fn visitor(&self, v: &Visitor) -> Self::Visitor {
        let mut builder = launchdarkly_server_sdk_evaluation::ContextBuilder::new(v.id.clone());
        builder.kind("user");
        for (k, value) in &v.attributes {
            builder.set_value(k, launchdarkly_server_sdk_evaluation::AttributeValue::from(value));
        }
        builder.build().expect("launchdarkly: context")
    }
    fn evaluate(&self, v: &Self::Visitor) {
        for flag in &self.flags {
            black_box(self.evaluate_flag(black_box(flag), v));
        }
    }
    fn assigned(&self, v: &Self::Visitor) -> Assigned {
        use launchdarkly_server_sdk_evaluation::{FlagValue, Reason};
        self.flags
            .iter()
            .map(|flag| {
                let detail = self.evaluate_flag(flag, v);
                let variant = match (&detail.reason, detail.value) {
                    (
                        Reason::RuleMatch {
                            in_experiment: true, ..
                        },
                        Some(FlagValue::Str(v)),
                    )
                    | (Reason::Fallthrough { in_experiment: true }, Some(FlagValue::Str(v))) => Some(v.clone()),
                    (Reason::Fallthrough { .. }, Some(FlagValue::Str(v))) if v == "none" => None,
                    (reason, value) => panic!("launchdarkly: {}: unexpected result {value:?} ({reason:?})", flag.key),
                };
                (flag.key.clone(), variant)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// GrowthBook: one feature per experiment with one experiment rule; the condition is the targeting
// in the same Mongo-style language Cohort reads, weights 0.5/0.5, coverage 1, hashed on `id` with
// hash version 2.

pub struct GrowthBook {
    gb: growthbook_rust::growthbook::GrowthBook,
    names: Vec<String>,
}

fn gb_feature(e: &Experiment, condition: &Value) -> Value {
    let mut rule = json!({
        "key": e.key, "seed": e.key, "hashAttribute": "id", "hashVersion": 2, "coverage": 1.0,
        "variations": e.variants.iter().map(|(k, _)| json!(k)).collect::<Vec<_>>(),
        "weights": e.variants.iter().map(|(_, weight)| f64::from(*weight) / 10000.0).collect::<Vec<_>>(),
    });
    if condition.as_object().is_none_or(|c| !c.is_empty()) {
        rule["condition"] = condition.clone();
    }
    json!({"defaultValue": null, "rules": [rule]})
}

impl Engine for GrowthBook {
    const NAME: &'static str = "growthbook";
    const CRATE: &'static str = "growthbook-rust";
    type Loaded = growthbook_rust::growthbook::GrowthBook;
    type Visitor = Option<Vec<growthbook_rust::model_public::GrowthBookAttribute>>;

    fn text(w: &Workload) -> Result<String, String> {
        let features: Map<String, Value> = peer_targeting(w)?
            .into_iter()
            .map(|(e, p)| (e.key.clone(), gb_feature(e, &p.condition)))
            .collect();
        Ok(Value::Object(features).to_string())
    }
    fn load(text: &str) -> Self::Loaded {
        growthbook_rust::growthbook::GrowthBook {
            forced_variations: None,
            features: serde_json::from_str(text).expect("growthbook: features"),
            attributes: None,
            sticky_bucket_service: None,
            saved_groups: HashMap::new(),
        }
    }
    fn from_loaded(gb: Self::Loaded, w: &Workload) -> Self {
        GrowthBook {
            gb,
            names: w.experiments.iter().map(|e| e.key.clone()).collect(),
        }
    }
    fn visitor(&self, v: &Visitor) -> Self::Visitor {
        let mut attributes = v.attributes.clone();
        attributes.insert("id".into(), json!(v.id));
        Some(
            growthbook_rust::model_public::GrowthBookAttribute::from(Value::Object(attributes))
                .expect("growthbook: attributes"),
        )
    }
    fn evaluate(&self, v: &Self::Visitor) {
        for name in &self.names {
            black_box(self.gb.check(black_box(name), v));
        }
    }
    fn assigned(&self, v: &Self::Visitor) -> Assigned {
        self.names
            .iter()
            .map(|name| {
                let result = self.gb.check(name, v);
                let variant = match (&result.experiment_result, result.source.as_str()) {
                    (Some(r), "experiment") if r.in_experiment => {
                        Some(r.value.as_str().expect("growthbook: string variation").to_string())
                    }
                    (_, "defaultValue") => None,
                    (r, source) => panic!("growthbook: {name}: unexpected result from {source}: {r:?}"),
                };
                (name.clone(), variant)
            })
            .collect()
    }
}
