//! Lifecycle shortcuts: start, pause, stop with a winner, ramp coverage, change weights. Each
//! edits one experiment of the latest config; the result is validated and stored like any other
//! version (docs/control-plane.md, "Lifecycle").

use std::collections::BTreeMap;

use cohort_core::bucket::BUCKETS;
use cohort_core::{Status, TenantConfig};
use serde::Deserialize;

/// What a lifecycle request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "LifecycleAction")]
pub enum Action {
    /// Draft, paused or stopped → running.
    Start,
    /// Running → paused.
    Pause,
    /// → stopped, serving `winner` (if given) to everyone.
    Stop,
    /// Set `coverage`.
    Ramp,
    /// Set every variant's weight.
    Weights,
}

/// The body of `POST /v1/tenants/{tenant}/experiments/{experiment}/lifecycle`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    /// What to do.
    pub action: Action,
    /// With `stop`: the variant everyone is served afterwards.
    #[serde(default)]
    pub winner: Option<String>,
    /// With `ramp`: the new coverage in basis points.
    #[serde(default)]
    pub coverage: Option<u32>,
    /// With `weights`: every variant's new weight in basis points.
    #[serde(default)]
    pub weights: Option<BTreeMap<String, u32>>,
    /// Why, for the history.
    #[serde(default)]
    pub comment: Option<String>,
    /// Apply even if the change moves already assigned units.
    #[serde(default)]
    pub force: bool,
    /// Answer the version and its diff without storing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Applies `request` to experiment `key` of `config`; the error says why it does not apply.
