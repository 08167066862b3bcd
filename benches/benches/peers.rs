//! Cohort's native engine next to the engines people would pick instead, on the
//! one workload every peer benchmark shares: `bench/workload.json` (one visitor, 20 experiments,
//! each targeting 2-3 attributes with equality, `$in` and `$nin`, and a 50/50 split).
//!
//! - `cargo bench -p cohort-benches` measures, prints the medians and the ratio peer/Cohort, and
//!   writes them to `target/bench-peers/native.json` (or `$COHORT_BENCH_OUT`).
//! - `cargo test -p cohort-benches --benches` is the quick mode: the assertions below, then one
//!   iteration of every benchmark (criterion's test mode), in a few seconds.
//!
//! Before anything is measured, every engine must assign the visitor exactly the experiments in
//! `expected_targeted` and no others, so no engine is timed doing nothing.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use serde_json::{Map, Value, json};

const WORKLOAD: &str = include_str!("../../bench/workload.json");
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// The peer crates, as named in Cargo.lock.
const PEERS: [(&str, &str); 3] = [
    ("unleash", "unleash-yggdrasil"),
    ("launchdarkly", "launchdarkly-server-sdk-evaluation"),
    ("growthbook", "growthbook-rust"),
];

// ---------------------------------------------------------------------------------------------
// The workload, engine-neutral.

/// One targeting clause; equality is `$in` with one value.
#[derive(Clone)]
enum Clause {
    In(Vec<String>),
    NotIn(Vec<String>),
}

#[derive(Clone)]
struct Experiment {
    key: String,
    /// The targeting as written (Cohort and GrowthBook read the same condition language).
    targeting: Value,
    clauses: Vec<(String, Clause)>,
    /// (variant key, weight in basis points)
    variants: Vec<(String, u32)>,
}

#[derive(Clone)]
struct Workload {
    visitor_id: String,
    attributes: Map<String, Value>,
    expected_targeted: Vec<String>,
    experiments: Vec<Experiment>,
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("workload: {what} must be an array"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("workload: {what} must hold strings"))
                .to_string()
        })
        .collect()
}

fn load_workload() -> Workload {
    let w: Value = serde_json::from_str(WORKLOAD).expect("bench/workload.json is JSON");
    let experiments = w["experiments"]
        .as_array()
        .expect("workload: experiments")
        .iter()
        .map(|e| {
            let key = e["key"].as_str().expect("workload: experiment key").to_string();
            let clauses = e["targeting"]
                .as_object()
                .expect("workload: targeting is an object")
                .iter()
                .map(|(attribute, test)| {
                    let clause = match test {
                        Value::String(s) => Clause::In(vec![s.clone()]),
                        Value::Object(op) if op.len() == 1 && op.contains_key("$in") => Clause::In(strings(&op["$in"], "$in")),
                        Value::Object(op) if op.len() == 1 && op.contains_key("$nin") => {
                            Clause::NotIn(strings(&op["$nin"], "$nin"))
                        }
                        other => panic!("workload: {key}.{attribute}: only equality, $in and $nin on strings are translated, got {other}"),
                    };
                    (attribute.clone(), clause)
                })
                .collect();
            let variants = e["variants"]
                .as_array()
                .expect("workload: variants")
                .iter()
                .map(|v| {
                    let weight = v["weight"].as_u64().expect("workload: weight") as u32;
                    (v["key"].as_str().expect("workload: variant key").to_string(), weight)
                })
                .collect();
            Experiment { key, targeting: e["targeting"].clone(), clauses, variants }
        })
        .collect();
    Workload {
        visitor_id: w["visitor"]["id"].as_str().expect("workload: visitor.id").to_string(),
        attributes: w["visitor"]["attributes"]
            .as_object()
            .expect("workload: visitor.attributes")
            .clone(),
        expected_targeted: strings(&w["expected_targeted"], "expected_targeted"),
        experiments,
    }
}

