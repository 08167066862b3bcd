//! The compiled tenant: a validated config in the form evaluation uses, built once per KV read.

use std::collections::HashMap;
use std::fmt;

use crate::bucket::{self, BUCKETS, BucketRange, HashKey};
use crate::condition::{AttributeSlots, Condition};
use crate::config::{Action, EdgeConfig, ExperimentConfig, HashMode, SUPPORTED_SCHEMA, Status, TenantConfig};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::metric::{MetricDefinition, compile_metrics};
use crate::paths::PathMatcher;

/// Most experiments one tenant may run (the sticky cookie counts them in one byte).
pub const MAX_EXPERIMENTS: usize = 200;
/// Most variants in one experiment.
pub const MAX_VARIANTS: usize = 20;
/// Longest key (tenant, experiment, variant, layer).
pub const MAX_KEY_LEN: usize = 64;

/// A validated, compiled tenant config.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Config version carried by exposures.
    pub version: u64,
    /// Hostnames served.
    pub hostnames: Vec<String>,
    /// Bucketing key.
    pub hash_key: HashKey,
    /// Holdout in basis points.
    pub holdout: u32,
    /// Layer keys, as declared.
    pub layers: Vec<String>,
    /// Experiments in evaluation order.
    pub experiments: Vec<Experiment>,
    pub(crate) holdout_seed: String,
    pub(crate) by_cookie_id: HashMap<u32, usize>,
    /// How many distinct attribute paths the experiments' targeting reads (the size of one
    /// request's attribute cache).
    pub(crate) attribute_slots: usize,
    /// Edge settings: cookie scope, opt-out cookie, origin.
    pub edge: EdgeConfig,
    /// Metric definitions, in config order (results use them; the edge does not).
    pub metrics: Vec<MetricDefinition>,
}

/// A compiled experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Experiment key.
    pub key: String,
    /// Bucketing seed (the key unless configured).
    pub seed: String,
    /// Lifecycle status.
    pub status: Status,
    /// Index of the winning variant of a stopped experiment.
    pub winner: Option<usize>,
    /// Start, Unix milliseconds.
    pub start_ms: Option<i64>,
    /// End, Unix milliseconds.
    pub end_ms: Option<i64>,
    /// Paths it applies to.
    pub paths: PathMatcher,
    /// Targeting condition.
    pub targeting: Condition,
    /// Coverage in basis points.
    pub coverage: u32,
    /// Bucketing function.
    pub hash: HashMode,
    /// Variants; index 0 is the control.
    pub variants: Vec<Variant>,
    /// Variant bucket ranges at the configured coverage.
    pub ranges: Vec<BucketRange>,
    /// Layer membership.
    pub layer: Option<LayerSlot>,
    /// This experiment's 32-bit id in the sticky cookie.
    pub cookie_id: u32,
}

/// A compiled variant.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Variant key.
    pub key: String,
    /// Weight in basis points.
    pub weight: u32,
    /// Edge actions.
    pub actions: Vec<Action>,
}

/// Where an experiment sits in a layer.
#[derive(Debug, Clone)]
pub struct LayerSlot {
    /// Layer key.
    pub key: String,
    /// Position of the layer in [`Tenant::layers`].
    pub index: usize,
    /// Seed used to bucket units into the layer (`layer:<key>`).
    pub seed: String,
    /// Layer buckets owned by the experiment.
    pub range: BucketRange,
}

impl Tenant {
    /// Parses, validates and compiles a config document.
    ///
    /// # Example
    /// ```
    /// let json = r#"{"schema": 1, "tenant": "shop", "version": 1, "hostnames": ["shop.example"],
    ///   "hash_key": "000102030405060708090a0b0c0d0e0f",
    ///   "experiments": [{"key": "cta", "status": "running",
    ///     "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 4000}]}]}"#;
    /// let err = cohort_core::Tenant::from_json(json).unwrap_err();
    /// assert_eq!(err.to_string(), "experiments[0].variants: weights sum to 9000, expected 10000");
    /// ```
    pub fn from_json(json: &str) -> Result<Tenant, ConfigError> {
        // A cold isolate pays for this on its first request: read the document straight into the
        // config types. Anything that does not read cleanly that way takes the path below, which
        // checks the schema first and names where an error is, so errors stay as they were.
        if let Ok(config) = serde_json::from_str::<TenantConfig>(json)
            && config.schema == SUPPORTED_SCHEMA
        {
            return compile(config);
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ConfigError::new("", ConfigErrorKind::Syntax(e.to_string())))?;
        Tenant::from_value(value)
    }

