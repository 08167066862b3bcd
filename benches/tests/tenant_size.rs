//! What a compiled tenant holds in memory, measured by `stats_alloc`'s counting allocator: the
//! figures behind the edge's config cache budget (docs/edge.md, "Config cache"). One test per
//! file, so nothing else allocates while it counts.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A tenant of `experiments` like the many-tenants test's (tests/edge/many-tenants.test.mjs):
/// each with a `$in` device targeting and a text edit in its treatment.
fn config(experiments: usize) -> String {
    let experiments: Vec<String> = (0..experiments)
        .map(|e| {
            format!(
                r#"{{"key":"exp-{e}","status":"running","paths":["/"],
                "targeting":{{"device":{{"$in":["desktop","mobile","tablet","other"]}}}},
                "variants":[{{"key":"control","weight":5000}},{{"key":"treatment","weight":5000,
                "actions":[{{"type":"set_text","selector":"h1","text":"Variant {e}"}}]}}]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schema":1,"tenant":"t1","version":1,"hostnames":["t1.test"],
        "hash_key":"00000000000000000000000000000001","experiments":[{}]}}"#,
        experiments.join(",")
    )
}

/// Bytes still allocated after compiling `json`, the compiled tenant alive.
fn retained(json: &str) -> usize {
    let region = Region::new(GLOBAL);
    let tenant = cohort_core::Tenant::from_json(json).expect("a valid config");
    let stats = region.change();
    drop(tenant);
    // A reallocation's growth is in `bytes_allocated` and its shrinking in `bytes_deallocated`.
    stats.bytes_allocated - stats.bytes_deallocated
}

#[test]
fn a_compiled_tenant_holds_a_few_kib_per_experiment() {
    let mut report = String::new();
    let mut sizes = Vec::new();
    for experiments in [2, 20, 200] {
        let json = config(experiments);
        let bytes = retained(&json);
        report.push_str(&format!(
            "{experiments:>4} experiments: {:>7} bytes of JSON, {bytes:>7} bytes compiled\n",
            json.len()
        ));
        sizes.push((experiments, bytes));
    }
    eprint!("{report}");
    for (experiments, bytes) in sizes {
        // The cache budget's arithmetic assumes at most about 2.5 KiB per experiment plus a few
        // KiB per tenant; a change past that must revisit docs/edge.md's figures.
        assert!(
            bytes <= 4096 + experiments * 2560,
            "{experiments} experiments: {bytes} bytes\n{report}"
        );
        assert!(
            bytes >= experiments * 256,
            "{experiments} experiments: {bytes} bytes is not a compiled tenant"
        );
    }
}
