//! Cohort's assignment engine: one pure function from (tenant config, request context) to
//! variants, shared by the edge worker, the browser build and the `cohort` CLI.
//!
//! No I/O, no clock, no randomness: callers pass `now` and random bytes in, so every caller
//! computes exactly the same assignments.
//!
//! # Example
//! ```
//! use std::collections::BTreeMap;
//! use cohort_core::{Context, Outcome, Tenant};
//!
//! let tenant = Tenant::from_json(r#"{
//!   "schema": 1, "tenant": "shop", "version": 7, "hostnames": ["shop.example"],
//!   "hash_key": "000102030405060708090a0b0c0d0e0f",
//!   "experiments": [{
//!     "key": "checkout-button", "status": "running", "paths": ["/checkout"],
//!     "targeting": {"country": {"$in": ["DE", "AT"]}},
//!     "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]
//!   }]
//! }"#).unwrap();
//!
//! let attributes = serde_json::json!({"country": "DE"});
//! let forced = BTreeMap::new();
//! let context = Context {
//!     unit_id: "visitor-1", attributes: &attributes, path: "/checkout",
//!     now_ms: 1_800_000_000_000, sticky: &[], forced: &forced,
//! };
//! let evaluation = tenant.evaluate(&context);
//! let decision = &evaluation.decisions[0];
//! assert!(matches!(decision.outcome, Outcome::Assigned { .. }));
//! assert!(["control", "green"].contains(&decision.variant_key().unwrap()));
//! ```
#![deny(missing_docs)]

pub mod beacon;
pub mod bucket;
pub mod condition;
pub mod config;
pub mod config_diff;
pub mod cookie;
pub mod delivery;
pub mod edge;
pub mod encoding;
mod error;
pub mod evaluate;
pub mod exposure;
pub mod metric;
pub mod paths;
mod pattern;
pub mod preview;
pub mod secrets;
pub mod simulation;
mod tenant;
pub mod time;
pub mod wire;

pub use condition::{Condition, ConditionError};
pub use config::{
    Action, EdgeConfig, HashMode, InsertPosition, MetricConfig, MetricDirection, MetricKind, Status, TenantConfig,
};
pub use cookie::{CookieError, StickyCookie, StickyEntry};
pub use error::{ConfigError, ConfigErrorKind};
pub use evaluate::{Context, Decision, Evaluation, Outcome, Reason, Source};
pub use exposure::{Conversion, DeviceClass, Exposure, RecordError};
pub use metric::{MAX_CONVERSION_VALUE, MetricDefinition};
pub use secrets::{BeaconKey, CookieKey, MasterSecret};
pub use tenant::{
    Experiment, LayerSlot, MAX_EXPERIMENTS, MAX_KEY_LEN, MAX_VARIANTS, Tenant, Variant, tenant_id_problem,
};
