//! `cohort-loadgen`: simulated visitors through a running edge worker. A test and demo tool, kept
//! out of the `cohort` binary that operators deploy.
//!
//! Each visitor is a browser with a cookie jar: it views the configured pages (getting its sticky
//! cookie on the first), asks `/_cohort/assignments` which variants it has, sometimes comes back
//! and checks that those variants held, and converts with a probability that a planted effect
//! can raise for one variant, posting the conversion to `/_cohort/track`. The visitor's choices
//! come from a per-visitor seeded generator, so a run is reproducible apart from the unit ids the
//! edge mints. The summary is the ground truth the collector's results should recover; given the
//! tenant's config, it also counts each visitor's tenant-holdout membership (`_holdout`), which the
//! edge records once per new unit.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cohort_core::Tenant;
use cohort_core::exposure::HOLDOUT_EXPERIMENT;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, USER_AGENT};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use clap::Parser;
use cohort_core::simulation::SplitMix64;

/// Drive simulated visitors through a running edge: pages with cookies, returning visits that must
/// keep their variants, conversions with a planted effect; prints the ground truth.
#[derive(Parser)]
#[command(name = "cohort-loadgen", version)]
struct LoadgenArgs {
    /// The edge worker's base URL, e.g. `http://127.0.0.1:8787` (plain HTTP on a local edge).
    #[arg(long)]
    edge: String,
    /// The site's hostname, sent as `Host` (a hostname of a published tenant, e.g. `shop.localhost`).
    #[arg(long)]
    host: String,
    /// How many visitors to simulate.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    visitors: u64,
    /// Visitors in flight at once (one keep-alive connection each).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// A page each visitor views, in order; the first is also where returning visitors land.
    /// Repeatable; default `/`.
    #[arg(long = "page", value_name = "PATH")]
    pages: Vec<String>,
    /// Metric the conversions count (posted to `/_cohort/track`).
    #[arg(long, default_value = "purchase")]
    metric: String,
    /// Probability that a visitor converts, before planted effects.
    #[arg(long, default_value_t = 0.1)]
    conversion_rate: f64,
    /// Planted effect `EXPERIMENT=VARIANT:FACTOR`: visitors in that variant convert FACTOR times
    /// as often (`hero-banner=free-shipping:1.5`). Repeatable.
    #[arg(long = "effect", value_name = "EXPERIMENT=VARIANT:FACTOR")]
    effects: Vec<String>,
    /// Mean conversion value (an order's amount), drawn uniformly from 0.5× to 1.5× the mean;
    /// 0 sends conversions without a value.
    #[arg(long, default_value_t = 0.0)]
    value: f64,
    /// Share of visitors who come back once with their cookie; their variants must not change.
    #[arg(long, default_value_t = 0.2)]
    returning: f64,
    /// `Accept-Language` the visitors send (targeting may use it).
    #[arg(long, default_value = "en-US,en;q=0.9")]
    language: String,
    /// The tenant config the edge serves for `--host`. With it, each visitor's tenant-holdout
    /// membership counts as experiment `_holdout` (variants `holdout` and `rest`), as the edge
    /// records it once per new unit, and `--effect _holdout=rest:FACTOR` plants an effect of the
    /// experiments as a whole.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seed of the visitors' choices (returning, converting, order values).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

/// Browsers the visitors pretend to be: the edge leaves bots out of experiments, so these must
/// look like people (desktop and mobile, so device targeting sees both).
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
];

/// Failed requests listed in the summary; the rest are only counted.
const LISTED_FAILURES: usize = 5;

/// A planted effect on conversion probability.
#[derive(Debug, Clone, PartialEq)]
struct Effect {
    experiment: String,
    variant: String,
    factor: f64,
}

/// Everything a visitor needs, validated once.
struct Scenario {
    address: SocketAddr,
    host: String,
    pages: Vec<String>,
    metric: String,
    conversion_rate: f64,
    effects: Vec<Effect>,
    value: f64,
    returning: f64,
    language: String,
    seed: u64,
    /// The tenant's config, when given: the holdout membership of each visitor's unit.
    tenant: Option<Tenant>,
}

