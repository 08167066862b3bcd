//! `cohort publish`: validate tenant configs, then write them to the edge's KV through wrangler.
//!
//! KV layout (docs/edge.md, "Per request"): `tenant:<id>` → config JSON, `host:<hostname>` → tenant id. A
//! config is refused unless its `version` is greater than the stored one, and a hostname already
//! served by another tenant is refused too. `--local` writes wrangler's local KV (what
//! `wrangler dev` reads); without it wrangler writes the Cloudflare namespace, authenticated by
//! its usual `CLOUDFLARE_API_TOKEN` / `CLOUDFLARE_ACCOUNT_ID` environment.

use cohort_core::Tenant;
use cohort_core::wire::{KvEntry, host_key, kv_entries, tenant_key};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `cohort publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// Tenant config files (JSON, schema 1).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write wrangler's local KV (for `wrangler dev`) instead of the Cloudflare namespace.
    #[arg(long)]
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
fn read_configs(files: &[PathBuf]) -> Result<Vec<(&PathBuf, Tenant, String)>, String> {
    let mut tenants = Vec::new();
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let json = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
        } else {
            std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?
        };
        let tenant = Tenant::from_json(&json).map_err(|e| format!("{}: {e}", file.display()))?;
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
    let entries: Vec<KvEntry> = read_configs(files)?
        .iter()
        .flat_map(|(_, tenant, json)| kv_entries(tenant, json))
        .collect();
    println!("{}", serde_json::to_string(&entries).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

/// `cohort publish`.
pub fn run(args: &PublishArgs) -> Result<ExitCode, String> {
    // Everything is validated before anything is written.
    let tenants = read_configs(&args.files)?;

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
