//! Exposure and conversion records: what the edge beacons and the collector stores.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoding::hex_encode;
use crate::metric::MAX_CONVERSION_VALUE;
use crate::tenant::{KeyKind, key_problem};

/// Coarse device class derived from the user agent at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeviceClass {
    /// Desktop or laptop browser.
    Desktop,
    /// Phone.
    Mobile,
    /// Tablet.
    Tablet,
    /// Anything else.
    Other,
}

impl DeviceClass {
    /// The lowercase name used in JSON and targeting attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Desktop => "desktop",
            DeviceClass::Mobile => "mobile",
            DeviceClass::Tablet => "tablet",
            DeviceClass::Other => "other",
        }
    }
}

/// Experiment key of the tenant-holdout membership records: the edge records once per unit whether
/// the unit is in the tenant's holdout, as an exposure to this key, so results can compare the
/// holdout with everyone else. Reserved: configured experiment keys start with a letter or digit.
pub const HOLDOUT_EXPERIMENT: &str = "_holdout";
/// Variant of [`HOLDOUT_EXPERIMENT`] for units in the tenant holdout (the comparison's control).
pub const HOLDOUT_VARIANT: &str = "holdout";
/// Variant of [`HOLDOUT_EXPERIMENT`] for every other unit.
pub const HOLDOUT_REST_VARIANT: &str = "rest";

/// One unit's first exposure to an experiment's variant, or its tenant-holdout membership
/// ([`HOLDOUT_EXPERIMENT`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Exposure {
    /// Deterministic idempotency id: the same (tenant, experiment, unit) always has the same id,
    /// so re-sent exposures deduplicate. See [`Exposure::idempotency_id`].
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Experiment key.
    pub experiment: String,
    /// Variant key.
    pub variant: String,
    /// Unit id.
    pub unit: String,
    /// Config version that made the assignment.
    pub config_version: u64,
    /// When, Unix milliseconds.
    pub timestamp: i64,
    /// ISO 3166-1 alpha-2 country from the edge, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Device class, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceClass>,
}

/// A record field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The field name.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for RecordError {}

/// Timestamps before 2020 or beyond 2100 are clock bugs, not data.
const EARLIEST_MS: i64 = 1_577_836_800_000;
const LATEST_MS: i64 = 4_102_444_800_000;

impl Exposure {
    /// An exposure with its idempotency id; `country` and `device` start unknown.
    pub fn new(
        tenant: &str,
        experiment: &str,
        variant: &str,
        unit: &str,
        config_version: u64,
        timestamp: i64,
    ) -> Exposure {
        Exposure {
            id: Exposure::idempotency_id(tenant, experiment, unit),
            tenant: tenant.to_owned(),
            experiment: experiment.to_owned(),
            variant: variant.to_owned(),
            unit: unit.to_owned(),
            config_version,
            timestamp,
            country: None,
            device: None,
        }
    }

    /// `hex(SHA-256("exposure" ‖ 0 ‖ tenant ‖ 0 ‖ experiment ‖ 0 ‖ unit))[..32]`.
    pub fn idempotency_id(tenant: &str, experiment: &str, unit: &str) -> String {
        let mut hash = Sha256::new();
        for (i, part) in ["exposure", tenant, experiment, unit].iter().enumerate() {
            if i > 0 {
                hash.update([0]);
            }
            hash.update(part.as_bytes());
        }
        hex_encode(&hash.finalize()[..16])
    }

