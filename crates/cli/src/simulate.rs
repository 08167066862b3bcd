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

    let mut out = std::io::stdout().lock();
    let write = |out: &mut std::io::StdoutLock, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    write(
        &mut out,
        format!(
            "tenant {} v{} · {} units · path {}",
            tenant.id, tenant.version, args.units, request.path
        ),
    )?;
    let mut mismatches = 0;
    for (experiment, tally) in tenant.experiments.iter().zip(&tallies) {
        let assigned: u64 = tally.per_variant.iter().sum();
        write(
            &mut out,
            format!(
                "\n{}  {} units in ({:.2}%)",
                experiment.key,
                assigned,
                percent(assigned, args.units)
            ),
        )?;
        if assigned == 0 {
            let reasons: Vec<String> = tally.excluded.iter().map(|(code, n)| format!("{code} {n}")).collect();
            write(&mut out, format!("  none assigned: {}", reasons.join(", ")))?;
            continue;
        }
        if let Some(winner) = experiment.winner {
            let key = &experiment.variants[winner].key;
            write(
                &mut out,
                format!("  stopped: winner `{key}` is served to everyone, no split to test"),
            )?;
            continue;
        }
        // Expected shares: the variants' bucket ranges at the configured coverage.
        let expected: Vec<f64> = match experiment.hash {
            HashMode::CohortV1 => experiment.ranges.iter().map(|r| f64::from(r.len())).collect(),
            HashMode::GrowthbookV2 => experiment.variants.iter().map(|v| f64::from(v.weight)).collect(),
        };
        let expected_total: f64 = expected.iter().sum();
        for ((variant, &count), &share) in experiment.variants.iter().zip(&tally.per_variant).zip(&expected) {
            write(
                &mut out,
                format!(
                    "  {:<20} {:>10}  {:>6.2}%  (expected {:>6.2}%)",
                    variant.key,
                    count,
                    percent(count, assigned),
                    100.0 * share / expected_total.max(1.0)
                ),
            )?;
        }
        match sample_ratio_test(&tally.per_variant, &expected) {
            Some(test) => {
                let verdict = if test.mismatch { "MISMATCH" } else { "ok" };
                if test.mismatch {
                    mismatches += 1;
                }
                write(
                    &mut out,
                    format!(
                        "  chi-square {:.2} (df {}), p = {:.4}: {verdict}",
                        test.chi_square, test.degrees_of_freedom, test.p_value
                    ),
                )?;
            }
            None => write(&mut out, "  chi-square: not enough arms with units".into())?,
        }
    }
    Ok(if mismatches > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
