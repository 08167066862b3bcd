//! What the collector knows of tenants' configs: what each tenant's experiments are called, their
//! status, variants, weights and control, its metric definitions and its holdout. Built from the
//! configs stored by the control plane ([`crate::control`]) and from the start-up configs
//! (`--tenant-config`) it imports. Optional: without a config, the listing and results fall back
//! to what the stored exposures show and to the metric defaults.

use std::collections::HashMap;

use cohort_core::bucket::BUCKETS;
use cohort_core::exposure::{HOLDOUT_EXPERIMENT, HOLDOUT_REST_VARIANT, HOLDOUT_VARIANT};
use cohort_core::{ConfigError, MetricDefinition, Status, Tenant, TenantConfig};
use serde::Deserialize;

/// What the listing and the dashboard call the tenant holdout's records.
pub const HOLDOUT_NAME: &str = "Tenant holdout";

/// One experiment as its tenant's config declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredExperiment {
    /// Experiment key.
    pub key: String,
    /// Human-readable name, if the config gives one.
    pub name: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// Variants in config order; the first is the control.
    pub variants: Vec<ConfiguredVariant>,
}

/// One variant and its share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredVariant {
    /// Variant key.
    pub key: String,
    /// Weight in basis points (an experiment's weights sum to 10000).
    pub weight: u32,
}

impl ConfiguredExperiment {
    /// The tenant holdout's membership records (`_holdout`) as the experiment they amount to:
    /// `holdout` (the control) at the config's share against `rest`, running.
    pub fn holdout(basis_points: u32) -> ConfiguredExperiment {
        ConfiguredExperiment {
            key: HOLDOUT_EXPERIMENT.to_owned(),
            name: Some(HOLDOUT_NAME.to_owned()),
            status: Status::Running,
            variants: vec![
                ConfiguredVariant {
                    key: HOLDOUT_VARIANT.to_owned(),
                    weight: basis_points,
                },
                ConfiguredVariant {
                    key: HOLDOUT_REST_VARIANT.to_owned(),
                    weight: BUCKETS.saturating_sub(basis_points),
                },
            ],
        }
    }

    /// The control: the first variant, as in configs.
    pub fn control(&self) -> Option<&str> {
        self.variants.first().map(|variant| variant.key.as_str())
    }
}

/// Why a config was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantConfigError {
    /// The document is not a valid tenant config.
    Invalid(ConfigError),
    /// Another loaded config already describes this tenant.
    DuplicateTenant(String),
}

impl std::fmt::Display for TenantConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantConfigError::Invalid(error) => error.fmt(f),
            TenantConfigError::DuplicateTenant(tenant) => {
                write!(f, "tenant: `{tenant}` is already described by another config")
            }
        }
    }
}

impl std::error::Error for TenantConfigError {}

/// What the collector keeps of one tenant's config.
#[derive(Debug, Clone, Default)]
struct ConfiguredTenant {
    experiments: Vec<ConfiguredExperiment>,
    metrics: Vec<MetricDefinition>,
    /// With a holdout above 0.
    holdout: Option<ConfiguredExperiment>,
    /// The config document as given.
    document: String,
}

/// The configs of every tenant the collector knows, by tenant id.
#[derive(Debug, Clone, Default)]
pub struct TenantConfigs {
    by_tenant: HashMap<String, ConfiguredTenant>,
}

impl TenantConfigs {
    /// Validates a config document exactly as the edge does ([`Tenant::from_value`]) and adds its
    /// experiments; returns the tenant id.
    pub fn insert_json(&mut self, json: &str) -> Result<String, TenantConfigError> {
        let document: serde_json::Value =
            serde_json::from_str(json).map_err(|e| TenantConfigError::Invalid(syntax_error(&e)))?;
        let tenant = Tenant::from_value(document.clone()).map_err(TenantConfigError::Invalid)?;
        // The compiled form drops the names people gave experiments; the wire form keeps them.
        // The document has just validated, so this second reading succeeds.
        let config = TenantConfig::deserialize(&document).map_err(|e| TenantConfigError::Invalid(syntax_error(&e)))?;
        crate::selectors::check_selectors(&config).map_err(TenantConfigError::Invalid)?;
        let names: HashMap<String, Option<String>> = config
            .experiments
            .into_iter()
            .map(|experiment| (experiment.key, experiment.name))
            .collect();
        if self.by_tenant.contains_key(&tenant.id) {
            return Err(TenantConfigError::DuplicateTenant(tenant.id));
        }
        let experiments = tenant
            .experiments
            .into_iter()
            .map(|experiment| ConfiguredExperiment {
                name: names.get(&experiment.key).cloned().flatten(),
                status: experiment.status,
                variants: experiment
                    .variants
                    .into_iter()
                    .map(|variant| ConfiguredVariant {
                        key: variant.key,
                        weight: variant.weight,
                    })
                    .collect(),
                key: experiment.key,
            })
            .collect();
        self.by_tenant.insert(
            tenant.id.clone(),
            ConfiguredTenant {
                experiments,
                metrics: tenant.metrics,
                holdout: (tenant.holdout > 0).then(|| ConfiguredExperiment::holdout(tenant.holdout)),
                document: json.to_owned(),
            },
        );
        Ok(tenant.id)
    }

