//! DESIGN.md's targets, checked against a run's measurements.

use serde::{Deserialize, Serialize};

use crate::ratio;
use crate::render::thousands;

use crate::model::{
    BALANCER_C10, BenchReport, CLUSTER_COURSE, CLUSTER_COURSE_10, CLUSTER_GENERATED,
    CLUSTER_MANY_USERS, EMBEDDED_COURSE, EMBEDDED_GENERATED, EMBEDDED_HALF_LOAD,
    EMBEDDED_MANY_USERS, HALF_LOAD, READ_QUOTE, READ_SUMMARY, ReplayRun, SLOW_QUOTE,
    ceiling_for_replay,
};

/// The slack allowed between the memory growth of the small and the large
/// DUMPLOG before the memory is said to grow with the log: allocator and
/// buffer noise, far below what holding ten times more rows would take.
pub const DUMPLOG_SLACK_MB: f64 = 16.0;

/// One target and how this run did against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub id: String,
    /// The target as DESIGN.md states it.
    pub target: String,
    /// What was compared, in words.
    pub measured: String,
    pub value: f64,
    pub goal: f64,
    /// `at_least` or `at_most`.
    pub direction: String,
    pub met: bool,
    /// value / goal: above 1 is better for `at_least`, below 1 for
    /// `at_most`.
    pub margin: f64,
}

impl TargetCheck {
    fn new(
        id: &str,
        target: &str,
        measured: String,
        value: f64,
        goal: f64,
        at_least: bool,
        valid: bool,
    ) -> TargetCheck {
        let met = valid
            && if at_least {
                value >= goal
            } else {
                value <= goal
            };
        TargetCheck {
            id: id.to_owned(),
            target: target.to_owned(),
            measured,
            value,
            goal,
            direction: if at_least { "at_least" } else { "at_most" }.to_owned(),
            met,
            margin: if goal == 0.0 { 0.0 } else { value / goal },
        }
    }

    /// "met", or how far off, in words a reader can act on.
    pub fn verdict(&self) -> String {
        let at_least = self.direction == "at_least";
        match (self.met, at_least) {
            (true, true) => format!("met ({:.2}x the goal)", self.margin),
            (true, false) => format!("met ({:.0}% of the limit)", self.margin * 100.0),
            // Near misses in percent: "1.0x short" would say nothing.
            (false, true) if self.margin >= 0.5 => format!(
                "not met: {:.2}x the goal, {:.0}% short",
                self.margin,
                (1.0 - self.margin) * 100.0
            ),
            (false, true) if self.margin > 0.0 => format!(
                "not met: {:.2}x the goal, {:.1}x short",
                self.margin,
                1.0 / self.margin
            ),
            (false, true) => "not met".to_owned(),
            (false, false) => format!("not met: {:.1}x the limit", self.margin),
        }
    }
}

/// Checks every target the run has the measurements for: DESIGN.md's,
/// then those of the commit-path work ([`ratio_targets`]).
pub fn check(report: &BenchReport) -> Vec<TargetCheck> {
    let mut out = design_targets(report);
    out.extend(ratio_targets(report));
    out
}

/// The targets of the commit-path work (pipelined commits, the cost per
/// command), each a ratio to the ceiling of the same run, so that they
/// hold on any machine: throughput as a share of `/healthz` along the same
/// path, latency in milliseconds, DUMPLOG in MB/s.
pub fn ratio_targets(report: &BenchReport) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let share = |name: &str, goal: f64, target: &str| -> Option<TargetCheck> {
        let replay = report.replay(name)?;
        let ceiling = report.ceiling(ceiling_for_replay(replay))?;
        let r = &replay.report;
        Some(TargetCheck::new(
            &format!("{name}.ratio"),
            target,
            format!(
                "{} ({}): {} commands/s against `{}`'s {} requests/s{}",
                replay.name,
                replay.workload,
                thousands(r.throughput_per_s),
                ceiling.name,
                thousands(ceiling.requests_per_s),
                failed_note(r.failed)
            ),
            ratio(r.throughput_per_s, ceiling.requests_per_s),
            goal,
            true,
            r.failed == 0,
        ))
    };
    for name in [EMBEDDED_COURSE, EMBEDDED_MANY_USERS] {
        out.extend(share(
            name,
            0.3,
            "Embedded: at least 0.3 of the direct ceiling, on the course 100-user file and on 1,200 generated users",
        ));
    }
    for name in [CLUSTER_COURSE, CLUSTER_MANY_USERS] {
        out.extend(share(
            name,
            0.3,
            "Cluster: at least 0.3 of the balancer's ceiling, on the course 100-user file and on 1,200 generated users",
        ));
    }
    out.extend(share(
        CLUSTER_COURSE_10,
        0.25,
        "Few users: the course 10-user file in the cluster at 0.25 of the balancer's ceiling with 10 connections",
    ));
    if let Some(replay) = report.replay(CLUSTER_COURSE_10) {
        let r = &replay.report;
        out.push(TargetCheck::new(
            &format!("{CLUSTER_COURSE_10}.p50"),
            "Few users: a p50 under 1 ms per command",
            format!(
                "{} ({}): p50{}",
                replay.name,
                replay.workload,
                failed_note(r.failed)
            ),
            r.latency_ms.p50,
            1.0,
            false,
            r.failed == 0,
        ));
    }
    for name in [HALF_LOAD, EMBEDDED_HALF_LOAD] {
        if let Some(replay) = report.replay(name) {
            let r = &replay.report;
            let rate = r.open_loop.map_or(0.0, |o| o.rate_per_s);
            out.push(TargetCheck::new(
                &format!("{name}.p99"),
                "p99 under 5 ms in both modes, open loop at half of the mode's peak, from each command's due time",
                format!(
                    "{name}: open loop at {} commands/s{}",
                    thousands(rate),
                    failed_note(r.failed)
                ),
                r.latency_ms.p99,
                5.0,
                false,
                r.failed == 0,
            ));
        }
    }
    for store in ["sqlite", "postgresql"] {
        // The largest DUMPLOG of each back end.
        if let Some(dump) = report
            .dumplogs
            .iter()
            .filter(|d| d.store == store)
            .max_by_key(|d| d.rows)
        {
            out.push(TargetCheck::new(
                &format!("dumplog.{}.mb-per-s", dump.name),
                "DUMPLOG streams at 100 MB/s or more from both back ends",
                format!(
                    "{}: {:.1} MB of XML ({} rows) in {:.2} s",
                    dump.name,
                    dump.bytes as f64 / 1e6,
                    thousands(dump.rows as f64),
                    dump.seconds
                ),
                dump.mb_per_s,
                100.0,
                true,
                dump.bytes > 0,
            ));
        }
    }
    out
}

