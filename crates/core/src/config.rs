//! The tenant config as written by people and stored in KV under `tenant:<id>` (schema 1).
//!
//! These types are the wire format only: [`crate::Tenant::from_json`] parses them, validates every
//! field and compiles the result. Unknown fields are rejected so a typo fails loudly instead of
//! silently doing nothing. `docs/config.md` documents the schema for people.

use serde::{Deserialize, Serialize};

/// The only schema this engine reads.
pub const SUPPORTED_SCHEMA: u64 = 1;

/// The tenant config's JSON Schema (draft 2020-12), generated from these types and their doc
/// comments: what `cohort schema` prints and `schemas/tenant-config.schema.json` holds. It
/// describes the shape; the engine's validation (ranges, references, sums) goes further.
#[cfg(feature = "schema")]
pub fn tenant_config_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(TenantConfig).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), "Cohort tenant config (schema 1)".into());
    }
    schema
}

/// One tenant (website): its hostnames, bucketing key, holdout, layers and experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Where an editor finds this file's JSON Schema (`schemas/tenant-config.schema.json`); any
    /// string, ignored by the engine.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<String>,
    /// Schema number; must be [`SUPPORTED_SCHEMA`].
    pub schema: u64,
    /// Tenant id: lowercase letters, digits, `-` and `_`, at most 64 characters.
    pub tenant: String,
    /// Monotonic config version, carried by every exposure; publishing requires it to grow.
    pub version: u64,
    /// Hostnames this tenant serves (lowercase, no port).
    pub hostnames: Vec<String>,
    /// 16-byte bucketing key as 32 hex characters.
    pub hash_key: String,
    /// Basis points of units held out of every experiment (0 to 10000).
    #[serde(default)]
    pub holdout: u32,
    /// Layers: experiments in one layer never share a unit.
    #[serde(default)]
    pub layers: Vec<LayerConfig>,
    /// The experiments, in evaluation order.
    #[serde(default)]
    pub experiments: Vec<ExperimentConfig>,
    /// How the edge treats this tenant's visitors and origin.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// How results analyse each metric; metrics without a definition get the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricConfig>,
}

/// How results analyse one metric (the `metric` of conversion events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Metric key as conversion events carry it (same characters as experiment keys).
    pub key: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What a unit's figure is: whether it converted, or the sum of its events' values.
    pub kind: MetricKind,
    /// Which way is better.
    #[serde(default)]
    pub direction: MetricDirection,
    /// Only events within this many hours after the unit's first exposure count; absent: every
    /// event from the first exposure on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<u32>,
    /// Value metrics: each unit's value is capped at this (and at minus this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    /// Value metrics: each unit's value is capped above at this quantile of the converted units' values
    /// (winsorisation), e.g. 0.99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winsorize_percentile: Option<f64>,
    /// A metric that must not get worse, whatever the experiment's goal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guardrail: bool,
}

/// What a unit's figure for a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// 1 if the unit converted, else 0: results compare conversion rates.
    Conversion,
    /// The sum of the unit's event values (0 without events): results compare means per unit,
    /// and conversion rates alongside.
    Value,
}

impl MetricKind {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Conversion => "conversion",
            MetricKind::Value => "value",
        }
    }
}

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum MetricDirection {
    /// More is better (purchases, revenue).
    #[default]
    Higher,
    /// Less is better (errors, refunds, latency).
    Lower,
}

impl MetricDirection {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricDirection::Higher => "higher",
            MetricDirection::Lower => "lower",
        }
    }
}

/// Edge settings of a tenant; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Share the sticky cookie across subdomains (`example.com` covers `www.` and `shop.`);
    /// without it the cookie is host-only with the `__Host-` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    /// Name of a cookie the site sets when a visitor opts out of experiments; its presence (with
    /// any value) keeps the visitor out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_cookie: Option<String>,
    /// Name of a first-party cookie that holds the visitor's unit id (GrowthBook's `gbuuid`, or
    /// the site's own visitor id). When present and valid, visitors are bucketed on its value, so
    /// units migrated from another tool keep their variants; Cohort's cookie still carries
    /// stickiness. Absent or invalid: Cohort's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id_cookie: Option<String>,
    /// Name of a request header that holds the visitor's unit id, set in front of the edge by the
    /// site's own proxy or CDN rule (a signed-in customer's id, say). It wins over
    /// `unit_id_cookie` when both are usable; Cohort's cookie still carries stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id_header: Option<String>,
    /// Origin to fetch instead of the request's own URL (`http://127.0.0.1:8080`), for sites whose
    /// hostname does not resolve to their origin and for local runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Inject `<script type="application/json" id="cohort-assignments">` into HTML pages, for
    /// sites whose pages use the browser build. Off by default: it costs an HTML rewrite on pages
    /// that would otherwise stream through untouched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inject_assignments: bool,
}

