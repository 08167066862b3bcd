//! Metric definitions: how results turn a unit's conversion events into one figure per unit.
//!
//! A tenant config may define each metric's kind, direction, conversion window and capping
//! (`docs/config.md`, "metrics"); a metric without a definition gets [`MetricDefinition::default_for`].

use crate::config::{MetricConfig, MetricDirection, MetricKind};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::tenant::{KeyKind, key_problem};

/// Largest magnitude of one conversion event's value. Real purchases, refunds and counts stay far
/// below it; anything above is a client bug or abuse, and would swamp every statistic.
pub const MAX_CONVERSION_VALUE: f64 = 1e9;
/// Most metric definitions in one tenant config.
pub const MAX_METRICS: usize = 100;
/// Longest conversion window: a year.
pub const MAX_WINDOW_HOURS: u32 = 24 * 366;

/// A validated metric definition.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDefinition {
    /// Metric key.
    pub key: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Conversion (did the unit convert) or value (sum of its values).
    pub kind: MetricKind,
    /// Which way is better.
    pub direction: MetricDirection,
    /// Events count only within this many milliseconds after the first exposure.
    pub window_ms: Option<i64>,
    /// Absolute cap of a unit's value (value metrics).
    pub cap: Option<f64>,
    /// Quantile of the converted units' values each unit is capped above at (value metrics).
    pub winsorize_percentile: Option<f64>,
    /// Must not get worse.
    pub guardrail: bool,
    /// Whether the tenant config defines it (false: defaults).
    pub defined: bool,
}

impl MetricDefinition {
    /// The defaults of a metric the config does not define: higher is better, no window, no cap,
    /// and a value metric exactly when its events carried values.
    pub fn default_for(key: &str, has_values: bool) -> MetricDefinition {
        MetricDefinition {
            key: key.to_owned(),
            name: None,
            kind: if has_values {
                MetricKind::Value
            } else {
                MetricKind::Conversion
            },
            direction: MetricDirection::Higher,
            window_ms: None,
            cap: None,
            winsorize_percentile: None,
            guardrail: false,
            defined: false,
        }
    }

    /// The window in hours, as configured.
    pub fn window_hours(&self) -> Option<u32> {
        self.window_ms.map(|ms| (ms / 3_600_000) as u32)
    }
}

/// Validates the `metrics` section of a tenant config.
pub(crate) fn compile_metrics(configs: &[MetricConfig]) -> Result<Vec<MetricDefinition>, ConfigError> {
    if configs.len() > MAX_METRICS {
        return Err(ConfigError::invalid(
            "metrics",
            format!("{} metrics; a tenant may define at most {MAX_METRICS}", configs.len()),
        ));
    }
    let mut metrics: Vec<MetricDefinition> = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        let path = format!("metrics[{i}]");
        if let Some(reason) = key_problem(&config.key, KeyKind::Other) {
            return Err(ConfigError::invalid(format!("{path}.key"), reason));
        }
        if metrics.iter().any(|m| m.key == config.key) {
            return Err(ConfigError::new(
                format!("{path}.key"),
                ConfigErrorKind::DuplicateKey(config.key.clone()),
            ));
        }
        metrics.push(compile_metric(&path, config)?);
    }
    Ok(metrics)
}

