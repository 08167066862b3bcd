//! `testdata/bucketing.json`, written by `testdata/reference.py`.

use serde::{Deserialize, Serialize};

/// The bucketing contract's vectors (docs/config.md, "Bucketing contract").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketingVectors {
    /// The contract in one paragraph, for readers of the file.
    pub description: String,
    /// A unit's hash and bucket for a seed under a hash key.
    pub cases: Vec<BucketCase>,
    /// The bucket ranges variant weights and a coverage give.
    pub ranges: Vec<RangeCase>,
    /// Buckets of the `growthbook-v2` hash, GrowthBook's hash version 2.
    pub growthbook_v2: Vec<GrowthbookCase>,
    /// Buckets of the `growthbook-v1` hash, GrowthBook's hash version 1 on the 10000-bucket scale.
    pub growthbook_v1: Vec<GrowthbookCase>,
}

/// One unit hashed with one seed under one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketCase {
    /// The tenant's hash key, 32 lowercase hex digits.
    pub hash_key: String,
    /// The seed (an experiment's, or `layer:…`, `holdout:…`).
    pub seed: String,
    /// The unit id.
    pub unit: String,
    /// The 64-bit SipHash-1-3 value, 16 lowercase hex digits.
    pub hash: String,
    /// The bucket in `[0, 10000)`.
    pub bucket: u32,
}

/// The ranges one set of weights gives at one coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeCase {
    /// Variant weights in basis points, summing to 10000.
    pub weights: Vec<u32>,
    /// The share of units in the experiment, in basis points.
    pub coverage: u32,
    /// Per variant, the half-open bucket range `[start, end)` it owns.
    pub ranges: Vec<[u32; 2]>,
}

/// One unit's `growthbook-v2` or `growthbook-v1` bucket for one seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthbookCase {
    /// The seed.
    pub seed: String,
    /// The unit id.
    pub unit: String,
    /// The bucket in `[0, 10000)`.
    pub bucket: u32,
}

impl BucketingVectors {
    /// Parses the file's text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}
