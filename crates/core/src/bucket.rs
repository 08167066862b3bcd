//! Deterministic bucketing: the contract that keeps every running experiment's split stable.
//!
//! `h = SipHash-1-3(key = tenant hash key; message = u32-LE(len(seed)) ‖ seed ‖ unit_id)` and
//! `bucket = (h × 10000) >> 64`, so a bucket is in `[0, 10000)`. Changing anything here reshuffles
//! every experiment of every tenant; the vectors in `testdata/bucketing.json` pin it.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// Number of buckets: weights, coverage and layer ranges are expressed in these basis points.
pub const BUCKETS: u32 = 10_000;

/// A tenant's 16-byte bucketing key (the config's `hash_key`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashKey(pub [u8; 16]);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashKey({})", crate::encoding::hex_encode(&self.0))
    }
}

impl HashKey {
    /// Parses the 32-hex-character form used in configs and test vectors.
    pub fn from_hex(text: &str) -> Option<HashKey> {
        let bytes = crate::encoding::hex_decode(text)?;
        Some(HashKey(bytes.try_into().ok()?))
    }
}

/// The 64-bit SipHash-1-3 of a length-prefixed seed followed by the unit id.
pub fn hash64(key: &HashKey, seed: &str, unit_id: &str) -> u64 {
    let mut hasher = SipHasher13::new_with_key(&key.0);
    // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
    let seed_len = u32::try_from(seed.len()).unwrap_or(u32::MAX);
    hasher.write(&seed_len.to_le_bytes());
    hasher.write(seed.as_bytes());
    hasher.write(unit_id.as_bytes());
    hasher.finish()
}

/// The unit's bucket in `[0, 10000)` for `seed`.
///
/// # Example
/// ```
/// use cohort_core::bucket::{bucket, HashKey};
/// let key = HashKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// let b = bucket(&key, "checkout-button", "visitor-1");
/// assert!(b < 10_000);
/// assert_eq!(b, bucket(&key, "checkout-button", "visitor-1")); // deterministic
/// ```
pub fn bucket(key: &HashKey, seed: &str, unit_id: &str) -> u32 {
    scale_to_buckets(hash64(key, seed, unit_id))
}

/// Maps a 64-bit hash onto `[0, 10000)` by a 128-bit multiply (no modulo bias).
pub fn scale_to_buckets(hash: u64) -> u32 {
    ((u128::from(hash) * u128::from(BUCKETS)) >> 64) as u32
}

/// Half-open bucket range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRange {
    /// First bucket in the range.
    pub start: u32,
    /// One past the last bucket.
    pub end: u32,
}

impl BucketRange {
    /// Whether `bucket` falls inside the range.
    pub fn contains(&self, bucket: u32) -> bool {
        self.start <= bucket && bucket < self.end
    }
    /// Number of buckets covered.
    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }
    /// Whether the range covers no bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Variant ranges for `weights` (basis points summing to 10000) at `coverage` basis points.
///
/// Variant `i` owns `[S_i, S_i + ⌊w_i·c/10000⌋)` with `S_i = Σ_{j<i} w_j`: each range grows in
/// place as coverage rises, so ramping up only adds units and never moves an included one.
pub fn variant_ranges(weights: &[u32], coverage: u32) -> Vec<BucketRange> {
    let mut start = 0u32;
    weights
        .iter()
        .map(|&weight| {
            let len = (u64::from(weight) * u64::from(coverage) / u64::from(BUCKETS)) as u32;
            let range = BucketRange {
                start,
                end: start + len,
            };
            start += weight;
            range
        })
        .collect()
}

/// The variant whose range holds `bucket`, if any.
pub fn choose_variant(ranges: &[BucketRange], bucket: u32) -> Option<usize> {
    ranges.iter().position(|range| range.contains(bucket))
}

