//! `testdata/evaluations.json`, written by `testdata/reference.py`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whole-config evaluation vectors: one tenant config, many request contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationVectors {
    /// How to run the cases, for readers of the file.
    pub description: String,
    /// A tenant config (docs/config.md). Its schema is the engine's, so it stays JSON here.
    pub config: Value,
    /// The contexts and the decisions `config` gives for each.
    pub cases: Vec<EvaluationCase>,
}

/// One request context and what evaluating the config for it gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationCase {
    /// The request.
    pub context: EvaluationContext,
    /// One decision per experiment, in config order.
    pub expected: Vec<ExpectedDecision>,
    /// The variant of the unit's tenant-holdout record (experiment `_holdout`), sent once when the
    /// edge issues the unit id; `null` for a tenant without a holdout.
    pub holdout: Option<HoldoutVariant>,
}

/// A request context. Without `sticky` it is also the context JSON the browser build's
/// `Engine.evaluate` takes, so it serialises back to the file's form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationContext {
    /// The unit id.
    pub unit: String,
    /// The request path, without query string.
    pub path: String,
    /// Targeting attributes (any JSON value; a non-object counts as no attributes).
    pub attributes: Value,
    /// The time of the request, Unix milliseconds.
    pub now: i64,
    /// QA overrides: experiment key to variant key (absent when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forced: BTreeMap<String, String>,
    /// Sticky assignments from the unit's cookie (absent when empty). Pages have no access to the
    /// cookie, so the browser build skips these cases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sticky: Vec<StickyAssignment>,
}

/// A sticky assignment, by experiment key and variant index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyAssignment {
    /// The experiment's key.
    pub experiment: String,
    /// The variant index; may be out of range, which the engine must ignore.
    pub variant: u8,
    /// Whether the exposure was already sent.
    pub exposed: bool,
}

/// A decision, as the engine's JSON form writes it: an assignment or an exclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpectedDecision {
    /// The unit gets a variant.
    Assigned(Assignment),
    /// The unit is not in the experiment.
    Excluded(Exclusion),
}

/// A variant given to the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The experiment's key.
    pub experiment: String,
    /// The variant's key.
    pub variant: String,
    /// How the variant was chosen.
    pub source: Source,
    /// The unit's experiment bucket when bucketing chose the variant; `null` otherwise.
    pub bucket: Option<u32>,
    /// Whether the caller logs an exposure now.
    pub exposure: bool,
}

/// How an assigned variant was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// By bucketing the unit now.
    Bucketed,
    /// Kept from the unit's sticky cookie.
    Sticky,
    /// A QA override.
    Forced,
    /// The winner of a stopped experiment.
    Winner,
}

/// Why the unit is not in an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// The experiment's key.
    pub experiment: String,
    /// The reason.
    pub reason: ExclusionReason,
    /// The bucket that decided, present exactly for `holdout` (the holdout bucket),
    /// `outside_layer` (the layer bucket) and `outside_coverage` (the experiment bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u32>,
    /// The forced variant key the experiment does not have, present exactly for
    /// `unknown_forced_variant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_variant: Option<String>,
}

/// The reason codes of an exclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// The request path is not one of the experiment's paths.
    PathNotMatched,
    /// A forced variant key the experiment does not have.
    UnknownForcedVariant,
    /// The experiment is a draft.
    Draft,
    /// Stopped without a winner.
    Stopped,
    /// Before the experiment's start.
    NotStarted,
    /// At or after the experiment's end.
    Ended,
    /// Paused, and the unit was not already in it.
    Paused,
    /// The targeting condition does not match.
    NotTargeted,
    /// The unit is in the tenant holdout.
    Holdout,
    /// The unit's layer bucket belongs to another experiment.
    OutsideLayer,
    /// The unit's bucket is outside the experiment's coverage.
    OutsideCoverage,
}

impl ExclusionReason {
    /// Whether an exclusion for this reason carries the deciding bucket.
    pub fn has_bucket(self) -> bool {
        matches!(
            self,
            ExclusionReason::Holdout | ExclusionReason::OutsideLayer | ExclusionReason::OutsideCoverage
        )
    }
}

