//! Counts kept by each replay worker on its own, so that recording an
//! outcome takes no lock; the workers' tallies are added up at the end.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{DumpFile, DumplogError};
use crate::timeline::Timeline;

/// How one command ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    /// With the error code of the answer.
    Rejected(String),
    /// With the reason, a short stable key.
    Failed(String),
}

#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
    pub(crate) rejected_by_code: HashMap<String, u64>,
    pub(crate) failed: u64,
    pub(crate) failed_by_reason: HashMap<String, u64>,
    pub(crate) retries: u64,
    /// Microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Open loop only: microseconds from sending a command to its answer,
    /// without the time it spent behind schedule.
    pub(crate) service_latency: Histogram<u64>,
    /// Open loop only: commands that started late, because their user's
    /// previous command was answered after they were due.
    pub(crate) behind_schedule: u64,
    /// Commands completed over the run.
    pub(crate) timeline: Timeline,
    pub(crate) dumplogs: Vec<DumpFile>,
    pub(crate) dumplog_errors: Vec<DumplogError>,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            accepted: 0,
            rejected: 0,
            rejected_by_code: HashMap::new(),
            failed: 0,
            failed_by_reason: HashMap::new(),
            retries: 0,
            latency: histogram(),
            service_latency: histogram(),
            behind_schedule: 0,
            timeline: Timeline::new(),
            dumplogs: Vec::new(),
            dumplog_errors: Vec::new(),
        }
    }

    /// Records a command's outcome, its latency, and when (since the start
    /// of the run) it completed.
    pub(crate) fn record(&mut self, outcome: Outcome, latency: Duration, at: Duration) {
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Rejected(code) => {
                self.rejected += 1;
                *self.rejected_by_code.entry(code).or_default() += 1;
            }
            Outcome::Failed(reason) => {
                self.failed += 1;
                *self.failed_by_reason.entry(reason).or_default() += 1;
            }
        }
        record_micros(&mut self.latency, latency);
        self.timeline.record(at);
    }

    /// Records an open-loop command's service time.
    pub(crate) fn record_service(&mut self, latency: Duration) {
        record_micros(&mut self.service_latency, latency);
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        for (code, n) in other.rejected_by_code {
            *self.rejected_by_code.entry(code).or_default() += n;
        }
        self.failed += other.failed;
        for (reason, n) in other.failed_by_reason {
            *self.failed_by_reason.entry(reason).or_default() += n;
        }
        self.retries += other.retries;
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms always add");
        self.service_latency
            .add(&other.service_latency)
            .expect("auto-resizing histograms always add");
        self.behind_schedule += other.behind_schedule;
        self.timeline.merge(other.timeline);
        self.dumplogs.extend(other.dumplogs);
        self.dumplog_errors.extend(other.dumplog_errors);
    }
}

/// Auto-resizing, so that a worker's histogram only grows as far as the
/// latencies it saw: a hundred workers stay small.
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

fn record_micros(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    // `record` grows the histogram to fit; the saturating form would
    // silently clamp to its current (small) range instead.
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_everything_up() {
        let ms = Duration::from_millis;
        let mut a = Tally::new();
        a.record(Outcome::Accepted, ms(1), ms(100));
        a.record(Outcome::Rejected("no_pending_buy".into()), ms(2), ms(1500));
        let mut b = Tally::new();
        b.retries = 3;
        b.behind_schedule = 2;
        b.record_service(ms(5));
        b.record(Outcome::Rejected("no_pending_buy".into()), ms(3), ms(2100));
        b.record(Outcome::Failed("http_500".into()), ms(4), ms(2200));
        a.merge(b);
        assert_eq!((a.accepted, a.rejected, a.failed, a.retries), (1, 2, 1, 3));
        assert_eq!(a.rejected_by_code["no_pending_buy"], 2);
        assert_eq!(a.failed_by_reason["http_500"], 1);
        assert_eq!(a.timeline.into_parts(), (1, vec![1, 1, 2]));
        assert_eq!(a.latency.len(), 4);
        assert_eq!((a.service_latency.len(), a.behind_schedule), (1, 2));
        assert_eq!(a.latency.max(), a.latency.highest_equivalent(4000));
    }
}
