//! What changed between two versions of a tenant's config, and which changes move units that
//! are already assigned (docs/config.md, "What moves units").
//!
//! The control plane shows this diff for every stored version and refuses a change that moves
//! units unless its author forces it. A change moves units when a unit already in a running or
//! paused experiment could be served another variant, or leave the experiment, because of it.
//!
//! # Example
//! ```
//! use cohort_core::config_diff::{UnitMove, diff};
//! use cohort_core::TenantConfig;
//!
//! let before: TenantConfig = serde_json::from_str(r#"{"schema": 1, "tenant": "shop", "version": 1,
//!   "hostnames": ["shop.example"], "hash_key": "000102030405060708090a0b0c0d0e0f",
//!   "experiments": [{"key": "cta", "status": "running", "coverage": 2000,
//!     "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]}]}"#).unwrap();
//! let mut after = before.clone();
//! after.experiments[0].coverage = 5000;
//! assert!(!diff(&before, &after).moves_units());
//! after.experiments[0].variants.swap(0, 1);
//! let changes = diff(&before, &after);
//! assert_eq!(changes.experiments[0].moves, vec![UnitMove::VariantsReordered]);
//! ```

use serde::Serialize;

use crate::config::{ExperimentConfig, Status, TenantConfig};

/// A change that can serve an already assigned unit another variant, or drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UnitMove {
    /// The experiment's `seed` changed: new units are reshuffled.
    SeedChanged,
    /// The experiment's `hash` changed: new units are reshuffled.
    HashChanged,
    /// Variants changed places: sticky cookies store the index, so units now get another variant.
    VariantsReordered,
    /// A variant was removed: later indices shift.
    VariantRemoved,
    /// Weights changed: units without a sticky cookie are bucketed into other ranges, and results
    /// mix two allocations.
    WeightsChanged,
    /// Coverage went down: units without a sticky cookie leave the experiment.
    CoverageLowered,
    /// The experiment's layer or its range changed.
    LayerChanged,
    /// The tenant's `hash_key` changed: every experiment is reshuffled and cookies stop verifying.
    HashKeyChanged,
    /// The tenant holdout's share changed: units move into or out of the holdout.
    HoldoutChanged,
}

impl UnitMove {
    /// What the change does to assigned units, in words for people.
    pub fn explain(self) -> &'static str {
        match self {
            UnitMove::SeedChanged => "changing the seed reshuffles units",
            UnitMove::HashChanged => "changing the hash reshuffles units",
            UnitMove::VariantsReordered => "reordering variants serves sticky units another variant",
            UnitMove::VariantRemoved => "removing a variant shifts the variants after it",
            UnitMove::WeightsChanged => "changing weights buckets units into other variants",
            UnitMove::CoverageLowered => "lowering coverage drops units from the experiment",
            UnitMove::LayerChanged => "changing the layer moves units in or out of the experiment",
            UnitMove::HashKeyChanged => "changing hash_key reshuffles every experiment",
            UnitMove::HoldoutChanged => "changing the holdout moves units in or out of every experiment",
        }
    }
}

/// A value before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Change_{T}"))]
pub struct Change<T> {
    /// In the earlier version.
    pub from: T,
    /// In the later version.
    pub to: T,
}

fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

/// How one experiment present in both versions changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExperimentDiff {
    /// Experiment key.
    pub key: String,
    /// Lifecycle status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<Status>>,
    /// The variant served after a stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<Change<Option<String>>>,
    /// Coverage in basis points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Change<u32>>,
    /// Variants as `(key, weight)` in order, when keys, order or weights changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<Change<Vec<(String, u32)>>>,
    /// Whether the targeting condition or the paths changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub targeting_changed: bool,
    /// Whether any variant's actions changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub actions_changed: bool,
    /// Whether anything else changed (name, description, schedule, seed, hash, layer).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other_changed: bool,
    /// Changes that move already assigned units; empty unless units are assigned (the earlier
    /// version has the experiment running or paused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<UnitMove>,
}

/// Everything that changed between two versions of one tenant's config.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfigDiff {
    /// Keys of experiments only the later version has.
    pub added: Vec<String>,
    /// Keys of experiments only the earlier version has.
    pub removed: Vec<String>,
    /// Experiments in both versions that changed, in the later version's order.
    pub experiments: Vec<ExperimentDiff>,
    /// Hostnames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostnames: Option<Change<Vec<String>>>,
    /// Names of the other tenant-level sections that changed (`hash_key`, `holdout`, `layers`,
    /// `edge`, `metrics`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<&'static str>,
    /// Tenant-level changes that move assigned units.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<UnitMove>,
}

impl ConfigDiff {
    /// Whether any change moves already assigned units.
    pub fn moves_units(&self) -> bool {
        !self.moves.is_empty() || self.experiments.iter().any(|e| !e.moves.is_empty())
    }

