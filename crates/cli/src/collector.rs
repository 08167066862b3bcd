//! `cohort collector`: runs the origin collector (crates/collector) until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cohort_collector::control::{
    self,
    edge_kv::{CLOUDFLARE_API_BASE, CloudflareKv, EdgeKv, WranglerKv},
};
use cohort_collector::http::DEFAULT_REQUEST_TIMEOUT;
use cohort_collector::stats::DEFAULT_SEQUENTIAL_TUNING;
use cohort_collector::{
    AppState, CollectorConfig, DEFAULT_MAX_BODY_BYTES, Dashboard, Rate, RateLimits, SrmMonitorOptions, Store,
    TenantConfigs, WriterOptions, serve, shutdown_signal, srm_monitor,
};
use cohort_core::secrets::MasterSecret;

/// Flags of `cohort collector`; each can also come from its environment variable. The master
/// secret comes only from `COHORT_SECRET` or the file `COHORT_SECRET_FILE` names, so it never
/// shows in a process listing.
#[derive(clap::Args, Debug)]
pub struct CollectorArgs {
    /// Address to listen on.
    #[arg(long, env = "COHORT_LISTEN", default_value = "127.0.0.1:8790")]
    listen: SocketAddr,
    /// Database: `sqlite://PATH` (created on first run) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "COHORT_DATABASE_URL", default_value = "sqlite://data/cohort.db")]
    database: String,
    /// Records per second each tenant may send (token bucket refill rate).
    #[arg(long, env = "COHORT_RATE_LIMIT", default_value_t = 20_000.0)]
    rate_limit: f64,
    /// Bucket size in records; default two seconds' worth of the rate.
    #[arg(long, env = "COHORT_RATE_BURST")]
    rate_burst: Option<f64>,
    /// Per-tenant rate override, `TENANT=RECORDS_PER_SECOND` (burst: two seconds' worth).
    /// Repeatable; comma-separated in the environment variable.
    #[arg(
        long = "tenant-rate-limit",
        value_name = "TENANT=RATE",
        env = "COHORT_TENANT_RATE_LIMITS",
        value_delimiter = ','
    )]
    tenant_rate_limits: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, env = "COHORT_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// A tenant config (JSON, as published to KV): experiment names, status, expected splits and
    /// controls for results. Repeatable, one per tenant; comma-separated in the environment.
    #[arg(
        long = "tenant-config",
        value_name = "FILE",
        env = "COHORT_TENANT_CONFIGS",
        value_delimiter = ','
    )]
    tenant_configs: Vec<PathBuf>,
    /// Serve the results dashboard at /dashboard/ from this directory instead of the copy built
    /// into the binary: for working on www/dashboard without rebuilding.
    #[arg(
        long,
        value_name = "DIR",
        env = "COHORT_DASHBOARD_DIR",
        conflicts_with = "no_dashboard"
    )]
    dashboard_dir: Option<PathBuf>,
    /// Serve no dashboard (the API alone).
    #[arg(long, env = "COHORT_NO_DASHBOARD")]
    no_dashboard: bool,
    /// Seconds between scheduled sample-ratio checks of every experiment (exported as
    /// `cohort_srm_*` on /metrics, whether or not anyone reads results).
    #[arg(long, env = "COHORT_SRM_INTERVAL_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    srm_interval_seconds: u64,
    /// Newly stored exposures since the last sample-ratio check that start the next check early.
    #[arg(long, env = "COHORT_SRM_BURST_RECORDS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    srm_burst_records: u64,
    /// Seconds a request may take before it is answered 503 (the edge retries it; a batch that
    /// committed meanwhile is recognised as a duplicate).
    #[arg(long, env = "COHORT_REQUEST_TIMEOUT_SECONDS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_seconds: u64,
    /// Tuning of the sequential (always-valid) intervals: the total number of units, over both
    /// arms, at which they are narrowest. Choose it before experiments run, near their expected
    /// size; changing it afterwards to get a different answer defeats the guarantee.
    #[arg(long, value_name = "UNITS", env = "COHORT_SEQUENTIAL_TUNING", default_value_t = DEFAULT_SEQUENTIAL_TUNING)]
    sequential_tuning: f64,
    /// Publish config versions to this Cloudflare account's KV through the REST API (with
    /// --kv-namespace-id; the API token comes only from `CLOUDFLARE_API_TOKEN`).
    #[arg(long, value_name = "ID", env = "CLOUDFLARE_ACCOUNT_ID", requires = "kv_namespace_id")]
    kv_account_id: Option<String>,
    /// The KV namespace bound to the edge worker as `CONFIG`.
    #[arg(long, value_name = "ID", env = "COHORT_KV_NAMESPACE_ID", requires = "kv_account_id")]
    kv_namespace_id: Option<String>,
    /// Root of Cloudflare's API (a local stand-in in tests).
    #[arg(long, value_name = "URL", env = "COHORT_KV_API_BASE", default_value = CLOUDFLARE_API_BASE)]
    kv_api_base: String,
    /// Publish config versions to wrangler's local KV instead (development): the edge worker's
    /// wrangler.toml.
    #[arg(
        long,
        value_name = "FILE",
        env = "COHORT_KV_WRANGLER_CONFIG",
        conflicts_with = "kv_account_id"
    )]
    kv_wrangler_config: Option<PathBuf>,
    /// With --kv-wrangler-config: wrangler's local state directory (its `--persist-to`).
    #[arg(
        long,
        value_name = "DIR",
        env = "COHORT_KV_PERSIST_TO",
        requires = "kv_wrangler_config"
    )]
    kv_persist_to: Option<PathBuf>,
    /// With --kv-wrangler-config: the KV binding.
    #[arg(long, value_name = "NAME", env = "COHORT_KV_BINDING", default_value = "CONFIG")]
    kv_binding: String,
    /// With --kv-wrangler-config: the wrangler executable.
    #[arg(long, env = "COHORT_WRANGLER", default_value = "node_modules/.bin/wrangler")]
    wrangler: PathBuf,
    /// Log lines as `text` (key=value) or `json` (one object per line, for log pipelines).
    #[arg(long, env = "COHORT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds between retries of config versions whose publish failed.
    #[arg(long, env = "COHORT_PUBLISH_RETRY_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    publish_retry_seconds: u64,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// `key=value` text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The token `/metrics` asks for: `COHORT_METRICS_TOKEN`, never a flag; unset leaves `/metrics`
