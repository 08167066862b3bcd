//! Cohort's engine next to the peers across targeting shapes (README.md): every [`Shape`] at
//! every [`Pass`] rate and size (20 and 200 experiments), each engine on its own translation, or
//! "unsupported" with the reason when it lacks the operator.
//!
//! - `cargo bench -p cohort-benches --bench matrix` measures: per cell, rounds that alternate the
//!   engines each time a loop of full evaluations for about 100 ms; the median over 5 rounds, and
//!   the median of the per-round ratios peer / Cohort. Then the load (JSON text to a ready
//!   engine) at pass rate "half". Prints the tables and writes `target/bench-peers/matrix.json`
//!   (or `$COHORT_MATRIX_OUT`, relative to the workspace root).
//! - `cargo test -p cohort-benches --bench matrix` (no `--bench` argument) is the quick mode: every
//!   check, then one evaluation and one load per engine and cell; nothing timed, nothing written.
//!
//! Before anything is timed, every engine must assign the visitor exactly the cell's expected
//! experiments, and in the "all" cells split 100 other visitors about evenly.
//!
//! `COHORT_MATRIX_ONLY=regex/all/200` (or a prefix: `regex`, `regex/all`) restricts the run to the
//! matching cells and writes no JSON. With it, `COHORT_MATRIX_PROFILE=cohort` (or a peer's name)
//! checks only that engine and then evaluates 40,000 experiments (2,000 evaluations of 20, 200 of
//! 200) inside `profile_loop`, for `valgrind --tool=callgrind --toggle-collect='*profile_loop*'`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cohort_benches::{
    Cohort, Pass, SIZES, Shape, Workload, load_average, locked_version, matrix_workload, output_path,
};
use serde_json::{Map, Value, json};

mod engines;
use engines::{Engine, GrowthBook, LaunchDarkly, PEERS, Ready, Unleash};

const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_millis(100);
const LOAD_ROUND: Duration = Duration::from_millis(50);
/// Cohort's target: at least this many times faster than the fastest peer that has the operator.
const TARGET: f64 = 5.0;
/// Experiment evaluations per profile: 2,000 evaluations of 20 experiments, 200 of 200.
const PROFILE_EXPERIMENTS: usize = 40_000;

/// A timed case: one full evaluation, or one load.
type Case<'a> = Box<dyn Fn() + 'a>;

/// Each engine in the order of the figures (Cohort first), with its case or why it has none.
type Cases<'a> = Vec<(&'static str, Result<Case<'a>, String>)>;

fn engine_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(Cohort::NAME).chain(PEERS.iter().map(|(name, _)| *name))
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    /// `cargo bench` passes `--bench`; `cargo test --benches` does not: the quick mode.
    measuring: bool,
    only: Option<String>,
    profile: Option<String>,
}

impl Options {
    fn from_env() -> Self {
        let options = Options {
            measuring: std::env::args().any(|a| a == "--bench"),
            only: std::env::var("COHORT_MATRIX_ONLY").ok().filter(|s| !s.is_empty()),
            profile: std::env::var("COHORT_MATRIX_PROFILE").ok().filter(|s| !s.is_empty()),
        };
        if let Some(engine) = &options.profile {
            assert!(
                engine_names().any(|name| name == engine),
                "COHORT_MATRIX_PROFILE={engine}: expected one of {}",
                engine_names().collect::<Vec<_>>().join(", ")
            );
            assert!(
                options.only.is_some(),
                "COHORT_MATRIX_PROFILE needs COHORT_MATRIX_ONLY=shape/pass/size"
            );
        }
        options
    }

