//! `cohort`: the command line for tenant configs and assignments.

mod access;
mod collector;
mod publish;
mod results;
mod simulate;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use cohort_core::exposure::{HOLDOUT_EXPERIMENT, HOLDOUT_VARIANT};
use cohort_core::{Context, Outcome, Reason, Source, Tenant};
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(name = "cohort", version, about = "Cohort: multi-tenant A/B testing at the edge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate tenant config files; errors name the file, the JSON path and the reason.
    Validate {
        /// Config files (JSON, schema 1; `-` reads one from stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON document (`[{"file", "ok", ...}]`) on stdout instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Show, for each experiment, the variant and bucket a unit gets, or why it gets none.
    Explain(ExplainArgs),
    /// Test targeting rules: reads JSON lines {"condition": ..., "attributes": ...} on stdin and
    /// prints `true`, `false` or `error: <reason>` per line; exits 1 if any line is an error.
    Match,
    /// Run the origin collector: signed beacon ingest, storage, results API (COHORT_SECRET).
    Collector(collector::CollectorArgs),
    /// Validate tenant configs and write them to the edge's KV (`tenant:` and `host:` keys).
    Publish(publish::PublishArgs),
    /// Validate tenant configs as the edge does and print their KV entries, as the JSON of a KV
    /// bulk write (`[{"key", "value"}]`); writes nothing. (Publishing also parses selectors.)
    KvEntries {
        /// Config files (`-` reads one from stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print one experiment's results from the collector's API as a table (or its JSON).
    Results(results::ResultsArgs),
    /// Assign many random units and check each experiment's split with a chi-square test.
    Simulate(simulate::SimulateArgs),
    /// Print a tenant's read token for the results API, or with --admin an admin token for the
    /// config API (COHORT_SECRET).
    Token(access::TokenArgs),
    /// Print a signed, expiring QA link that forces variants at the edge (COHORT_SECRET).
    PreviewLink(access::PreviewLinkArgs),
    /// Print a shell completion script (e.g. `cohort completions bash > /etc/bash_completion.d/cohort`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page in roff (e.g. `cohort man > /usr/local/share/man/man1/cohort.1`).
    Man,
    /// Print the tenant config's JSON Schema (schemas/tenant-config.schema.json), for editors:
    /// a config naming it in `"$schema"` gets completion and checks as it is typed.
    Schema,
    /// Print the collector API's OpenAPI 3.1 description (schemas/collector-openapi.json), for
    /// client generators and API tools.
    Openapi,
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// Tenant config file.
    #[arg(long)]
    config: PathBuf,
    /// Unit (visitor) id.
    #[arg(long)]
    unit: String,
    /// Targeting attribute `key=value`; the value is read as JSON when it parses (42, true,
    /// ["a","b"]) and as a string otherwise; dotted keys nest (`user.plan=pro`). Repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
    /// Request URL or path (`https://shop.example/checkout?x=1` or `/checkout`); default `/`.
    #[arg(long, default_value = "/")]
    url: String,
    /// Evaluation time, RFC 3339; default now.
    #[arg(long)]
    now: Option<String>,
    /// Force a variant, `experiment=variant`, as a QA preview would. Repeatable.
    #[arg(long = "force", value_name = "EXPERIMENT=VARIANT")]
    forced: Vec<String>,
    /// Print the decisions as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files, json } => validate(&files, json),
        Command::Explain(args) => explain(&args),
        Command::Match => match_lines(),
        Command::Collector(args) => collector::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::KvEntries { files } => publish::print_entries(&files),
        Command::Results(args) => results::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Token(args) => access::token(&args),
        Command::PreviewLink(args) => access::preview_link(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cohort", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => print_json(&cohort_core::config::tenant_config_schema(), "the schema"),
        Command::Openapi => print_json(&cohort_collector::openapi::document(), "the OpenAPI description"),
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| format!("writing the manual page: {e}")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cohort: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `document` as pretty JSON on stdout.
fn print_json(document: &Value, what: &str) -> Result<ExitCode, String> {
    serde_json::to_string_pretty(document)
        .map(|text| {
            println!("{text}");
            ExitCode::SUCCESS
        })
        .map_err(|e| format!("writing {what}: {e}"))
}

fn load_tenant(path: &Path) -> Result<Tenant, String> {
    let text = read_config_text(path)?;
    Tenant::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a config file, or stdin for `-`.
fn read_config_text(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("-: reading stdin: {e}"))
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn validate(files: &[PathBuf], json: bool) -> Result<ExitCode, String> {
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err("validate: `-` (stdin) can be given once".into());
    }
    let mut failed = 0;
    let mut report = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let outcome = read_config_text(file).map(|text| cohort_collector::selectors::validate_document(&text));
        let entry = match outcome {
            Ok(Ok(tenant)) => {
                if !json {
                    println!(
                        "{name}: ok (tenant `{}`, version {}, {} experiments)",
                        tenant.id,
                        tenant.version,
                        tenant.experiments.len()
                    );
                }
                serde_json::json!({"file": name, "ok": true, "tenant": tenant.id,
                    "version": tenant.version, "experiments": tenant.experiments.len()})
            }
            Ok(Err(error)) => {
                failed += 1;
                if !json {
                    eprintln!("{name}: {error}");
                }
                serde_json::json!({"file": name, "ok": false,
                    "error": {"path": error.path, "message": error.to_string()}})
            }
            Err(unreadable) => {
                failed += 1;
                if !json {
                    eprintln!("{unreadable}");
                }
                serde_json::json!({"file": name, "ok": false, "error": {"path": "", "message": unreadable}})
            }
        };
        report.push(entry);
    }
    if json {
        println!("{}", Value::Array(report));
    }
    if failed > 0 {
        if !json {
            eprintln!("{failed} of {} files invalid", files.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits a URL or path into (host, path, query).
fn split_url(url: &str) -> Result<(Option<&str>, &str, &str), String> {
    let (host, rest) = match url.split_once("://") {
        Some((_, after_scheme)) => {
            let end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
            (Some(&after_scheme[..end]), &after_scheme[end..])
        }
        None => (None, url),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if path.is_empty() { "/" } else { path };
    if !path.starts_with('/') {
        return Err(format!(
            "--url `{url}`: expected an absolute URL or a path starting with `/`"
        ));
    }
    Ok((host, path, query))
}

fn parse_pair<'a>(flag: &str, pair: &'a str) -> Result<(&'a str, &'a str), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(format!("{flag} `{pair}`: expected KEY=VALUE")),
    }
}

fn build_attributes(pairs: &[String]) -> Result<Map<String, Value>, String> {
    let mut attributes = Map::new();
    for pair in pairs {
        let (key, raw) = parse_pair("--attr", pair)?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        let mut target = &mut attributes;
        let mut segments = key.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segment.is_empty() {
                return Err(format!("--attr `{pair}`: empty segment in `{key}`"));
            }
            if segments.peek().is_none() {
                target.insert(segment.to_owned(), value.clone());
                break;
            }
            let slot = target
                .entry(segment.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            target = slot
                .as_object_mut()
                .ok_or_else(|| format!("--attr `{pair}`: `{segment}` is already a value"))?;
        }
    }
    Ok(attributes)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What `explain` and `simulate` evaluate against: the attributes the edge computes for the URL
/// (`cohort_core::edge::attributes`), overlaid with the `--attr` values, and the time.
struct RequestContext {
    attributes: Value,
    path: String,
    now_ms: i64,
}

impl RequestContext {
    fn build(url: &str, pairs: &[String], now: Option<&str>) -> Result<RequestContext, String> {
        let (host, path, query) = split_url(url)?;
        let visit = cohort_core::edge::Visit {
            url,
            host: host.unwrap_or(""),
            path,
            query,
            ..Default::default()
        };
        let mut attributes = cohort_core::edge::attributes(&visit, cohort_core::DeviceClass::Other);
        if let Some(object) = attributes.as_object_mut() {
            object.extend(build_attributes(pairs)?);
        }
        let now_ms = match now {
            Some(text) => cohort_core::time::parse_rfc3339(text).map_err(|e| format!("--now: {e}"))?,
            None => now_ms(),
        };
        Ok(RequestContext {
            attributes,
            path: path.to_owned(),
            now_ms,
        })
    }
}

fn explain(args: &ExplainArgs) -> Result<ExitCode, String> {
    let tenant = load_tenant(&args.config)?;
    let RequestContext {
        mut attributes,
        path,
        now_ms: now,
    } = RequestContext::build(&args.url, &args.attributes, args.now.as_deref())?;
    if let Some(object) = attributes.as_object_mut() {
        object.entry("id").or_insert_with(|| Value::String(args.unit.clone()));
    }
    let mut forced = BTreeMap::new();
    for pair in &args.forced {
        let (experiment, variant) = parse_pair("--force", pair)?;
        if tenant.experiment(experiment).is_none() {
            return Err(format!(
                "--force `{pair}`: tenant `{}` has no experiment `{experiment}`",
                tenant.id
            ));
        }
        forced.insert(experiment.to_owned(), variant.to_owned());
    }
    let evaluation = tenant.evaluate(&Context {
        unit_id: &args.unit,
        attributes: &attributes,
        path: &path,
        now_ms: now,
        sticky: &[],
        forced: &forced,
    });

    let mut out = std::io::stdout().lock();
    if args.json {
        let decisions: Vec<Value> = evaluation.decisions.iter().map(|d| d.to_json()).collect();
        writeln!(out, "{}", Value::Array(decisions)).map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "tenant {} v{} · unit {} · path {} · {}",
        tenant.id,
        tenant.version,
        args.unit,
        path,
        cohort_core::time::format_rfc3339(now)
    )
    .map_err(|e| e.to_string())?;
    let width = tenant
        .experiments
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(10)
        .max(10);
    // The membership the unit's holdout record carries, sent once when the edge issues it.
    if let Some(variant) = tenant.holdout_variant(&args.unit) {
        let bucket = tenant.holdout_bucket(&args.unit);
        let relation = if variant == HOLDOUT_VARIANT { "<" } else { "≥" };
        writeln!(
            out,
            "  {HOLDOUT_EXPERIMENT:width$}  → {variant} (bucket {bucket} {relation} {}, recorded when the unit is new)",
            tenant.holdout
        )
        .map_err(|e| e.to_string())?;
    }
    for decision in &evaluation.decisions {
        let experiment = decision.experiment;
        let line = match &decision.outcome {
            Outcome::Assigned {
                variant,
                source,
                bucket,
                log_exposure,
            } => {
                let how = match (source, bucket) {
                    (Source::Bucketed, Some(bucket)) => format!("bucket {bucket}"),
                    (Source::Bucketed, None) => "bucketed".into(),
                    (Source::Sticky, _) => "sticky".into(),
                    (Source::Forced, _) => "forced".into(),
                    (Source::Winner, _) => "winner of a stopped experiment".into(),
                };
                let exposure = if *log_exposure { ", exposure logged" } else { "" };
                format!("→ {} ({how}{exposure})", experiment.variants[*variant].key)
            }
            Outcome::Excluded(reason) => format!("– {}", describe(reason, experiment, &tenant)),
        };
        writeln!(out, "  {:width$}  {line}", experiment.key).map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(reason: &Reason, experiment: &cohort_core::Experiment, tenant: &Tenant) -> String {
    match reason {
        Reason::PathNotMatched => "path not matched".into(),
        Reason::Draft => "draft: not live".into(),
        Reason::Paused => "paused: not enrolling new units".into(),
        Reason::Stopped => "stopped without a winner".into(),
        Reason::NotStarted => match experiment.start_ms {
            Some(start) => format!("not started (starts {})", cohort_core::time::format_rfc3339(start)),
            None => "not started".into(),
        },
        Reason::Ended => "ended".into(),
        Reason::NotTargeted => "not targeted".into(),
        Reason::HeldOut { bucket } => format!("in the tenant holdout (bucket {bucket} < {})", tenant.holdout),
        Reason::OutsideLayer { bucket } => match &experiment.layer {
            Some(slot) => format!(
                "layer `{}` bucket {bucket} is outside [{}, {})",
                slot.key, slot.range.start, slot.range.end
            ),
            None => format!("outside layer (bucket {bucket})"),
        },
        Reason::OutsideCoverage { bucket } => {
            format!("outside coverage (bucket {bucket}, coverage {})", experiment.coverage)
        }
        Reason::UnknownForcedVariant(variant) => {
            format!("forced variant `{variant}` does not exist")
        }
        _ => reason.code().replace('_', " "),
    }
}

fn match_line(line: &str) -> String {
    let input: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return format!("error: line is not JSON: {e}"),
    };
    let Some(object) = input.as_object() else {
        return "error: expected an object {\"condition\": ..., \"attributes\": ...}".into();
    };
    if let Some(unknown) = object.keys().find(|k| *k != "condition" && *k != "attributes") {
        return format!("error: unknown field `{unknown}`; expected `condition` and `attributes`");
    }
    let Some(condition) = object.get("condition") else {
        return "error: missing field `condition`".into();
    };
    let attributes = object.get("attributes").cloned().unwrap_or(Value::Object(Map::new()));
    match cohort_core::Condition::compile(condition) {
        Ok(compiled) => compiled.matches(&attributes).to_string(),
        Err(e) => format!(
            "error: condition{}",
            if e.path.is_empty() {
                format!(": {}", e.reason)
            } else {
                format!("{}: {}", e.path, e.reason)
            }
        ),
    }
}

fn match_lines() -> Result<ExitCode, String> {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let (mut answered, mut errors) = (0, 0);
    for line in stdin.lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match_line(&line);
        answered += 1;
        errors += usize::from(answer.starts_with("error: "));
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
    }
    // Every line is answered; the exit status says whether any could not be evaluated.
    if errors > 0 {
        eprintln!("match: {errors} of {answered} lines could not be evaluated");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_path_query() {
        assert_eq!(
            split_url("https://shop.example/checkout?x=1#top").unwrap(),
            (Some("shop.example"), "/checkout", "x=1")
        );
        assert_eq!(
            split_url("https://shop.example").unwrap(),
            (Some("shop.example"), "/", "")
        );
        assert_eq!(split_url("/a?b").unwrap(), (None, "/a", "b"));
        assert!(split_url("checkout").is_err());
    }

    #[test]
    fn attributes_parse_json_and_nest() {
        let attributes = build_attributes(&[
            "age=42".into(),
            "country=DE".into(),
            "user.plan=\"pro\"".into(),
            "tags=[\"a\"]".into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(attributes),
            serde_json::json!({"age": 42, "country": "DE", "user": {"plan": "pro"}, "tags": ["a"]})
        );
        assert!(build_attributes(&["novalue".into()]).is_err());
        assert!(build_attributes(&["a=1".into(), "a.b=2".into()]).is_err());
    }

    #[test]
    fn match_lines_report_errors() {
        assert_eq!(match_line(r#"{"condition": {"a": 1}, "attributes": {"a": 1}}"#), "true");
        assert_eq!(
            match_line(r#"{"condition": {"a": 1}, "attributes": {"a": 2}}"#),
            "false"
        );
        assert!(match_line("nope").starts_with("error: line is not JSON"));
        assert!(match_line(r#"{"condition": {"a": {"$bogus": 1}}}"#).starts_with("error: condition.a"));
        assert!(match_line(r#"{"attributes": {}}"#).starts_with("error: missing field"));
    }
}
