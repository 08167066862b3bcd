//! Input: `condition JSON \n attributes JSON`. Compiling and matching never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (condition, attributes) = text.split_once('\n').unwrap_or((text, "{}"));
    let (Ok(condition), Ok(attributes)) =
        (serde_json::from_str::<serde_json::Value>(condition), serde_json::from_str::<serde_json::Value>(attributes))
    else {
        return;
    };
    if let Ok(compiled) = cohort_core::Condition::compile(&condition) {
        let _ = compiled.matches(&attributes);
    }
});
