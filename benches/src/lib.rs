//! The engine-neutral side of Cohort's peer benchmarks (README.md): the workloads, Cohort's
//! translation of them, and the checks every engine's result must pass. The peers' translations
//! need the peer crates (dev-dependencies) and live with the benches, in `benches/engines/`.
//!
//! Two workloads:
//! - [`load_workload`]: `bench/workload.json`, the one every peer benchmark shares (`peers.rs`).
//! - [`matrix_workload`]: one targeting [`Shape`] at one [`Pass`] rate and size (`matrix.rs`,
//!   `tests/allocations.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

const WORKLOAD: &str = include_str!("../../bench/workload.json");
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// The bucketing key of every tenant the benchmarks build.
pub const HASH_KEY: &str = "9f3c2a7be1d04586a2c7e9f0b3d51e68";

// ---------------------------------------------------------------------------------------------
// The workload, engine-neutral.

/// One test of one attribute, in the terms the peers' per-attribute operators share.
#[derive(Clone, Debug)]
pub enum Clause {
    /// A member of the list (equality is a one-value list).
    In(Vec<String>),
    NotIn(Vec<String>),
    /// A number at least this.
    Gte(f64),
    /// A number below this.
    Lt(f64),
    /// A version above this (`x.y.z`).
    VersionGt(String),
    /// A version below this (`x.y.z`).
    VersionLt(String),
    /// The string contains a match (not anchored).
    Regex(String),
    /// The attribute is present.
    Exists,
}

/// Clauses that must all pass.
pub type Rule = Vec<(String, Clause)>;

/// An experiment's targeting for the engines that have no experiment path patterns.
#[derive(Clone, Debug)]
pub struct PeerTargeting {
    /// In Cohort's condition language, which GrowthBook reads as well; `{}` targets everyone.
    pub condition: Value,
    /// The same test for engines with per-attribute operators: passes when any rule passes (an
    /// empty list targets everyone).
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Experiment {
    pub key: String,
    /// (variant key, weight in basis points)
    pub variants: Vec<(String, u32)>,
    /// Cohort's `targeting` (docs/config.md); `{}` targets everyone.
    pub condition: Value,
    /// Cohort's `paths`; empty matches every path.
    pub paths: Vec<String>,
    /// What the peers are given, or why no peer can express this targeting.
    pub peer: Result<PeerTargeting, &'static str>,
}

/// The visitor every engine evaluates.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub id: String,
    pub attributes: Map<String, Value>,
    /// The request path (Cohort's `Context::path`).
    pub path: String,
}

impl Visitor {
    /// The same visitor under another id (the split checks).
    pub fn with_id(&self, id: String) -> Visitor {
        Visitor { id, ..self.clone() }
    }

    /// The attributes as strings, for engines whose context holds only strings (Unleash):
    /// numbers in their JSON form, other non-strings left out.
    pub fn attribute_strings(&self) -> impl Iterator<Item = (&str, String)> {
        self.attributes.iter().filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.as_str(), s.clone())),
            Value::Number(n) => Some((k.as_str(), n.to_string())),
            _ => None,
        })
    }
}

/// Experiment key → the assigned variant's key, or None; one entry per experiment, in order.
pub type Assigned = Vec<(String, Option<String>)>;

#[derive(Clone, Debug)]
pub struct Workload {
    pub visitor: Visitor,
    /// The experiments that must assign the visitor; every other one must not.
    pub expected: Vec<String>,
    pub experiments: Vec<Experiment>,
}

