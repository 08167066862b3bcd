//! `cohort results`: one experiment's results from the collector's API, as a table (or the JSON
//! document with `--json`). The figures are the collector's; this only lays them out
//! (docs/collector.md, "Results").

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

/// Arguments of `cohort results`.
#[derive(clap::Args)]
pub struct ResultsArgs {
    /// The collector (`http://host:port`).
    #[arg(long, value_name = "URL", env = "COHORT_COLLECTOR_URL")]
    collector: String,
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// Experiment key (`_holdout` for the tenant holdout).
    #[arg(long)]
    experiment: String,
    /// Read token; without it, one is derived from COHORT_SECRET.
    #[arg(long, env = "COHORT_READ_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A query parameter of the results API, `KEY=VALUE` (`inference=fixed`, `country=DE`,
    /// `config_version=3`, `weights=control:5000,green:5000`, ...). Repeatable; the collector
    /// validates them.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Print the collector's JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

fn read_token(args: &ResultsArgs) -> Result<String, String> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    let secret = std::env::var("COHORT_SECRET")
        .map_err(|_| "give --token (COHORT_READ_TOKEN) or set COHORT_SECRET".to_owned())?;
    Ok(cohort_core::MasterSecret::new(secret)
        .map_err(|e| e.to_string())?
        .results_read_token(&args.tenant))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn url(args: &ResultsArgs) -> Result<String, String> {
    if !(args.collector.starts_with("http://") || args.collector.starts_with("https://")) {
        return Err(format!("--collector {}: expected an http(s) URL", args.collector));
    }
    for (name, value) in [("--tenant", &args.tenant), ("--experiment", &args.experiment)] {
        if value.is_empty() || value.contains(['/', '?', '#']) {
            return Err(format!("{name} `{value}`: not a key"));
        }
    }
    let mut query = Vec::new();
    for pair in &args.params {
        let (key, value) = super::parse_pair("--param", pair)?;
        query.push(format!("{}={}", encode(key), encode(value)));
    }
    let mut url = format!(
        "{}/v1/tenants/{}/experiments/{}/results",
        args.collector.trim_end_matches('/'),
        args.tenant,
        args.experiment
    );
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Ok(url)
}

fn percent(fraction: f64) -> String {
    format!("{:.2}%", 100.0 * fraction)
}

/// Three decimals, or scientific notation below 0.001.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

fn comparison_text(comparison: &Value) -> String {
    let lift = match (
        comparison["relative_lift"].as_f64(),
        comparison["relative_ci"].as_object(),
    ) {
        (Some(lift), Some(ci)) => format!(
            "{:+.1}% [{:+.1}%, {:+.1}%]",
            100.0 * lift,
            100.0 * ci["low"].as_f64().unwrap_or(f64::NAN),
            100.0 * ci["high"].as_f64().unwrap_or(f64::NAN)
        ),
        _ => format!(
            "{:+.4} (absolute)",
            comparison["absolute_lift"].as_f64().unwrap_or(f64::NAN)
        ),
    };
    let p = match (comparison["p_value"].as_f64(), comparison["p_value_adjusted"].as_f64()) {
        (Some(p), Some(adjusted)) => format!("p = {} (adjusted {})", p_text(p), p_text(adjusted)),
        (Some(p), None) => format!("p = {}", p_text(p)),
        _ => "no p-value".to_owned(),
    };
    format!("{lift}, {p}: {}", comparison["verdict"].as_str().unwrap_or("?"))
}

/// The document as a table: the split and its check, then per metric each variant's figures.
pub fn table(doc: &Value) -> String {
    let mut out = String::new();
    let srm = &doc["sample_ratio"];
    let _ = writeln!(
        out,
        "{}/{}: {} intervals, {} confidence; sample ratio {} (expected split from {})",
        doc["tenant"].as_str().unwrap_or("?"),
        doc["experiment"].as_str().unwrap_or("?"),
        doc["inference"]["method"].as_str().unwrap_or("?"),
        doc["confidence"].as_f64().map_or("?".to_owned(), percent),
        if srm["mismatch"] == true {
            "MISMATCH: do not trust these lifts"
        } else {
            "ok"
        },
        srm["expected_split"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(out, "  {:<24} {:>9} {:>9}", "variant", "units", "expected");
    for variant in doc["variants"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<24} {:>9} {:>9}",
            variant["variant"].as_str().unwrap_or("?"),
            variant["exposed_units"].as_u64().unwrap_or(0),
            variant["expected_share"].as_f64().map_or("?".to_owned(), percent),
        );
    }
    for metric in doc["metrics"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "metric {} ({}, {} is better{})",
            metric["metric"].as_str().unwrap_or("?"),
            metric["kind"].as_str().unwrap_or("?"),
            metric["direction"].as_str().unwrap_or("?"),
            if metric["guardrail"] == true { ", guardrail" } else { "" },
        );
        for figures in metric["variants"].as_array().into_iter().flatten() {
            let mut line = format!(
                "  {:<24} {:>9} converted, {:>7}",
                figures["variant"].as_str().unwrap_or("?"),
                figures["converted_units"].as_u64().unwrap_or(0),
                figures["conversion_rate"].as_f64().map_or("?".to_owned(), percent),
            );
            if let Some(mean) = figures["mean_value"].as_f64() {
                let _ = write!(line, ", mean {mean:.2}");
            }
            for (what, key) in [("rate", "conversion_vs_control"), ("value", "value_vs_control")] {
                if figures[key].is_object() {
                    let _ = write!(line, "; {what} {}", comparison_text(&figures[key]));
                }
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// `cohort results`.
pub fn run(args: &ResultsArgs) -> Result<ExitCode, String> {
    let url = url(args)?;
    let token = read_token(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .timeout(std::time::Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok::<_, String>((status, body))
    })?;
    if !status.is_success() {
        let reason = cohort_core::wire::ErrorDetail::from_body(&body).map_or(body, |detail| detail.message);
        return Err(format!("the collector answered {status}: {reason}"));
    }
    if args.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let doc: Value = serde_json::from_str(&body).map_err(|e| format!("the collector's answer is not JSON: {e}"))?;
    print!("{}", table(&doc));
    Ok(ExitCode::SUCCESS)
}