impl Workload {
    fn attribute_strings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(k, v)| {
            (
                k.as_str(),
                v.as_str().expect("workload: visitor attributes are strings"),
            )
        })
    }

    /// Panics unless `assigned` (experiment key → variant key, or None) holds exactly the expected
    /// experiments, each with one of its own variants.
    fn check(&self, engine: &str, assigned: &[(String, Option<String>)]) {
        assert_eq!(
            assigned.len(),
            self.experiments.len(),
            "{engine}: evaluated {} experiments, the workload has {}",
            assigned.len(),
            self.experiments.len()
        );
        for ((key, variant), experiment) in assigned.iter().zip(&self.experiments) {
            assert_eq!(key, &experiment.key, "{engine}: results out of order");
            let expected = self.expected_targeted.contains(key);
            match variant {
                Some(v) if expected => assert!(
                    experiment.variants.iter().any(|(k, _)| k == v),
                    "{engine}: {key} assigned `{v}`, which is not one of its variants"
                ),
                Some(v) => {
                    panic!("{engine}: {key} must not assign the visitor (targeting excludes it), but assigned `{v}`")
                }
                None if expected => panic!("{engine}: {key} must assign the visitor a variant, but assigned none"),
                None => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cohort: tenant config schema 1 (docs/config.md), compiled once.

const HASH_KEY: &str = "9f3c2a7be1d04586a2c7e9f0b3d51e68";

struct Cohort {
    tenant: cohort_core::Tenant,
    /// The same visitor against a one-experiment tenant without targeting (bucket_one group).
    single: cohort_core::Tenant,
    attributes: Value,
    unit_id: String,
    forced: std::collections::BTreeMap<String, String>,
}

fn cohort_tenant(experiments: Vec<Value>) -> cohort_core::Tenant {
    let config = json!({
        "schema": 1, "tenant": "bench", "version": 1, "hostnames": ["bench.example"],
        "hash_key": HASH_KEY, "experiments": experiments,
    });
    cohort_core::Tenant::from_json(&config.to_string()).unwrap_or_else(|e| panic!("cohort: config rejected: {e}"))
}

impl Cohort {
    fn new(w: &Workload) -> Self {
        let experiments = w
            .experiments
            .iter()
            .map(|e| {
                json!({
                    "key": e.key, "status": "running", "targeting": e.targeting,
                    "variants": e.variants.iter().map(|(k, weight)| json!({"key": k, "weight": weight})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let first = &w.experiments[0];
        let single = json!({
            "key": first.key, "status": "running",
            "variants": first.variants.iter().map(|(k, weight)| json!({"key": k, "weight": weight})).collect::<Vec<_>>(),
        });
        Cohort {
            tenant: cohort_tenant(experiments),
            single: cohort_tenant(vec![single]),
            attributes: Value::Object(w.attributes.clone()),
            unit_id: w.visitor_id.clone(),
            forced: Default::default(),
        }
    }

    fn evaluate<'t>(&'t self, tenant: &'t cohort_core::Tenant) -> cohort_core::Evaluation<'t> {
        tenant.evaluate(&cohort_core::Context {
            unit_id: &self.unit_id,
            attributes: &self.attributes,
            path: "/",
            now_ms: 1_800_000_000_000,
            sticky: &[],
            forced: &self.forced,
        })
    }

    fn assigned(&self) -> Vec<(String, Option<String>)> {
        self.evaluate(&self.tenant)
            .decisions
            .iter()
            .map(|d| (d.experiment.key.clone(), d.variant_key().map(str::to_string)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Unleash (yggdrasil, the engine every Unleash SDK embeds): one toggle per experiment with a
// flexibleRollout strategy at 100% whose constraints are the targeting (IN / NOT_IN) and whose
// strategy variants are the split (weights out of 1000, sticky on the user id).

struct Unleash {
    engine: unleash_yggdrasil::EngineState,
    context: unleash_yggdrasil::Context,
    names: Vec<String>,
}

impl Unleash {
    fn new(w: &Workload) -> Self {
        let features: Vec<Value> = w
            .experiments
            .iter()
            .map(|e| {
                let constraints: Vec<Value> = e
                    .clauses
                    .iter()
                    .map(|(attribute, clause)| {
                        let (operator, values) = match clause {
                            Clause::In(v) => ("IN", v),
                            Clause::NotIn(v) => ("NOT_IN", v),
                        };
                        json!({"contextName": attribute, "operator": operator, "values": values,
                               "inverted": false, "caseInsensitive": false})
                    })
                    .collect();
                let variants: Vec<Value> = e
                    .variants
                    .iter()
                    .map(|(k, weight)| json!({"name": k, "weight": weight / 10, "weightType": "variable", "stickiness": "default"}))
                    .collect();
                json!({
                    "name": e.key, "type": "experiment", "enabled": true,
                    "strategies": [{
                        "name": "flexibleRollout",
                        "parameters": {"rollout": "100", "stickiness": "default", "groupId": e.key},
                        "constraints": constraints,
                        "variants": variants,
                    }],
                })
            })
            .collect();
        let features: unleash_yggdrasil::ClientFeatures =
            serde_json::from_value(json!({"version": 2, "features": features})).expect("unleash: ClientFeatures");
        // `EngineState::default()` needs the `wall-clock` feature; a fixed start time does not.
        let engine = unleash_yggdrasil::EngineState::initial_state(Default::default());
        if let Some(warnings) = engine.apply_client_features(features) {
            panic!("unleash: the toggles did not compile cleanly: {warnings:?}");
        }
        let properties: HashMap<String, String> = w
            .attribute_strings()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let context = unleash_yggdrasil::Context {
            user_id: Some(w.visitor_id.clone()),
            session_id: None,
            environment: None,
            app_name: None,
            current_time: None,
            remote_address: None,
            properties: Some(properties),
        };
        Unleash {
            engine,
            context,
            names: w.experiments.iter().map(|e| e.key.clone()).collect(),
        }
    }

    fn variant(&self, name: &str) -> unleash_yggdrasil::ExtendedVariantDef {
        self.engine.get_variant(name, &self.context, &None)
    }

    fn assigned(&self) -> Vec<(String, Option<String>)> {
        self.names
            .iter()
            .map(|name| {
                let v = self.variant(name);
                (name.clone(), (v.feature_enabled && v.enabled).then_some(v.name))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// LaunchDarkly (the server-side evaluation crate its Rust SDK uses): one flag per experiment, one
// rule whose clauses are the targeting (`in`, negated for `$nin`) and whose rollout is an
// experiment 50/50 (weights out of 100000); the fallthrough serves a third "none" variation.

struct LaunchDarkly {
    store: LdStore,
    flags: Vec<launchdarkly_server_sdk_evaluation::Flag>,
    /// One flag without rules whose fallthrough is the 50/50 rollout (bucket_one group).
    single: launchdarkly_server_sdk_evaluation::Flag,
    context: launchdarkly_server_sdk_evaluation::Context,
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

fn ld_flag(e: &Experiment, with_rule: bool) -> launchdarkly_server_sdk_evaluation::Flag {
    let clauses: Vec<Value> = e
        .clauses
        .iter()
        .map(|(attribute, clause)| {
            let (negate, values) = match clause {
                Clause::In(v) => (false, v),
                Clause::NotIn(v) => (true, v),
            };
            json!({"contextKind": "user", "attribute": attribute, "op": "in", "values": values, "negate": negate})
        })
        .collect();
    let rollout = json!({
        "kind": "experiment",
        "variations": e.variants.iter().enumerate()
            .map(|(i, (_, weight))| json!({"variation": i, "weight": weight * 10, "untracked": false}))
            .collect::<Vec<_>>(),
    });
    let mut variations: Vec<Value> = e.variants.iter().map(|(k, _)| json!(k)).collect();
    variations.push(json!("none"));
    let none = variations.len() - 1;
    let (rules, fallthrough) = if with_rule {
        (
            json!([{"id": format!("{}-rule", e.key), "clauses": clauses, "rollout": rollout, "trackEvents": false}]),
            json!({"variation": none}),
        )
    } else {
        (json!([]), json!({"rollout": rollout}))
    };
    serde_json::from_value(json!({
        "key": e.key, "version": 1, "on": true, "targets": [], "contextTargets": [], "prerequisites": [],
        "rules": rules, "fallthrough": fallthrough, "offVariation": none, "variations": variations,
        "salt": e.key, "clientSide": false, "trackEvents": false, "trackEventsFallthrough": false,
    }))
    .unwrap_or_else(|err| panic!("launchdarkly: flag {}: {err}", e.key))
}

impl LaunchDarkly {
    fn new(w: &Workload) -> Self {
        let flags: Vec<_> = w.experiments.iter().map(|e| ld_flag(e, true)).collect();
        let mut builder = launchdarkly_server_sdk_evaluation::ContextBuilder::new(w.visitor_id.clone());
        builder.kind("user");
        for (k, v) in w.attribute_strings() {
            builder.set_string(k, v);
        }
        LaunchDarkly {
            store: LdStore(flags.iter().map(|f| (f.key.clone(), f.clone())).collect()),
            single: ld_flag(&w.experiments[0], false),
            flags,
            context: builder.build().expect("launchdarkly: context"),
        }
    }

    fn evaluate<'a>(
        &'a self,
        flag: &'a launchdarkly_server_sdk_evaluation::Flag,
    ) -> launchdarkly_server_sdk_evaluation::Detail<&'a launchdarkly_server_sdk_evaluation::FlagValue> {
        launchdarkly_server_sdk_evaluation::evaluate(&self.store, flag, &self.context, None)
    }

    fn assigned(&self) -> Vec<(String, Option<String>)> {
        use launchdarkly_server_sdk_evaluation::{FlagValue, Reason};
        self.flags
            .iter()
            .map(|flag| {
                let detail = self.evaluate(flag);
                let variant = match (&detail.reason, detail.value) {
                    (
                        Reason::RuleMatch {
                            in_experiment: true, ..
                        },
                        Some(FlagValue::Str(v)),
                    ) => Some(v.clone()),
                    (Reason::Fallthrough { .. }, Some(FlagValue::Str(v))) if v == "none" => None,
                    (reason, value) => panic!("launchdarkly: {}: unexpected result {value:?} ({reason:?})", flag.key),
                };
                (flag.key.clone(), variant)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// GrowthBook: one feature per experiment with one experiment rule; the condition is the
// workload's targeting as written (the same Mongo-style language), weights 0.5/0.5, coverage 1,
// hashed on `id` with hash version 2.

struct GrowthBook {
    gb: growthbook_rust::growthbook::GrowthBook,
    /// One feature without condition (bucket_one group).
    single: growthbook_rust::growthbook::GrowthBook,
    attributes: Option<Vec<growthbook_rust::model_public::GrowthBookAttribute>>,
    names: Vec<String>,
}

fn gb_instance(features: Map<String, Value>) -> growthbook_rust::growthbook::GrowthBook {
    growthbook_rust::growthbook::GrowthBook {
        forced_variations: None,
        features: serde_json::from_value(Value::Object(features)).expect("growthbook: features"),
        attributes: None,
        sticky_bucket_service: None,
        saved_groups: HashMap::new(),
    }
}

fn gb_feature(e: &Experiment, with_condition: bool) -> Value {
    let mut rule = json!({
        "key": e.key, "seed": e.key, "hashAttribute": "id", "hashVersion": 2, "coverage": 1.0,
        "variations": e.variants.iter().map(|(k, _)| json!(k)).collect::<Vec<_>>(),
        "weights": e.variants.iter().map(|(_, weight)| f64::from(*weight) / 10000.0).collect::<Vec<_>>(),
    });
    if with_condition {
        rule["condition"] = e.targeting.clone();
    }
    json!({"defaultValue": null, "rules": [rule]})
}

impl GrowthBook {
    fn new(w: &Workload) -> Self {
        let features = w
            .experiments
            .iter()
            .map(|e| (e.key.clone(), gb_feature(e, true)))
            .collect();
        let single = [(w.experiments[0].key.clone(), gb_feature(&w.experiments[0], false))]
            .into_iter()
            .collect();
        let mut attributes = w.attributes.clone();
        attributes.insert("id".into(), json!(w.visitor_id));
        GrowthBook {
            gb: gb_instance(features),
            single: gb_instance(single),
            attributes: Some(
                growthbook_rust::model_public::GrowthBookAttribute::from(Value::Object(attributes))
                    .expect("growthbook: attributes"),
            ),
            names: w.experiments.iter().map(|e| e.key.clone()).collect(),
        }
    }

    fn assigned(&self) -> Vec<(String, Option<String>)> {
        self.names
            .iter()
            .map(|name| {
                let result = self.gb.check(name, &self.attributes);
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

// ---------------------------------------------------------------------------------------------
// The benchmarks.

struct Engines {
    workload: Workload,
    cohort: Cohort,
    unleash: Unleash,
    launchdarkly: LaunchDarkly,
    growthbook: GrowthBook,
    hash_key: cohort_core::bucket::HashKey,
}

fn engines() -> Engines {
    let workload = load_workload();
    let engines = Engines {
        cohort: Cohort::new(&workload),
        unleash: Unleash::new(&workload),
        launchdarkly: LaunchDarkly::new(&workload),
        growthbook: GrowthBook::new(&workload),
        hash_key: cohort_core::bucket::HashKey::from_hex(HASH_KEY).expect("hash key"),
        workload,
    };
    let w = &engines.workload;
    w.check("cohort", &engines.cohort.assigned());
    w.check("unleash", &engines.unleash.assigned());
    w.check("launchdarkly", &engines.launchdarkly.assigned());
    w.check("growthbook", &engines.growthbook.assigned());
    // The bucket_one stand-ins must really assign too.
    assert!(
        engines.cohort.evaluate(&engines.cohort.single).assigned().count() == 1,
        "cohort: the untargeted experiment must assign the visitor"
    );
    assert!(
        matches!(
            engines.launchdarkly.evaluate(&engines.launchdarkly.single).reason,
            launchdarkly_server_sdk_evaluation::Reason::Fallthrough { in_experiment: true }
        ),
        "launchdarkly: the rollout-only flag must put the visitor in the experiment"
    );
    let first = &w.experiments[0].key;
    assert!(
        engines
            .growthbook
            .single
            .check(first, &engines.growthbook.attributes)
            .experiment_result
            .is_some_and(|r| r.in_experiment),
        "growthbook: the untargeted feature must put the visitor in the experiment"
    );
    check_split(w);
    eprintln!(
        "peers: all 4 engines assign exactly {} of {} experiments ({}) for visitor {}",
        w.expected_targeted.len(),
        w.experiments.len(),
        w.expected_targeted.join(", "),
        w.visitor_id
    );
    engines
}

/// Each engine really splits: over 100 other visitors with the same attributes, every targeted
/// experiment's first variant gets between 30 and 70 of them (50 expected, 4 standard deviations).
fn check_split(w: &Workload) {
    const VISITORS: usize = 100;
    let mut counts: HashMap<&str, Vec<usize>> = HashMap::new();
    for i in 0..VISITORS {
        let visitor = Workload {
            visitor_id: format!("split-check-visitor-{i}"),
            ..w.clone()
        };
        let results = [
            ("cohort", Cohort::new(&visitor).assigned()),
            ("unleash", Unleash::new(&visitor).assigned()),
            ("launchdarkly", LaunchDarkly::new(&visitor).assigned()),
            ("growthbook", GrowthBook::new(&visitor).assigned()),
        ];
        for (engine, assigned) in results {
            visitor.check(engine, &assigned);
            let first = counts.entry(engine).or_insert_with(|| vec![0; assigned.len()]);
            for (j, ((_, variant), e)) in assigned.iter().zip(&w.experiments).enumerate() {
                if variant.as_deref() == Some(e.variants[0].0.as_str()) {
                    first[j] += 1;
                }
            }
        }
    }
    for (engine, first) in counts {
        for (count, e) in first.iter().zip(&w.experiments) {
            if w.expected_targeted.contains(&e.key) {
                assert!(
                    (30..=70).contains(count),
                    "{engine}: {}: `{}` got {count} of {VISITORS} visitors, expected about half: the split is not working",
                    e.key,
                    e.variants[0].0
                );
            }
        }
    }
}

fn evaluate_20(c: &mut Criterion, e: &Engines) {
    let mut group = c.benchmark_group("evaluate_20");
    group.bench_function("cohort", |b| {
        b.iter(|| black_box(e.cohort.evaluate(black_box(&e.cohort.tenant))))
    });
    group.bench_function("unleash", |b| {
        b.iter(|| {
            for name in &e.unleash.names {
                black_box(e.unleash.variant(black_box(name)));
            }
        })
    });
    group.bench_function("launchdarkly", |b| {
        b.iter(|| {
            for flag in &e.launchdarkly.flags {
                black_box(e.launchdarkly.evaluate(black_box(flag)));
            }
        })
    });
    group.bench_function("growthbook", |b| {
        b.iter(|| {
            for name in &e.growthbook.names {
                black_box(e.growthbook.gb.check(black_box(name), &e.growthbook.attributes));
            }
        })
    });
    group.finish();
}

fn bucket_one(c: &mut Criterion, e: &Engines) {
    let seed = e.workload.experiments[0].key.as_str();
    let unit = e.workload.visitor_id.as_str();
    let mut group = c.benchmark_group("bucket_one");
    // SipHash-1-3 of (seed, unit) scaled onto [0, 10000).
    group.bench_function("cohort", |b| {
        b.iter(|| cohort_core::bucket::bucket(black_box(&e.hash_key), black_box(seed), black_box(unit)))
    });
    // Cohort evaluating one untargeted experiment: the like-for-like baseline for the two peers
    // whose hashing is private.
    group.bench_function("cohort_evaluate_one", |b| {
        b.iter(|| black_box(e.cohort.evaluate(black_box(&e.cohort.single))))
    });
    // yggdrasil's public hash: MurmurHash3 of "group:id", modulo the total variant weight, with the
    // seed its variant selection uses (86028157).
    group.bench_function("unleash", |b| {
        b.iter(|| {
            unleash_yggdrasil::strategy_parsing::normalized_hash(black_box(seed), black_box(unit), 1000, 86_028_157)
        })
    });
    // LaunchDarkly's bucketing (SHA-1 of "key.salt.id", `Context::bucket`) is pub(crate): measured
    // instead is one flag whose only logic is the 50/50 experiment rollout (hash + rollout + result).
    group.bench_function("launchdarkly", |b| {
        b.iter(|| black_box(e.launchdarkly.evaluate(black_box(&e.launchdarkly.single))))
    });
    // GrowthBook's hash (FNV-1a, `HashCode`) is in a private module: measured instead is one feature
    // whose only rule is the 50/50 experiment without condition (hash + ranges + result).
    group.bench_function("growthbook", |b| {
        b.iter(|| black_box(e.growthbook.single.check(black_box(seed), &e.growthbook.attributes)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Results: medians from criterion's estimates, ratios, versions → JSON for `make bench`.

/// The cargo target directory: the bench binary is `<target>/<profile>/deps/peers-<hash>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is inside the workspace")
}

/// The median in ns of `group/function`, if this run measured it.
fn median_ns(criterion_dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir.join(group).join(function).join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let estimates: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// The exact version of `package` in Cargo.lock.
fn locked_version(package: &str) -> String {
    let needle = format!("name = \"{package}\"\nversion = \"");
    CARGO_LOCK
        .split("[[package]]")
        .find_map(|entry| {
            let rest = entry.trim_start().strip_prefix(&needle)?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .unwrap_or_else(|| panic!("{package} is not in Cargo.lock"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn report(criterion_dir: &Path, since: SystemTime, load_before: String) {
    // native.json and bench/RESULTS.md print every one of these; a case this run did not measure
    // (a criterion filter, or estimates that were not written) must not leave a blank or stale figure.
    let cases = ["cohort", "unleash", "launchdarkly", "growthbook"]
        .map(|engine| ("evaluate_20", engine))
        .into_iter()
        .chain(
            ["cohort", "cohort_evaluate_one", "unleash", "launchdarkly", "growthbook"]
                .map(|engine| ("bucket_one", engine)),
        );
    let missing: Vec<String> = cases
        .filter(|(group, function)| median_ns(criterion_dir, group, function, since).is_none())
        .map(|(group, function)| format!("{group}/{function}"))
        .collect();
    assert!(
        missing.is_empty(),
        "peers: not measured in this run: {} (no fresh median under {}); native.json needs every case, so run without a filter",
        missing.join(", "),
        criterion_dir.display()
    );
    let ratio = |peer: Option<f64>, base: Option<f64>| peer.zip(base).map(|(p, b)| (p / b * 100.0).round() / 100.0);
    let cohort_eval = median_ns(criterion_dir, "evaluate_20", "cohort", since);
    let cohort_bucket = median_ns(criterion_dir, "bucket_one", "cohort", since);
    let cohort_one = median_ns(criterion_dir, "bucket_one", "cohort_evaluate_one", since);
    let mut peers = Map::new();
    let mut lines = vec![format!(
        "{:<14} {:>14} {:>10} {:>14} {:>10}  version",
        "engine", "evaluate_20", "x cohort", "bucket_one", "x cohort"
    )];
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ns"));
    let fmt_ratio = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}x"));
    lines.push(format!(
        "{:<14} {:>14} {:>10} {:>14} {:>10}  (this tree; evaluate one untargeted: {})",
        "cohort",
        fmt(cohort_eval),
        fmt_ratio(cohort_eval.map(|_| 1.0)),
        fmt(cohort_bucket),
        fmt_ratio(cohort_bucket.map(|_| 1.0)),
        fmt(cohort_one)
    ));
    let mut fastest: Option<(String, f64)> = None;
    for (name, package) in PEERS {
        let eval = median_ns(criterion_dir, "evaluate_20", name, since);
        let bucket = median_ns(criterion_dir, "bucket_one", name, since);
        // Unleash's hash is public and compared with Cohort's hash; the others' bucket_one is a
        // one-flag evaluation and is compared with Cohort's one-experiment evaluation.
        let (bucket_base, bucket_baseline) = if name == "unleash" {
            (cohort_bucket, "cohort")
        } else {
            (cohort_one, "cohort_evaluate_one")
        };
        let version = locked_version(package);
        if let Some(ns) = eval
            && fastest.as_ref().is_none_or(|(_, f)| ns < *f)
        {
            fastest = Some((name.to_string(), ns));
        }
        lines.push(format!(
            "{:<14} {:>14} {:>10} {:>14} {:>10}  {package} {version}",
            name,
            fmt(eval),
            fmt_ratio(ratio(eval, cohort_eval)),
            fmt(bucket),
            fmt_ratio(ratio(bucket, bucket_base)),
        ));
        peers.insert(
            name.to_string(),
            json!({
                "crate": package, "version": version,
                "evaluate_20_median_ns": eval, "evaluate_20_ratio_vs_cohort": ratio(eval, cohort_eval),
                "bucket_one_median_ns": bucket, "bucket_one_baseline": bucket_baseline,
                "bucket_one_ratio_vs_cohort": ratio(bucket, bucket_base),
                "bucket_one_measures": match name {
                    "unleash" => "strategy_parsing::normalized_hash (public MurmurHash3)",
                    "launchdarkly" => "evaluate one flag with only a 50/50 experiment rollout (bucketing is pub(crate))",
                    _ => "check one feature with only a 50/50 experiment rule (hashing is private)",
                },
            }),
        );
    }
    let speedup = fastest
        .as_ref()
        .zip(cohort_eval)
        .map(|((name, ns), c)| (name.clone(), (ns / c * 100.0).round() / 100.0));
    let target_met = speedup.as_ref().map(|(_, x)| *x >= 3.0);
    if let Some((name, x)) = &speedup {
        lines.push(format!(
            "fastest peer on evaluate_20: {name}, {x:.2}x Cohort's median; target >= 3x: {}",
            if *x >= 3.0 { "met" } else { "NOT met" }
        ));
    }
    let load_after = load_average();
    lines.push(format!("load average before {load_before}, after {load_after}"));
    let result = json!({
        "benchmark": "native engine vs peers",
        "workload": "bench/workload.json",
        "command": "cargo bench -p cohort-benches",
        "unix_time": SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "load_average_before": load_before, "load_average_after": load_after,
        "cohort": {"evaluate_20_median_ns": cohort_eval, "bucket_one_median_ns": cohort_bucket,
                   "evaluate_one_untargeted_median_ns": cohort_one},
        "peers": peers,
        "fastest_peer": speedup.as_ref().map(|(name, _)| name),
        "fastest_peer_ratio": speedup.as_ref().map(|(_, x)| x),
        "target_ratio": 3.0,
        "target_met": target_met,
    });
    let out = match std::env::var_os("COHORT_BENCH_OUT") {
        Some(path) => workspace_root().join(path), // absolute paths replace the root
        None => target_dir().join("bench-peers/native.json"),
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result).expect("JSON") + "\n")
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    println!("\nmedians (ratio = peer / Cohort; >1 means Cohort is faster)");
    for line in lines {
        println!("{line}");
    }
    println!("written to {}", out.display());
}

fn main() {
    let engines = engines();
    let criterion_dir =
        std::env::var_os("CRITERION_HOME").map_or_else(|| target_dir().join("criterion"), PathBuf::from);
    // Criterion measures only with `--bench` (cargo bench); without it (cargo test --benches) it
    // runs each benchmark once: the quick mode.
    let measuring = std::env::args().any(|a| a == "--bench");
    let since = SystemTime::now() - Duration::from_secs(1);
    let load_before = load_average();
    let mut c = Criterion::default()
        .output_directory(&criterion_dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    evaluate_20(&mut c, &engines);
    bucket_one(&mut c, &engines);
    c.final_summary();
    if measuring {
        report(&criterion_dir, since, load_before);
    } else {
        eprintln!("peers: quick mode, one iteration each, nothing measured");
    }
}
