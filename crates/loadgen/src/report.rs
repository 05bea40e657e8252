//! What a replay measured, as JSON for tools and plots and as a table for
//! people.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::workload::MalformedLine;

/// The outcome of a replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The base URL the commands were sent to.
    pub target: String,
    /// Commands sent (malformed lines are not commands).
    pub commands: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx: the server refused the command.
    pub rejected: u64,
    /// Rejections by the error code of the answer (`unknown` when the body
    /// carried none).
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Commands without an acceptance or a refusal: a 5xx other than 503,
    /// a transport error or 503 that outlasted every retry, or a refused
    /// token (401, 403).
    pub failed: u64,
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Attempts repeated after a transport error or a 503.
    pub retries: u64,
    /// Commands never sent, because the run stopped first.
    #[serde(default)]
    pub not_sent: u64,
    /// Why the run stopped before its end: the server refused the token,
    /// or could not be reached for longer than a command's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub malformed_lines: u64,
    /// The first malformed lines (at most
    /// [`crate::MAX_KEPT_MALFORMED`]); `malformed_lines` counts them all.
    pub malformed: Vec<MalformedLine>,
    /// Distinct users in the workload.
    pub users: u64,
    /// The most users that were in flight at once.
    pub concurrency: u64,
    pub duration_s: f64,
    /// Commands per second of wall time.
    pub throughput_per_s: f64,
    /// From the first attempt of a command to its final answer, retries and
    /// back-off included.
    pub latency_ms: LatencySummary,
    /// The DUMPLOG answers saved.
    pub dumplogs: Vec<DumpFile>,
    /// DUMPLOG answers that could not be saved.
    pub dumplog_errors: Vec<DumplogError>,
    /// Commands completed in each stretch of [`Report::timeline_step_s`]
    /// seconds of the run, in order; at most [`crate::MAX_TIMELINE_BUCKETS`]
    /// of them, however long the run.
    pub timeline: Vec<u64>,
    /// Seconds per entry of the timeline: 1 for runs of up to ten minutes,
    /// doubling as often as a longer run needs.
    #[serde(default = "one_second")]
    pub timeline_step_s: u64,
    /// What the schedule of an open-loop run (a fixed rate) did; absent for
    /// a closed loop. In an open loop, [`Report::latency_ms`] counts from
    /// when each command was due, not from when it could be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoop>,
}

fn one_second() -> u64 {
    1
}

/// The schedule of an open-loop run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenLoop {
    /// The commands per second asked for.
    pub rate_per_s: f64,
    /// From sending a command to its final answer: the server's part of
    /// the latency, without the time a command waited behind its user's
    /// previous one.
    pub service_latency_ms: LatencySummary,
    /// Commands that started more than a millisecond after they were due.
    pub behind_schedule: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// From a histogram of microseconds.
    pub(crate) fn from_micros(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// A DUMPLOG answer written to disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFile {
    pub line: usize,
    pub transaction_num: i64,
    /// The user whose log it is; `None` for the whole system's.
    pub user: Option<String>,
    /// The file name as the workload gave it.
    pub filename: String,
    /// Where it was written.
    pub path: PathBuf,
    pub bytes: u64,
}

/// A DUMPLOG answer that was not saved: a refused file name or a write
/// error. Either fails the run, as the log it asked for is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumplogError {
    pub line: usize,
    pub transaction_num: i64,
    pub filename: Option<String>,
    pub error: String,
}

impl Report {
    /// Whether every command was sent and got an answer, and every log the
    /// workload asked for was saved; refusals are expected (the course
    /// files are full of them) and do not count against a run.
    pub fn succeeded(&self) -> bool {
        self.failed == 0
            && self.not_sent == 0
            && self.stopped.is_none()
            && self.dumplog_errors.is_empty()
    }