    /// A tenant's configured experiments in config order; empty for a tenant without a config.
    pub fn experiments(&self, tenant: &str) -> &[ConfiguredExperiment] {
        self.by_tenant.get(tenant).map_or(&[], |t| t.experiments.as_slice())
    }

    /// A tenant's metric definitions in config order; empty for a tenant without a config.
    pub fn metrics(&self, tenant: &str) -> &[MetricDefinition] {
        self.by_tenant.get(tenant).map_or(&[], |t| t.metrics.as_slice())
    }

    /// The definition of a tenant's metric, if its config has one.
    pub fn metric(&self, tenant: &str, key: &str) -> Option<&MetricDefinition> {
        self.by_tenant.get(tenant)?.metrics.iter().find(|m| m.key == key)
    }

    /// One configured experiment; for `_holdout`, the tenant holdout's split
    /// ([`ConfiguredExperiment::holdout`]) when the config has a holdout.
    pub fn experiment(&self, tenant: &str, key: &str) -> Option<&ConfiguredExperiment> {
        if key == HOLDOUT_EXPERIMENT {
            return self.by_tenant.get(tenant)?.holdout.as_ref();
        }
        self.experiments(tenant).iter().find(|experiment| experiment.key == key)
    }

    /// The config documents as given, in no particular order.
    pub fn documents(&self) -> impl Iterator<Item = &str> {
        self.by_tenant.values().map(|t| t.document.as_str())
    }

    /// Number of tenants with a config.
    pub fn len(&self) -> usize {
        self.by_tenant.len()
    }

    /// Whether no config is loaded.
    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }
}

fn syntax_error(error: &serde_json::Error) -> ConfigError {
    ConfigError {
        path: String::new(),
        kind: cohort_core::ConfigErrorKind::Syntax(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"{"schema": 1, "tenant": "shop", "version": 3, "hostnames": ["shop.example"],
      "hash_key": "000102030405060708090a0b0c0d0e0f",
      "experiments": [{"key": "cta", "name": "Green button", "status": "running",
        "variants": [{"key": "control", "weight": 2000}, {"key": "green", "weight": 8000}]},
        {"key": "nameless", "status": "paused",
        "variants": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}]}]}"#;

    #[test]
    fn configs_keep_names_status_weights_and_control() {
        let mut configs = TenantConfigs::default();
        assert_eq!(configs.insert_json(SHOP).unwrap(), "shop");
        let cta = configs.experiment("shop", "cta").unwrap();
        assert_eq!(cta.name.as_deref(), Some("Green button"));
        assert_eq!(cta.status, Status::Running);
        assert_eq!(cta.control(), Some("control"));
        assert_eq!(
            cta.variants[1],
            ConfiguredVariant {
                key: "green".into(),
                weight: 8000
            }
        );
        assert_eq!(configs.experiment("shop", "nameless").unwrap().name, None);
        assert!(configs.experiments("news").is_empty());
    }

    #[test]
    fn invalid_and_duplicate_configs_say_where_and_what() {
        let mut configs = TenantConfigs::default();
        let bad = SHOP.replace("\"weight\": 8000", "\"weight\": 7000");
        assert_eq!(
            configs.insert_json(&bad).unwrap_err().to_string(),
            "experiments[0].variants: weights sum to 9000, expected 10000"
        );
        configs.insert_json(SHOP).unwrap();
        assert_eq!(
            configs.insert_json(SHOP).unwrap_err().to_string(),
            "tenant: `shop` is already described by another config"
        );
        assert_eq!(configs.len(), 1);
    }
}