fn parse_probability(flag: &str, value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{flag} {value}: expected a probability from 0 to 1"))
    }
}

fn parse_effect(text: &str) -> Result<Effect, String> {
    let problem = |what: &str| format!("--effect `{text}`: {what}; expected EXPERIMENT=VARIANT:FACTOR");
    let (experiment, rest) = text.split_once('=').ok_or_else(|| problem("no `=`"))?;
    let (variant, factor) = rest.rsplit_once(':').ok_or_else(|| problem("no `:FACTOR`"))?;
    if experiment.is_empty() || variant.is_empty() {
        return Err(problem("empty experiment or variant"));
    }
    let factor: f64 = factor
        .parse()
        .map_err(|_| problem(&format!("factor `{factor}` is not a number")))?;
    if !factor.is_finite() || factor < 0.0 {
        return Err(problem(&format!("factor {factor} must be a finite number ≥ 0")));
    }
    Ok(Effect {
        experiment: experiment.to_owned(),
        variant: variant.to_owned(),
        factor,
    })
}

/// `http://HOST:PORT` (optionally with a trailing `/`) → the address to connect to.
async fn resolve_edge(edge: &str) -> Result<SocketAddr, String> {
    let authority = edge
        .strip_prefix("http://")
        .ok_or_else(|| format!("--edge `{edge}`: expected http://HOST:PORT (a local edge speaks plain HTTP)"))?
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!("--edge `{edge}`: expected http://HOST:PORT with no path"));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("--edge `{edge}`: cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("--edge `{edge}`: resolves to no address"))
}

fn check_host(host: &str) -> Result<(), String> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("--host `{host}`: expected a hostname such as shop.localhost"))
    }
}

impl Scenario {
    async fn from_args(args: &LoadgenArgs) -> Result<Scenario, String> {
        check_host(&args.host)?;
        let pages = if args.pages.is_empty() {
            vec!["/".to_owned()]
        } else {
            args.pages.clone()
        };
        for page in &pages {
            if !page.starts_with('/') || page.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                return Err(format!(
                    "--page `{page}`: expected a path starting with `/`, without spaces"
                ));
            }
        }
        // The edge validates conversions the same way; checking here fails before any traffic.
        let probe = cohort_core::Conversion {
            id: "loadgen".into(),
            tenant: "loadgen".into(),
            unit: "loadgen".into(),
            metric: args.metric.clone(),
            value: None,
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        probe
            .validate()
            .map_err(|e| format!("--metric `{}`: {}", args.metric, e.reason))?;
        if !args.value.is_finite() || args.value < 0.0 {
            return Err(format!("--value {}: expected a finite amount ≥ 0", args.value));
        }
        if args.language.bytes().any(|b| b.is_ascii_control()) {
            return Err("--language: control characters are not allowed".into());
        }
        let tenant = match &args.config {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Some(Tenant::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        if let Some(tenant) = &tenant
            && !tenant.hostnames.contains(&args.host)
        {
            return Err(format!(
                "--host `{}` is not a hostname of tenant `{}` in --config (it serves {})",
                args.host,
                tenant.id,
                tenant.hostnames.join(", ")
            ));
        }
        Ok(Scenario {
            address: resolve_edge(&args.edge).await?,
            host: args.host.clone(),
            pages,
            metric: args.metric.clone(),
            conversion_rate: parse_probability("--conversion-rate", args.conversion_rate)?,
            effects: args.effects.iter().map(|e| parse_effect(e)).collect::<Result<_, _>>()?,
            value: args.value,
            returning: parse_probability("--returning", args.returning)?,
            language: args.language.clone(),
            seed: args.seed,
            tenant,
        })
    }

    /// How much more often a visitor with these assignments converts.
    fn conversion_factor(&self, assignments: &BTreeMap<String, String>) -> f64 {
        self.effects
            .iter()
            .filter(|e| assignments.get(&e.experiment) == Some(&e.variant))
            .map(|e| e.factor)
            .product()
    }
}

/// One keep-alive HTTP/1.1 connection to the edge, reopened when the edge closes it.
struct EdgeConnection {
    address: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A response, read whole.
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl EdgeConnection {
    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.address)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.address))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {}: {e}", self.address))?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("opened above");
        if sender.ready().await.is_err() {
            self.sender = None;
            return Err(format!("{} closed the connection", self.address));
        }
        Ok(self.sender.as_mut().expect("ready above"))
    }

    /// Sends one request; a keep-alive connection the edge closed in the meantime is reopened
    /// once (track events carry ids, so even a repeated POST counts once).
    async fn send(&mut self, build: impl Fn() -> Request<Full<Bytes>>) -> Result<Fetched, String> {
        let mut last_error = String::new();
        for _ in 0..2 {
            let sender = match self.open().await {
                Ok(sender) => sender,
                Err(error) => {
                    last_error = error;
                    continue;
                }
            };
            match sender.send_request(build()).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| format!("reading the response body: {e}"))?
                        .to_bytes();
                    return Ok(Fetched {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                Err(error) => {
                    self.sender = None;
                    last_error = error.to_string();
                }
            }
        }
        Err(last_error)
    }
}