fn compile_metric(path: &str, config: &MetricConfig) -> Result<MetricDefinition, ConfigError> {
    if let Some(hours) = config.window_hours
        && !(1..=MAX_WINDOW_HOURS).contains(&hours)
    {
        return Err(ConfigError::invalid(
            format!("{path}.window_hours"),
            format!("{hours} hours; a conversion window is 1 to {MAX_WINDOW_HOURS} hours"),
        ));
    }
    let capped = config.cap.is_some() || config.winsorize_percentile.is_some();
    if capped && config.kind == MetricKind::Conversion {
        let field = if config.cap.is_some() {
            "cap"
        } else {
            "winsorize_percentile"
        };
        return Err(ConfigError::invalid(
            format!("{path}.{field}"),
            "capping applies to `value` metrics; a conversion metric counts each unit once",
        ));
    }
    if let Some(cap) = config.cap
        && !(cap > 0.0 && cap <= MAX_CONVERSION_VALUE)
    {
        return Err(ConfigError::invalid(
            format!("{path}.cap"),
            format!("{cap} is not a cap: expected a number above 0 and at most {MAX_CONVERSION_VALUE:e}"),
        ));
    }
    if let Some(quantile) = config.winsorize_percentile
        && !(quantile > 0.5 && quantile < 1.0)
    {
        return Err(ConfigError::invalid(
            format!("{path}.winsorize_percentile"),
            format!("{quantile} is not a quantile above 0.5 and below 1 (e.g. 0.99)"),
        ));
    }
    Ok(MetricDefinition {
        key: config.key.clone(),
        name: config.name.clone(),
        kind: config.kind,
        direction: config.direction,
        window_ms: config.window_hours.map(|hours| i64::from(hours) * 3_600_000),
        cap: config.cap,
        winsorize_percentile: config.winsorize_percentile,
        guardrail: config.guardrail,
        defined: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(json: &str) -> Result<Vec<MetricDefinition>, String> {
        let configs: Vec<MetricConfig> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        compile_metrics(&configs).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_definition_compiles() {
        let metrics = metric(
            r#"[{"key": "revenue", "kind": "value", "direction": "higher", "window_hours": 72,
                 "cap": 500, "winsorize_percentile": 0.99, "guardrail": true},
                {"key": "errors", "kind": "conversion", "direction": "lower"}]"#,
        )
        .unwrap();
        assert_eq!(metrics[0].window_ms, Some(72 * 3_600_000));
        assert_eq!(metrics[0].window_hours(), Some(72));
        assert_eq!(metrics[0].cap, Some(500.0));
        assert!(metrics[0].guardrail && metrics[0].defined);
        assert_eq!(metrics[1].direction, MetricDirection::Lower);
        assert_eq!(metrics[1].window_ms, None);
    }

    #[test]
    fn bad_definitions_say_where_and_what() {
        for (json, expected) in [
            (
                r#"[{"key": "a", "kind": "value"}, {"key": "a", "kind": "value"}]"#,
                "metrics[1].key: duplicate key `a`",
            ),
            (
                r#"[{"key": "a", "kind": "conversion", "cap": 5}]"#,
                "metrics[0].cap: capping applies to `value` metrics; a conversion metric counts each unit once",
            ),
            (
                r#"[{"key": "a", "kind": "value", "cap": 0}]"#,
                "metrics[0].cap: 0 is not a cap: expected a number above 0 and at most 1e9",
            ),
            (
                r#"[{"key": "a", "kind": "value", "winsorize_percentile": 1.0}]"#,
                "metrics[0].winsorize_percentile: 1 is not a quantile above 0.5 and below 1 (e.g. 0.99)",
            ),
            (
                r#"[{"key": "a", "kind": "value", "window_hours": 0}]"#,
                "metrics[0].window_hours: 0 hours; a conversion window is 1 to 8784 hours",
            ),
            (
                r#"[{"key": "no spaces", "kind": "value"}]"#,
                "metrics[0].key: `no spaces` contains ' '; keys use letters, digits, `-`, `_` and `.`",
            ),
        ] {
            assert_eq!(metric(json).unwrap_err(), expected, "{json}");
        }
    }

    #[test]
    fn undefined_metrics_follow_their_data() {
        assert_eq!(MetricDefinition::default_for("buy", false).kind, MetricKind::Conversion);
        let revenue = MetricDefinition::default_for("revenue", true);
        assert_eq!(revenue.kind, MetricKind::Value);
        assert!(!revenue.defined && !revenue.guardrail);
    }
}