    /// Validates and compiles an already-parsed JSON document.
    pub fn from_value(value: serde_json::Value) -> Result<Tenant, ConfigError> {
        // The schema decides how to read everything else, so it is checked first.
        match value.get("schema") {
            Some(schema) if schema.as_u64() == Some(SUPPORTED_SCHEMA) => {}
            Some(other) => {
                return Err(ConfigError::new(
                    "schema",
                    ConfigErrorKind::UnsupportedSchema(other.to_string()),
                ));
            }
            None if value.is_object() => {
                return Err(ConfigError::invalid("schema", "missing field `schema`"));
            }
            None => return Err(ConfigError::invalid("", "a tenant config is a JSON object")),
        }
        let config: TenantConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let mut path = if path == "." { String::new() } else { path };
            let message = e.into_inner().to_string();
            // Name the missing field itself, like every other error names its value.
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                path = if path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
            }
            ConfigError::new(path, ConfigErrorKind::Syntax(message))
        })?;
        compile(config)
    }

    /// The experiment with `key`.
    pub fn experiment(&self, key: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.key == key)
    }

    /// The definition of metric `key`, if the config has one.
    pub fn metric(&self, key: &str) -> Option<&MetricDefinition> {
        self.metrics.iter().find(|m| m.key == key)
    }

    /// Index of the experiment with sticky-cookie id `cookie_id`.
    pub fn experiment_index_by_cookie_id(&self, cookie_id: u32) -> Option<usize> {
        self.by_cookie_id.get(&cookie_id).copied()
    }
}

impl Experiment {
    /// Index of the variant with `key`.
    pub fn variant_index(&self, key: &str) -> Option<usize> {
        self.variants.iter().position(|v| v.key == key)
    }
}

fn compile(config: TenantConfig) -> Result<Tenant, ConfigError> {
    check_key(&"tenant", &config.tenant, KeyKind::Tenant)?;
    if config.version == 0 {
        return Err(ConfigError::invalid("version", "version must be at least 1"));
    }
    if config.hostnames.is_empty() {
        return Err(ConfigError::invalid(
            "hostnames",
            "a tenant serves at least one hostname",
        ));
    }
    let mut seen_hosts = HashMap::new();
    for (i, host) in config.hostnames.iter().enumerate() {
        let path = Indexed("hostnames", i);
        check_hostname(host).map_err(|reason| ConfigError::invalid(path.to_string(), reason))?;
        if seen_hosts.insert(host.as_str(), i).is_some() {
            return Err(ConfigError::new(
                path.to_string(),
                ConfigErrorKind::DuplicateKey(host.clone()),
            ));
        }
    }
    let hash_key = HashKey::from_hex(&config.hash_key).ok_or_else(|| {
        ConfigError::invalid(
            "hash_key",
            format!("expected 32 hex characters (16 bytes), got `{}`", config.hash_key),
        )
    })?;
    check_basis_points(&"holdout", config.holdout)?;
    check_edge(&config.edge, &config.hostnames)?;

    let mut layers = Vec::with_capacity(config.layers.len());
    for (i, layer) in config.layers.iter().enumerate() {
        let path = format_args!("layers[{i}].key");
        check_key(&path, &layer.key, KeyKind::Other)?;
        if layers.contains(&layer.key) {
            return Err(ConfigError::new(
                path.to_string(),
                ConfigErrorKind::DuplicateKey(layer.key.clone()),
            ));
        }
        layers.push(layer.key.clone());
    }

    if config.experiments.len() > MAX_EXPERIMENTS {
        return Err(ConfigError::invalid(
            "experiments",
            format!(
                "{} experiments; a tenant may have at most {MAX_EXPERIMENTS}",
                config.experiments.len()
            ),
        ));
    }
    let mut experiments: Vec<Experiment> = Vec::with_capacity(config.experiments.len());
    let mut by_cookie_id = HashMap::new();
    let mut attribute_slots = AttributeSlots::default();
    // Key → index, so that 200 experiments are not compared pairwise.
    let mut by_key: HashMap<String, usize> = HashMap::with_capacity(config.experiments.len());
    for (i, raw) in config.experiments.into_iter().enumerate() {
        let path = Indexed("experiments", i);
        let experiment = compile_experiment(&path, raw, &hash_key, &layers, &mut attribute_slots)?;
        if by_key.insert(experiment.key.clone(), i).is_some() {
            return Err(ConfigError::new(
                format!("{path}.key"),
                ConfigErrorKind::DuplicateKey(experiment.key.clone()),
            ));
        }
        if let Some(&other) = by_cookie_id.get(&experiment.cookie_id) {
            let other: &Experiment = &experiments[other];
            return Err(ConfigError::invalid(
                format!("{path}.key"),
                format!(
                    "`{}` and `{}` share a sticky-cookie id; rename one of them",
                    experiment.key, other.key
                ),
            ));
        }
        check_layer_overlap(&path, &experiment, &experiments)?;
        by_cookie_id.insert(experiment.cookie_id, experiments.len());
        experiments.push(experiment);
    }
    let metrics = compile_metrics(&config.metrics)?;

    Ok(Tenant {
        holdout_seed: format!("holdout:{}", config.tenant),
        id: config.tenant,
        version: config.version,
        hostnames: config.hostnames,
        hash_key,
        holdout: config.holdout,
        layers,
        experiments,
        by_cookie_id,
        attribute_slots: attribute_slots.len(),
        edge: config.edge,
        metrics,
    })
}