    /// Checks every field; the collector refuses a batch holding a record that fails.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_key("tenant", &self.tenant, KeyKind::Tenant)?;
        if self.experiment == HOLDOUT_EXPERIMENT {
            if self.variant != HOLDOUT_VARIANT && self.variant != HOLDOUT_REST_VARIANT {
                return Err(RecordError {
                    field: "variant",
                    reason: format!(
                        "`{}` is not a holdout variant; `{HOLDOUT_EXPERIMENT}` records carry `{HOLDOUT_VARIANT}` or `{HOLDOUT_REST_VARIANT}`",
                        self.variant
                    ),
                });
            }
        } else {
            check_key("experiment", &self.experiment, KeyKind::Other)?;
            check_key("variant", &self.variant, KeyKind::Other)?;
        }
        check_unit(&self.unit)?;
        if self.config_version == 0 {
            return Err(RecordError {
                field: "config_version",
                reason: "must be at least 1".into(),
            });
        }
        check_timestamp(self.timestamp)?;
        if let Some(country) = &self.country
            && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(RecordError {
                field: "country",
                reason: format!("`{country}` is not a two-letter country code"),
            });
        }
        let expected = Exposure::idempotency_id(&self.tenant, &self.experiment, &self.unit);
        if self.id != expected {
            return Err(RecordError {
                field: "id",
                reason: "does not match tenant, experiment and unit".into(),
            });
        }
        Ok(())
    }
}

/// A conversion event: a unit did something a metric counts (a purchase, a sign-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// Event id chosen by the sender; the collector keeps the first event per (tenant, id), so a
    /// retried send counts once. 1 to 128 characters.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Unit id (the visitor), as in its exposures.
    pub unit: String,
    /// Metric key, e.g. `purchase` (same alphabet as experiment keys).
    pub metric: String,
    /// Numeric value for value metrics (revenue, items); absent for plain conversions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When, Unix milliseconds.
    pub timestamp: i64,
}

impl Conversion {
    /// Checks every field; the collector refuses a batch holding a record that fails.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.id.is_empty() || self.id.len() > 128 || self.id.chars().any(char::is_control) {
            return Err(RecordError {
                field: "id",
                reason: "1 to 128 characters, no control characters".into(),
            });
        }
        check_key("tenant", &self.tenant, KeyKind::Tenant)?;
        check_unit(&self.unit)?;
        check_key("metric", &self.metric, KeyKind::Other)?;
        if let Some(value) = self.value
            && !(value.is_finite() && value.abs() <= MAX_CONVERSION_VALUE)
        {
            return Err(RecordError {
                field: "value",
                reason: format!(
                    "{value:e} is outside the accepted range: a finite number between -{MAX_CONVERSION_VALUE:e} and {MAX_CONVERSION_VALUE:e}"
                ),
            });
        }
        check_timestamp(self.timestamp)
    }
}

fn check_unit(unit: &str) -> Result<(), RecordError> {
    if unit.is_empty() || unit.len() > 128 || unit.chars().any(char::is_control) {
        return Err(RecordError {
            field: "unit",
            reason: "1 to 128 characters, no control characters".into(),
        });
    }
    Ok(())
}

fn check_timestamp(timestamp: i64) -> Result<(), RecordError> {
    if !(EARLIEST_MS..LATEST_MS).contains(&timestamp) {
        return Err(RecordError {
            field: "timestamp",
            reason: format!("{timestamp} is not a plausible Unix millisecond time"),
        });
    }
    Ok(())
}

