//! `cohort simulate`: assign many random units and check each experiment's split.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cohort_collector::stats::sample_ratio_test;
use cohort_core::{Context, HashMode, Outcome};

use cohort_core::simulation::SplitMix64;

/// Arguments of `cohort simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Tenant config file.
    #[arg(long)]
    config: PathBuf,
    /// How many random units to assign.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    units: u64,
    /// Request URL or path every unit visits.
    #[arg(long, default_value = "/")]
    url: String,
    /// Targeting attribute `key=value` shared by every unit (as in `cohort explain`). Repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
    /// Evaluation time, RFC 3339; default now.
    #[arg(long)]
    now: Option<String>,
    /// Seed of the unit-id generator: the same seed gives the same units.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON document instead of the text report (same exit status).
    #[arg(long)]
    json: bool,
}

/// Units and variant counts of one experiment.
#[derive(Default, Clone)]
struct Tally {
    per_variant: Vec<u64>,
    excluded: std::collections::BTreeMap<&'static str, u64>,
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode, String> {
    let tenant = super::load_tenant(&args.config)?;
    let request = super::RequestContext::build(&args.url, &args.attributes, args.now.as_deref())?;
    let forced = std::collections::BTreeMap::new();
    let mut tallies: Vec<Tally> = tenant
        .experiments
        .iter()
        .map(|e| Tally {
            per_variant: vec![0; e.variants.len()],
            ..Tally::default()
        })
        .collect();
    let mut rng = SplitMix64(args.seed);
    let progress_step = (args.units / 10).max(1);
    let show_progress = args.units >= 1_000_000;
    for i in 0..args.units {
        let unit_id = rng.unit_id();
        let evaluation = tenant.evaluate(&Context {
            unit_id: &unit_id,
            attributes: &request.attributes,
            path: &request.path,
            now_ms: request.now_ms,
            sticky: &[],
            forced: &forced,
        });
        for (tally, decision) in tallies.iter_mut().zip(&evaluation.decisions) {
            match &decision.outcome {
                Outcome::Assigned { variant, .. } => tally.per_variant[*variant] += 1,
                Outcome::Excluded(reason) => *tally.excluded.entry(reason.code()).or_default() += 1,
            }
        }
        if show_progress && (i + 1) % progress_step == 0 {
            eprintln!("simulated {} of {} units", i + 1, args.units);
        }
    }

    let mut report = Vec::new();
    let mut mismatches = 0;
    for (experiment, tally) in tenant.experiments.iter().zip(&tallies) {
        let assigned: u64 = tally.per_variant.iter().sum();
        let mut entry = serde_json::json!({"experiment": experiment.key, "assigned": assigned});
        if assigned == 0 {
            entry["excluded"] = serde_json::json!(tally.excluded);
        } else if let Some(winner) = experiment.winner {
            entry["winner"] = experiment.variants[winner].key.clone().into();
        } else {
            // Expected shares: the variants' bucket ranges at the configured coverage.
            let expected: Vec<f64> = match experiment.hash {
                HashMode::CohortV1 => experiment.ranges.iter().map(|r| f64::from(r.len())).collect(),
                HashMode::GrowthbookV2 | HashMode::GrowthbookV1 => {
                    experiment.variants.iter().map(|v| f64::from(v.weight)).collect()
                }
            };
            let expected_total: f64 = expected.iter().sum::<f64>().max(1.0);
            entry["variants"] = experiment
                .variants
                .iter()
                .zip(&tally.per_variant)
                .zip(&expected)
                .map(|((variant, &units), &share)| {
                    serde_json::json!({"variant": variant.key, "units": units, "expected_share": share / expected_total})
                })
                .collect();
            if let Some(test) = sample_ratio_test(&tally.per_variant, &expected) {
                mismatches += usize::from(test.mismatch);
                entry["sample_ratio"] = serde_json::to_value(test).map_err(|e| e.to_string())?;
            }
        }
        report.push(entry);
    }

    let mut out = std::io::stdout().lock();
    let text = if args.json {
        serde_json::json!({"tenant": tenant.id, "version": tenant.version, "units": args.units,
            "path": request.path, "experiments": report})
        .to_string()
    } else {
        text_report(&tenant, args.units, &request.path, &report)
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(if mismatches > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The report for people, from the same entries `--json` prints.
fn text_report(tenant: &cohort_core::Tenant, units: u64, path: &str, report: &[serde_json::Value]) -> String {
    let mut lines = vec![format!(
        "tenant {} v{} · {units} units · path {path}",
        tenant.id, tenant.version
    )];
    for entry in report {
        let assigned = entry["assigned"].as_u64().unwrap_or(0);
        lines.push(format!(
            "\n{}  {assigned} units in ({:.2}%)",
            entry["experiment"].as_str().unwrap_or("?"),
            percent(assigned, units)
        ));
        if let Some(excluded) = entry["excluded"].as_object() {
            let reasons: Vec<String> = excluded.iter().map(|(code, n)| format!("{code} {n}")).collect();
            lines.push(format!("  none assigned: {}", reasons.join(", ")));
            continue;
        }
        if let Some(key) = entry["winner"].as_str() {
            lines.push(format!(
                "  stopped: winner `{key}` is served to everyone, no split to test"
            ));
            continue;
        }
        for variant in entry["variants"].as_array().into_iter().flatten() {
            let count = variant["units"].as_u64().unwrap_or(0);
            lines.push(format!(
                "  {:<20} {:>10}  {:>6.2}%  (expected {:>6.2}%)",
                variant["variant"].as_str().unwrap_or("?"),
                count,
                percent(count, assigned),
                100.0 * variant["expected_share"].as_f64().unwrap_or(0.0)
            ));
        }
        let test = &entry["sample_ratio"];
        lines.push(match test["p_value"].as_f64() {
            Some(p) => format!(
                "  chi-square {:.2} (df {}), p = {p:.4}: {}",
                test["chi_square"].as_f64().unwrap_or(f64::INFINITY),
                test["degrees_of_freedom"],
                if test["mismatch"] == true { "MISMATCH" } else { "ok" }
            ),
            None => "  chi-square: not enough arms with units".into(),
        });
    }
    lines.join("\n")
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
