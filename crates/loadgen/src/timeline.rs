//! Commands completed over the run, for the report's throughput plot.
//!
//! One count per second would grow with the run's length (a closed loop
//! over a big file runs for hours), so the timeline keeps at most
//! [`MAX_BUCKETS`] counts: when a run outlasts them, neighbouring buckets
//! are added together and each covers twice as many seconds. Steps are
//! powers of two, so two workers' timelines always line up when merged.

use std::time::Duration;

/// The most buckets a timeline holds: runs of up to ten minutes keep one
/// bucket per second.
pub const MAX_BUCKETS: usize = 600;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// Seconds per bucket: 1, 2, 4, ...
    step_s: u64,
    counts: Vec<u64>,
}

impl Timeline {
    pub(crate) fn new() -> Timeline {
        Timeline {
            step_s: 1,
            counts: Vec::new(),
        }
    }

    /// Counts a command completed `at` after the start of the run.
    pub(crate) fn record(&mut self, at: Duration) {
        let bucket = self.bucket(at);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
    }

    /// Makes the timeline cover a run of `duration`, trailing quiet
    /// seconds included.
    pub(crate) fn cover(&mut self, duration: Duration) {
        let bucket = self.bucket(duration);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
    }

    /// The bucket of `at`, coarsening the timeline until it has one.
    fn bucket(&mut self, at: Duration) -> usize {
        loop {
            let bucket = (at.as_secs() / self.step_s) as usize;
            if bucket < MAX_BUCKETS {
                return bucket;
            }
            self.coarsen();
        }
    }

    /// Twice the seconds per bucket, half the buckets.
    fn coarsen(&mut self) {
        self.counts = self
            .counts
            .chunks(2)
            .map(|pair| pair.iter().sum())
            .collect();
        self.step_s *= 2;
    }

    pub(crate) fn merge(&mut self, mut other: Timeline) {
        while self.step_s < other.step_s {
            self.coarsen();
        }
        while other.step_s < self.step_s {
            other.coarsen();
        }
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    /// Seconds per bucket, and the counts.
    pub(crate) fn into_parts(self) -> (u64, Vec<u64>) {
        (self.step_s, self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_second_while_the_run_is_short() {
        let mut t = Timeline::new();
        for ms in [100, 900, 1_500, 4_000] {
            t.record(Duration::from_millis(ms));
        }
        t.cover(Duration::from_millis(5_200));
        assert_eq!(t.into_parts(), (1, vec![2, 1, 0, 0, 1, 0]));
    }

    #[test]
    fn a_long_run_keeps_a_bounded_timeline_with_every_command() {
        let mut t = Timeline::new();
        // A command every 10 ms for ten hours: 3.6 million commands.
        let commands = 3_600_000u64;
        for i in 0..commands {
            t.record(Duration::from_millis(i * 10));
        }
        let (step, counts) = t.into_parts();
        assert!(counts.len() <= MAX_BUCKETS, "{}", counts.len());
        assert_eq!(step, 64);
        assert_eq!(counts.iter().sum::<u64>(), commands);
        assert_eq!(counts[0], 6_400, "64 s at 100 commands/s");
    }

    #[test]
    fn timelines_of_different_steps_merge() {
        let mut long = Timeline::new();
        long.record(Duration::from_secs(1_000));
        let mut short = Timeline::new();
        short.record(Duration::from_secs(1));
        short.record(Duration::from_secs(3));
        short.merge(long.clone());
        assert_eq!(
            short.clone().into_parts(),
            (2, vec_with(&[(0, 1), (1, 1), (500, 1)]))
        );
        long.merge(Timeline::new());
        assert_eq!(long.into_parts().0, 2);
    }

    fn vec_with(counts: &[(usize, u64)]) -> Vec<u64> {
        let mut v = vec![0; counts.iter().map(|c| c.0).max().unwrap() + 1];
        for &(i, n) in counts {
            v[i] = n;
        }
        v
    }
}