/// GrowthBook-compatible bucketing (`hash: "growthbook-v2"`), so a tenant migrating from
/// GrowthBook keeps every user's variant.
pub mod growthbook {
    /// 32-bit FNV-1a over UTF-16 code units, as GrowthBook's SDKs compute it on JS strings.
    pub fn fnv1a32(text: &str) -> u32 {
        let mut hash: u32 = 0x811c_9dc5;
        for unit in text.encode_utf16() {
            hash ^= u32::from(unit);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash
    }

    /// GrowthBook's hash version 2 as an integer in `[0, 10000)`: `fnv1a32(str(fnv1a32(seed ‖ unit))) mod 10000`.
    pub fn bucket_v2(seed: &str, unit_id: &str) -> u32 {
        let inner = fnv1a32(&format!("{seed}{unit_id}"));
        fnv1a32(&inner.to_string()) % 10_000
    }

    /// GrowthBook's hash version 1 on the same `[0, 10000)` scale: `(fnv1a32(unit ‖ seed) mod 1000)
    /// × 10`, so `bucket / 10000` is exactly GrowthBook's `k / 1000` (both divisions round the same
    /// real number). Note the order: version 1 hashes the unit before the seed.
    pub fn bucket_v1(seed: &str, unit_id: &str) -> u32 {
        fnv1a32(&format!("{unit_id}{seed}")) % 1000 * 10
    }

    /// GrowthBook's variant choice, reproduced in the same `f64` arithmetic (cumulative weights as
    /// floats, half-open ranges `[start, start + coverage·weight)`) so edge cases land identically.
    pub fn choose_variant(weights_bp: impl IntoIterator<Item = u32>, coverage_bp: u32, bucket: u32) -> Option<usize> {
        let n = f64::from(bucket) / 10_000.0;
        let coverage = f64::from(coverage_bp) / 10_000.0;
        let mut cumulative = 0.0f64;
        for (index, weight_bp) in weights_bp.into_iter().enumerate() {
            let weight = f64::from(weight_bp) / 10_000.0;
            let start = cumulative;
            cumulative += weight;
            if n >= start && n < start + coverage * weight {
                return Some(index);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_grow_in_place() {
        assert_eq!(
            variant_ranges(&[5000, 5000], 10_000),
            vec![
                BucketRange { start: 0, end: 5000 },
                BucketRange {
                    start: 5000,
                    end: 10_000
                }
            ]
        );
        assert_eq!(
            variant_ranges(&[5000, 5000], 2000),
            vec![
                BucketRange { start: 0, end: 1000 },
                BucketRange { start: 5000, end: 6000 }
            ]
        );
        assert_eq!(
            variant_ranges(&[3333, 3333, 3334], 0)
                .iter()
                .map(BucketRange::len)
                .sum::<u32>(),
            0
        );
    }

    #[test]
    fn scale_covers_the_whole_range() {
        assert_eq!(scale_to_buckets(0), 0);
        assert_eq!(scale_to_buckets(u64::MAX), 9999);
        assert_eq!(scale_to_buckets(1 << 63), 5000);
    }

    #[test]
    fn ranges_are_half_open() {
        let range = BucketRange { start: 10, end: 20 };
        assert!(!range.contains(9) && range.contains(10) && range.contains(19) && !range.contains(20));
        assert_eq!(range.len(), 10);
        assert!(!range.is_empty());
        assert!(BucketRange { start: 20, end: 20 }.is_empty());
        assert!(
            BucketRange { start: 30, end: 20 }.is_empty(),
            "an inverted range covers nothing"
        );
    }

    #[test]
    fn growthbook_ranges_are_half_open_at_every_boundary() {
        use growthbook::choose_variant;
        // A bucket exactly at a range's end belongs to the next range (GrowthBook's `n < end`).
        assert_eq!(choose_variant([5000, 5000], 10_000, 4999), Some(0));
        assert_eq!(choose_variant([5000, 5000], 10_000, 5000), Some(1));
        assert_eq!(choose_variant([5000, 5000], 10_000, 9999), Some(1));
        // At 50 % coverage each variant keeps the first half of its share; the rest is excluded.
        assert_eq!(choose_variant([5000, 5000], 5000, 2499), Some(0));
        assert_eq!(choose_variant([5000, 5000], 5000, 2500), None);
        assert_eq!(choose_variant([5000, 5000], 5000, 5000), Some(1));
        assert_eq!(choose_variant([5000, 5000], 5000, 7500), None);
        assert_eq!(choose_variant([5000, 5000], 0, 0), None);
    }

    #[test]
    fn hash_keys_print_as_hex() {
        let key = HashKey::from_hex("00112233445566778899aabbccddeeff").expect("32 hex characters");
        assert_eq!(format!("{key:?}"), "HashKey(00112233445566778899aabbccddeeff)");
        assert_eq!(HashKey::from_hex("0011"), None);
    }

    #[test]
    fn fnv_matches_reference_values() {
        // FNV-1a 32 reference values: empty string is the offset basis; "a" is 0xe40c292c.
        assert_eq!(growthbook::fnv1a32(""), 0x811c_9dc5);
        assert_eq!(growthbook::fnv1a32("a"), 0xe40c_292c);
        assert_eq!(growthbook::fnv1a32("foobar"), 0xbf9c_f968);
    }
}
