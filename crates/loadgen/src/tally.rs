//! Counts kept by each replay worker on its own, so that recording an
//! outcome takes no lock; the workers' tallies are added up at the end.
//! Latencies go to histograms the workers share ([`Latencies`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{DumpFile, DumplogError, LatencySummary};
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
            behind_schedule: 0,
            timeline: Timeline::new(),
            dumplogs: Vec::new(),
            dumplog_errors: Vec::new(),
        }
    }

    /// Records a command's outcome, and when (since the start of the run)
    /// it completed.
    pub(crate) fn record(&mut self, outcome: Outcome, at: Duration) {
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
        self.timeline.record(at);
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
        self.behind_schedule += other.behind_schedule;
        self.timeline.merge(other.timeline);
        self.dumplogs.extend(other.dumplogs);
        self.dumplog_errors.extend(other.dumplog_errors);
    }
}

/// The run's latency histograms, in microseconds, one pair for every
/// worker: a histogram that covers seconds at three significant figures
/// takes about 160 KB, and a replay of 1,200 users runs 1,200 workers,
/// which with a pair each held 200 MB. Recording takes a lock, held for
/// the few nanoseconds a record takes.
#[derive(Debug)]
pub(crate) struct Latencies {
    /// From the first attempt (or the due time) to the final answer.
    all: Mutex<Histogram<u64>>,
    /// Open loop only: from sending a command to its answer, without the
    /// time it spent behind schedule.
    service: Mutex<Histogram<u64>>,
}

impl Latencies {
    pub(crate) fn new() -> Latencies {
        Latencies {
            all: Mutex::new(histogram()),
            service: Mutex::new(histogram()),
        }
    }

    pub(crate) fn record(&self, latency: Duration) {
        record_micros(&mut self.all.lock().expect("not poisoned"), latency);
    }

    /// Records an open-loop command's service time.
    pub(crate) fn record_service(&self, latency: Duration) {
        record_micros(&mut self.service.lock().expect("not poisoned"), latency);
    }

    /// The summaries of both, in milliseconds.
    pub(crate) fn summaries(&self) -> (LatencySummary, LatencySummary) {
        (
            LatencySummary::from_micros(&self.all.lock().expect("not poisoned")),
            LatencySummary::from_micros(&self.service.lock().expect("not poisoned")),
        )
    }
}

/// Auto-resizing: it grows only as far as the latencies seen.
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
        a.record(Outcome::Accepted, ms(100));
        a.record(Outcome::Rejected("no_pending_buy".into()), ms(1500));
        let mut b = Tally::new();
        b.retries = 3;
        b.behind_schedule = 2;
        b.record(Outcome::Rejected("no_pending_buy".into()), ms(2100));
        b.record(Outcome::Failed("http_500".into()), ms(2200));
        a.merge(b);
        assert_eq!((a.accepted, a.rejected, a.failed, a.retries), (1, 2, 1, 3));
        assert_eq!(a.rejected_by_code["no_pending_buy"], 2);
        assert_eq!(a.failed_by_reason["http_500"], 1);
        assert_eq!(a.behind_schedule, 2);
        assert_eq!(a.timeline.into_parts(), (1, vec![1, 1, 2]));
    }

    #[test]
    fn every_worker_records_into_one_pair_of_histograms() {
        let latencies = Latencies::new();
        for ms in [1, 2, 3, 4] {
            latencies.record(Duration::from_millis(ms));
        }
        latencies.record_service(Duration::from_millis(5));
        let (all, service) = latencies.summaries();
        assert!((all.max - 4.0).abs() < 0.01, "{all:?}");
        assert!((service.max - 5.0).abs() < 0.01, "{service:?}");
    }
}
