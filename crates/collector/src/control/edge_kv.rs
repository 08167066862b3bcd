//! Where the control plane publishes configs: the edge's KV namespace, through Cloudflare's KV
//! REST API in production or wrangler's local KV for development and tests.
//!
//! Both take the same two bulk calls: delete keys, and write entries. Neither is atomic across
//! keys, which is why [`super::publish`] orders them and the edge checks that a tenant claims the
//! host it was reached by (docs/control-plane.md, "Publishing").

use std::path::PathBuf;
use std::time::Duration;

use cohort_core::wire::KvEntry;
use serde::Deserialize;

/// Cloudflare's API root; tests point [`CloudflareKv::api_base`] at a local server instead.
pub const CLOUDFLARE_API_BASE: &str = "https://api.cloudflare.com/client/v4";

/// A publish call that did not succeed, in words for the API, the log and the dashboard.
pub type KvError = String;

/// A KV namespace reached through Cloudflare's REST API.
#[derive(Debug, Clone)]
pub struct CloudflareKv {
    /// API root, normally [`CLOUDFLARE_API_BASE`].
    pub api_base: String,
    /// Cloudflare account id.
    pub account_id: String,
    /// The namespace bound to the edge worker as `CONFIG`.
    pub namespace_id: String,
    /// An API token with "Workers KV Storage: Edit".
    pub api_token: String,
}

/// wrangler's local KV, which `wrangler dev` reads.
#[derive(Debug, Clone)]
pub struct WranglerKv {
    /// The wrangler executable.
    pub wrangler: PathBuf,
    /// The worker's wrangler.toml (names the binding's namespace).
    pub config: PathBuf,
    /// The KV binding.
    pub binding: String,
    /// wrangler's local state directory (`--persist-to`), if not its default.
    pub persist_to: Option<PathBuf>,
}

/// The edge's KV, as this collector reaches it.
#[derive(Debug, Clone)]
pub enum EdgeKv {
    /// Cloudflare's KV REST API (production).
    Cloudflare(CloudflareKv),
    /// wrangler's local KV (development and tests).
    Wrangler(WranglerKv),
}

/// The envelope of every Cloudflare API answer.
#[derive(Debug, Deserialize)]
struct CloudflareAnswer {
    success: bool,
    #[serde(default)]
    errors: Vec<CloudflareMessage>,
    #[serde(default)]
    result: Option<BulkResult>,
}

#[derive(Debug, Deserialize)]
struct CloudflareMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// What a bulk write or delete reports.
#[derive(Debug, Deserialize)]
struct BulkResult {
    #[serde(default)]
    unsuccessful_keys: Vec<String>,
}

/// How long one KV call may take before the publish counts as failed (and is retried).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl CloudflareKv {
    fn bulk_url(&self, suffix: &str) -> String {
        format!(
            "{}/accounts/{}/storage/kv/namespaces/{}/bulk{suffix}",
            self.api_base.trim_end_matches('/'),
            self.account_id,
            self.namespace_id
        )
    }

    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(), KvError> {
        let response = request
            .bearer_auth(&self.api_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("{what}: reading the answer: {e}"))?;
        let answer: CloudflareAnswer = serde_json::from_str(&body)
            .map_err(|_| format!("{what}: HTTP {status} without Cloudflare's JSON envelope"))?;
        if !status.is_success() || !answer.success {
            let errors: Vec<String> = answer
                .errors
                .iter()
                .map(|e| format!("{} ({})", e.message, e.code))
                .collect();
            return Err(format!("{what}: HTTP {status}: {}", errors.join("; ")));
        }
        let unsuccessful = answer.result.map(|r| r.unsuccessful_keys).unwrap_or_default();
        if !unsuccessful.is_empty() {
            return Err(format!("{what}: Cloudflare did not store {}", unsuccessful.join(", ")));
        }
        Ok(())
    }

    async fn put(&self, client: &reqwest::Client, entries: &[KvEntry]) -> Result<(), KvError> {
        let body = serde_json::to_vec(entries).map_err(|e| e.to_string())?;
        self.call(client.put(self.bulk_url("")).body(body), "writing KV").await
    }

    async fn delete(&self, client: &reqwest::Client, keys: &[String]) -> Result<(), KvError> {
        let body = serde_json::to_vec(keys).map_err(|e| e.to_string())?;
        self.call(client.post(self.bulk_url("/delete")).body(body), "deleting KV keys")
            .await
    }
}

impl WranglerKv {
    async fn bulk(&self, verb: &str, json: Vec<u8>) -> Result<(), KvError> {
        let file = tempfile_path(verb);
        tokio::fs::write(&file, json)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut command = tokio::process::Command::new(&self.wrangler);
        command
            .args(["kv", "bulk", verb])
            .arg(&file)
            .arg("--config")
            .arg(&self.config)
            .args(["--binding", &self.binding, "--local"])
            .env("WRANGLER_SEND_METRICS", "false")
            .kill_on_drop(true);
        if verb == "delete" {
            command.arg("--force");
        }
        if let Some(dir) = &self.persist_to {
            command.arg("--persist-to").arg(dir);
        }
        let output = tokio::time::timeout(CALL_TIMEOUT * 2, command.output()).await;
        let _ = tokio::fs::remove_file(&file).await;
        let output = output
            .map_err(|_| {
                format!(
                    "wrangler kv bulk {verb}: no answer in {} s",
                    (CALL_TIMEOUT * 2).as_secs()
                )
            })?
            .map_err(|e| format!("running {}: {e}", self.wrangler.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "wrangler kv bulk {verb} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

fn tempfile_path(verb: &str) -> PathBuf {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("cohort-kv-{verb}-{}-{n}.json", std::process::id()))
}

/// A KV target with the HTTP client it reuses.
#[derive(Debug, Clone)]
pub struct KvClient {
    target: EdgeKv,
    http: reqwest::Client,
}

impl KvClient {
    /// A client of `target`.
    pub fn new(target: EdgeKv) -> KvClient {
        KvClient {
            target,
            http: reqwest::Client::new(),
        }
    }

    /// Where it publishes, for the log.
    pub fn describe(&self) -> String {
        match &self.target {
            EdgeKv::Cloudflare(kv) => format!("Cloudflare KV namespace {} via {}", kv.namespace_id, kv.api_base),
            EdgeKv::Wrangler(kv) => format!("wrangler's local KV (binding {})", kv.binding),
        }
    }

    /// Writes `entries` in one bulk call.
    pub async fn put(&self, entries: &[KvEntry]) -> Result<(), KvError> {
        match &self.target {
            EdgeKv::Cloudflare(kv) => kv.put(&self.http, entries).await,
            EdgeKv::Wrangler(kv) => {
                kv.bulk("put", serde_json::to_vec(entries).map_err(|e| e.to_string())?)
                    .await
            }
        }
    }

    /// Deletes `keys` in one bulk call; absent keys are not an error.
    pub async fn delete(&self, keys: &[String]) -> Result<(), KvError> {
        match &self.target {
            EdgeKv::Cloudflare(kv) => kv.delete(&self.http, keys).await,
            EdgeKv::Wrangler(kv) => {
                kv.bulk("delete", serde_json::to_vec(keys).map_err(|e| e.to_string())?)
                    .await
            }
        }
    }
}
