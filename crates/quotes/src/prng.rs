//! A tiny seeded PRNG (xoshiro256**, seeded through splitmix64).
//!
//! Written out here rather than taken from a crate so that a seed gives the
//! same prices, latencies and faults forever, whatever happens to a
//! dependency's algorithm between versions. Not for cryptography.

/// xoshiro256** by Blackman and Vigna.
#[derive(Clone, Debug)]
pub(crate) struct Prng {
    s: [u64; 4],
}

/// One step of splitmix64: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Prng {
    /// Expands a 64-bit seed into the full state, as the authors recommend;
    /// splitmix64 never yields the all-zero state from four outputs.
    pub(crate) fn seed_from(seed: u64) -> Prng {
        let mut state = seed;
        Prng {
            s: std::array::from_fn(|_| splitmix64(&mut state)),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.s;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Uniform in `[0, bound)`; `bound` must be positive. Lemire's
    /// multiply-shift: its bias (at most bound / 2^64) is far below anything
    /// a price or latency could show.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal deviate (Box-Muller; the second deviate is dropped
    /// to keep the generator's state the only state).
    pub(crate) fn normal(&mut self) -> f64 {
        // 1 - unit() is in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Fills `bytes` with random bytes.
    pub(crate) fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // Reference outputs for seed 0 (Vigna's splitmix64.c; recomputed
        // with a few lines of Python).
        let mut state = 0;
        let outputs: Vec<u64> = (0..3).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(
            outputs,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    #[test]
    fn xoshiro256_star_star_matches_the_reference() {
        // State {1, 2, 3, 4}: the first outputs of the reference xoshiro256**.c.
        let mut prng = Prng { s: [1, 2, 3, 4] };
        let outputs: Vec<u64> = (0..4).map(|_| prng.next_u64()).collect();
        assert_eq!(
            outputs,
            [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]
        );
    }

    #[test]
    fn a_seed_gives_the_same_sequence_and_seeds_differ() {
        let run = |seed| {
            let mut prng = Prng::seed_from(seed);
            (0..8).map(|_| prng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn stays_in_range() {
        let mut prng = Prng::seed_from(7);
        for _ in 0..10_000 {
            assert!(prng.below(10) < 10);
            let u = prng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(prng.normal().is_finite());
        }
        assert_eq!(prng.below(1), 0);
    }

    #[test]
    fn below_covers_every_value_roughly_evenly() {
        let mut prng = Prng::seed_from(1);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[prng.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn fills_odd_lengths() {
        let mut prng = Prng::seed_from(3);
        let mut bytes = [0u8; 13];
        prng.fill(&mut bytes);
        assert!(bytes.iter().any(|&b| b != 0));
    }
}