/// A visitor's cookies for the site (one host, so no domain or path matching is needed).
#[derive(Default)]
struct CookieJar(BTreeMap<String, String>);

impl CookieJar {
    fn absorb(&mut self, headers: &HeaderMap) {
        for header in headers.get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut attributes = text.split(';');
            let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let expired = attributes.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// What one visitor saw.
#[derive(Default)]
struct VisitOutcome {
    assignments: BTreeMap<String, String>,
    converted: bool,
    returned: bool,
    sticky_violation: Option<String>,
    requests: u64,
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

struct Visit<'a> {
    scenario: &'a Scenario,
    connection: &'a mut EdgeConnection,
    jar: CookieJar,
    user_agent: &'static str,
    outcome: VisitOutcome,
}

impl Visit<'_> {
    /// One request with the visitor's headers and cookies; `Err` (already recorded) when it failed
    /// or did not answer `expected`.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: fn(StatusCode) -> bool,
    ) -> Result<Fetched, ()> {
        let cookie = self.jar.header();
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let build = || {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(HOST, &self.scenario.host)
                .header(USER_AGENT, self.user_agent)
                .header(ACCEPT_LANGUAGE, &self.scenario.language)
                .header(
                    ACCEPT,
                    if method == Method::GET {
                        "text/html,*/*"
                    } else {
                        "application/json"
                    },
                );
            if let Some(cookie) = &cookie {
                request = request.header(COOKIE, cookie);
            }
            if method == Method::POST {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            request.body(Full::new(body.clone())).expect("headers were validated")
        };
        let started = Instant::now();
        let answer = self.connection.send(build).await;
        self.outcome.requests += 1;
        self.outcome.latencies.push(started.elapsed());
        match answer {
            Ok(answer) if expected(answer.status) => {
                self.jar.absorb(&answer.headers);
                Ok(answer)
            }
            Ok(answer) => {
                let hint = if path.starts_with("/_cohort/") && answer.status == StatusCode::NOT_FOUND {
                    format!(
                        " (is `{}` a hostname of a tenant published to the edge's KV?)",
                        self.scenario.host
                    )
                } else {
                    String::new()
                };
                self.outcome
                    .failures
                    .push(format!("{method} {path}: answered {}{hint}", answer.status));
                Err(())
            }
            Err(error) => {
                self.outcome.failures.push(format!("{method} {path}: {error}"));
                Err(())
            }
        }
    }

    /// The visitor's variants on `page`, from `/_cohort/assignments?path=page`.
    async fn assignments_on(&mut self, page: &str) -> Result<(String, BTreeMap<String, String>), ()> {
        let endpoint = format!("/_cohort/assignments?path={}", query_encode(page));
        let answer = self
            .request(Method::GET, &endpoint, None, |s| s == StatusCode::OK)
            .await?;
        let parsed: Result<(String, BTreeMap<String, String>), String> = (|| {
            let document: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
            let unit = document["unit"].as_str().ok_or("no `unit`")?.to_owned();
            let assignments = serde_json::from_value(document["assignments"].clone()).map_err(|e| e.to_string())?;
            Ok((unit, assignments))
        })();
        parsed.map_err(|reason| {
            self.outcome
                .failures
                .push(format!("GET {endpoint}: unexpected body ({reason})"));
        })
    }

    /// The visitor's unit and its variants on every page of the scenario (experiments are scoped
    /// by path, so one page does not show them all).
    async fn assignments(&mut self) -> Result<(String, BTreeMap<String, String>), ()> {
        let mut unit: Option<String> = None;
        let mut all = BTreeMap::new();
        for page in &self.scenario.pages {
            let (page_unit, assignments) = self.assignments_on(page).await?;
            if unit.as_ref().is_some_and(|u| *u != page_unit) {
                self.outcome.failures.push(format!(
                    "GET /_cohort/assignments: unit changed from {} to {page_unit} within one visit",
                    unit.unwrap_or_default()
                ));
                return Err(());
            }
            unit = Some(page_unit);
            all.extend(assignments);
        }
        Ok((unit.unwrap_or_default(), all))
    }

    async fn run(mut self, index: u64) -> VisitOutcome {
        let scenario = self.scenario;
        // Per-visitor stream: the same seed and index make the same choices in any schedule.
        let mut rng = SplitMix64(scenario.seed ^ index.wrapping_mul(0xa076_1d64_78bd_642f));
        for page in &scenario.pages {
            if self.request(Method::GET, page, None, is_page_status).await.is_err() {
                return self.outcome;
            }
        }
        let Ok((unit, mut assignments)) = self.assignments().await else {
            return self.outcome;
        };
        if rng.next_f64() < scenario.returning {
            self.outcome.returned = true;
            if self
                .request(Method::GET, &scenario.pages[0], None, is_page_status)
                .await
                .is_err()
            {
                return self.outcome;
            }
            let Ok((unit_again, again)) = self.assignments().await else {
                return self.outcome;
            };
            let moved: Vec<String> = assignments
                .iter()
                .filter(|(experiment, variant)| again.get(*experiment) != Some(*variant))
                .map(|(experiment, variant)| {
                    format!(
                        "{experiment}: {variant} → {}",
                        again.get(experiment).map_or("none", |v| v)
                    )
                })
                .collect();
            if unit_again != unit || !moved.is_empty() {
                self.outcome.sticky_violation =
                    Some(format!("unit {unit} came back as {unit_again}; {}", moved.join(", ")));
            }
        }
        // Counted after the stickiness check: membership is no variant the edge reports.
        if let Some(variant) = scenario.tenant.as_ref().and_then(|t| t.holdout_variant(&unit)) {
            assignments.insert(HOLDOUT_EXPERIMENT.to_owned(), variant.to_owned());
        }
        let probability = (scenario.conversion_rate * scenario.conversion_factor(&assignments)).min(1.0);
        if rng.next_f64() < probability {
            let mut event = json!({ "metric": scenario.metric, "id": format!("loadgen-{}-{index}", scenario.seed) });
            if scenario.value > 0.0 {
                let amount = scenario.value * (0.5 + rng.next_f64());
                event["value"] = json!((amount * 100.0).round() / 100.0);
            }
            if self
                .request(Method::POST, "/_cohort/track", Some(&event), |s| {
                    s == StatusCode::ACCEPTED
                })
                .await
                .is_ok()
            {
                self.outcome.converted = true;
            }
        }
        self.outcome.assignments = assignments;
        self.outcome
    }
}

/// Percent-encodes a path for a query value (everything but unreserved characters and `/`).
fn query_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn is_page_status(status: StatusCode) -> bool {
    status.is_success() || status.is_redirection()
}

/// Visitors and conversions of one variant, as the visitors saw them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct VariantTally {
    visitors: u64,
    conversions: u64,
}