impl Workload {
    /// Panics unless `assigned` holds exactly the expected experiments, each with one of its own
    /// variants, and no other.
    pub fn check(&self, engine: &str, assigned: &Assigned) {
        assert_eq!(
            assigned.len(),
            self.experiments.len(),
            "{engine}: evaluated {} experiments, the workload has {}",
            assigned.len(),
            self.experiments.len()
        );
        for ((key, variant), experiment) in assigned.iter().zip(&self.experiments) {
            assert_eq!(key, &experiment.key, "{engine}: results out of order");
            let expected = self.expected.contains(key);
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

/// `bench/workload.json`: equality, `$in` and `$nin` on strings, which every peer has.
pub fn load_workload() -> Workload {
    let w: Value = serde_json::from_str(WORKLOAD).expect("bench/workload.json is JSON");
    let experiments = w["experiments"]
        .as_array()
        .expect("workload: experiments")
        .iter()
        .map(|e| {
            let key = e["key"].as_str().expect("workload: experiment key").to_string();
            let rule = e["targeting"]
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
            // The targeting as written: Cohort and GrowthBook read the same condition language.
            let condition = e["targeting"].clone();
            let peer = Ok(PeerTargeting { condition: condition.clone(), rules: vec![rule] });
            Experiment { key, variants, condition, paths: vec![], peer }
        })
        .collect();
    Workload {
        visitor: Visitor {
            id: w["visitor"]["id"].as_str().expect("workload: visitor.id").to_string(),
            attributes: w["visitor"]["attributes"]
                .as_object()
                .expect("workload: visitor.attributes")
                .clone(),
            path: "/".into(),
        },
        expected: strings(&w["expected_targeted"], "expected_targeted"),
        experiments,
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix: one targeting shape at a time.

/// The targeting every experiment of a matrix cell uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"country": "DE"}`
    Equality,
    /// `$in` of 3 strings.
    InShort,
    /// `$in` of 100 strings.
    InLong,
    /// `$nin` of 3 strings.
    Nin,
    /// `{"age": {"$gte": lo, "$lt": hi}}` on a number.
    Numeric,
    /// `{"app_version": {"$vgt": a, "$vlt": b}}`.
    Version,
    /// `$regex` on a user-agent string.
    Regex,
    /// `{"<attribute>": {"$exists": true}}`.
    Exists,
    /// `{"$or": [{"$and": [two clauses]}, {one clause}]}`.
    Nested,
    /// Experiment `paths` with `*`/`?`/`**` globs, no targeting.
    PathGlob,
    /// Experiment `paths` with one `~regex`, no targeting.
    PathRegex,
}

impl Shape {
    pub const ALL: [Shape; 11] = [
        Shape::Equality,
        Shape::InShort,
        Shape::InLong,
        Shape::Nin,
        Shape::Numeric,
        Shape::Version,
        Shape::Regex,
        Shape::Exists,
        Shape::Nested,
        Shape::PathGlob,
        Shape::PathRegex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Equality => "equality",
            Shape::InShort => "in_short",
            Shape::InLong => "in_long",
            Shape::Nin => "nin",
            Shape::Numeric => "numeric",
            Shape::Version => "version",
            Shape::Regex => "regex",
            Shape::Exists => "exists",
            Shape::Nested => "nested",
            Shape::PathGlob => "path_glob",
            Shape::PathRegex => "path_regex",
        }
    }
}

/// How many of a cell's experiments assign the visitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    None,
    /// The even-numbered ones.
    Half,
    All,
}

impl Pass {
    pub const ALL: [Pass; 3] = [Pass::None, Pass::Half, Pass::All];

    pub fn name(self) -> &'static str {
        match self {
            Pass::None => "none",
            Pass::Half => "half",
            Pass::All => "all",
        }
    }

    fn passes(self, index: usize) -> bool {
        match self {
            Pass::None => false,
            Pass::Half => index.is_multiple_of(2),
            Pass::All => true,
        }
    }
}

/// The experiment counts of the matrix: a small tenant and the engine's maximum.
pub const SIZES: [usize; 2] = [20, 200];

const MATRIX_VISITOR: &str = "3f9a1c0e5b7d4a2c8e6f0b1d2c3a4e5f";
const COUNTRY: &str = "DE";
const PATH: &str = "/shop/shoes/item-42";
/// Attributes the visitor has (`exists` passes) and does not have (`exists` fails).
const PRESENT: [&str; 4] = ["coupon", "referrer", "campaign", "gclid"];
const ABSENT: [&str; 8] = [
    "gift_card",
    "affiliate",
    "promo_code",
    "loyalty_id",
    "voucher",
    "partner",
    "utm_source",
    "member_since",
];
/// Globs that match `PATH`, so that passing experiments do not all carry the same pattern.
const MATCHING_GLOBS: [&str; 6] = [
    "/shop/*/item-*",
    "/shop/*/item-4?",
    "/shop/sho*/item-*",
    "/shop/**/item-42",
    "/shop/*es/item-*",
    "/**/item-4*",
];

/// A two-letter code other than `COUNTRY` (650 of them: the first letter is never `D`).
fn code(n: usize) -> String {
    const FIRST: &[u8] = b"ABCEFGHIJKLMNOPQRSTUVWXYZ";
    let n = n % (FIRST.len() * 26);
    let first = FIRST[n / 26] as char;
    let second = (b'A' + (n % 26) as u8) as char;
    format!("{first}{second}")
}

fn codes(from: usize, count: usize) -> Vec<String> {
    (from..from + count).map(code).collect()
}

/// `list` with `COUNTRY` put in at `at` (modulo its length + 1).
fn with_country(mut list: Vec<String>, at: usize) -> Vec<String> {
    let at = at % (list.len() + 1);
    list.insert(at, COUNTRY.to_string());
    list
}

/// Experiment `i`'s targeting in `shape`: (Cohort's condition, Cohort's paths, the peers' form).
fn targeting(shape: Shape, i: usize, pass: bool) -> (Value, Vec<String>, Result<PeerTargeting, &'static str>) {
    // The common case: an attribute test written the same way for Cohort and GrowthBook.
    let attribute = |condition: Value, rules: Vec<Rule>| {
        let peer = PeerTargeting {
            condition: condition.clone(),
            rules,
        };
        (condition, vec![], Ok(peer))
    };
    match shape {
        Shape::Equality => {
            let value = if pass { COUNTRY.to_string() } else { code(i) };
            attribute(
                json!({"country": value}),
                vec![vec![("country".into(), Clause::In(vec![value]))]],
            )
        }
        Shape::InShort | Shape::InLong => {
            let len = if shape == Shape::InShort { 3 } else { 100 };
            // Each experiment its own list; the visitor's value at a different place in each.
            let list = if pass {
                with_country(codes(i * 7, len - 1), i * 37)
            } else {
                codes(i * 7, len)
            };
            attribute(
                json!({"country": {"$in": list}}),
                vec![vec![("country".into(), Clause::In(list))]],
            )
        }
        Shape::Nin => {
            let list = if pass {
                codes(i * 3, 3)
            } else {
                with_country(codes(i * 3, 2), i)
            };
            attribute(
                json!({"country": {"$nin": list}}),
                vec![vec![("country".into(), Clause::NotIn(list))]],
            )
        }
        Shape::Numeric => {
            // The visitor is 34.
            let (lo, hi) = match (pass, i % 2) {
                (true, _) => (10 + i % 20, 40 + i % 25),
                (false, 0) => (35 + i % 20, 45 + i % 20),
                (false, _) => (10 + i % 14, 20 + i % 14),
            };
            attribute(
                json!({"age": {"$gte": lo, "$lt": hi}}),
                vec![vec![
                    ("age".into(), Clause::Gte(lo as f64)),
                    ("age".into(), Clause::Lt(hi as f64)),
                ]],
            )
        }
        Shape::Version => {
            // The visitor runs 2.7.1.
            let below = format!("2.{}.{}", i % 7, i % 10);
            let (gt, lt) = match (pass, i % 2) {
                (true, _) => (below, format!("{}.{}.0", 3 + i % 3, i % 10)),
                (false, 0) => (
                    format!("2.{}.{}", 8 + i % 5, i % 10),
                    format!("{}.{}.0", 3 + i % 3, i % 10),
                ),
                (false, _) => (below, format!("2.7.{}", (i / 2) % 2)),
            };
            attribute(
                json!({"app_version": {"$vgt": gt, "$vlt": lt}}),
                vec![vec![
                    ("app_version".into(), Clause::VersionGt(gt)),
                    ("app_version".into(), Clause::VersionLt(lt)),
                ]],
            )
        }
        Shape::Regex => {
            // The visitor's user agent is an iPhone's (iOS 17.4).
            let device = if pass { "iPhone OS" } else { "iPad; CPU OS" };
            let pattern = format!("(Android {i}[.][0-9]|{device} 1[5-9]_[0-9])");
            attribute(
                json!({"user_agent": {"$regex": pattern}}),
                vec![vec![("user_agent".into(), Clause::Regex(pattern))]],
            )
        }
        Shape::Exists => {
            let name = if pass {
                PRESENT[i % PRESENT.len()]
            } else {
                ABSENT[i % ABSENT.len()]
            };
            attribute(
                json!({name: {"$exists": true}}),
                vec![vec![(name.into(), Clause::Exists)]],
            )
        }
        Shape::Nested => {
            // The visitor: device mobile, plan pro, country DE. Passing experiments alternate which
            // branch passes; failing ones get as far as the second clause of the first branch.
            let first_branch = pass && i.is_multiple_of(2);
            let device = if pass && !first_branch { "desktop" } else { "mobile" };
            let plans = vec![format!("tier-{i}"), (if pass { "pro" } else { "team" }).to_string()];
            let countries = if pass && !first_branch {
                with_country(codes(i * 2, 1), i)
            } else {
                codes(i * 2, 2)
            };
            attribute(
                json!({"$or": [
                    {"$and": [{"device": device}, {"plan": {"$in": plans}}]},
                    {"country": {"$in": countries}},
                ]}),
                vec![
                    vec![
                        ("device".into(), Clause::In(vec![device.into()])),
                        ("plan".into(), Clause::In(plans)),
                    ],
                    vec![("country".into(), Clause::In(countries))],
                ],
            )
        }
        Shape::PathGlob => {
            let glob = if pass {
                MATCHING_GLOBS[i % MATCHING_GLOBS.len()].to_string()
            } else {
                format!("/shop/*/sku-{i}-*")
            };
            (
                json!({}),
                vec![glob],
                Err("no path globs: only Cohort matches the request path against glob patterns"),
            )
        }
        Shape::PathRegex => {
            // `item-42`: passing patterns allow 2 digits or more, failing ones ask for 3 or more.
            let regex = if pass {
                format!("^/shop/[a-z]+/item-[0-9]{{1,{}}}$", 2 + i % 5)
            } else {
                format!("^/shop/[a-z]+/item-[0-9]{{{},}}$", 3 + i % 5)
            };
            // Peers with a regex operator test the path as an attribute with the same regex.
            let peer = PeerTargeting {
                condition: json!({"path": {"$regex": regex}}),
                rules: vec![vec![("path".into(), Clause::Regex(regex.clone()))]],
            };
            (json!({}), vec![format!("~{regex}")], Ok(peer))
        }
    }
}

/// One matrix cell: `size` experiments in `shape`, of which `pass` assign the visitor, each a
/// 50/50 split at full coverage.
pub fn matrix_workload(shape: Shape, pass: Pass, size: usize) -> Workload {
    let mut attributes = Map::new();
    for (name, value) in [
        ("country", json!(COUNTRY)),
        ("device", json!("mobile")),
        ("plan", json!("pro")),
        ("age", json!(34)),
        ("app_version", json!("2.7.1")),
        (
            "user_agent",
            json!(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
            ),
        ),
        ("coupon", json!("WINTER24")),
        ("referrer", json!("newsletter")),
        ("campaign", json!("spring-sale")),
        ("gclid", json!("Cj0KCQiA")),
        // For the peers, which test the path as an attribute (path_regex).
        ("path", json!(PATH)),
    ] {
        attributes.insert(name.to_string(), value);
    }
    let experiments: Vec<Experiment> = (0..size)
        .map(|i| {
            let (condition, paths, peer) = targeting(shape, i, pass.passes(i));
            Experiment {
                key: format!("exp-{i:03}"),
                variants: vec![("control".into(), 5000), ("treatment".into(), 5000)],
                condition,
                paths,
                peer,
            }
        })
        .collect();
    Workload {
        visitor: Visitor {
            id: MATRIX_VISITOR.into(),
            attributes,
            path: PATH.into(),
        },
        expected: experiments
            .iter()
            .enumerate()
            .filter(|(i, _)| pass.passes(*i))
            .map(|(_, e)| e.key.clone())
            .collect(),
        experiments,
    }
}

// ---------------------------------------------------------------------------------------------
// Cohort: tenant config schema 1 (docs/config.md), compiled once.

/// The tenant config for `experiments`, as JSON text.
pub fn cohort_config(experiments: &[Experiment]) -> String {
    let experiments: Vec<Value> = experiments
        .iter()
        .map(|e| {
            let mut experiment = json!({
                "key": e.key, "status": "running",
                "variants": e.variants.iter().map(|(k, weight)| json!({"key": k, "weight": weight})).collect::<Vec<_>>(),
            });
            if e.condition.as_object().is_none_or(|c| !c.is_empty()) {
                experiment["targeting"] = e.condition.clone();
            }
            if !e.paths.is_empty() {
                experiment["paths"] = json!(e.paths);
            }
            experiment
        })
        .collect();
    json!({
        "schema": 1, "tenant": "bench", "version": 1, "hostnames": ["bench.example"],
        "hash_key": HASH_KEY, "experiments": experiments,
    })
    .to_string()
}

pub struct Cohort {
    pub tenant: cohort_core::Tenant,
}

/// A visitor as Cohort's `Context` borrows it.
pub struct CohortVisitor {
    pub unit_id: String,
    pub attributes: Value,
    pub path: String,
    pub forced: BTreeMap<String, String>,
}

impl CohortVisitor {
    pub fn new(v: &Visitor) -> Self {
        CohortVisitor {
            unit_id: v.id.clone(),
            attributes: Value::Object(v.attributes.clone()),
            path: v.path.clone(),
            forced: BTreeMap::new(),
        }
    }

