//! Properties users rely on: uniform buckets, ramp-up never moves an included unit, layers never
//! overlap, the holdout record matches the engine's holdout, sticky cookies round-trip, decoding
//! never panics.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use cohort_core::bucket::{self, HashKey};
use cohort_core::exposure::{HOLDOUT_REST_VARIANT, HOLDOUT_VARIANT};
use cohort_core::secrets::CookieKey;
use cohort_core::{Context, Evaluation, Outcome, Reason, StickyCookie, StickyEntry, Tenant};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Chi-square critical value for 99 degrees of freedom at p = 0.001.
const CHI2_99_P001: f64 = 148.23;

fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum()
}

#[test]
fn buckets_are_uniform_over_100k_ids() {
    let keys = ["000102030405060708090a0b0c0d0e0f", "9f3c2a7be1d04586a2c7e9f0b3d51e68"];
    let id_styles: [fn(u64) -> String; 3] = [
        |i| format!("visitor-{i}"), // sequential, shared prefix
        |i| {
            format!(
                "{:032x}",
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            )
        }, // edge-minted hex ids
        |i| format!("user{i}@example.com"), // emails
    ];
    for key in keys {
        let key = HashKey::from_hex(key).unwrap();
        for (style, make_id) in id_styles.iter().enumerate() {
            for seed in ["checkout-button", "layer:checkout"] {
                let mut counts = vec![0u64; 100];
                for i in 0..100_000 {
                    counts[(bucket::bucket(&key, seed, &make_id(i)) / 100) as usize] += 1;
                }
                let chi2 = chi_square(&counts);
                assert!(
                    chi2 < CHI2_99_P001,
                    "key {key:?} ids #{style} seed {seed}: chi-square {chi2:.1}"
                );
            }
        }
    }
}

#[test]
fn seeds_are_independent() {
    // Units in bucket half A of one seed spread evenly over the halves of another seed.
    let key = HashKey([3; 16]);
    let mut both = 0u32;
    for i in 0..100_000 {
        let unit = format!("u{i}");
        if bucket::bucket(&key, "exp-a", &unit) < 5000 && bucket::bucket(&key, "exp-b", &unit) < 5000 {
            both += 1;
        }
    }
    // Expected 25,000; 5 standard deviations (~685) is far beyond chance.
    assert!((24_315..=25_685).contains(&both), "{both}");
}

/// Random weights in basis points summing to 10000, 2 to 6 variants.
fn weights() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1u32..100, 2..=6).prop_map(|raw| {
        let total: u32 = raw.iter().sum();
        let mut weights: Vec<u32> = raw.iter().map(|w| w * 10_000 / total).collect();
        let assigned: u32 = weights.iter().sum();
        weights[0] += 10_000 - assigned;
        weights
    })
}

fn tenant_with(experiments: Vec<Value>, layers: Vec<Value>) -> Tenant {
    Tenant::from_value(json!({
        "schema": 1, "tenant": "props", "version": 1, "hostnames": ["props.example"],
        "hash_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "layers": layers, "experiments": experiments
    }))
    .unwrap()
}

/// `tenant`'s evaluation of `unit` with no attributes and nothing forced.
fn evaluation<'t>(tenant: &'t Tenant, unit: &str, path: &str, now_ms: i64, sticky: &[StickyEntry]) -> Evaluation<'t> {
    let attributes = json!({});
    let forced = BTreeMap::new();
    tenant.evaluate(&Context {
        unit_id: unit,
        attributes: &attributes,
        path,
        now_ms,
        sticky,
        forced: &forced,
    })
}

fn evaluate(tenant: &Tenant, unit: &str) -> Vec<Outcome> {
    evaluation(tenant, unit, "/", 0, &[])
        .decisions
        .into_iter()
        .map(|d| d.outcome)
        .collect()
}