/// The run's ground truth and health.
#[derive(Default)]
struct Tally {
    visitors: u64,
    unassigned: u64,
    conversions: u64,
    returning: u64,
    requests: u64,
    failed_visitors: u64,
    failures: Vec<String>,
    sticky_violations: Vec<String>,
    latencies: Vec<Duration>,
    experiments: BTreeMap<String, BTreeMap<String, VariantTally>>,
}

impl Tally {
    fn record(&mut self, outcome: VisitOutcome) {
        self.visitors += 1;
        self.requests += outcome.requests;
        self.latencies.extend(outcome.latencies);
        if !outcome.failures.is_empty() {
            self.failed_visitors += 1;
            let room = LISTED_FAILURES.saturating_sub(self.failures.len());
            self.failures.extend(outcome.failures.into_iter().take(room));
            return;
        }
        self.returning += u64::from(outcome.returned);
        self.conversions += u64::from(outcome.converted);
        if let Some(violation) = outcome.sticky_violation {
            self.sticky_violations.push(violation);
        }
        if outcome
            .assignments
            .keys()
            .all(|experiment| experiment == HOLDOUT_EXPERIMENT)
        {
            self.unassigned += 1;
        }
        for (experiment, variant) in outcome.assignments {
            let tally = self
                .experiments
                .entry(experiment)
                .or_default()
                .entry(variant)
                .or_default();
            tally.visitors += 1;
            tally.conversions += u64::from(outcome.converted);
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn milliseconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e5).round() / 100.0
}

/// Prints progress to stderr about once a second until `done` reaches `total`.
async fn report_progress(host: String, total: u64, done: Arc<AtomicU64>, tally: Arc<Mutex<Tally>>) {
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_line = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let finished = done.load(Ordering::Relaxed);
        // A log (not a terminal) gets a line every 5 s instead of a line rewritten in place.
        if !terminal && last_line.elapsed() < Duration::from_secs(5) && finished < total {
            continue;
        }
        last_line = Instant::now();
        let (requests, conversions, failed) = {
            let tally = tally.lock().expect("tally lock");
            (tally.requests, tally.conversions, tally.failed_visitors)
        };
        let rate = requests as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "loadgen {host}: {finished}/{total} visitors · {rate:.0} req/s · {conversions} conversions · {failed} failed"
        );
        if terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        if finished >= total {
            if terminal {
                eprintln!();
            }
            return;
        }
    }
}