    pub fn context(&self) -> cohort_core::Context<'_> {
        cohort_core::Context {
            unit_id: &self.unit_id,
            attributes: &self.attributes,
            path: &self.path,
            now_ms: 1_800_000_000_000,
            sticky: &[],
            forced: &self.forced,
        }
    }
}

impl Cohort {
    pub fn new(w: &Workload) -> Self {
        Cohort {
            tenant: Cohort::load(&cohort_config(&w.experiments)),
        }
    }

    /// From JSON text to a ready engine: what the load figures time.
    pub fn load(config: &str) -> cohort_core::Tenant {
        cohort_core::Tenant::from_json(config).unwrap_or_else(|e| panic!("cohort: config rejected: {e}"))
    }

    pub fn evaluate(&self, visitor: &CohortVisitor) -> cohort_core::Evaluation<'_> {
        self.tenant.evaluate(&visitor.context())
    }

    pub fn assigned(&self, visitor: &CohortVisitor) -> Assigned {
        self.evaluate(visitor)
            .decisions
            .iter()
            .map(|d| (d.experiment.key.clone(), d.variant_key().map(str::to_string)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Where results go, and what they record.

/// The workspace root (relative output paths are taken from it).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is inside the workspace")
}

/// The cargo target directory: a bench binary is `<target>/<profile>/deps/<name>-<hash>`.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where a bench writes its JSON: `$variable` (relative to the workspace root) or
/// `<target>/bench-peers/<default>`.
pub fn output_path(variable: &str, default: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(path) => workspace_root().join(path), // absolute paths replace the root
        None => target_dir().join("bench-peers").join(default),
    }
}

/// Writes `value` as pretty JSON to `out`, creating its directory.
pub fn write_json(out: &Path, value: &Value) {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(out, serde_json::to_string_pretty(value).expect("JSON") + "\n")
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// The exact version of `package` in Cargo.lock.
pub fn locked_version(package: &str) -> String {
    let needle = format!("name = \"{package}\"\nversion = \"");
    CARGO_LOCK
        .split("[[package]]")
        .find_map(|entry| {
            let rest = entry.trim_start().strip_prefix(&needle)?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .unwrap_or_else(|| panic!("{package} is not in Cargo.lock"))
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
