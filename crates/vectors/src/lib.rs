//! The shared test vectors in `testdata/`, each file's format defined once as typed structs.
//!
//! Every runner (the engine natively and in headless Chromium, the browser build, the `cohort
//! match` command) reads the vectors through these types, so a field renamed or added in a file
//! fails every runner's load instead of being skipped by one of them. The files are embedded with
//! `include_str!`, which also works on `wasm32-unknown-unknown`, where tests have no file system.
//!
//! Each loader panics, naming the file, if the file does not match its format: vectors are test
//! input, and a file that cannot be read is a failed test. `testdata/README.md` describes the
//! files field by field.
//!
//! ```
//! let vectors = cohort_vectors::bucketing();
//! assert!(vectors.cases.iter().all(|case| case.bucket < 10_000));
//! ```

#![deny(missing_docs)]

mod bucketing;
mod conditions;
mod cookies;
mod evaluations;

pub use bucketing::{BucketCase, BucketingVectors, GrowthbookCase, RangeCase};
pub use conditions::{ConditionCase, ConditionExpectation, ConditionVectors};
pub use cookies::{CookieAssignment, CookieErrorKind, CookieVectors, InvalidCookie, MAX_AGE_SECONDS, ValidCookie};
pub use evaluations::{
    Assignment, EvaluationCase, EvaluationContext, EvaluationVectors, Exclusion, ExclusionReason, ExpectedDecision,
    HoldoutVariant, Source, StickyAssignment,
};

const BUCKETING_JSON: &str = include_str!("../../../testdata/bucketing.json");
const CONDITIONS_JSON: &str = include_str!("../../../testdata/conditions.json");
const COOKIES_JSON: &str = include_str!("../../../testdata/cookies.json");
const EVALUATIONS_JSON: &str = include_str!("../../../testdata/evaluations.json");

/// `testdata/bucketing.json`: hashes, buckets, variant ranges and `growthbook-v2` buckets.
pub fn bucketing() -> BucketingVectors {
    loaded("bucketing.json", BucketingVectors::from_json(BUCKETING_JSON))
}

/// `testdata/conditions.json`: targeting conditions and whether they match or are rejected.
pub fn conditions() -> ConditionVectors {
    loaded("conditions.json", ConditionVectors::from_json(CONDITIONS_JSON))
}

/// `testdata/cookies.json`: sticky cookie values to encode and decode, and values to refuse.
pub fn cookies() -> CookieVectors {
    loaded("cookies.json", CookieVectors::from_json(COOKIES_JSON))
}

/// `testdata/evaluations.json`: one tenant config and the decisions it gives per request context.
pub fn evaluations() -> EvaluationVectors {
    loaded("evaluations.json", EvaluationVectors::from_json(EVALUATIONS_JSON))
}

fn loaded<T>(file: &str, parsed: Result<T, String>) -> T {
    parsed.unwrap_or_else(|error| panic!("testdata/{file} does not match its format (testdata/README.md): {error}"))
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::Value;

    use super::*;

    /// The typed form writes back exactly the file it was read from: no field is dropped, no
    /// absent field gains a default and no `null` goes missing, so the types describe the files
    /// completely.
    fn assert_round_trips(file: &str, text: &str, typed: &impl Serialize) {
        let original: Value = serde_json::from_str(text).unwrap();
        let written = serde_json::to_value(typed).unwrap();
        if let Some(difference) = first_difference("", &original, &written) {
            panic!("testdata/{file} changes when written back from its typed form: {difference}");
        }
    }

    /// Where two JSON values first differ, as a path, with both sides there.
    fn first_difference(path: &str, original: &Value, written: &Value) -> Option<String> {
        match (original, written) {
            (Value::Object(a), Value::Object(b)) => a
                .keys()
                .chain(b.keys().filter(|key| !a.contains_key(*key)))
                .find_map(|key| match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(&format!("{path}.{key}"), x, y),
                    (x, y) => Some(format!("{path}.{key}: file has {x:?}, typed form has {y:?}")),
                }),
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
            _ => (original != written).then(|| format!("{path}: file has {original}, typed form has {written}")),
        }
    }

    #[test]
    fn every_file_round_trips_through_its_types() {
        assert_round_trips("bucketing.json", BUCKETING_JSON, &bucketing());
        assert_round_trips("conditions.json", CONDITIONS_JSON, &conditions());
        assert_round_trips("cookies.json", COOKIES_JSON, &cookies());
        assert_round_trips("evaluations.json", EVALUATIONS_JSON, &evaluations());
    }

    /// A key the format does not define is an error, not silently ignored.
    #[test]
    fn unknown_fields_are_refused() {
        let renamed = BUCKETING_JSON.replacen("\"growthbook_v2\"", "\"growthbook\"", 1);
        assert!(
            BucketingVectors::from_json(&renamed)
                .unwrap_err()
                .contains("unknown field `growthbook`")
        );
        let extra = COOKIES_JSON.replacen("\"exposed\": true", "\"exposed\": true, \"sent\": true", 1);
        assert!(
            CookieVectors::from_json(&extra)
                .unwrap_err()
                .contains("unknown field `sent`")
        );
        let extra = CONDITIONS_JSON.replacen("\"expected\": true", "\"expected\": true, \"note\": \"\"", 1);
        assert!(
            ConditionVectors::from_json(&extra)
                .unwrap_err()
                .contains("unknown field `note`")
        );
        let extra = EVALUATIONS_JSON.replacen("\"now\": ", "\"today\": 1, \"now\": ", 1);
        assert!(
            EvaluationVectors::from_json(&extra)
                .unwrap_err()
                .contains("unknown field `today`")
        );
    }
}