fn failed_note(failed: u64) -> String {
    if failed > 0 {
        format!(", {failed} commands failed (the figure does not count)")
    } else {
        String::new()
    }
}

/// DESIGN.md's targets.
fn design_targets(report: &BenchReport) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let throughput = |replay: &ReplayRun| {
        let r = &replay.report;
        let failed = if r.failed > 0 {
            format!(", {} commands failed (the figure does not count)", r.failed)
        } else {
            String::new()
        };
        (
            format!("{} ({}){failed}", replay.name, replay.workload),
            r.throughput_per_s,
            r.failed == 0,
        )
    };

    for name in [CLUSTER_COURSE, CLUSTER_GENERATED] {
        if let Some(replay) = report.replay(name) {
            let (measured, value, valid) = throughput(replay);
            out.push(TargetCheck::new(
                &format!("{name}.throughput"),
                "Cluster mode, 100-user workload, durable commits: at least 10,000 commands/s, the load generator included",
                measured,
                value,
                10_000.0,
                true,
                valid,
            ));
        }
    }
    for name in [EMBEDDED_COURSE, EMBEDDED_GENERATED] {
        if let Some(replay) = report.replay(name) {
            let (measured, value, valid) = throughput(replay);
            out.push(TargetCheck::new(
                &format!("{name}.throughput"),
                "Embedded mode: at least 30,000 commands/s",
                measured,
                value,
                30_000.0,
                true,
                valid,
            ));
        }
    }
    if let Some(ceiling) = report.ceiling(BALANCER_C10) {
        for name in [READ_QUOTE, READ_SUMMARY] {
            if let Some(read) = report.cached_read(name) {
                out.push(TargetCheck::new(
                    &format!("{name}.vs-ceiling"),
                    "Cached reads through the load balancer: within 20% of the hello-world ceiling measured in the same run",
                    format!(
                        "{} at {} connections: {} requests/s against /healthz's {} (the same balancer, connections and threads)",
                        read.request,
                        read.connections,
                        thousands(read.requests_per_s),
                        thousands(ceiling.requests_per_s)
                    ),
                    ratio(read.requests_per_s, ceiling.requests_per_s),
                    0.8,
                    true,
                    read.errors.total() == 0,
                ));
            }
        }
    }
    if let Some(half) = report.replay(HALF_LOAD) {
        let r = &half.report;
        let rate = r.open_loop.map_or(0.0, |o| o.rate_per_s);
        out.push(TargetCheck::new(
            "half-load.p99",
            "p99 command latency under half of peak load: under 5 ms",
            format!(
                "open loop at {} commands/s (half the cluster's peak), p99 from each command's due time{}",
                thousands(rate),
                if r.failed > 0 {
                    format!(", {} commands failed", r.failed)
                } else {
                    String::new()
                }
            ),
            r.latency_ms.p99,
            5.0,
            false,
            r.failed == 0,
        ));
    }
    if let (Some(slow), Some(instant)) =
        (report.replay(SLOW_QUOTE), report.replay(CLUSTER_GENERATED))
    {
        let (s, i) = (&slow.report, &instant.report);
        out.push(TargetCheck::new(
            "slow-quote.ratio",
            "With a quote server as slow as the legacy one, throughput stays within half of that with an instant one",
            format!(
                "{} commands/s with the legacy latency against {} with none (the same workload and cluster)",
                thousands(s.throughput_per_s),
                thousands(i.throughput_per_s)
            ),
            ratio(s.throughput_per_s, i.throughput_per_s),
            0.5,
            true,
            s.failed == 0 && i.failed == 0,
        ));
    }
    let embedded: Vec<_> = report
        .dumplogs
        .iter()
        .filter(|d| d.store == "sqlite")
        .collect();
    if let [small, .., large] = embedded.as_slice() {
        out.push(TargetCheck::new(
            "dumplog.constant-memory",
            "DUMPLOG of millions of entries streams in constant memory",
            format!(
                "memory growth {:.1} MB dumping {} rows against {:.1} MB dumping {} rows (allowed: the smaller growth + {DUMPLOG_SLACK_MB} MB)",
                large.rss_growth_mb,
                thousands(large.rows as f64),
                small.rss_growth_mb,
                thousands(small.rows as f64)
            ),
            large.rss_growth_mb,
            small.rss_growth_mb.max(0.0) + DUMPLOG_SLACK_MB,
            false,
            large.rows > small.rows && large.bytes > 0,
        ));
    }
    out
}