/// The variant of a unit's tenant-holdout record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldoutVariant {
    /// The unit is in the holdout.
    Holdout,
    /// The unit is in the rest of the traffic.
    Rest,
}

impl HoldoutVariant {
    /// The variant key, as the record carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldoutVariant::Holdout => "holdout",
            HoldoutVariant::Rest => "rest",
        }
    }
}

impl ExpectedDecision {
    /// The experiment's key.
    pub fn experiment(&self) -> &str {
        match self {
            ExpectedDecision::Assigned(assignment) => &assignment.experiment,
            ExpectedDecision::Excluded(exclusion) => &exclusion.experiment,
        }
    }

    /// Which optional fields a decision carries follows from its source or reason.
    fn check(&self) -> Result<(), String> {
        let consistent = match self {
            ExpectedDecision::Assigned(assignment) => {
                assignment.bucket.is_some() == (assignment.source == Source::Bucketed)
            }
            ExpectedDecision::Excluded(exclusion) => {
                exclusion.bucket.is_some() == exclusion.reason.has_bucket()
                    && exclusion.forced_variant.is_some() == (exclusion.reason == ExclusionReason::UnknownForcedVariant)
            }
        };
        if consistent {
            Ok(())
        } else {
            Err(format!(
                "decision for `{}`: `bucket` or `forced_variant` does not fit its source or reason: {self:?}",
                self.experiment()
            ))
        }
    }
}

impl EvaluationVectors {
    /// Parses the file's text and checks each decision's optional fields against its source or
    /// reason.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let vectors: EvaluationVectors = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for case in &vectors.cases {
            for decision in &case.expected {
                decision
                    .check()
                    .map_err(|e| format!("context for unit `{}`: {e}", case.context.unit))?;
            }
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(json: &str) -> Result<(), String> {
        let decision: ExpectedDecision = serde_json::from_str(json).map_err(|e| e.to_string())?;
        decision.check()
    }

    #[test]
    fn assignments_and_exclusions_are_told_apart_by_their_fields() {
        let assigned = r#"{"experiment": "e", "variant": "b", "source": "sticky", "bucket": null, "exposure": false}"#;
        assert!(matches!(
            serde_json::from_str(assigned).unwrap(),
            ExpectedDecision::Assigned(Assignment {
                source: Source::Sticky,
                ..
            })
        ));
        let excluded = r#"{"experiment": "e", "reason": "holdout", "bucket": 12}"#;
        assert!(matches!(
            serde_json::from_str(excluded).unwrap(),
            ExpectedDecision::Excluded(Exclusion {
                reason: ExclusionReason::Holdout,
                bucket: Some(12),
                ..
            })
        ));
        let both = r#"{"experiment": "e", "variant": "b", "source": "sticky", "bucket": null, "exposure": false,
            "reason": "paused"}"#;
        assert!(serde_json::from_str::<ExpectedDecision>(both).is_err());
        let unknown_reason = r#"{"experiment": "e", "reason": "sunset"}"#;
        assert!(serde_json::from_str::<ExpectedDecision>(unknown_reason).is_err());
    }

    #[test]
    fn optional_fields_follow_the_source_or_reason() {
        assert!(
            decision(r#"{"experiment": "e", "variant": "b", "source": "bucketed", "bucket": 7, "exposure": true}"#)
                .is_ok()
        );
        assert!(
            decision(r#"{"experiment": "e", "variant": "b", "source": "bucketed", "bucket": null, "exposure": true}"#)
                .is_err()
        );
        assert!(
            decision(r#"{"experiment": "e", "variant": "b", "source": "forced", "bucket": 7, "exposure": false}"#)
                .is_err()
        );
        assert!(decision(r#"{"experiment": "e", "reason": "outside_layer"}"#).is_err());
        assert!(decision(r#"{"experiment": "e", "reason": "paused", "bucket": 7}"#).is_err());
        assert!(decision(r#"{"experiment": "e", "reason": "unknown_forced_variant", "forced_variant": "x"}"#).is_ok());
        assert!(decision(r#"{"experiment": "e", "reason": "draft", "forced_variant": "x"}"#).is_err());
    }
}