/// open (for a collector whose port only the scraper reaches).
fn metrics_token() -> Result<Option<String>, String> {
    match std::env::var("COHORT_METRICS_TOKEN") {
        Err(_) => Ok(None),
        Ok(token) if token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(token)),
        Ok(_) => Err("COHORT_METRICS_TOKEN: expected at least 16 printable ASCII characters, no spaces".into()),
    }
}

/// Where config versions are published, from the KV flags.
fn edge_kv(args: &CollectorArgs) -> Result<Option<EdgeKv>, String> {
    if let (Some(account_id), Some(namespace_id)) = (&args.kv_account_id, &args.kv_namespace_id) {
        let api_token = std::env::var("CLOUDFLARE_API_TOKEN")
            .map_err(|_| "--kv-account-id: CLOUDFLARE_API_TOKEN is not set (a token with Workers KV Storage: Edit)")?;
        let id_ok = |id: &str| !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok(account_id) || !id_ok(namespace_id) {
            return Err(
                "--kv-account-id, --kv-namespace-id: expected Cloudflare ids (1 to 32 letters and digits)".into(),
            );
        }
        if !(args.kv_api_base.starts_with("https://") || args.kv_api_base.starts_with("http://")) {
            return Err(format!("--kv-api-base {}: expected an http(s) URL", args.kv_api_base));
        }
        return Ok(Some(EdgeKv::Cloudflare(CloudflareKv {
            api_base: args.kv_api_base.clone(),
            account_id: account_id.clone(),
            namespace_id: namespace_id.clone(),
            api_token,
        })));
    }
    let Some(config) = &args.kv_wrangler_config else {
        return Ok(None);
    };
    if !config.is_file() {
        return Err(format!("--kv-wrangler-config {}: no such file", config.display()));
    }
    Ok(Some(EdgeKv::Wrangler(WranglerKv {
        wrangler: args.wrangler.clone(),
        config: config.clone(),
        binding: args.kv_binding.clone(),
        persist_to: args.kv_persist_to.clone(),
    })))
}

fn sequential_tuning(units: f64) -> Result<f64, String> {
    if units.is_finite() && (10.0..=1e12).contains(&units) {
        Ok(units)
    } else {
        Err(format!(
            "--sequential-tuning: {units} is not a number of units between 10 and 1e12"
        ))
    }
}

/// Reads and validates every `--tenant-config`; the first invalid one stops startup with
/// `file: json.path: reason`.
fn tenant_configs(files: &[PathBuf]) -> Result<TenantConfigs, String> {
    let mut configs = TenantConfigs::default();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        configs
            .insert_json(&text)
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(configs)
}

