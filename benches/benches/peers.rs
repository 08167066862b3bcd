//! Cohort's native engine next to the engines people would pick instead, on the
//! one workload every peer benchmark shares: `bench/workload.json` (one visitor, 20 experiments,
//! each targeting 2-3 attributes with equality, `$in` and `$nin`, and a 50/50 split).
//!
//! - `cargo bench -p cohort-benches --bench peers` measures, prints the medians and the ratio
//!   peer/Cohort, and writes them to `target/bench-peers/native.json` (or `$COHORT_BENCH_OUT`).
//! - `cargo test -p cohort-benches --bench peers` is the quick mode: the assertions below, then one
//!   iteration of every benchmark (criterion's test mode), in a few seconds.
//!
//! Before anything is measured, every engine must assign the visitor exactly the experiments in
//! `expected_targeted` and no others, so no engine is timed doing nothing.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cohort_benches::{Cohort, PeerTargeting, Workload, load_average, locked_version, output_path, target_dir};
use criterion::Criterion;
use serde_json::{Map, Value, json};

mod engines;
use engines::{Engine, GrowthBook, LaunchDarkly, PEERS, Ready, Unleash};

/// Cohort on the shared workload (bench/workload.json): at least this many times faster than the
/// fastest peer.
const TARGET_RATIO: f64 = 10.0;

// ---------------------------------------------------------------------------------------------
// The benchmarks: each engine's translation of the workload is in `engines/`.

struct Engines {
    cohort: Ready<Cohort>,
    unleash: Ready<Unleash>,
    launchdarkly: Ready<LaunchDarkly>,
    growthbook: Ready<GrowthBook>,
    /// The first experiment without its targeting (bucket_one group): the stand-ins for the peers
    /// whose hashing is private.
    cohort_one: Ready<Cohort>,
    launchdarkly_one: Ready<LaunchDarkly>,
    growthbook_one: Ready<GrowthBook>,
    seed: String,
    unit: String,
    hash_key: cohort_core::bucket::HashKey,
}

/// The workload's first experiment alone, without targeting: only its 50/50 split is left.
fn untargeted_first(w: &Workload) -> Workload {
    let mut first = w.experiments[0].clone();
    first.condition = json!({});
    first.paths.clear();
    first.peer = Ok(PeerTargeting {
        condition: json!({}),
        rules: vec![],
    });
    Workload {
        visitor: w.visitor.clone(),
        expected: vec![first.key.clone()],
        experiments: vec![first],
    }
}

/// Every engine, each checked to assign the visitor exactly the expected experiments and to split.
fn build_engines() -> Engines {
    fn ready<E: Engine>(w: &Workload) -> Ready<E> {
        let ready =
            Ready::<E>::new(w).unwrap_or_else(|reason| panic!("{}: cannot express the workload: {reason}", E::NAME));
        ready.check_split(w);
        ready
    }
    let w = cohort_benches::load_workload();
    let one = untargeted_first(&w);
    let engines = Engines {
        cohort: ready(&w),
        unleash: ready(&w),
        launchdarkly: ready(&w),
        growthbook: ready(&w),
        cohort_one: ready(&one),
        launchdarkly_one: ready(&one),
        growthbook_one: ready(&one),
        seed: w.experiments[0].key.clone(),
        unit: w.visitor.id.clone(),
        hash_key: cohort_core::bucket::HashKey::from_hex(cohort_benches::HASH_KEY).expect("hash key"),
    };
    eprintln!(
        "peers: all 4 engines assign exactly {} of {} experiments ({}) for visitor {}",
        w.expected.len(),
        w.experiments.len(),
        w.expected.join(", "),
        w.visitor.id
    );
    engines
}

fn evaluate_20(c: &mut Criterion, e: &Engines) {
    let mut group = c.benchmark_group("evaluate_20");
    group.bench_function("cohort", |b| b.iter(|| e.cohort.evaluate()));
    group.bench_function("unleash", |b| b.iter(|| e.unleash.evaluate()));
    group.bench_function("launchdarkly", |b| b.iter(|| e.launchdarkly.evaluate()));
    group.bench_function("growthbook", |b| b.iter(|| e.growthbook.evaluate()));
    group.finish();
}

fn bucket_one(c: &mut Criterion, e: &Engines) {
    let (seed, unit) = (e.seed.as_str(), e.unit.as_str());
    let mut group = c.benchmark_group("bucket_one");
    // SipHash-1-3 of (seed, unit) scaled onto [0, 10000).
    group.bench_function("cohort", |b| {
        b.iter(|| cohort_core::bucket::bucket(black_box(&e.hash_key), black_box(seed), black_box(unit)))
    });
    // Cohort evaluating one untargeted experiment: the like-for-like baseline for the two peers
    // whose hashing is private.
    group.bench_function("cohort_evaluate_one", |b| b.iter(|| e.cohort_one.evaluate()));
    // yggdrasil's public hash: MurmurHash3 of "group:id", modulo the total variant weight, with the
    // seed its variant selection uses (86028157).
    group.bench_function("unleash", |b| {
        b.iter(|| {
            unleash_yggdrasil::strategy_parsing::normalized_hash(black_box(seed), black_box(unit), 1000, 86_028_157)
        })
    });
    // LaunchDarkly's bucketing (SHA-1 of "key.salt.id", `Context::bucket`) is pub(crate): measured
    // instead is one flag whose only logic is the 50/50 experiment rollout (hash + rollout + result).
    group.bench_function("launchdarkly", |b| b.iter(|| e.launchdarkly_one.evaluate()));
    // GrowthBook's hash (FNV-1a, `HashCode`) is in a private module: measured instead is one feature
    // whose only rule is the 50/50 experiment without condition (hash + ranges + result).
    group.bench_function("growthbook", |b| b.iter(|| e.growthbook_one.evaluate()));
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Results: medians from criterion's estimates, ratios, versions → JSON for `make bench`.

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
    let target_met = speedup.as_ref().map(|(_, x)| *x >= TARGET_RATIO);
    if let Some((name, x)) = &speedup {
        lines.push(format!(
            "fastest peer on evaluate_20: {name}, {x:.2}x Cohort's median; target >= {TARGET_RATIO}x: {}",
            if *x >= TARGET_RATIO { "met" } else { "NOT met" }
        ));
    }
    let load_after = load_average();
    lines.push(format!("load average before {load_before}, after {load_after}"));
    let result = json!({
        "benchmark": "native engine vs peers",
        "workload": "bench/workload.json",
        "command": "cargo bench -p cohort-benches --bench peers",
        "unix_time": cohort_benches::unix_time(),
        "load_average_before": load_before, "load_average_after": load_after,
        "cohort": {"evaluate_20_median_ns": cohort_eval, "bucket_one_median_ns": cohort_bucket,
                   "evaluate_one_untargeted_median_ns": cohort_one},
        "peers": peers,
        "fastest_peer": speedup.as_ref().map(|(name, _)| name),
        "fastest_peer_ratio": speedup.as_ref().map(|(_, x)| x),
        "target_ratio": TARGET_RATIO,
        "target_met": target_met,
    });
    let out = output_path("COHORT_BENCH_OUT", "native.json");
    cohort_benches::write_json(&out, &result);
    println!("\nmedians (ratio = peer / Cohort; >1 means Cohort is faster)");
    for line in lines {
        println!("{line}");
    }
    println!("written to {}", out.display());
}

fn main() {
    let engines = build_engines();
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
