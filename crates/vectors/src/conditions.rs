//! `testdata/conditions.json`, written by hand (no generator: the expected results are GrowthBook's
//! condition semantics, with Cohort's deliberate differences marked).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Targeting-condition vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionVectors {
    /// What the file holds, for its readers.
    pub description: String,
    /// The cases; names are unique.
    pub cases: Vec<ConditionCase>,
}

/// One condition evaluated against one set of attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionCaseFields", into = "ConditionCaseFields")]
pub struct ConditionCase {
    /// Says what the case shows; unique in the file.
    pub name: String,
    /// The targeting condition, as a tenant config holds it (any JSON value).
    pub condition: Value,
    /// The unit's attributes (any JSON value; a non-object counts as no attributes).
    pub attributes: Value,
    /// The file's `expected` or `error` field.
    pub expected: ConditionExpectation,
}

/// What compiling and evaluating a case's condition gives. In the file, exactly one of `expected`
/// and `error` is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionExpectation {
    /// The condition compiles, and matches the attributes or not (`expected`).
    Evaluates {
        /// Whether it matches.
        matches: bool,
        /// `growthbook_differs`: why GrowthBook's JavaScript SDK gives the opposite result, naming a
        /// difference in docs/config.md, "Deliberate differences from GrowthBook". Only a case
        /// with an expected result can carry it.
        growthbook_differs: Option<String>,
    },
    /// The condition is rejected when compiled, with an error message containing this text
    /// (`error`).
    Rejected {
        /// A substring of the compile error's message.
        error_contains: String,
    },
}

/// A case as the file spells it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionCaseFields {
    name: String,
    condition: Value,
    attributes: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    growthbook_differs: Option<String>,
}

impl TryFrom<ConditionCaseFields> for ConditionCase {
    type Error = String;

    fn try_from(fields: ConditionCaseFields) -> Result<Self, String> {
        let name = fields.name;
        let expected = match (fields.expected, fields.error, fields.growthbook_differs) {
            (Some(matches), None, growthbook_differs) => ConditionExpectation::Evaluates {
                matches,
                growthbook_differs,
            },
            (None, Some(error_contains), None) => ConditionExpectation::Rejected { error_contains },
            (None, Some(_), Some(_)) => {
                return Err(format!(
                    "case `{name}`: growthbook_differs needs an expected result, not an error"
                ));
            }
            _ => return Err(format!("case `{name}`: needs exactly one of `expected` and `error`")),
        };
        Ok(ConditionCase {
            name,
            condition: fields.condition,
            attributes: fields.attributes,
            expected,
        })
    }
}

impl From<ConditionCase> for ConditionCaseFields {
    fn from(case: ConditionCase) -> Self {
        let (expected, error, growthbook_differs) = match case.expected {
            ConditionExpectation::Evaluates {
                matches,
                growthbook_differs,
            } => (Some(matches), None, growthbook_differs),
            ConditionExpectation::Rejected { error_contains } => (None, Some(error_contains), None),
        };
        ConditionCaseFields {
            name: case.name,
            condition: case.condition,
            attributes: case.attributes,
            expected,
            error,
            growthbook_differs,
        }
    }
}

impl ConditionVectors {
    /// Parses the file's text and checks that case names are unique (failure messages name cases).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let vectors: ConditionVectors = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut names = HashSet::new();
        if let Some(case) = vectors.cases.iter().find(|case| !names.insert(&case.name)) {
            return Err(format!("duplicate case name `{}`", case.name));
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(cases: &str) -> Result<ConditionVectors, String> {
        ConditionVectors::from_json(&format!(r#"{{"description": "", "cases": [{cases}]}}"#))
    }

    #[test]
    fn a_case_has_exactly_one_of_expected_and_error() {
        let both = r#"{"name": "a", "condition": {}, "attributes": {}, "expected": true, "error": "x"}"#;
        assert!(parsed(both).unwrap_err().contains("exactly one"));
        let neither = r#"{"name": "a", "condition": {}, "attributes": {}}"#;
        assert!(parsed(neither).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn only_a_case_with_an_expected_result_differs_from_growthbook() {
        let rejected = r#"{"name": "a", "condition": {"$x": 1}, "attributes": {}, "error": "unknown operator",
            "growthbook_differs": "why"}"#;
        assert!(parsed(rejected).unwrap_err().contains("growthbook_differs"));
        let evaluated = r#"{"name": "a", "condition": {}, "attributes": {}, "expected": false,
            "growthbook_differs": "why"}"#;
        assert_eq!(
            parsed(evaluated).unwrap().cases[0].expected,
            ConditionExpectation::Evaluates {
                matches: false,
                growthbook_differs: Some("why".into())
            }
        );
    }

    #[test]
    fn case_names_are_unique() {
        let twice = r#"{"name": "a", "condition": {}, "attributes": {}, "expected": true},
            {"name": "a", "condition": {}, "attributes": 1, "expected": true}"#;
        assert_eq!(parsed(twice).unwrap_err(), "duplicate case name `a`");
    }
}