    /// Whether the two versions are the same apart from `version`.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.experiments.is_empty()
            && self.hostnames.is_none()
            && self.sections.is_empty()
    }

    /// One line per unit-moving change, `experiments[cta]: reordering variants …`, for error
    /// messages.
    pub fn unit_moves(&self) -> Vec<String> {
        let tenant = self.moves.iter().map(|m| m.explain().to_owned());
        let experiments = self.experiments.iter().flat_map(|e| {
            e.moves
                .iter()
                .map(move |m| format!("experiment `{}`: {}", e.key, m.explain()))
        });
        tenant.chain(experiments).collect()
    }
}

fn variant_weights(experiment: &ExperimentConfig) -> Vec<(String, u32)> {
    experiment
        .variants
        .iter()
        .map(|variant| (variant.key.clone(), variant.weight))
        .collect()
}

/// The changes from `before` to `after` of one experiment that rebucket or drop units, whatever
/// the experiments' status (the caller decides whether units were assigned under `before`).
pub fn experiment_moves(before: &ExperimentConfig, after: &ExperimentConfig) -> Vec<UnitMove> {
    let before_variants = variant_weights(before);
    let after_variants = variant_weights(after);
    let before_keys: Vec<&str> = before_variants.iter().map(|(key, _)| key.as_str()).collect();
    let after_keys: Vec<&str> = after_variants.iter().map(|(key, _)| key.as_str()).collect();
    let mut moves = Vec::new();
    if before.seed.as_deref().unwrap_or(&before.key) != after.seed.as_deref().unwrap_or(&after.key) {
        moves.push(UnitMove::SeedChanged);
    }
    if before.hash != after.hash {
        moves.push(UnitMove::HashChanged);
    }
    if before_keys.iter().any(|key| !after_keys.contains(key)) {
        moves.push(UnitMove::VariantRemoved);
    } else if after_keys[..before_keys.len().min(after_keys.len())] != before_keys[..] {
        moves.push(UnitMove::VariantsReordered);
    }
    let weight_of =
        |variants: &[(String, u32)], key: &str| variants.iter().find(|(k, _)| k == key).map(|&(_, weight)| weight);
    if before_keys
        .iter()
        .any(|key| weight_of(&after_variants, key).is_some_and(|w| Some(w) != weight_of(&before_variants, key)))
    {
        moves.push(UnitMove::WeightsChanged);
    }
    if after.coverage < before.coverage {
        moves.push(UnitMove::CoverageLowered);
    }
    if before.layer != after.layer {
        moves.push(UnitMove::LayerChanged);
    }
    moves
}

/// Whether units are assigned under an experiment in this status (running, or paused with its
/// units kept).
pub fn assigns_units(status: Status) -> bool {
    matches!(status, Status::Running | Status::Paused)
}

fn experiment_diff(before: &ExperimentConfig, after: &ExperimentConfig) -> Option<ExperimentDiff> {
    let before_variants = variant_weights(before);
    let after_variants = variant_weights(after);
    let moves = if assigns_units(before.status) {
        experiment_moves(before, after)
    } else {
        Vec::new()
    };

    let actions = |e: &ExperimentConfig| e.variants.iter().map(|v| v.actions.clone()).collect::<Vec<_>>();
    let diff = ExperimentDiff {
        key: after.key.clone(),
        status: change(&before.status, &after.status),
        winner: change(&before.winner, &after.winner),
        coverage: change(&before.coverage, &after.coverage),
        variants: change(&before_variants, &after_variants),
        targeting_changed: before.targeting != after.targeting || before.paths != after.paths,
        actions_changed: actions(before) != actions(after),
        other_changed: before.name != after.name
            || before.description != after.description
            || before.start != after.start
            || before.end != after.end
            || before.seed != after.seed
            || before.hash != after.hash
            || before.layer != after.layer,
        moves,
    };
    let unchanged = diff.status.is_none()
        && diff.winner.is_none()
        && diff.coverage.is_none()
        && diff.variants.is_none()
        && !diff.targeting_changed
        && !diff.actions_changed
        && !diff.other_changed;
    (!unchanged).then_some(diff)
}