fn check_key(field: &'static str, key: &str, kind: KeyKind) -> Result<(), RecordError> {
    match key_problem(key, kind) {
        Some(reason) => Err(RecordError { field, reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure() -> Exposure {
        Exposure {
            id: Exposure::idempotency_id("shop", "cta", "u1"),
            tenant: "shop".into(),
            experiment: "cta".into(),
            variant: "green".into(),
            unit: "u1".into(),
            config_version: 3,
            timestamp: 1_800_000_000_000,
            country: Some("DE".into()),
            device: Some(DeviceClass::Mobile),
        }
    }

    #[test]
    fn conversions_validate() {
        let conversion = Conversion {
            id: "order-1001".into(),
            tenant: "shop".into(),
            unit: "u1".into(),
            metric: "purchase".into(),
            value: Some(42.5),
            timestamp: 1_800_000_000_000,
        };
        assert_eq!(conversion.validate(), Ok(()));
        assert_eq!(
            Conversion {
                metric: "buy now".into(),
                ..conversion.clone()
            }
            .validate()
            .unwrap_err()
            .field,
            "metric"
        );
        assert_eq!(
            Conversion {
                timestamp: 5,
                ..conversion.clone()
            }
            .validate()
            .unwrap_err()
            .field,
            "timestamp"
        );
        assert_eq!(
            Conversion {
                id: String::new(),
                ..conversion.clone()
            }
            .validate()
            .unwrap_err()
            .field,
            "id"
        );
    }

    #[test]
    fn absurd_and_non_finite_values_are_refused_at_the_bound() {
        let with_value = |value: f64| Conversion {
            id: "order-1".into(),
            tenant: "shop".into(),
            unit: "u1".into(),
            metric: "revenue".into(),
            value: Some(value),
            timestamp: 1_800_000_000_000,
        };
        for accepted in [MAX_CONVERSION_VALUE, -MAX_CONVERSION_VALUE, 0.0, -19.99] {
            assert_eq!(with_value(accepted).validate(), Ok(()), "{accepted}");
        }
        for refused in [1e308, -1e308, 1.000_001e9, f64::NAN, f64::INFINITY] {
            let error = with_value(refused).validate().unwrap_err();
            assert_eq!(error.field, "value", "{refused}");
            assert!(error.reason.contains("between -1e9 and 1e9"), "{}", error.reason);
        }
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(
            Exposure::idempotency_id("shop", "cta", "u1"),
            Exposure::idempotency_id("shop", "cta", "u1")
        );
        assert_ne!(
            Exposure::idempotency_id("shop", "cta", "u1"),
            Exposure::idempotency_id("shop", "ct", "au1")
        );
        assert_eq!(Exposure::idempotency_id("shop", "cta", "u1").len(), 32);
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(exposure().validate(), Ok(()));
        let mut bad = exposure();
        bad.country = Some("germany".into());
        assert_eq!(bad.validate().unwrap_err().field, "country");
        let mut bad = exposure();
        bad.unit = "u2".into();
        assert_eq!(bad.validate().unwrap_err().field, "id");
        let json = serde_json::to_string(&exposure()).unwrap();
        assert_eq!(serde_json::from_str::<Exposure>(&json).unwrap(), exposure());
        assert!(serde_json::from_str::<Exposure>(&json.replace("\"unit\"", "\"unit_id\"")).is_err());
    }

    #[test]
    fn only_the_holdout_key_is_reserved_and_only_with_its_two_variants() {
        for variant in [HOLDOUT_VARIANT, HOLDOUT_REST_VARIANT] {
            let record = Exposure::new("shop", HOLDOUT_EXPERIMENT, variant, "u1", 3, 1_800_000_000_000);
            assert_eq!(record.validate(), Ok(()), "{record:?}");
            assert_eq!(record.id, Exposure::idempotency_id("shop", "_holdout", "u1"));
        }
        let other = Exposure::new("shop", "_other", "control", "u1", 3, 1_800_000_000_000);
        let error = other.validate().unwrap_err();
        assert_eq!(error.field, "experiment");
        assert!(
            error.reason.contains("must start with a letter or digit"),
            "{}",
            error.reason
        );
        for variant in ["control", "Holdout", "rest ", "_rest"] {
            let bad = Exposure::new("shop", HOLDOUT_EXPERIMENT, variant, "u1", 3, 1_800_000_000_000);
            let error = bad.validate().unwrap_err();
            assert_eq!(error.field, "variant", "{variant}");
            assert!(error.reason.contains("not a holdout variant"), "{}", error.reason);
        }
        let mut wrong_id = Exposure::new("shop", HOLDOUT_EXPERIMENT, HOLDOUT_VARIANT, "u1", 3, 1_800_000_000_000);
        wrong_id.id = Exposure::idempotency_id("shop", "holdout", "u1");
        assert_eq!(wrong_id.validate().unwrap_err().field, "id");
    }
}