/// Two variants at 50 % each.
fn two_variants() -> Value {
    json!([{"key": "control", "weight": 5000}, {"key": "b", "weight": 5000}])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ramping_up_never_moves_an_included_bucket(weights in weights(), low in 0u32..=10_000, high in 0u32..=10_000) {
        let (low, high) = (low.min(high), low.max(high));
        let before = bucket::variant_ranges(&weights, low);
        let after = bucket::variant_ranges(&weights, high);
        for b in 0..10_000 {
            if let Some(variant) = bucket::choose_variant(&before, b) {
                prop_assert_eq!(bucket::choose_variant(&after, b), Some(variant), "bucket {}", b);
            }
        }
        let included = after.iter().map(|r| r.len()).sum::<u32>();
        prop_assert!(included <= high && high - included < weights.len() as u32);
    }

    #[test]
    fn ramping_up_keeps_units_through_the_whole_engine(weights in weights(), low in 0u32..=10_000, high in 0u32..=10_000) {
        let (low, high) = (low.min(high), low.max(high));
        let experiment = |coverage: u32| {
            let variants: Vec<Value> = weights.iter().enumerate()
                .map(|(i, w)| json!({"key": format!("v{i}"), "weight": w})).collect();
            tenant_with(vec![json!({"key": "ramp", "status": "running", "coverage": coverage, "variants": variants})], vec![])
        };
        let (before, after) = (experiment(low), experiment(high));
        for i in 0..500 {
            let unit = format!("unit-{i}");
            if let Outcome::Assigned { variant, .. } = evaluate(&before, &unit)[0] {
                let moved = evaluate(&after, &unit)[0].clone();
                prop_assert!(matches!(moved, Outcome::Assigned { variant: v, .. } if v == variant), "{} moved: {:?}", unit, moved);
            }
        }
    }

    #[test]
    fn experiments_in_one_layer_never_share_a_unit(cuts in prop::collection::btree_set(1u32..10_000, 1..6)) {
        let mut bounds: Vec<u32> = vec![0];
        bounds.extend(cuts);
        bounds.push(10_000);
        let experiments: Vec<Value> = bounds.windows(2).enumerate().map(|(i, range)| json!({
            "key": format!("layered-{i}"), "status": "running",
            "layer": {"key": "main", "range": [range[0], range[1]]},
            "variants": [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}]
        })).collect();
        let tenant = tenant_with(experiments, vec![json!({"key": "main"})]);
        for i in 0..300 {
            let assigned = evaluate(&tenant, &format!("visitor-{i}")).iter()
                .filter(|o| matches!(o, Outcome::Assigned { .. })).count();
            // The ranges tile the layer, so every unit is in exactly one experiment.
            prop_assert_eq!(assigned, 1);
        }
    }

    #[test]
    fn the_holdout_record_agrees_with_the_engines_exclusion(holdout in 0u32..=10_000) {
        let tenant = Tenant::from_value(json!({
            "schema": 1, "tenant": "props", "version": 1, "hostnames": ["props.example"],
            "hash_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "holdout": holdout,
            "experiments": [{"key": "everyone", "status": "running",
                "variants": [{"key": "control", "weight": 5000}, {"key": "treatment", "weight": 5000}]}]
        }))
        .unwrap();
        for i in 0..300 {
            let unit = format!("visitor-{i}");
            let held_out = matches!(evaluate(&tenant, &unit)[0], Outcome::Excluded(Reason::HeldOut { .. }));
            let expected = match (holdout, held_out) {
                (0, _) => None,
                (_, true) => Some(HOLDOUT_VARIANT),
                (_, false) => Some(HOLDOUT_REST_VARIANT),
            };
            prop_assert_eq!(tenant.holdout_variant(&unit), expected, "{}", unit);
        }
    }

    #[test]
    fn cookies_round_trip(
        unit in prop_oneof!["[0-9a-f]{32}", "[a-zA-Z0-9@._-]{1,64}", "\\PC{1,16}"],
        config_version in any::<u64>(),
        issued_at in 0i64..4_000_000_000,
        entries in prop::collection::btree_map(any::<u32>(), (0u8..128, any::<bool>()), 0..40),
        key in any::<[u8; 16]>(),
    ) {
        let cookie = StickyCookie {
            unit_id: unit,
            config_version,
            issued_at,
            assignments: entries.into_iter()
                .map(|(experiment_id, (variant, exposed))| StickyEntry { experiment_id, variant, exposed }).collect(),
        };
        let key = CookieKey(key);
        let value = cookie.encode(&key);
        prop_assert!(value.len() <= cohort_core::cookie::MAX_VALUE_LEN);
        prop_assert_eq!(StickyCookie::decode(&value, &key, issued_at, 1), Ok(cookie));
    }

    #[test]
    fn decoding_anything_never_panics(value in "\\PC{0,400}", raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let key = CookieKey([9; 16]);
        let _ = StickyCookie::decode(&value, &key, 1_800_000_000, 3600);
        let _ = StickyCookie::decode(&cohort_core::encoding::base64url_encode(&raw), &key, 1_800_000_000, 3600);
    }

    #[test]
    fn a_flipped_bit_is_always_refused(byte in 0usize..40, bit in 0u8..8) {
        let key = CookieKey([5; 16]);
        let cookie = StickyCookie {
            unit_id: "9b2f5c1e3a7d4e8f9a0b1c2d3e4f5a6b".into(), config_version: 9, issued_at: 1_800_000_000,
            assignments: vec![StickyEntry { experiment_id: 77, variant: 1, exposed: true }],
        };
        let mut raw = cohort_core::encoding::base64url_decode(&cookie.encode(&key)).unwrap();
        let byte = byte % raw.len();
        raw[byte] ^= 1 << bit;
        let tampered = cohort_core::encoding::base64url_encode(&raw);
        prop_assert!(StickyCookie::decode(&tampered, &key, 1_800_000_000, 3600).is_err());
    }
}