/// `name[index]` in an error path, formatted only when an error names it: compiling a valid
/// config formats no paths (a cold isolate compiles before its first answer).
struct Indexed(&'static str, usize);

impl fmt::Display for Indexed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

fn compile_experiment(
    path: &dyn fmt::Display,
    mut raw: ExperimentConfig,
    hash_key: &HashKey,
    layers: &[String],
    attribute_slots: &mut AttributeSlots,
) -> Result<Experiment, ConfigError> {
    check_key(&format_args!("{path}.key"), &raw.key, KeyKind::Other)?;
    let seed = match &raw.seed {
        Some(seed) if seed.is_empty() || seed.len() > 256 => {
            return Err(ConfigError::invalid(
                format!("{path}.seed"),
                "a seed has 1 to 256 bytes",
            ));
        }
        Some(seed) => seed.clone(),
        None => raw.key.clone(),
    };
    check_basis_points(&format_args!("{path}.coverage"), raw.coverage)?;

    if raw.variants.len() < 2 || raw.variants.len() > MAX_VARIANTS {
        return Err(ConfigError::invalid(
            format!("{path}.variants"),
            format!(
                "{} variants; an experiment has 2 to {MAX_VARIANTS} (the first is the control)",
                raw.variants.len()
            ),
        ));
    }
    let mut variants: Vec<Variant> = Vec::with_capacity(raw.variants.len());
    // Owned: keys and actions move into the compiled experiment instead of being copied.
    for (v, variant) in std::mem::take(&mut raw.variants).into_iter().enumerate() {
        let variant_path = Indexed("variants", v);
        check_key(&format_args!("{path}.{variant_path}.key"), &variant.key, KeyKind::Other)?;
        if variants.iter().any(|existing| existing.key == variant.key) {
            return Err(ConfigError::new(
                format!("{path}.{variant_path}.key"),
                ConfigErrorKind::DuplicateKey(variant.key.clone()),
            ));
        }
        check_basis_points(&format_args!("{path}.{variant_path}.weight"), variant.weight)?;
        for (a, action) in variant.actions.iter().enumerate() {
            check_action(action)
                .map_err(|reason| ConfigError::invalid(format!("{path}.{variant_path}.actions[{a}]"), reason))?;
        }
        variants.push(Variant {
            key: variant.key,
            weight: variant.weight,
            actions: variant.actions,
        });
    }
    let sum: u64 = variants.iter().map(|v| u64::from(v.weight)).sum();
    if sum != u64::from(BUCKETS) {
        return Err(ConfigError::new(
            format!("{path}.variants"),
            ConfigErrorKind::WeightsSum { sum },
        ));
    }

    let winner =
        match (&raw.winner, raw.status) {
            (None, _) => None,
            (Some(key), Status::Stopped) => Some(variants.iter().position(|v| &v.key == key).ok_or_else(|| {
                ConfigError::new(format!("{path}.winner"), ConfigErrorKind::UnknownWinner(key.clone()))
            })?),
            (Some(_), status) => {
                return Err(ConfigError::invalid(
                    format!("{path}.winner"),
                    format!(
                        "a winner is only served once the experiment is `stopped`, but its status is `{}`",
                        status_name(status)
                    ),
                ));
            }
        };

    let parse_time = |field: &str, value: &Option<String>| -> Result<Option<i64>, ConfigError> {
        value
            .as_deref()
            .map(|text| {
                crate::time::parse_rfc3339(text)
                    .map_err(|reason| ConfigError::invalid(format!("{path}.{field}"), reason))
            })
            .transpose()
    };
    let start_ms = parse_time("start", &raw.start)?;
    let end_ms = parse_time("end", &raw.end)?;
    if let (Some(start), Some(end)) = (start_ms, end_ms)
        && end <= start
    {
        return Err(ConfigError::invalid(format!("{path}.end"), "end must be after start"));
    }

    let paths = PathMatcher::compile(&raw.paths).map_err(|(i, reason)| {
        ConfigError::new(
            format!("{path}.paths[{i}]"),
            ConfigErrorKind::InvalidPathPattern(reason),
        )
    })?;
    let targeting = Condition::compile_into(
        raw.targeting
            .as_ref()
            .unwrap_or(&serde_json::Value::Object(Default::default())),
        attribute_slots,
    )
    .map_err(|e| {
        ConfigError::new(
            format!("{path}.targeting{}", e.path),
            ConfigErrorKind::InvalidCondition(e.reason),
        )
    })?;

    let layer = match &raw.layer {
        None => None,
        Some(slot) => {
            let Some(index) = layers.iter().position(|key| key == &slot.key) else {
                return Err(ConfigError::new(
                    format!("{path}.layer.key"),
                    ConfigErrorKind::UnknownLayer(slot.key.clone()),
                ));
            };
            let [start, end] = slot.range;
            check_basis_points(&format_args!("{path}.layer.range[1]"), end)?;
            if start >= end {
                return Err(ConfigError::invalid(
                    format!("{path}.layer.range"),
                    format!("[{start}, {end}) is empty; a range is [start, end) with start < end <= 10000"),
                ));
            }
            Some(LayerSlot {
                key: slot.key.clone(),
                index,
                seed: format!("layer:{}", slot.key),
                range: BucketRange { start, end },
            })
        }
    };

    let weights: Vec<u32> = variants.iter().map(|v| v.weight).collect();
    Ok(Experiment {
        cookie_id: bucket::hash64(hash_key, "cookie-id", &raw.key) as u32,
        ranges: bucket::variant_ranges(&weights, raw.coverage),
        key: raw.key,
        seed,
        status: raw.status,
        winner,
        start_ms,
        end_ms,
        paths,
        targeting,
        coverage: raw.coverage,
        hash: raw.hash,
        variants,
        layer,
    })
}

/// Experiments that are not stopped must not share layer buckets; a stopped experiment releases
/// its range so a successor can take it.
fn check_layer_overlap(
    path: &dyn fmt::Display,
    experiment: &Experiment,
    earlier: &[Experiment],
) -> Result<(), ConfigError> {
    let Some(slot) = &experiment.layer else {
        return Ok(());
    };
    if experiment.status == Status::Stopped {
        return Ok(());
    }
    for other in earlier.iter().filter(|o| o.status != Status::Stopped) {
        if let Some(other_slot) = &other.layer
            && other_slot.key == slot.key
            && slot.range.start < other_slot.range.end
            && other_slot.range.start < slot.range.end
        {
            return Err(ConfigError::new(
                format!("{path}.layer.range"),
                ConfigErrorKind::LayerOverlap {
                    other: other.key.clone(),
                    other_range: [other_slot.range.start, other_slot.range.end],
                },
            ));
        }
    }
    Ok(())
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Stopped => "stopped",
    }
}

