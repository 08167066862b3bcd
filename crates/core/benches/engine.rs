//! Engine benchmarks: `cargo bench -p cohort-core`. README.md quotes their figures.
//!
//! Targets on the 2-core CI machine: bucket ≤ 60 ns, 20-experiment evaluation ≤ 5 µs,
//! cookie encode + verify ≤ 1 µs.
#![allow(clippy::unwrap_used)] // a benchmark whose setup fails has nothing to measure

use std::collections::BTreeMap;
use std::hint::black_box;

use cohort_core::bucket::{self, HashKey};
use cohort_core::secrets::CookieKey;
use cohort_core::{Context, StickyCookie, StickyEntry, Tenant};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// A realistic tenant: 20 running experiments, each targeting on 2-3 attributes, some in a layer,
/// a holdout, path globs.
fn twenty_experiment_config() -> String {
    let experiments: Vec<_> = (0..20)
        .map(|i| {
            let targeting = match i % 4 {
                0 => json!({"country": {"$in": ["US", "CA", "GB", "DE"]}, "device": "mobile"}),
                1 => json!({"plan": {"$ne": "enterprise"}, "visits": {"$gte": 2}, "browser": {"$regex": "^(Chrome|Firefox)"}}),
                2 => json!({"$or": [{"country": "DE"}, {"language": {"$in": ["de", "de-AT"]}}], "app_version": {"$vgte": "2.4.0"}}),
                _ => json!({"device": {"$in": ["desktop", "tablet"]}, "returning": true}),
            };
            let mut experiment = json!({
                "key": format!("experiment-{i}"),
                "status": "running",
                "paths": if i % 3 == 0 { json!(["/", "/products/*", "/checkout/**"]) } else { json!([]) },
                "targeting": targeting,
                "coverage": 8000,
                "variants": [
                    {"key": "control", "weight": 3400},
                    {"key": "treatment-a", "weight": 3300, "actions": [{"type": "set_text", "selector": "h1", "text": "Hello"}]},
                    {"key": "treatment-b", "weight": 3300, "actions": [{"type": "request_header", "name": "x-variant", "value": "b"}]}
                ]
            });
            if i < 4 {
                experiment["layer"] = json!({"key": "checkout", "range": [i * 2500, (i + 1) * 2500]});
            }
            experiment
        })
        .collect();
    json!({
        "schema": 1, "tenant": "bench", "version": 1, "hostnames": ["bench.example"],
        "hash_key": "9f3c2a7be1d04586a2c7e9f0b3d51e68", "holdout": 500,
        "layers": [{"key": "checkout"}],
        "experiments": experiments
    })
    .to_string()
}

fn benchmarks(c: &mut Criterion) {
    let key = HashKey::from_hex("9f3c2a7be1d04586a2c7e9f0b3d51e68").unwrap();
    c.bench_function("bucket one unit", |b| {
        b.iter(|| {
            bucket::bucket(
                black_box(&key),
                black_box("checkout-button"),
                black_box("9b2f5c1e3a7d4e8f9a0b1c2d3e4f5a6b"),
            )
        })
    });

    let config = twenty_experiment_config();
    c.bench_function("compile 20-experiment config", |b| {
        b.iter(|| Tenant::from_json(black_box(&config)).unwrap())
    });

    let tenant = Tenant::from_json(&config).unwrap();
    let attributes = json!({
        "country": "US", "device": "mobile", "plan": "pro", "visits": 5, "browser": "Chrome/126",
        "language": "en-US", "app_version": "2.5.1", "returning": true
    });
    let forced = BTreeMap::new();
    let mut unit = 0u64;
    c.bench_function("evaluate 20 experiments for one request", |b| {
        b.iter(|| {
            unit = unit.wrapping_add(1);
            let unit_id = format!("{unit:032x}");
            let evaluation = tenant.evaluate(&Context {
                unit_id: &unit_id,
                attributes: &attributes,
                path: "/products/shoes",
                now_ms: 1_800_000_000_000,
                sticky: &[],
                forced: &forced,
            });
            black_box(evaluation.decisions.len())
        })
    });

    // A visitor in all 20 experiments: the largest cookie this tenant produces.
    let cookie_key = CookieKey([7; 16]);
    let cookie = StickyCookie {
        unit_id: "9b2f5c1e3a7d4e8f9a0b1c2d3e4f5a6b".to_string(),
        config_version: tenant.version,
        issued_at: 1_800_000_000,
        assignments: tenant
            .experiments
            .iter()
            .map(|e| StickyEntry {
                experiment_id: e.cookie_id,
                variant: 1,
                exposed: true,
            })
            .collect(),
    };
    c.bench_function("cookie encode + verify, 20 assignments", |b| {
        b.iter(|| {
            let value = black_box(&cookie).encode(&cookie_key);
            StickyCookie::decode(&value, &cookie_key, 1_800_000_000, 34_560_000).unwrap()
        })
    });
    // Every page request checks its user agent against isbot's list before anything else.
    let browser = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                   Chrome/131.0.6778.81 Mobile Safari/537.36";
    c.bench_function("bot check, a browser's user agent, remembered", |b| {
        b.iter(|| cohort_core::edge::is_bot(black_box(browser)))
    });
    c.bench_function("bot check, a browser's user agent, worked out", |b| {
        b.iter(|| cohort_core::edge::bots::classify(black_box(browser)))
    });
}

criterion_group!(engine, benchmarks);
criterion_main!(engine);
