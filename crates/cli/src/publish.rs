//! `cohort publish`: validate tenant configs, then store and publish them.
//!
//! With `--collector URL` it is a client of the control plane (docs/control-plane.md): each
//! config is `PUT` as the tenant's next version, which the collector records in its history and
//! publishes to the edge. With `--direct` (for bootstrapping, before a collector runs) it writes
//! the edge's KV itself through wrangler. KV layout (docs/edge.md, "Per request"):
//! `tenant:<id>` → config JSON, `host:<hostname>` → tenant id. A config is refused unless its
//! `version` is greater than the stored one, and a hostname already served by another tenant is
//! refused too. `--local` (direct) writes wrangler's local KV (what `wrangler dev` reads); without
//! it wrangler writes the Cloudflare namespace, authenticated by its usual
//! `CLOUDFLARE_API_TOKEN` / `CLOUDFLARE_ACCOUNT_ID` environment.

use cohort_core::Tenant;
use cohort_core::wire::{KvEntry, host_key, kv_entries, tenant_key};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `cohort publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// Tenant config files (JSON, schema 1; `-` reads one from stdin).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The collector whose config API stores and publishes the configs (`http://host:port`).
    #[arg(long, value_name = "URL", env = "COHORT_COLLECTOR_URL", required_unless_present_any = ["direct", "local"])]
    collector: Option<String>,
    /// With --collector: the admin token; without it, one is derived from COHORT_SECRET for
    /// each config's tenant, labelled with --author.
    #[arg(long, env = "COHORT_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --collector and COHORT_SECRET: the author recorded in the history.
    #[arg(long, default_value = "cohort-cli")]
    author: String,
    /// With --collector: why, recorded in the history.
    #[arg(long)]
    comment: Option<String>,
    /// With --collector: apply a change that moves already assigned units.
    #[arg(long)]
    force: bool,
    /// With --collector: show each config's diff without storing anything.
    #[arg(long)]
    dry_run: bool,
    /// With --collector: print the collector's answers as one JSON array instead of lines.
    #[arg(long, requires = "collector")]
    json: bool,
    /// Write the edge's KV through wrangler instead of the collector (bootstrapping).
    #[arg(long, conflicts_with = "collector")]
    direct: bool,
    /// Direct: write wrangler's local KV (for `wrangler dev`) instead of the Cloudflare namespace.
    #[arg(long, conflicts_with = "collector")]
    local: bool,
    /// With --local: the directory wrangler keeps local state in (its `--persist-to`).
    #[arg(long, requires = "local")]
    persist_to: Option<PathBuf>,
    /// KV binding of the edge worker in wrangler.toml.
    #[arg(long, default_value = "CONFIG")]
    binding: String,
    /// The wrangler executable.
    #[arg(long, env = "COHORT_WRANGLER", default_value = "node_modules/.bin/wrangler")]
    wrangler: PathBuf,
}

impl PublishArgs {
    /// Runs `wrangler kv <args> --binding B --local|--remote [--persist-to D]`; stdout on success.
    fn wrangler(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(&self.wrangler);
        command.arg("kv").args(args).args(["--binding", &self.binding]);
        command.arg(if self.local { "--local" } else { "--remote" });
        if let Some(dir) = &self.persist_to {
            command.arg("--persist-to").arg(dir);
        }
        command.env("WRANGLER_SEND_METRICS", "false");
        let output = command
            .output()
            .map_err(|e| format!("running {}: {e} (install it with `npm ci`)", self.wrangler.display()))?;
        if !output.status.success() {
            return Err(format!(
                "wrangler kv {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn stored_keys(&self) -> Result<HashSet<String>, String> {
        let listing = self.wrangler(&["key", "list"])?;
        let keys: Vec<serde_json::Value> =
            serde_json::from_str(&listing).map_err(|e| format!("wrangler kv key list printed no JSON list: {e}"))?;
        Ok(keys
            .iter()
            .filter_map(|k| k["name"].as_str().map(str::to_owned))
            .collect())
    }

    fn get(&self, key: &str) -> Result<String, String> {
        Ok(self
            .wrangler(&["key", "get", key, "--text"])?
            .trim_end_matches('\n')
            .to_owned())
    }
}

/// Reads and validates config files (`-` is stdin), refusing a hostname two of them claim.
/// Which checks a config passes before it is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// The engine's, as the edge validates (what `kv-entries` needs to reproduce any KV state).
    Engine,
    /// The engine's and the selectors parsed by the edge's HTML rewriter (what publishing asks).
    Publish,
}

fn read_configs(files: &[PathBuf], checks: Checks) -> Result<Vec<(&PathBuf, Tenant, String)>, String> {
    let mut tenants = Vec::new();
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let json = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
        } else {
            std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?
        };
        let tenant = match checks {
            Checks::Engine => Tenant::from_json(&json),
            Checks::Publish => cohort_collector::selectors::validate_document(&json),
        }
        .map_err(|e| format!("{}: {e}", file.display()))?;
        for host in &tenant.hostnames {
            if let Some(other) = claimed.insert(host.clone(), tenant.id.clone())
                && other != tenant.id
            {
                return Err(format!(
                    "{}: hostname `{host}` is also claimed by tenant `{other}`",
                    file.display()
                ));
            }
        }
        tenants.push((file, tenant, json));
    }
    Ok(tenants)
}