pub fn apply(config: &mut TenantConfig, key: &str, request: &LifecycleRequest) -> Result<(), String> {
    let fields = [
        ("winner", request.winner.is_some(), Action::Stop),
        ("coverage", request.coverage.is_some(), Action::Ramp),
        ("weights", request.weights.is_some(), Action::Weights),
    ];
    for (field, given, belongs_to) in fields {
        if given && request.action != belongs_to {
            return Err(format!(
                "`{field}` does not go with action `{}`",
                action_name(request.action)
            ));
        }
    }
    let experiment = config
        .experiments
        .iter_mut()
        .find(|e| e.key == key)
        .ok_or_else(|| format!("the config has no experiment `{key}`"))?;
    let status = experiment.status;
    match request.action {
        Action::Start => {
            if status == Status::Running {
                return Err(format!("`{key}` is already running"));
            }
            experiment.status = Status::Running;
            experiment.winner = None;
        }
        Action::Pause => {
            if status != Status::Running {
                return Err(format!(
                    "only a running experiment can be paused; `{key}` is {}",
                    status_name(status)
                ));
            }
            experiment.status = Status::Paused;
        }
        Action::Stop => {
            if let Some(winner) = &request.winner
                && !experiment.variants.iter().any(|v| &v.key == winner)
            {
                return Err(format!("`{key}` has no variant `{winner}` to declare the winner"));
            }
            if status == Status::Stopped && experiment.winner == request.winner {
                return Err(format!("`{key}` is already stopped with that winner"));
            }
            experiment.status = Status::Stopped;
            experiment.winner.clone_from(&request.winner);
        }
        Action::Ramp => {
            let coverage = request
                .coverage
                .ok_or("`ramp` needs `coverage` (basis points, 0 to 10000)")?;
            if coverage > BUCKETS {
                return Err(format!("coverage {coverage} is above {BUCKETS} basis points"));
            }
            if coverage == experiment.coverage {
                return Err(format!("`{key}` is already at coverage {coverage}"));
            }
            experiment.coverage = coverage;
        }
        Action::Weights => {
            let weights = request
                .weights
                .as_ref()
                .ok_or("`weights` needs `weights`: every variant's weight in basis points")?;
            if let Some(unknown) = weights
                .keys()
                .find(|k| !experiment.variants.iter().any(|v| &v.key == *k))
            {
                return Err(format!("`{key}` has no variant `{unknown}`"));
            }
            let new_weights = experiment
                .variants
                .iter()
                .map(|v| {
                    weights
                        .get(&v.key)
                        .copied()
                        .ok_or_else(|| format!("`weights` lacks variant `{}`", v.key))
                })
                .collect::<Result<Vec<u32>, String>>()?;
            for (variant, weight) in experiment.variants.iter_mut().zip(new_weights) {
                variant.weight = weight;
            }
        }
    }
    Ok(())
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Start => "start",
        Action::Pause => "pause",
        Action::Stop => "stop",
        Action::Ramp => "ramp",
        Action::Weights => "weights",
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> TenantConfig {
        serde_json::from_value(serde_json::json!({
            "schema": 1, "tenant": "shop", "version": 1, "hostnames": ["shop.example"],
            "hash_key": "000102030405060708090a0b0c0d0e0f",
            "experiments": [{"key": "cta", "status": "draft", "coverage": 2000,
                "variants": [{"key": "control", "weight": 5000}, {"key": "green", "weight": 5000}]}]
        }))
        .unwrap()
    }

    fn request(json: serde_json::Value) -> LifecycleRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_action_edits_the_experiment() {
        let mut config = shop();
        apply(&mut config, "cta", &request(serde_json::json!({"action": "start"}))).unwrap();
        assert_eq!(config.experiments[0].status, Status::Running);
        apply(
            &mut config,
            "cta",
            &request(serde_json::json!({"action": "ramp", "coverage": 5000})),
        )
        .unwrap();
        assert_eq!(config.experiments[0].coverage, 5000);
        apply(&mut config, "cta", &request(serde_json::json!({"action": "pause"}))).unwrap();
        assert_eq!(config.experiments[0].status, Status::Paused);
        let weights = serde_json::json!({"action": "weights", "weights": {"control": 2000, "green": 8000}});
        apply(&mut config, "cta", &request(weights)).unwrap();
        assert_eq!(config.experiments[0].variants[1].weight, 8000);
        apply(
            &mut config,
            "cta",
            &request(serde_json::json!({"action": "stop", "winner": "green"})),
        )
        .unwrap();
        assert_eq!(config.experiments[0].status, Status::Stopped);
        assert_eq!(config.experiments[0].winner.as_deref(), Some("green"));
        apply(&mut config, "cta", &request(serde_json::json!({"action": "start"}))).unwrap();
        assert_eq!(config.experiments[0].winner, None);
    }

    #[test]
    fn changes_that_do_not_apply_say_why_and_change_nothing() {
        let cases = [
            (
                serde_json::json!({"action": "pause"}),
                "only a running experiment can be paused; `cta` is draft",
            ),
            (
                serde_json::json!({"action": "ramp", "coverage": 2000}),
                "`cta` is already at coverage 2000",
            ),
            (
                serde_json::json!({"action": "ramp", "coverage": 10001}),
                "coverage 10001 is above 10000 basis points",
            ),
            (
                serde_json::json!({"action": "ramp"}),
                "`ramp` needs `coverage` (basis points, 0 to 10000)",
            ),
            (
                serde_json::json!({"action": "start", "coverage": 5}),
                "`coverage` does not go with action `start`",
            ),
            (
                serde_json::json!({"action": "stop", "winner": "blue"}),
                "`cta` has no variant `blue` to declare the winner",
            ),
            (
                serde_json::json!({"action": "weights", "weights": {"control": 10000}}),
                "`weights` lacks variant `green`",
            ),
            (
                serde_json::json!({"action": "weights", "weights": {"control": 5000, "green": 4000, "red": 1000}}),
                "`cta` has no variant `red`",
            ),
        ];
        for (json, expected) in cases {
            let mut config = shop();
            assert_eq!(apply(&mut config, "cta", &request(json)).unwrap_err(), expected);
            assert_eq!(config, shop());
        }
        let mut config = shop();
        assert_eq!(
            apply(&mut config, "hero", &request(serde_json::json!({"action": "start"}))).unwrap_err(),
            "the config has no experiment `hero`"
        );
        assert!(serde_json::from_value::<LifecycleRequest>(serde_json::json!({"action": "start", "typo": 1})).is_err());
    }
}