#[test]
fn paused_experiments_keep_unsent_exposures_unsent() {
    let experiment = |status: &str| {
        tenant_with(
            vec![json!({"key": "pausable", "status": status, "variants": two_variants()})],
            vec![],
        )
    };
    let paused = experiment("paused");
    let entry = StickyEntry {
        experiment_id: paused.experiments[0].cookie_id,
        variant: 1,
        exposed: false,
    };
    let while_paused = evaluation(&paused, "u", "/", 0, &[entry]);
    assert!(matches!(
        while_paused.decisions[0].outcome,
        Outcome::Assigned {
            variant: 1,
            log_exposure: false,
            ..
        }
    ));
    assert_eq!(
        while_paused.sticky_after(&[entry]),
        vec![entry],
        "still unsent while paused"
    );
    // Resumed: the exposure is logged now and the bit is set.
    let running = experiment("running");
    let resumed = evaluation(&running, "u", "/", 0, &[entry]);
    assert!(matches!(
        resumed.decisions[0].outcome,
        Outcome::Assigned {
            variant: 1,
            log_exposure: true,
            ..
        }
    ));
    assert_eq!(
        resumed.sticky_after(&[entry]),
        vec![StickyEntry { exposed: true, ..entry }]
    );
}

/// A sticky entry survives a request that does not reach its experiment (another path) while the
/// experiment runs or is paused, and is dropped once the experiment ends or the variant is gone.
#[test]
fn sticky_entries_outlive_other_paths_only_while_their_experiment_can_use_them() {
    let with = |status: &str, variants: usize| {
        let variants: Vec<Value> = (0..variants)
            .map(|i| json!({"key": format!("v{i}"), "weight": if i == 0 { 10_000 } else { 0 }}))
            .collect();
        tenant_with(
            vec![json!({"key": "checkout", "status": status, "paths": ["/checkout"], "variants": variants})],
            vec![],
        )
    };
    for (status, variants, entry_variant, kept) in [
        ("running", 2, 1, true),
        ("paused", 2, 1, true),
        ("running", 2, 2, false),
        ("draft", 2, 1, false),
    ] {
        let tenant = with(status, variants);
        let entry = StickyEntry {
            experiment_id: tenant.experiments[0].cookie_id,
            variant: entry_variant,
            exposed: true,
        };
        let after = evaluation(&tenant, "u", "/elsewhere", 0, &[entry]).sticky_after(&[entry]);
        assert_eq!(
            after == vec![entry],
            kept,
            "{status}, variant {entry_variant} of {variants}"
        );
        assert_eq!(
            after.is_empty(),
            !kept,
            "{status}, variant {entry_variant} of {variants}"
        );
    }
}

/// An experiment's start is inclusive and its end exclusive, to the millisecond.
#[test]
fn start_and_end_bound_an_experiment_to_the_millisecond() {
    let tenant = tenant_with(
        vec![json!({"key": "sale", "status": "running",
            "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z", "variants": two_variants()})],
        vec![],
    );
    let (start, end) = (1_893_456_000_000_i64, 1_893_542_400_000_i64);
    let outcome_at = |now_ms: i64| evaluation(&tenant, "u", "/", now_ms, &[]).decisions[0].outcome.clone();
    assert_eq!(outcome_at(start - 1), Outcome::Excluded(Reason::NotStarted));
    assert!(matches!(outcome_at(start), Outcome::Assigned { .. }));
    assert!(matches!(outcome_at(end - 1), Outcome::Assigned { .. }));
    assert_eq!(outcome_at(end), Outcome::Excluded(Reason::Ended));
}

/// A sticky entry naming a variant the experiment no longer has (variants were removed) is not
/// served: the unit is bucketed again among the variants that exist.
#[test]
fn a_sticky_variant_that_no_longer_exists_is_bucketed_again() {
    let tenant = tenant_with(
        vec![json!({"key": "hero", "status": "running", "variants": two_variants()})],
        vec![],
    );
    let entry = StickyEntry {
        experiment_id: tenant.experiments[0].cookie_id,
        variant: 2,
        exposed: true,
    };
    match evaluation(&tenant, "u", "/", 0, &[entry]).decisions[0].outcome {
        Outcome::Assigned { variant, bucket, .. } => {
            assert!(variant < 2, "served variant {variant} of 2");
            assert!(bucket.is_some(), "bucketed again, not sticky");
        }
        ref other => panic!("expected a fresh assignment, got {other:?}"),
    }
}