/// `cohort kv-entries`: the KV entries `publish` would write, as wrangler's bulk JSON on stdout.
pub fn print_entries(files: &[PathBuf]) -> Result<ExitCode, String> {
    let entries: Vec<KvEntry> = read_configs(files, Checks::Engine)?
        .iter()
        .flat_map(|(_, tenant, json)| kv_entries(tenant, json))
        .collect();
    println!("{}", serde_json::to_string(&entries).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

/// `cohort publish`.
pub fn run(args: &PublishArgs) -> Result<ExitCode, String> {
    // Everything is validated before anything is written.
    let tenants = read_configs(&args.files, Checks::Publish)?;
    if let Some(collector) = &args.collector {
        return through_collector(args, collector, &tenants);
    }

    let stored = args.stored_keys()?;
    // Each check is a wrangler call (about a second): with many tenants, say how far it got.
    let show_progress = tenants.len() > 3;
    for (checked, (file, tenant, _)) in tenants.iter().enumerate() {
        if show_progress {
            eprintln!(
                "publish: checking {} of {} against KV: tenant `{}`",
                checked + 1,
                tenants.len(),
                tenant.id
            );
        }
        let key = tenant_key(&tenant.id);
        if stored.contains(&key) {
            let current = args.get(&key)?;
            // A stored config that no longer parses has no version to protect: it is replaced.
            if let Ok(current) = serde_json::from_str::<serde_json::Value>(&current)
                && let Some(version) = current["version"].as_u64()
                && tenant.version <= version
            {
                return Err(format!(
                    "{}: version {} is not greater than the stored version {version} of tenant `{}`",
                    file.display(),
                    tenant.version,
                    tenant.id
                ));
            }
        }
        for host in &tenant.hostnames {
            let key = host_key(host);
            if stored.contains(&key) {
                let owner = args.get(&key)?;
                if owner != tenant.id {
                    return Err(format!(
                        "{}: hostname `{host}` is served by tenant `{owner}`",
                        file.display()
                    ));
                }
            }
        }
    }

    let entries: Vec<KvEntry> = tenants
        .iter()
        .flat_map(|(_, tenant, json)| kv_entries(tenant, json))
        .collect();
    let bulk = std::env::temp_dir().join(format!("cohort-publish-{}.json", std::process::id()));
    std::fs::write(&bulk, serde_json::to_vec(&entries).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", bulk.display()))?;
    let written = args.wrangler(&["bulk", "put", &bulk.to_string_lossy()]);
    let _ = std::fs::remove_file(&bulk);
    written?;
    for (file, tenant, _) in &tenants {
        println!(
            "{}: published tenant `{}` version {} for {}",
            file.display(),
            tenant.id,
            tenant.version,
            tenant.hostnames.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The admin token for `tenant`: --token as given, or derived from COHORT_SECRET.
fn admin_token(args: &PublishArgs, tenant: &str) -> Result<String, String> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    let secret = std::env::var("COHORT_SECRET")
        .map_err(|_| "--collector: give --token (COHORT_ADMIN_TOKEN) or set COHORT_SECRET".to_owned())?;
    cohort_core::MasterSecret::new(secret)
        .map_err(|e| e.to_string())?
        .config_admin_token(tenant, &args.author)
        .ok_or_else(|| format!("--author `{}`: letters, digits, `.`, `_`, `-` or `@` only", args.author))
}

/// PUTs each config to the collector's config API, in order; stops at the first refusal.
fn through_collector(
    args: &PublishArgs,
    collector: &str,
    tenants: &[(&PathBuf, Tenant, String)],
) -> Result<ExitCode, String> {
    if !(collector.starts_with("http://") || collector.starts_with("https://")) {
        return Err(format!("--collector {collector}: expected an http(s) URL"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    let outcome = runtime.block_on(async {
        for (file, tenant, json) in tenants {
            let config: serde_json::Value =
                serde_json::from_str(json).map_err(|e| format!("{}: {e}", file.display()))?;
            let mut body = serde_json::json!({"config": config, "force": args.force, "dry_run": args.dry_run});
            if let Some(comment) = &args.comment {
                body["comment"] = comment.clone().into();
            }
            let url = format!("{}/v1/tenants/{}/config", collector.trim_end_matches('/'), tenant.id);
            let response = client
                .put(&url)
                .bearer_auth(admin_token(args, &tenant.id)?)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .timeout(std::time::Duration::from_secs(120))
                .send()
                .await
                .map_err(|e| format!("{}: PUT {url}: {e}", file.display()))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| format!("{}: {e}", file.display()))?;
            if !status.is_success() {
                let reason =
                    cohort_core::wire::ErrorDetail::from_body(&text).map_or(text.clone(), |detail| detail.message);
                return Err(format!(
                    "{}: the collector refused it ({status}): {reason}",
                    file.display()
                ));
            }
            let answer: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: unreadable answer: {e}", file.display()))?;
            if args.json {
                answers.push(serde_json::json!({"file": file.display().to_string(), "answer": answer}));
                continue;
            }
            let state = if args.dry_run {
                "dry run, nothing stored".to_owned()
            } else if answer["live"] == true {
                "live".to_owned()
            } else {
                format!(
                    "stored, not yet live ({}); the collector retries",
                    answer["publish_error"].as_str().unwrap_or("publish pending")
                )
            };
            println!(
                "{}: tenant `{}` version {}: {state}",
                file.display(),
                tenant.id,
                tenant.version
            );
            if let Some(diff) = answer.get("diff") {
                println!("  diff: {diff}");
            }
        }
        Ok(ExitCode::SUCCESS)
    });
    if args.json {
        // What was stored before a refusal is reported too.
        println!("{}", serde_json::Value::Array(answers));
    }
    outcome
}