    fn selects(&self, id: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| id == only || id.strip_prefix(only).is_some_and(|rest| rest.starts_with('/')))
    }

    /// Whether engine `name` takes part (all of them, unless one is profiled).
    fn includes(&self, name: &str) -> bool {
        self.profile.as_deref().is_none_or(|p| p == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Preparing a cell: translate, check, and hand out the cases.

fn cell_id(shape: Shape, pass: Pass, size: usize) -> String {
    format!("{}/{}/{size}", shape.name(), pass.name())
}

/// The engine ready and checked for `w` (and its split checked when every experiment assigns),
/// or why it cannot express `w`.
fn ready<E: Engine>(w: &Workload, pass: Pass, options: &Options) -> Option<Result<Ready<E>, String>> {
    if !options.includes(E::NAME) {
        return None;
    }
    let ready = Ready::<E>::new(w);
    if let Ok(ready) = &ready
        && pass == Pass::All
        && options.profile.is_none()
    {
        ready.check_split(w);
    }
    Some(ready)
}

fn evaluation<E: Engine>(ready: &Option<Result<Ready<E>, String>>) -> Option<(&'static str, Result<Case<'_>, String>)> {
    let case = ready.as_ref()?.as_ref().map_err(Clone::clone);
    Some((E::NAME, case.map(|r| Box::new(move || r.evaluate()) as Case<'_>)))
}

fn load<E: Engine>(w: &Workload, options: &Options) -> Option<(&'static str, Result<Case<'static>, String>)> {
    if !options.includes(E::NAME) {
        return None;
    }
    let case = E::text(w).map(|text| {
        Box::new(move || {
            black_box(E::load(black_box(&text)));
        }) as Case<'static>
    });
    Some((E::NAME, case))
}

struct Prepared {
    cohort: Option<Result<Ready<Cohort>, String>>,
    unleash: Option<Result<Ready<Unleash>, String>>,
    launchdarkly: Option<Result<Ready<LaunchDarkly>, String>>,
    growthbook: Option<Result<Ready<GrowthBook>, String>>,
}

impl Prepared {
    fn new(w: &Workload, pass: Pass, options: &Options) -> Self {
        let prepared = Prepared {
            cohort: ready(w, pass, options),
            unleash: ready(w, pass, options),
            launchdarkly: ready(w, pass, options),
            growthbook: ready(w, pass, options),
        };
        if let Some(Err(reason)) = &prepared.cohort {
            panic!("cohort: cannot express the workload: {reason}");
        }
        prepared
    }

    fn evaluations(&self) -> Cases<'_> {
        [
            evaluation(&self.cohort),
            evaluation(&self.unleash),
            evaluation(&self.launchdarkly),
            evaluation(&self.growthbook),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn loads(w: &Workload, options: &Options) -> Cases<'static> {
    [
        load::<Cohort>(w, options),
        load::<Unleash>(w, options),
        load::<LaunchDarkly>(w, options),
        load::<GrowthBook>(w, options),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Timing

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// ns per call of each case in each round. Each case first runs for a tenth of `budget` to size
/// its loop to about `budget`; then every round runs each case's loop once, starting each round
/// at the next case, so that a change in machine load falls on all of them alike.
fn measure(cases: &[&Case<'_>], budget: Duration) -> Vec<Vec<f64>> {
    let iterations: Vec<u64> = cases
        .iter()
        .map(|case| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < budget / 10 {
                case();
                n += 1;
            }
            let each = start.elapsed().as_secs_f64() / n as f64;
            ((budget.as_secs_f64() / each).ceil() as u64).max(1)
        })
        .collect();
    let mut ns = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for round in 0..ROUNDS {
        for k in 0..cases.len() {
            let c = (round + k) % cases.len();
            let start = Instant::now();
            for _ in 0..iterations[c] {
                cases[c]();
            }
            ns[c].push(start.elapsed().as_nanos() as f64 / iterations[c] as f64);
        }
    }
    ns
}

/// Times the cases (quick mode: runs each once) and returns per engine `{ns, ratio_vs_cohort}` or
/// `{unsupported}`, and the smallest ratio of a peer with the case.
fn run(cases: &Cases<'_>, budget: Duration, measuring: bool) -> (Map<String, Value>, Option<(String, f64)>) {
    let supported: Vec<(&str, &Case<'_>)> = cases
        .iter()
        .filter_map(|(name, case)| Some((*name, case.as_ref().ok()?)))
        .collect();
    let mut engines = Map::new();
    for (name, case) in cases {
        if let Err(reason) = case {
            engines.insert(name.to_string(), json!({"unsupported": reason}));
        }
    }
    if !measuring {
        for (_, case) in &supported {
            case();
        }
        return (engines, None);
    }
    let ns = measure(&supported.iter().map(|(_, case)| *case).collect::<Vec<_>>(), budget);
    // Cohort is the first case whenever it takes part (COHORT_MATRIX_PROFILE aside).
    let cohort = (supported.first().map(|(name, _)| *name) == Some(Cohort::NAME)).then(|| &ns[0]);
    let mut fastest: Option<(String, f64)> = None;
    for ((name, _), rounds) in supported.iter().zip(&ns) {
        // Judged as reported, to two decimals, so that a printed 5.00x never counts as a miss.
        let ratio = cohort.map(|cohort| round_to(median(rounds.iter().zip(cohort).map(|(p, c)| p / c).collect()), 2));
        if *name != Cohort::NAME
            && let Some(ratio) = ratio
            && fastest.as_ref().is_none_or(|(_, f)| ratio < *f)
        {
            fastest = Some((name.to_string(), ratio));
        }
        engines.insert(
            name.to_string(),
            json!({"ns": round_to(median(rounds.clone()), 1), "ratio_vs_cohort": ratio}),
        );
    }
    (engines, fastest)
}

// ---------------------------------------------------------------------------------------------
// The printed tables

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// One row: Cohort's time, then each peer's ratio or "—".
fn row(label: &str, engines: &Map<String, Value>) -> String {
    let mut line = format!("{label:<24}");
    for name in engine_names() {
        let cell = match &engines.get(name) {
            Some(e) if e.get("unsupported").is_some() => "—".to_string(),
            Some(e) if name == Cohort::NAME => e["ns"].as_f64().map_or("?".into(), time),
            Some(e) => e["ratio_vs_cohort"].as_f64().map_or("?".into(), |r| format!("{r:.1}x")),
            None => "-".into(),
        };
        line.push_str(&format!(" {cell:>14}"));
    }
    line
}

fn header(what: &str) -> String {
    let mut line = format!("{what:<24}");
    for name in engine_names() {
        line.push_str(&format!(" {name:>14}"));
    }
    line
}

// ---------------------------------------------------------------------------------------------

/// Runs `evaluations` evaluations: callgrind collects inside this function only.
#[inline(never)]
fn profile_loop(case: &Case<'_>, evaluations: usize) {
    for _ in 0..evaluations {
        case();
    }
}

fn main() {
    let options = Options::from_env();
    let load_before = load_average();
    let started = Instant::now();
    let mut cells = Vec::new();
    let mut lines = Vec::new();
    let mut missed = Vec::new();
    let mut with_peer = 0usize;
    for size in SIZES {
        lines.push(format!(
            "\n{size} experiments (Cohort: time per full evaluation; peers: x Cohort's time)"
        ));
        lines.push(header("shape/pass"));
        for shape in Shape::ALL {
            for pass in Pass::ALL {
                let id = cell_id(shape, pass, size);
                if !options.selects(&id) {
                    continue;
                }
                let w = matrix_workload(shape, pass, size);
                let prepared = Prepared::new(&w, pass, &options);
                let cases = prepared.evaluations();
                if let Some(engine) = &options.profile {
                    let (_, case) = &cases[0];
                    let case = case
                        .as_ref()
                        .unwrap_or_else(|reason| panic!("{engine} cannot run {id}: {reason}"));
                    let evaluations = PROFILE_EXPERIMENTS / size;
                    eprintln!("matrix: {id}: {engine} checked; {evaluations} evaluations in profile_loop");
                    profile_loop(case, evaluations);
                    continue;
                }
                let (engines, fastest) = run(&cases, ROUND, options.measuring);
                let target_met = fastest.as_ref().map(|(_, ratio)| *ratio >= TARGET);
                if let Some((peer, ratio)) = &fastest {
                    with_peer += 1;
                    if *ratio < TARGET {
                        missed.push((id.clone(), peer.clone(), *ratio));
                    }
                }
                let line = row(&format!("{}/{}", shape.name(), pass.name()), &engines);
                if options.measuring {
                    eprintln!("matrix: {id:<22} {}", &line[24..]);
                }
                lines.push(line);
                cells.push(json!({
                    "shape": shape.name(), "pass": pass.name(), "size": size,
                    "experiments_assigned": w.expected.len(),
                    "engines": engines,
                    "fastest_peer": fastest.as_ref().map(|(name, _)| name),
                    "fastest_peer_ratio": fastest.as_ref().map(|(_, r)| r),
                    "target_met": target_met,
                }));
            }
        }
    }
    if options.profile.is_some() {
        return;
    }
    eprintln!(
        "matrix: every engine assigned exactly the expected experiments in {} cells{}",
        cells.len(),
        if options.measuring {
            ""
        } else {
            " (and split 100 visitors in the \"all\" cells)"
        }
    );

    // Cold start: JSON text to a ready engine, at pass rate "half".
    let mut loads_json = Vec::new();
    lines.push("\nload, pass rate half (Cohort: JSON text to a ready engine; peers: x Cohort's time)".into());
    lines.push(header("shape/size"));
    for size in SIZES {
        for shape in Shape::ALL {
            if !options.selects(&cell_id(shape, Pass::Half, size)) {
                continue;
            }
            let w = matrix_workload(shape, Pass::Half, size);
            let (engines, _) = run(&loads(&w, &options), LOAD_ROUND, options.measuring);
            lines.push(row(&format!("{}/{size}", shape.name()), &engines));
            loads_json.push(json!({"shape": shape.name(), "pass": "half", "size": size, "engines": engines}));
        }
    }

    if !options.measuring {
        eprintln!(
            "matrix: quick mode, {} cells and {} loads: checks, one evaluation and one load per engine; nothing timed ({:.1} s)",
            cells.len(),
            loads_json.len(),
            started.elapsed().as_secs_f64()
        );
        return;
    }
    let load_after = load_average();
    let met = with_peer - missed.len();
    lines.push(format!(
        "\ntarget: Cohort >= {TARGET}x the fastest peer in every cell where a peer has the operator: {met} of {with_peer} cells{}",
        if missed.is_empty() {
            String::new()
        } else {
            let cells: Vec<String> = missed.iter().map(|(id, peer, ratio)| format!("{id} ({peer} {ratio}x)")).collect();
            format!("; missed: {}", cells.join(", "))
        }
    ));
    lines.push(format!(
        "load average before {load_before}, after {load_after}; {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    for line in &lines {
        eprintln!("{line}");
    }
    if let Some(only) = &options.only {
        eprintln!("matrix: COHORT_MATRIX_ONLY={only}: a partial run, no JSON written");
        return;
    }
    let versions: Map<String, Value> = std::iter::once((Cohort::NAME, Cohort::CRATE))
        .chain(PEERS)
        .map(|(name, package)| {
            (
                name.to_string(),
                json!({"crate": package, "version": locked_version(package)}),
            )
        })
        .collect();
    let result = json!({
        "benchmark": "engine across targeting shapes",
        "command": "cargo bench -p cohort-benches --bench matrix",
        "unix_time": cohort_benches::unix_time(),
        "seconds": started.elapsed().as_secs(),
        "load_average_before": load_before, "load_average_after": load_after,
        "method": {
            "rounds": ROUNDS, "round_ms": ROUND.as_millis() as u64, "load_round_ms": LOAD_ROUND.as_millis() as u64,
            "ns": "median over the rounds of the mean time of one full evaluation (every experiment) in the round's loop",
            "ratio_vs_cohort": "median over the rounds of peer / Cohort in the same round",
            "load": "JSON text to a ready engine, dropping it included, at pass rate half",
        },
        "engines": engine_names().collect::<Vec<_>>(),
        "versions": versions,
        "shapes": Shape::ALL.map(Shape::name), "pass_rates": Pass::ALL.map(Pass::name), "sizes": SIZES,
        "target_ratio": TARGET,
        "cells_with_a_peer": with_peer,
        "cells_target_met": met,
        "target_met": missed.is_empty(),
        "missed": missed.iter().map(|(id, peer, ratio)| json!({"cell": id, "fastest_peer": peer, "ratio": ratio})).collect::<Vec<_>>(),
        "cells": cells,
        "load": loads_json,
    });
    let out = output_path("COHORT_MATRIX_OUT", "matrix.json");
    cohort_benches::write_json(&out, &result);
    eprintln!("written to {}", out.display());
}
