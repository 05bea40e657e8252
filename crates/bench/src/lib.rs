//! DayTrader's benchmark suite (issue 6): `scripts/bench` runs the
//! `daytrader-bench` binary, which measures in one run on one machine the
//! ceiling, replays in embedded and cluster mode, cached reads, latency at
//! half load, a slow quote server, DUMPLOG of a large log, 1 to 3 instances
//! and a Locust run, profiles a cluster replay, and writes
//! `bench/report.json`, `docs/benchmarks.md` and its plots.
//!
//! The report's model, its derivations (figures, ratios, targets), the page
//! and the plots are pure functions of the measurements, tested without
//! running anything; the modules that start processes are exercised by
//! running the suite (`scripts/bench --quick`).

pub mod cluster;
pub mod dumplog;
pub mod embedded;
pub mod http;
pub mod locust;
pub mod machine;
pub mod model;
pub mod plots;
pub mod procfs;
pub mod procs;
pub mod profile;
pub mod render;
pub mod replay;
pub mod suite;
pub mod targets;
pub mod wrk;

/// `part / whole`, or 0 where there is no whole to compare with (a
/// measurement that did not run).
pub fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}
