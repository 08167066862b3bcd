//! Evaluating a whole tenant for one request: for each experiment, the variant or why not.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::bucket::{self, growthbook};
use crate::condition::Attributes;
use crate::config::{HashMode, Status};
use crate::cookie::StickyEntry;
use crate::exposure::{HOLDOUT_REST_VARIANT, HOLDOUT_VARIANT};
use crate::tenant::{Experiment, Tenant};

/// Everything evaluation needs to know about one request. The engine has no clock and no I/O.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The unit (visitor) id being assigned.
    pub unit_id: &'a str,
    /// Targeting attributes (a JSON object; anything else counts as no attributes).
    pub attributes: &'a Value,
    /// Request path without query string.
    pub path: &'a str,
    /// Current time, Unix milliseconds.
    pub now_ms: i64,
    /// Sticky assignments from the unit's verified cookie (empty for a new unit).
    pub sticky: &'a [StickyEntry],
    /// QA overrides, experiment key → variant key. The caller decides who may force.
    pub forced: &'a BTreeMap<String, String>,
}

/// How an assigned variant was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// By bucketing the unit now.
    Bucketed,
    /// Kept from the unit's sticky cookie.
    Sticky,
    /// Forced by a QA override.
    Forced,
    /// The winner of a stopped experiment.
    Winner,
}

/// Why a unit is not in an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The request path is not one of the experiment's paths.
    PathNotMatched,
    /// The experiment is a draft.
    Draft,
    /// The experiment is paused and the unit was not already in it.
    Paused,
    /// The experiment is stopped without a winner.
    Stopped,
    /// Before the start time.
    NotStarted,
    /// At or after the end time.
    Ended,
    /// The targeting condition does not match.
    NotTargeted,
    /// The unit is in the tenant holdout.
    HeldOut {
        /// The unit's holdout bucket.
        bucket: u32,
    },
    /// The unit's layer bucket belongs to another experiment.
    OutsideLayer {
        /// The unit's bucket in the layer.
        bucket: u32,
    },
    /// The unit's bucket is outside the experiment's coverage.
    OutsideCoverage {
        /// The unit's bucket in the experiment.
        bucket: u32,
    },
    /// A forced variant key that the experiment does not have.
    UnknownForcedVariant(String),
}

impl Reason {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::PathNotMatched => "path_not_matched",
            Reason::Draft => "draft",
            Reason::Paused => "paused",
            Reason::Stopped => "stopped",
            Reason::NotStarted => "not_started",
            Reason::Ended => "ended",
            Reason::NotTargeted => "not_targeted",
            Reason::HeldOut { .. } => "holdout",
            Reason::OutsideLayer { .. } => "outside_layer",
            Reason::OutsideCoverage { .. } => "outside_coverage",
            Reason::UnknownForcedVariant(_) => "unknown_forced_variant",
        }
    }
}

/// The result for one experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The unit gets a variant.
    Assigned {
        /// Index into the experiment's variants.
        variant: usize,
        /// How it was chosen.
        source: Source,
        /// The unit's experiment bucket, when bucketing chose the variant.
        bucket: Option<u32>,
        /// Whether the caller should log an exposure now (first assignment in a running
        /// experiment, or a sticky one whose exposure was never sent).
        log_exposure: bool,
    },
    /// The unit is not in the experiment.
    Excluded(Reason),
}

/// One experiment's decision.
#[derive(Debug, Clone)]
pub struct Decision<'t> {
    /// The experiment.
    pub experiment: &'t Experiment,
    /// What happened.
    pub outcome: Outcome,
}

impl Decision<'_> {
    /// The assigned variant's key, if any.
    pub fn variant_key(&self) -> Option<&str> {
        match self.outcome {
            Outcome::Assigned { variant, .. } => Some(&self.experiment.variants[variant].key),
            Outcome::Excluded(_) => None,
        }
    }

    /// The decision as JSON (its [`Serialize`] form).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("plain data")
    }
}

impl Source {
    /// The source's name in the decision JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Bucketed => "bucketed",
            Source::Sticky => "sticky",
            Source::Forced => "forced",
            Source::Winner => "winner",
        }
    }
}