/// What changed from `before` to `after` (the `version` field is ignored).
pub fn diff(before: &TenantConfig, after: &TenantConfig) -> ConfigDiff {
    let find = |config: &TenantConfig, key: &str| config.experiments.iter().find(|e| e.key == key).cloned();
    let added = after
        .experiments
        .iter()
        .filter(|e| find(before, &e.key).is_none())
        .map(|e| e.key.clone())
        .collect();
    let removed = before
        .experiments
        .iter()
        .filter(|e| find(after, &e.key).is_none())
        .map(|e| e.key.clone())
        .collect();
    let experiments = after
        .experiments
        .iter()
        .filter_map(|e| find(before, &e.key).and_then(|earlier| experiment_diff(&earlier, e)))
        .collect();

    let mut sections = Vec::new();
    if !before.hash_key.eq_ignore_ascii_case(&after.hash_key) {
        sections.push("hash_key");
    }
    if before.holdout != after.holdout {
        sections.push("holdout");
    }
    if before.layers != after.layers {
        sections.push("layers");
    }
    if before.edge != after.edge {
        sections.push("edge");
    }
    if before.metrics != after.metrics {
        sections.push("metrics");
    }
    let mut moves = Vec::new();
    if before.experiments.iter().any(|e| assigns_units(e.status)) {
        if sections.contains(&"hash_key") {
            moves.push(UnitMove::HashKeyChanged);
        }
        if sections.contains(&"holdout") {
            moves.push(UnitMove::HoldoutChanged);
        }
    }
    ConfigDiff {
        added,
        removed,
        experiments,
        hostnames: change(&before.hostnames, &after.hostnames),
        sections,
        moves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> TenantConfig {
        serde_json::from_value(serde_json::json!({
            "schema": 1, "tenant": "shop", "version": 1, "hostnames": ["shop.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "experiments": [
                {"key": "cta", "status": "running", "coverage": 5000,
                 "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]},
                {"key": "hero", "status": "draft",
                 "variants": [{"key": "a", "weight": 5000}, {"key": "b", "weight": 5000}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn an_unchanged_config_has_an_empty_diff() {
        let mut next = shop();
        next.version = 2;
        let changes = diff(&shop(), &next);
        assert!(changes.is_empty(), "{changes:?}");
        assert!(!changes.moves_units());
    }

    #[test]
    fn ramping_up_and_starting_move_nobody() {
        let mut next = shop();
        next.experiments[0].coverage = 8000;
        next.experiments[1].status = Status::Running;
        let changes = diff(&shop(), &next);
        assert!(!changes.moves_units());
        assert_eq!(changes.experiments.len(), 2);
        assert_eq!(changes.experiments[0].coverage, Some(Change { from: 5000, to: 8000 }));
        assert_eq!(
            changes.experiments[1].status,
            Some(Change {
                from: Status::Draft,
                to: Status::Running
            })
        );
    }

    #[test]
    fn each_unit_moving_change_of_a_running_experiment_is_named() {
        type Edit = fn(&mut TenantConfig);
        let cases: Vec<(Edit, Vec<UnitMove>)> = vec![
            (
                |c| c.experiments[0].seed = Some("other".into()),
                vec![UnitMove::SeedChanged],
            ),
            (
                |c| c.experiments[0].variants.swap(0, 1),
                vec![UnitMove::VariantsReordered],
            ),
            (
                |c| {
                    c.experiments[0].variants[0].weight = 2000;
                    c.experiments[0].variants[1].weight = 8000;
                },
                vec![UnitMove::WeightsChanged],
            ),
            (|c| c.experiments[0].coverage = 1000, vec![UnitMove::CoverageLowered]),
            (
                |c| {
                    c.experiments[0].variants.remove(0);
                    c.experiments[0].variants[0].weight = 10000;
                },
                vec![UnitMove::VariantRemoved, UnitMove::WeightsChanged],
            ),
        ];
        for (edit, expected) in cases {
            let mut next = shop();
            edit(&mut next);
            let changes = diff(&shop(), &next);
            assert_eq!(changes.experiments[0].moves, expected);
            assert!(changes.moves_units());
            assert!(changes.unit_moves()[0].starts_with("experiment `cta`: "));
        }
    }

    #[test]
    fn a_draft_experiment_moves_nobody_whatever_changes() {
        let mut next = shop();
        next.experiments[1].variants.swap(0, 1);
        next.experiments[1].seed = Some("other".into());
        let changes = diff(&shop(), &next);
        assert!(!changes.moves_units());
        assert!(changes.experiments[0].other_changed);
    }

    #[test]
    fn tenant_level_changes_are_listed_and_the_reshuffling_ones_flagged() {
        let mut next = shop();
        next.hash_key = "ffffffffffffffffffffffffffffffff".into();
        next.holdout = 500;
        next.hostnames.push("www.shop.example".into());
        next.experiments.push(next.experiments[1].clone());
        next.experiments[2].key = "new".into();
        next.experiments.remove(1);
        let changes = diff(&shop(), &next);
        assert_eq!(changes.sections, vec!["hash_key", "holdout"]);
        assert_eq!(changes.moves, vec![UnitMove::HashKeyChanged, UnitMove::HoldoutChanged]);
        assert_eq!(changes.added, vec!["new"]);
        assert_eq!(changes.removed, vec!["hero"]);
        assert!(changes.hostnames.is_some());
        // Same key in either case is the same key.
        let mut upper = shop();
        upper.hash_key = upper.hash_key.to_ascii_uppercase();
        assert!(diff(&shop(), &upper).is_empty());
    }
}
