//! Any byte string as a tenant config: an error or a tenant, never a panic; a tenant evaluates.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(tenant) = cohort_core::Tenant::from_json(text) {
        let attributes = serde_json::json!({"country": "DE", "age": 30});
        let forced = BTreeMap::new();
        let context = cohort_core::Context {
            unit_id: "fuzz-unit",
            attributes: &attributes,
            path: "/",
            now_ms: 1_800_000_000_000,
            sticky: &[],
            forced: &forced,
        };
        let evaluation = tenant.evaluate(&context);
        let _ = evaluation.sticky_after(&[]);
    }
});
