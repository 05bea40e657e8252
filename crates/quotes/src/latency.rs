//! How long the built-in quote server waits before it replies.

use std::time::Duration;

use crate::prng::Prng;

/// The built-in server's reply delay.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum LatencyProfile {
    /// Reply at once: for correctness checks and throughput ceilings.
    #[default]
    None,
    /// Shaped like the legacy server, whose replies took from about 10 ms to
    /// 4 s with a mean of about 560 ms: a log-normal with a median of 348 ms
    /// and sigma 1, clipped to [10 ms, 4000 ms]. The median was solved for so
    /// that the mean after clipping is 560 ms; about 29% of replies take
    /// longer than 600 ms and 0.7% hit the 4 s ceiling.
    Legacy,
}

impl LatencyProfile {
    const LEGACY_MEDIAN_MS: f64 = 348.0;
    const LEGACY_SIGMA: f64 = 1.0;
    const LEGACY_MIN_MS: f64 = 10.0;
    const LEGACY_MAX_MS: f64 = 4000.0;

    pub(crate) fn sample(self, prng: &mut Prng) -> Duration {
        match self {
            LatencyProfile::None => Duration::ZERO,
            LatencyProfile::Legacy => {
                let ms = Self::LEGACY_MEDIAN_MS * (Self::LEGACY_SIGMA * prng.normal()).exp();
                Duration::from_secs_f64(ms.clamp(Self::LEGACY_MIN_MS, Self::LEGACY_MAX_MS) / 1000.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_instant() {
        let mut prng = Prng::seed_from(1);
        assert_eq!(LatencyProfile::None.sample(&mut prng), Duration::ZERO);
    }

    #[test]
    fn legacy_is_shaped_like_the_original() {
        let mut prng = Prng::seed_from(2024);
        let samples: Vec<f64> = (0..200_000)
            .map(|_| LatencyProfile::Legacy.sample(&mut prng).as_secs_f64() * 1000.0)
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!(
            (504.0..=616.0).contains(&mean),
            "mean {mean} ms is not within 10% of 560 ms"
        );
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        assert!(min >= 10.0 && max <= 4000.0, "range [{min}, {max}] ms");
        // It really spans the range: some near-instant, some at the ceiling.
        assert!(min < 30.0 && max == 4000.0, "range [{min}, {max}] ms");
        let slow = samples.iter().filter(|&&ms| ms > 600.0).count() as f64 / samples.len() as f64;
        assert!(
            (0.25..0.33).contains(&slow),
            "{slow} of replies slower than 600 ms"
        );
    }
}