/// The decision JSON the CLI, the browser build and the test vectors share: an assigned
/// experiment's `{bucket, experiment, exposure, source, variant}`, or an excluded one's
/// `{bucket?, experiment, forced_variant?, reason}`. Fields go out in name order, serialised
/// straight into the output (no intermediate `Value`: that took most of a page's `evaluate` call).
impl Serialize for Decision<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let experiment = &self.experiment.key;
        match &self.outcome {
            Outcome::Assigned {
                variant,
                source,
                bucket,
                log_exposure,
            } => {
                let mut map = serializer.serialize_map(Some(5))?;
                map.serialize_entry("bucket", bucket)?;
                map.serialize_entry("experiment", experiment)?;
                map.serialize_entry("exposure", log_exposure)?;
                map.serialize_entry("source", source.as_str())?;
                map.serialize_entry("variant", &self.experiment.variants[*variant].key)?;
                map.end()
            }
            Outcome::Excluded(reason) => {
                let mut map = serializer.serialize_map(None)?;
                if let Reason::HeldOut { bucket }
                | Reason::OutsideLayer { bucket }
                | Reason::OutsideCoverage { bucket } = reason
                {
                    map.serialize_entry("bucket", bucket)?;
                }
                map.serialize_entry("experiment", experiment)?;
                if let Reason::UnknownForcedVariant(variant) = reason {
                    map.serialize_entry("forced_variant", variant)?;
                }
                map.serialize_entry("reason", reason.code())?;
                map.end()
            }
        }
    }
}

/// Decisions for every experiment of a tenant, in config order.
#[derive(Debug, Clone)]
pub struct Evaluation<'t> {
    /// One decision per experiment.
    pub decisions: Vec<Decision<'t>>,
}

impl<'t> Evaluation<'t> {
    /// Decisions that assigned a variant.
    pub fn assigned(&self) -> impl Iterator<Item = &Decision<'t>> {
        self.decisions
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Assigned { .. }))
    }

    /// The sticky assignments to store after this request: bucketed and sticky assignments of
    /// experiments still running or paused (marked exposed), plus the previous cookie's entries for
    /// live experiments this request did not touch. Removed, stopped and ended experiments drop out;
    /// forced QA variants never stick.
    pub fn sticky_after(&self, previous: &[StickyEntry]) -> Vec<StickyEntry> {
        let mut entries = Vec::new();
        for decision in &self.decisions {
            let experiment = decision.experiment;
            match decision.outcome {
                Outcome::Assigned {
                    variant,
                    source: source @ (Source::Bucketed | Source::Sticky),
                    log_exposure,
                    ..
                } => {
                    // The bit records an exposure the caller sends now or sent before; a sticky unit
                    // of a paused experiment keeps an unsent exposure unsent until it resumes.
                    let sent_before = source == Source::Sticky
                        && previous
                            .iter()
                            .any(|e| e.experiment_id == experiment.cookie_id && e.exposed);
                    entries.push(StickyEntry {
                        experiment_id: experiment.cookie_id,
                        variant: variant as u8,
                        exposed: log_exposure || sent_before,
                    });
                }
                Outcome::Assigned { .. } | Outcome::Excluded(Reason::PathNotMatched) => {
                    let kept = previous.iter().find(|e| e.experiment_id == experiment.cookie_id);
                    if let Some(entry) = kept
                        && still_sticky(experiment, entry)
                    {
                        entries.push(*entry);
                    }
                }
                Outcome::Excluded(_) => {}
            }
        }
        entries
    }
}

/// GrowthBook's variant choice for `bucket`, with the bucket.
fn growthbook_choice(experiment: &Experiment, bucket: u32) -> (u32, Option<usize>) {
    let weights = experiment.variants.iter().map(|v| v.weight);
    (bucket, growthbook::choose_variant(weights, experiment.coverage, bucket))
}

fn still_sticky(experiment: &Experiment, entry: &StickyEntry) -> bool {
    matches!(experiment.status, Status::Running | Status::Paused)
        && usize::from(entry.variant) < experiment.variants.len()
}

impl Tenant {
    /// The unit's bucket in the tenant holdout (seed `holdout:<tenant>`); the unit is held out when
    /// it is below [`Tenant::holdout`].
    pub fn holdout_bucket(&self, unit_id: &str) -> u32 {
        bucket::bucket(&self.hash_key, &self.holdout_seed, unit_id)
    }