/// The dashboard directory, resolved once so every served path can be checked against it.
fn dashboard_dir(dir: &Path) -> Result<PathBuf, String> {
    let canonical = dir
        .canonicalize()
        .map_err(|e| format!("--dashboard-dir {}: {e}", dir.display()))?;
    if !canonical.join("index.html").is_file() {
        return Err(format!(
            "--dashboard-dir {}: no index.html (the dashboard's files are in www/dashboard)",
            dir.display()
        ));
    }
    Ok(canonical)
}

fn rate_limits(args: &CollectorArgs) -> Result<RateLimits, String> {
    let positive = |flag: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(format!(
                "{flag} {value}: expected a positive number of records per second"
            ))
        }
    };
    let mut limits = RateLimits::uniform(positive("--rate-limit", args.rate_limit)?);
    if let Some(burst) = args.rate_burst {
        limits.default.burst = positive("--rate-burst", burst)?;
    }
    for pair in &args.tenant_rate_limits {
        let (tenant, rate) = pair
            .split_once('=')
            .ok_or_else(|| format!("--tenant-rate-limit `{pair}`: expected TENANT=RATE"))?;
        let rate = rate
            .parse()
            .map_err(|_| format!("--tenant-rate-limit `{pair}`: `{rate}` is not a number"))?;
        let records_per_second = positive("--tenant-rate-limit", rate)?;
        limits.per_tenant.insert(
            tenant.to_owned(),
            Rate {
                records_per_second,
                burst: records_per_second * 2.0,
            },
        );
    }
    Ok(limits)
}

/// The platform secret: `COHORT_SECRET`, or the file `COHORT_SECRET_FILE` names (a mounted
/// secret, as container platforms and systemd's credentials provide; one trailing newline is
/// dropped). Never a flag, so it never shows in a process listing.
fn master_secret() -> Result<String, String> {
    match (std::env::var("COHORT_SECRET"), std::env::var_os("COHORT_SECRET_FILE")) {
        (Ok(_), Some(_)) => Err("set COHORT_SECRET or COHORT_SECRET_FILE, not both".into()),
        (Ok(secret), None) => Ok(secret),
        (Err(_), Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("COHORT_SECRET_FILE {}: {e}", Path::new(&path).display()))?;
            let secret = text.strip_suffix('\n').unwrap_or(&text);
            Ok(secret.strip_suffix('\r').unwrap_or(secret).to_owned())
        }
        (Err(_), None) => Err("COHORT_SECRET is not set (the platform master secret; or COHORT_SECRET_FILE)".into()),
    }
}

/// Runs the collector until a shutdown signal, then drains in-flight requests.
pub fn run(args: &CollectorArgs) -> Result<ExitCode, String> {
    let secret = MasterSecret::new(master_secret()?).map_err(|e| e.to_string())?;
    let config = CollectorConfig {
        secret,
        max_body_bytes: args.max_body_bytes,
        rate_limits: rate_limits(args)?,
        tenant_configs: tenant_configs(&args.tenant_configs)?,
        edge_kv: edge_kv(args)?,
        metrics_token: metrics_token()?,
        dashboard: match (&args.dashboard_dir, args.no_dashboard) {
            (_, true) => Dashboard::Off,
            (Some(dir), false) => Dashboard::Directory(dashboard_dir(dir)?),
            (None, false) => Dashboard::Embedded,
        },
        sequential_tuning: sequential_tuning(args.sequential_tuning)?,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(async {
        let store = Store::open(&args.database, WriterOptions::default())
            .await
            .map_err(|e| format!("--database {}: {e}", args.database))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let state = AppState::new(config, store);
        let imported = control::import_configs(&state)
            .await
            .map_err(|e| format!("--tenant-config: {e}"))?;
        tracing::info!(
            %address,
            backend = ?state.store.backend(),
            tenant_configs_imported = imported,
            publishing = state.publisher.enabled(),
            dashboard = state.config.dashboard != Dashboard::Off,
            "collector listening"
        );
        let publish_retries = state
            .publisher
            .enabled()
            .then(|| control::spawn_publish_retries(state.clone(), Duration::from_secs(args.publish_retry_seconds)));
        let monitor = srm_monitor::spawn(
            state.clone(),
            SrmMonitorOptions {
                interval: Duration::from_secs(args.srm_interval_seconds),
                burst_records: args.srm_burst_records,
            },
        );
        let served = serve(listener, state, shutdown_signal()).await;
        monitor.abort();
        if let Some(retries) = publish_retries {
            retries.abort();
        }
        served.map_err(|e| format!("serving: {e}"))?;
        tracing::info!("collector stopped");
        Ok(ExitCode::SUCCESS)
    })
}