/// A layer (a set of mutually exclusive experiments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Layer key; units are bucketed into it with the seed `layer:<key>`.
    pub key: String,
    /// What the layer is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Lifecycle of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Configured but not live: nobody is assigned (forced QA variants still work).
    Draft,
    /// Live: units are assigned and exposures logged.
    Running,
    /// No new units enrol; units already in the experiment keep their variant.
    Paused,
    /// Over: the `winner`, if set, is served to everyone without exposures.
    Stopped,
}

/// Bucketing function of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum HashMode {
    /// SipHash-1-3 under the tenant key (docs/config.md, "Bucketing contract").
    #[default]
    #[serde(rename = "cohort-v1")]
    CohortV1,
    /// GrowthBook's FNV-1a hash version 2, so units migrating from GrowthBook keep their variant.
    #[serde(rename = "growthbook-v2")]
    GrowthbookV2,
    /// GrowthBook's original hash (version 1, 1000 buckets), for experiments GrowthBook started
    /// with `hashVersion: 1`; new experiments should use `growthbook-v2` or `cohort-v1`.
    #[serde(rename = "growthbook-v1")]
    GrowthbookV1,
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment key, unique in the tenant: letters, digits, `-`, `_`, `.`; at most 64 characters.
    pub key: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hypothesis or notes, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Bucketing seed; defaults to the key. Changing it reshuffles the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// With `stopped`: the variant key served to everyone afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// RFC 3339 start time; nobody is assigned before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// RFC 3339 end time; nobody is assigned from it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// URL paths it applies to: exact (`/pricing`), glob (`/blog/*`, `/docs/**`), or a regex after
    /// `~` (`~^/p/[0-9]+$`). Empty or absent: every path.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Targeting condition (GrowthBook/Mongo-style); absent or `{}` targets everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<serde_json::Value>,
    /// Basis points of targeted units that enter (0 to 10000); default 10000.
    #[serde(default = "full_coverage")]
    pub coverage: u32,
    /// Bucketing function.
    #[serde(default)]
    pub hash: HashMode,
    /// Layer membership: the slice of the layer's buckets this experiment owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerSlotConfig>,
    /// Variants; the first is the control that results compare against.
    pub variants: Vec<VariantConfig>,
}

fn full_coverage() -> u32 {
    crate::bucket::BUCKETS
}

/// An experiment's place in a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LayerSlotConfig {
    /// Key of a layer declared in `layers`.
    pub key: String,
    /// Half-open bucket range `[start, end)` within `[0, 10000]` owned by this experiment.
    pub range: [u32; 2],
}

/// One variant of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Variant key, unique in the experiment (same characters as experiment keys).
    pub key: String,
    /// Share of the experiment in basis points; an experiment's weights sum to 10000.
    pub weight: u32,
    /// What the edge does for units in this variant.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// Something the edge does for a variant. The engine only validates and carries these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Split-URL routing: fetch another path and/or host from the origin, invisibly to the visitor.
    Route {
        /// Replacement path (may carry a query), starting with `/`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Replacement origin hostname.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// Add a header to the request sent to the origin.
    RequestHeader {
        /// Header name (an HTTP token).
        name: String,
        /// Header value (visible ASCII and spaces).
        value: String,
    },
    /// Replace the text content of matching elements.
    SetText {
        /// CSS selector.
        selector: String,
        /// New text (HTML-escaped by the edge).
        text: String,
    },
    /// Set an attribute on matching elements.
    SetAttribute {
        /// CSS selector.
        selector: String,
        /// Attribute name.
        name: String,
        /// Attribute value.
        value: String,
    },
    /// Insert HTML relative to matching elements.
    InsertHtml {
        /// CSS selector.
        selector: String,
        /// Where, relative to the element.
        position: InsertPosition,
        /// HTML fragment to insert.
        html: String,
    },
    /// Remove matching elements.
    Remove {
        /// CSS selector.
        selector: String,
    },
}

/// Where [`Action::InsertHtml`] puts its fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum InsertPosition {
    /// Before the element's start tag.
    Before,
    /// After the element's end tag.
    After,
    /// First thing inside the element.
    Prepend,
    /// Last thing inside the element.
    Append,
    /// Replacing the element's content.
    Replace,
}