    /// The unit's tenant-holdout membership as the variant its holdout record carries
    /// ([`HOLDOUT_VARIANT`] or [`HOLDOUT_REST_VARIANT`]); `None` when the tenant has no holdout.
    pub fn holdout_variant(&self, unit_id: &str) -> Option<&'static str> {
        (self.holdout > 0).then(|| {
            if self.holdout_bucket(unit_id) < self.holdout {
                HOLDOUT_VARIANT
            } else {
                HOLDOUT_REST_VARIANT
            }
        })
    }

    /// Evaluates every experiment for one request.
    pub fn evaluate<'t>(&'t self, context: &Context<'_>) -> Evaluation<'t> {
        let mut buckets = UnitBuckets {
            holdout: None,
            layers: vec![None; self.layers.len()],
        };
        // Attribute lookups and conversions are made once per request, not once per experiment.
        let attributes = Attributes::new(context.attributes, self.attribute_slots);
        let decisions = self
            .experiments
            .iter()
            .map(|experiment| Decision {
                experiment,
                outcome: self.decide(experiment, context, &attributes, &mut buckets),
            })
            .collect();
        Evaluation { decisions }
    }

    fn decide(
        &self,
        experiment: &Experiment,
        context: &Context<'_>,
        attributes: &Attributes<'_>,
        buckets: &mut UnitBuckets,
    ) -> Outcome {
        if !experiment.paths.matches(context.path) {
            return Outcome::Excluded(Reason::PathNotMatched);
        }
        if let Some(forced) = context.forced.get(&experiment.key) {
            return match experiment.variant_index(forced) {
                Some(variant) => Outcome::Assigned {
                    variant,
                    source: Source::Forced,
                    bucket: None,
                    log_exposure: false,
                },
                None => Outcome::Excluded(Reason::UnknownForcedVariant(forced.clone())),
            };
        }
        match experiment.status {
            Status::Draft => return Outcome::Excluded(Reason::Draft),
            Status::Stopped => {
                return match experiment.winner {
                    Some(variant) => Outcome::Assigned {
                        variant,
                        source: Source::Winner,
                        bucket: None,
                        log_exposure: false,
                    },
                    None => Outcome::Excluded(Reason::Stopped),
                };
            }
            Status::Running | Status::Paused => {}
        }
        if experiment.start_ms.is_some_and(|start| context.now_ms < start) {
            return Outcome::Excluded(Reason::NotStarted);
        }
        if experiment.end_ms.is_some_and(|end| context.now_ms >= end) {
            return Outcome::Excluded(Reason::Ended);
        }
        // A unit keeps its variant while the experiment runs, even if weights, coverage or
        // targeting change: switching a visitor mid-experiment corrupts the results.
        if let Some(entry) = context.sticky.iter().find(|e| e.experiment_id == experiment.cookie_id)
            && usize::from(entry.variant) < experiment.variants.len()
        {
            return Outcome::Assigned {
                variant: usize::from(entry.variant),
                source: Source::Sticky,
                bucket: None,
                log_exposure: experiment.status == Status::Running && !entry.exposed,
            };
        }
        if experiment.status == Status::Paused {
            return Outcome::Excluded(Reason::Paused);
        }
        if !experiment.targeting.matches_attributes(attributes) {
            return Outcome::Excluded(Reason::NotTargeted);
        }
        if self.holdout > 0 {
            let bucket = *buckets
                .holdout
                .get_or_insert_with(|| self.holdout_bucket(context.unit_id));
            if bucket < self.holdout {
                return Outcome::Excluded(Reason::HeldOut { bucket });
            }
        }
        if let Some(slot) = &experiment.layer {
            let bucket = *buckets.layers[slot.index]
                .get_or_insert_with(|| bucket::bucket(&self.hash_key, &slot.seed, context.unit_id));
            if !slot.range.contains(bucket) {
                return Outcome::Excluded(Reason::OutsideLayer { bucket });
            }
        }
        let (bucket, variant) = match experiment.hash {
            HashMode::CohortV1 => {
                let bucket = bucket::bucket(&self.hash_key, &experiment.seed, context.unit_id);
                (bucket, bucket::choose_variant(&experiment.ranges, bucket))
            }
            HashMode::GrowthbookV2 => {
                growthbook_choice(experiment, growthbook::bucket_v2(&experiment.seed, context.unit_id))
            }
            HashMode::GrowthbookV1 => {
                growthbook_choice(experiment, growthbook::bucket_v1(&experiment.seed, context.unit_id))
            }
        };
        match variant {
            Some(variant) => Outcome::Assigned {
                variant,
                source: Source::Bucketed,
                bucket: Some(bucket),
                log_exposure: true,
            },
            None => Outcome::Excluded(Reason::OutsideCoverage { bucket }),
        }
    }
}

/// The unit's holdout and layer buckets, computed at most once per evaluation.
struct UnitBuckets {
    holdout: Option<u32>,
    layers: Vec<Option<u32>>,
}