fn check_edge(edge: &EdgeConfig, hostnames: &[String]) -> Result<(), ConfigError> {
    if let Some(domain) = &edge.cookie_domain {
        check_hostname(domain).map_err(|reason| ConfigError::invalid("edge.cookie_domain", reason))?;
        let covers = |host: &String| host == domain || host.ends_with(&format!(".{domain}"));
        if let Some(outside) = hostnames.iter().find(|host| !covers(host)) {
            return Err(ConfigError::invalid(
                "edge.cookie_domain",
                format!("`{domain}` does not cover hostname `{outside}`; browsers would refuse the cookie there"),
            ));
        }
    }
    let check_cookie_name = |field: &str, name: &str| {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(token) {
            return Err(ConfigError::invalid(field, format!("`{name}` is not a cookie name")));
        }
        if [crate::edge::HOST_COOKIE_NAME, crate::edge::DOMAIN_COOKIE_NAME].contains(&name) {
            return Err(ConfigError::invalid(field, format!("`{name}` is Cohort's own cookie")));
        }
        Ok(())
    };
    if let Some(name) = &edge.opt_out_cookie {
        check_cookie_name("edge.opt_out_cookie", name)?;
    }
    if let Some(name) = &edge.unit_id_cookie {
        check_cookie_name("edge.unit_id_cookie", name)?;
    }
    if let Some(name) = &edge.unit_id_header {
        check_header_name(name).map_err(|reason| ConfigError::invalid("edge.unit_id_header", reason))?;
    }
    if let Some(origin) = &edge.origin {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|authority| {
            !authority.is_empty()
                && !authority.contains(['/', '?', '#', '@'])
                && authority
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        });
        if !valid {
            return Err(ConfigError::invalid(
                "edge.origin",
                format!("`{origin}` is not an origin like https://origin.example or http://127.0.0.1:8080"),
            ));
        }
    }
    Ok(())
}

