//! SplitMix64: a tiny, well-mixed, seeded generator for reproducible simulations (`cohort
//! simulate`, `cohort-loadgen`). The engine itself never draws from it; not for secrets: unit ids at
//! the edge come from the platform's CSPRNG.

/// A SplitMix64 state; the same seed gives the same sequence.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A 32-hex-character id, the shape the edge mints.
    pub fn unit_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ids_are_reproducible_and_hex() {
        let (mut a, mut b) = (SplitMix64(7), SplitMix64(7));
        let id = a.unit_id();
        assert_eq!(id, b.unit_id());
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.unit_id(), id);
    }

    #[test]
    fn floats_stay_in_the_unit_interval_and_spread() {
        let mut rng = SplitMix64(3);
        let draws: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let below_half = draws.iter().filter(|x| **x < 0.5).count();
        assert!((4_800..5_200).contains(&below_half), "{below_half} of 10000 below 0.5");
    }
}