    /// The timeline as (seconds since the start, commands per second),
    /// one point in the middle of each entry, the last (partial) one left
    /// out: drawn, it would look like a drop.
    pub fn throughput_points(&self) -> Vec<(f64, f64)> {
        let step = self.timeline_step_s.max(1) as f64;
        let full = self.timeline.len().saturating_sub(1).max(1);
        self.timeline
            .iter()
            .take(full)
            .enumerate()
            .map(|(i, &n)| ((i as f64 + 0.5) * step, n as f64 / step))
            .collect()
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, self).context("encoding the report")?;
        out.write_all(b"\n")?;
        out.flush()
            .with_context(|| format!("writing {}", path.display()))
    }

    /// A summary for a terminal.
    pub fn print_table(&self, out: &mut impl Write) -> io::Result<()> {
        let share = |n: u64| {
            if self.commands == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.commands as f64
            }
        };
        writeln!(out, "Replay against {}", self.target)?;
        writeln!(out, "  {:<20}{:>12}", "commands", self.commands)?;
        writeln!(out, "  {:<20}{:>12}", "users", self.users)?;
        writeln!(out, "  {:<20}{:>12}", "concurrency", self.concurrency)?;
        writeln!(
            out,
            "  {:<20}{:>12}  {:>5.1}%",
            "accepted",
            self.accepted,
            share(self.accepted)
        )?;
        writeln!(
            out,
            "  {:<20}{:>12}  {:>5.1}%",
            "rejected",
            self.rejected,
            share(self.rejected)
        )?;
        for (code, n) in &self.rejected_by_code {
            writeln!(out, "    {code:<18}{n:>12}")?;
        }
        writeln!(
            out,
            "  {:<20}{:>12}  {:>5.1}%",
            "failed",
            self.failed,
            share(self.failed)
        )?;
        for (reason, n) in &self.failed_by_reason {
            writeln!(out, "    {reason:<18}{n:>12}")?;
        }
        writeln!(out, "  {:<20}{:>12}", "retries", self.retries)?;
        if self.not_sent > 0 {
            writeln!(out, "  {:<20}{:>12}", "not sent", self.not_sent)?;
        }
        writeln!(
            out,
            "  {:<20}{:>12}",
            "malformed lines", self.malformed_lines
        )?;
        for bad in self.malformed.iter().take(10) {
            writeln!(out, "    line {}: {} ({})", bad.line, bad.reason, bad.text)?;
        }
        if self.malformed.len() > 10 {
            writeln!(out, "    ... and {} more", self.malformed.len() - 10)?;
        }
        writeln!(out, "  {:<20}{:>12.3} s", "duration", self.duration_s)?;
        writeln!(
            out,
            "  {:<20}{:>12.1} commands/s",
            "throughput", self.throughput_per_s
        )?;
        let latency = |out: &mut dyn Write, name: &str, l: &LatencySummary| {
            writeln!(
                out,
                "  {:<20}p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}",
                name, l.p50, l.p90, l.p99, l.max, l.mean
            )
        };
        latency(out, "latency (ms)", &self.latency_ms)?;
        if let Some(open) = &self.open_loop {
            writeln!(
                out,
                "  {:<20}{:>12.1} commands/s (open loop; latency from each command's due time)",
                "rate", open.rate_per_s
            )?;
            latency(out, "service (ms)", &open.service_latency_ms)?;
            writeln!(
                out,
                "  {:<20}{:>12}",
                "behind schedule", open.behind_schedule
            )?;
        }
        for dump in &self.dumplogs {
            writeln!(
                out,
                "  dumplog {} -> {} ({} bytes)",
                dump.filename,
                dump.path.display(),
                dump.bytes
            )?;
        }
        for error in &self.dumplog_errors {
            let name = error.filename.as_deref().unwrap_or("(none)");
            writeln!(
                out,
                "  dumplog error, line {} ({name:?}): {}",
                error.line, error.error
            )?;
        }
        if let Some(why) = &self.stopped {
            writeln!(out, "  stopped: {why}")?;
        }
        writeln!(
            out,
            "  {:<20}{:>12}",
            "result",
            if self.succeeded() { "OK" } else { "FAILED" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            target: "http://127.0.0.1:9999".into(),
            commands: 10,
            accepted: 6,
            rejected: 3,
            rejected_by_code: BTreeMap::from([
                ("insufficient_funds".into(), 2),
                ("unknown".into(), 1),
            ]),
            failed: 1,
            failed_by_reason: BTreeMap::from([("http_500".into(), 1)]),
            retries: 2,
            not_sent: 0,
            stopped: None,
            malformed_lines: 1,
            malformed: vec![MalformedLine {
                line: 4,
                reason: "the command name is missing".into(),
                text: "[4]".into(),
            }],
            users: 2,
            concurrency: 2,
            duration_s: 0.5,
            throughput_per_s: 20.0,
            latency_ms: LatencySummary::default(),
            dumplogs: vec![DumpFile {
                line: 10,
                transaction_num: 10,
                user: None,
                filename: "./testLOG".into(),
                path: "out/testLOG".into(),
                bytes: 1234,
            }],
            dumplog_errors: vec![],
            timeline: vec![10],
            timeline_step_s: 1,
            open_loop: None,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for ms in 1..=100u64 {
            h.record(ms * 1000).unwrap();
        }
        let s = LatencySummary::from_micros(&h);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
        assert!(close(s.p50, 50.0), "{s:?}");
        assert!(close(s.p90, 90.0), "{s:?}");
        assert!(close(s.p99, 99.0), "{s:?}");
        assert!(close(s.max, 100.0), "{s:?}");
        assert!(close(s.mean, 50.5), "{s:?}");
        assert_eq!(
            LatencySummary::from_micros(&Histogram::new(3).unwrap()),
            LatencySummary::default()
        );
    }

    #[test]
    fn a_failure_or_a_lost_log_fails_the_run() {
        let mut r = report();
        assert!(!r.succeeded());
        r.failed = 0;
        assert!(r.succeeded());
        r.dumplog_errors.push(DumplogError {
            line: 3,
            transaction_num: 3,
            filename: Some("../x".into()),
            error: "refused".into(),
        });
        assert!(!r.succeeded());
        r.dumplog_errors.clear();
        r.stopped = Some("the server refused the token".into());
        assert!(!r.succeeded(), "a run that stopped is not OK");
        r.stopped = None;
        r.not_sent = 3;
        assert!(!r.succeeded(), "nor one that left commands unsent");
    }

    #[test]
    fn a_stopped_run_says_why_and_old_reports_still_read() {
        let mut r = report();
        r.stopped = Some("cannot connect to http://127.0.0.1:9".into());
        r.not_sent = 7;
        let mut table = Vec::new();
        r.print_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        for expected in [
            "stopped: cannot connect to http://127.0.0.1:9",
            "not sent",
            "FAILED",
        ] {
            assert!(table.contains(expected), "{expected} in\n{table}");
        }
        // Reports written before these fields existed read with defaults.
        let mut old = serde_json::to_value(report()).unwrap();
        for field in ["not_sent", "stopped", "timeline_step_s"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let back: Report = serde_json::from_value(old).unwrap();
        assert_eq!(
            (back.not_sent, back.stopped, back.timeline_step_s),
            (0, None, 1)
        );
    }

    #[test]
    fn throughput_points_are_per_second_whatever_the_step() {
        let mut r = report();
        r.timeline = vec![40, 80, 8];
        r.timeline_step_s = 4;
        assert_eq!(r.throughput_points(), vec![(2.0, 10.0), (6.0, 20.0)]);
    }

    #[test]
    fn writes_json_that_reads_back_and_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let r = report();
        r.write_json(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "commands",
            "accepted",
            "rejected_by_code",
            "failed_by_reason",
            "malformed_lines",
            "throughput_per_s",
            "timeline",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["latency_ms"]["p99"], 0.0);

        let mut table = Vec::new();
        r.print_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        for expected in [
            "insufficient_funds",
            "http_500",
            "line 4",
            "./testLOG",
            "1234 bytes",
            "FAILED",
        ] {
            assert!(table.contains(expected), "{expected} in\n{table}");
        }
    }

    #[test]
    fn an_open_loop_run_shows_its_schedule_and_old_reports_still_read() {
        let mut r = report();
        r.open_loop = Some(OpenLoop {
            rate_per_s: 500.0,
            service_latency_ms: LatencySummary {
                p99: 1.5,
                ..LatencySummary::default()
            },
            behind_schedule: 7,
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["open_loop"]["rate_per_s"], 500.0);
        assert_eq!(json["open_loop"]["behind_schedule"], 7);
        let mut table = Vec::new();
        r.print_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        for expected in ["open loop", "service (ms)", "behind schedule"] {
            assert!(table.contains(expected), "{expected} in\n{table}");
        }

        // A closed-loop report, and one written before open loops existed,
        // carry no open_loop at all.
        let mut closed = serde_json::to_value(report()).unwrap();
        assert!(closed.get("open_loop").is_none());
        closed.as_object_mut().unwrap().remove("open_loop");
        let back: Report = serde_json::from_value(closed).unwrap();
        assert_eq!(back.open_loop, None);
    }
}