fn check_basis_points(path: &dyn fmt::Display, value: u32) -> Result<(), ConfigError> {
    if value > BUCKETS {
        return Err(ConfigError::new(
            path.to_string(),
            ConfigErrorKind::OutOfRange {
                value: u64::from(value),
            },
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum KeyKind {
    Tenant,
    Other,
}

/// Keys travel in headers (`exp=variant, ...`), cookies and URLs, so their alphabet is small.
fn check_key(path: &dyn fmt::Display, key: &str, kind: KeyKind) -> Result<(), ConfigError> {
    match key_problem(key, kind) {
        Some(reason) => Err(ConfigError::invalid(path.to_string(), reason)),
        None => Ok(()),
    }
}

/// Why `key` is not a valid key of `kind`, if it is not. Configs, records and the CLI share it.
pub(crate) fn key_problem(key: &str, kind: KeyKind) -> Option<String> {
    let allowed = |c: char| match kind {
        KeyKind::Tenant => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_',
        KeyKind::Other => c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.',
    };
    let alphabet = match kind {
        KeyKind::Tenant => "lowercase letters, digits, `-` and `_`",
        KeyKind::Other => "letters, digits, `-`, `_` and `.`",
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Some(format!("a key has 1 to {MAX_KEY_LEN} characters, got {}", key.len()));
    }
    if let Some(bad) = key.chars().find(|&c| !allowed(c)) {
        return Some(format!("`{key}` contains {bad:?}; keys use {alphabet}"));
    }
    if !key.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some(format!("`{key}` must start with a letter or digit"));
    }
    None
}

/// Why `id` cannot be a tenant id, if it cannot.
pub fn tenant_id_problem(id: &str) -> Option<String> {
    key_problem(id, KeyKind::Tenant)
}

fn check_hostname(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > 253 {
        return Err(format!("`{host}` is not a hostname (1 to 253 characters)"));
    }
    if host.contains(':') {
        return Err(format!("`{host}`: give the hostname without a port"));
    }
    for label in host.split('.') {
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label.is_empty() || label.len() > 63 || !valid_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{host}` is not a lowercase hostname (labels of a-z, 0-9 and inner `-`, 1 to 63 characters)"
            ));
        }
    }
    Ok(())
}

/// Request headers a variant may not set: they decide routing, framing or who the visitor is.
/// A header name a config may use: an HTTP token, and not one that decides routing, framing or
/// who the visitor is.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("header name `{name}` is not an HTTP token"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") || lower.starts_with("cohort-") {
        return Err(format!(
            "header `{name}` is reserved: it controls routing, framing or identity"
        ));
    }
    Ok(())
}

const RESERVED_HEADERS: &[&str] = &[
    "host",
    "cookie",
    "authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "cf-connecting-ip",
];

/// Longest text, HTML fragment or header value an action may carry.
const MAX_ACTION_TEXT: usize = 16 * 1024;

fn check_action(action: &Action) -> Result<(), String> {
    let payload = match action {
        Action::SetText { text, .. } => Some(text),
        Action::SetAttribute { value, .. } => Some(value),
        Action::InsertHtml { html, .. } => Some(html),
        _ => None,
    };
    if let Some(payload) = payload
        && payload.len() > MAX_ACTION_TEXT
    {
        return Err(format!(
            "content is {} bytes, over the {MAX_ACTION_TEXT}-byte limit",
            payload.len()
        ));
    }
    let selector_ok = |selector: &str| {
        if selector.trim().is_empty() || selector.len() > 512 || selector.chars().any(char::is_control) {
            Err(format!(
                "selector `{selector}` must be a non-empty CSS selector without control characters"
            ))
        } else {
            selector_shape_problem(selector).map_or(Ok(()), |problem| Err(format!("selector `{selector}`: {problem}")))
        }
    };
    match action {
        Action::Route { path, host } => {
            if path.is_none() && host.is_none() {
                return Err("a route needs a `path`, a `host`, or both".into());
            }
            if let Some(path) = path
                && (!path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(format!("route path `{path}` must start with `/` and contain no spaces"));
            }
            if let Some(host) = host {
                check_hostname(host).map_err(|reason| format!("route host: {reason}"))?;
            }
            Ok(())
        }
        Action::RequestHeader { name, value } => {
            check_header_name(name)?;
            if value.len() > MAX_ACTION_TEXT {
                return Err(format!("header `{name}` value is over {MAX_ACTION_TEXT} bytes"));
            }
            if value.chars().any(|c| !(c == ' ' || c == '\t' || c.is_ascii_graphic())) {
                return Err(format!("header `{name}` value must be visible ASCII"));
            }
            Ok(())
        }
        Action::SetText { selector, .. } | Action::Remove { selector } | Action::InsertHtml { selector, .. } => {
            selector_ok(selector)
        }
        Action::SetAttribute { selector, name, .. } => {
            selector_ok(selector)?;
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || "\"'>/=".contains(c) || c.is_control())
            {
                return Err(format!("attribute name `{name}` is not valid"));
            }
            Ok(())
        }
    }
}

/// Structural mistakes in a CSS selector that the edge's HTML rewriter would refuse at request
/// time (where the visitor then gets the origin's page unedited): an unclosed `[`, `(` or quote, a
/// stray closing bracket, or a selector that ends in a combinator or comma. Not a full CSS parser:
/// a selector that passes can still be refused, and is then logged at the edge as `fail_open`.
fn selector_shape_problem(selector: &str) -> Option<String> {
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in selector.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => open.push(c),
            (None, ']' | ')') => {
                let opener = if c == ']' { '[' } else { '(' };
                if open.pop() != Some(opener) {
                    return Some(format!("`{c}` closes nothing"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!("the quote {q} is never closed"));
    }
    if let Some(c) = open.last() {
        return Some(format!("`{c}` is never closed"));
    }
    let last = selector.trim_end().chars().last()?;
    matches!(last, '>' | '+' | '~' | ',').then(|| format!("ends with `{last}`, which needs a selector after it"))
}