fn main() -> ExitCode {
    let args = LoadgenArgs::parse();
    match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cohort-loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &LoadgenArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &LoadgenArgs) -> Result<ExitCode, String> {
    let scenario = Arc::new(Scenario::from_args(args).await?);
    let next_visitor = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(
        scenario.host.clone(),
        args.visitors,
        done.clone(),
        tally.clone(),
    ));
    let workers: Vec<_> = (0..args.concurrency.min(args.visitors))
        .map(|_| {
            let (scenario, next_visitor, done, tally) =
                (scenario.clone(), next_visitor.clone(), done.clone(), tally.clone());
            let total = args.visitors;
            tokio::spawn(async move {
                let mut connection = EdgeConnection {
                    address: scenario.address,
                    sender: None,
                };
                loop {
                    let index = next_visitor.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        return;
                    }
                    let visit = Visit {
                        scenario: &scenario,
                        connection: &mut connection,
                        jar: CookieJar::default(),
                        user_agent: USER_AGENTS[(index % USER_AGENTS.len() as u64) as usize],
                        outcome: VisitOutcome::default(),
                    };
                    let outcome = visit.run(index).await;
                    tally.lock().expect("tally lock").record(outcome);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| format!("a visitor task failed: {e}"))?;
    }
    let elapsed = started.elapsed();
    progress.await.map_err(|e| format!("the progress task failed: {e}"))?;
    let mut tally = std::mem::take(&mut *tally.lock().expect("tally lock"));
    tally.latencies.sort_unstable();
    let summary = summarize(&scenario, &tally, elapsed);
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        summary.to_string()
    } else {
        render(&scenario, &tally, &summary)
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    let healthy = tally.failed_visitors == 0 && tally.sticky_violations.is_empty();
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn summarize(scenario: &Scenario, tally: &Tally, elapsed: Duration) -> Value {
    let experiments: serde_json::Map<String, Value> = tally
        .experiments
        .iter()
        .map(|(experiment, variants)| {
            let variants: serde_json::Map<String, Value> = variants
                .iter()
                .map(|(variant, t)| {
                    let factor = scenario.conversion_factor(&BTreeMap::from([(experiment.clone(), variant.clone())]));
                    (
                        variant.clone(),
                        json!({ "visitors": t.visitors, "conversions": t.conversions, "planted_factor": factor }),
                    )
                })
                .collect();
            (experiment.clone(), Value::Object(variants))
        })
        .collect();
    json!({
        "host": scenario.host,
        "metric": scenario.metric,
        "visitors": tally.visitors,
        "failed_visitors": tally.failed_visitors,
        "failures": tally.failures,
        "returning_visitors": tally.returning,
        "sticky_violations": tally.sticky_violations,
        "unassigned_visitors": tally.unassigned,
        "conversions": tally.conversions,
        "requests": tally.requests,
        "elapsed_seconds": (elapsed.as_secs_f64() * 100.0).round() / 100.0,
        "requests_per_second": (tally.requests as f64 / elapsed.as_secs_f64().max(1e-3)).round(),
        "latency_ms": {
            "p50": milliseconds(percentile(&tally.latencies, 0.50)),
            "p99": milliseconds(percentile(&tally.latencies, 0.99)),
        },
        "experiments": experiments,
    })
}

fn render(scenario: &Scenario, tally: &Tally, summary: &Value) -> String {
    let mut lines = vec![format!(
        "loadgen {}: {} visitors, {} requests in {} s ({} req/s), latency p50 {} ms, p99 {} ms",
        scenario.host,
        tally.visitors,
        tally.requests,
        summary["elapsed_seconds"],
        summary["requests_per_second"],
        summary["latency_ms"]["p50"],
        summary["latency_ms"]["p99"],
    )];
    lines.push(format!(
        "  {} conversions · {} returning visitors, {} changed variant · {} visitors in no experiment",
        tally.conversions,
        tally.returning,
        tally.sticky_violations.len(),
        tally.unassigned
    ));
    for (experiment, variants) in &tally.experiments {
        lines.push(format!("  {experiment}"));
        for (variant, t) in variants {
            let rate = if t.visitors == 0 {
                0.0
            } else {
                100.0 * t.conversions as f64 / t.visitors as f64
            };
            let factor = scenario.conversion_factor(&BTreeMap::from([(experiment.clone(), variant.clone())]));
            let planted = if factor == 1.0 {
                String::new()
            } else {
                format!("  (planted ×{factor})")
            };
            lines.push(format!(
                "    {variant:<24} {:>8} visitors {:>7} converted {rate:>6.2}%{planted}",
                t.visitors, t.conversions
            ));
        }
    }
    if tally.failed_visitors > 0 {
        lines.push(format!(
            "  FAILED: {} visitors hit a failing request:",
            tally.failed_visitors
        ));
        lines.extend(tally.failures.iter().map(|f| format!("    {f}")));
    }
    for violation in tally.sticky_violations.iter().take(LISTED_FAILURES) {
        lines.push(format!("  STICKINESS BROKEN: {violation}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_parse_and_explain_mistakes() {
        assert_eq!(
            parse_effect("hero-banner=free-shipping:1.5").unwrap(),
            Effect {
                experiment: "hero-banner".into(),
                variant: "free-shipping".into(),
                factor: 1.5
            }
        );
        assert!(parse_effect("hero-banner:1.5").unwrap_err().contains("no `=`"));
        assert!(parse_effect("hero=x").unwrap_err().contains("no `:FACTOR`"));
        assert!(parse_effect("hero=x:fast").unwrap_err().contains("not a number"));
        assert!(parse_effect("hero=x:-1").unwrap_err().contains("≥ 0"));
        assert!(parse_effect("=x:2").unwrap_err().contains("empty"));
    }

    #[test]
    fn the_cookie_jar_keeps_the_latest_value_and_forgets_expired_cookies() {
        let mut jar = CookieJar::default();
        let mut headers = HeaderMap::new();
        headers.append(
            SET_COOKIE,
            "__Host-cohort=abc; Max-Age=34560000; Path=/; Secure".parse().unwrap(),
        );
        headers.append(SET_COOKIE, "theme=dark".parse().unwrap());
        jar.absorb(&headers);
        assert_eq!(jar.header().unwrap(), "__Host-cohort=abc; theme=dark");
        let mut later = HeaderMap::new();
        later.append(SET_COOKIE, "__Host-cohort=def; Path=/".parse().unwrap());
        later.append(SET_COOKIE, "theme=; Max-Age=0".parse().unwrap());
        jar.absorb(&later);
        assert_eq!(jar.header().unwrap(), "__Host-cohort=def");
    }

    #[test]
    fn planted_effects_multiply_for_matching_assignments_only() {
        let scenario = Scenario {
            address: "127.0.0.1:1".parse().unwrap(),
            host: "shop.localhost".into(),
            pages: vec!["/".into()],
            metric: "purchase".into(),
            conversion_rate: 0.1,
            effects: vec![parse_effect("a=x:1.5").unwrap(), parse_effect("b=y:2").unwrap()],
            value: 0.0,
            returning: 0.0,
            language: "en".into(),
            seed: 1,
            tenant: None,
        };
        let both = BTreeMap::from([("a".to_owned(), "x".to_owned()), ("b".to_owned(), "y".to_owned())]);
        assert_eq!(scenario.conversion_factor(&both), 3.0);
        let other = BTreeMap::from([("a".to_owned(), "control".to_owned())]);
        assert_eq!(scenario.conversion_factor(&other), 1.0);
    }

    #[test]
    fn holdout_membership_alone_leaves_a_visitor_unassigned() {
        let mut tally = Tally::default();
        let visitor = |pairs: &[(&str, &str)]| VisitOutcome {
            assignments: pairs.iter().map(|&(e, v)| (e.to_owned(), v.to_owned())).collect(),
            ..VisitOutcome::default()
        };
        tally.record(visitor(&[("_holdout", "holdout")]));
        tally.record(visitor(&[("_holdout", "rest"), ("hero-banner", "control")]));
        tally.record(visitor(&[]));
        assert_eq!(tally.unassigned, 2);
        assert_eq!(tally.experiments["_holdout"]["holdout"].visitors, 1);
        assert_eq!(tally.experiments["_holdout"]["rest"].visitors, 1);
    }

    #[test]
    fn page_paths_are_encoded_for_the_query() {
        assert_eq!(
            query_encode("/politics/2026/11/budget-vote"),
            "/politics/2026/11/budget-vote"
        );
        assert_eq!(query_encode("/search?q=a b&x"), "/search%3Fq%3Da%20b%26x");
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn edge_urls_must_be_plain_http_without_a_path() {
        assert_eq!(
            resolve_edge("http://127.0.0.1:8787/").await.unwrap(),
            "127.0.0.1:8787".parse().unwrap()
        );
        assert!(
            resolve_edge("https://127.0.0.1:8787")
                .await
                .unwrap_err()
                .contains("plain HTTP")
        );
        assert!(
            resolve_edge("http://127.0.0.1:8787/x")
                .await
                .unwrap_err()
                .contains("no path")
        );
        assert!(check_host("shop.localhost").is_ok());
        assert!(check_host("shop..localhost").is_err());
        assert!(check_host("shop.localhost/x").is_err());
    }
}
