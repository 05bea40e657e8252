//! DayTrader's load generator: reads the SENG 468 workload files, writes new
//! ones of any size, and replays them against a server over its JSON API,
//! measuring throughput, latency and outcomes.
//!
//! A replay keeps each user's commands in file order and runs different
//! users concurrently, as the course prescribes; a global DUMPLOG is a
//! barrier. The `daytrader` binary wires this into `workload run` and
//! `workload generate`.

mod compact;
mod connection;
mod dump_path;
mod generate;
mod prng;
mod replay;
mod report;
mod tally;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timeline;
mod workload;

pub use compact::{MAX_KEPT_MALFORMED, Workload};
pub use dump_path::{UnsafeDumpName, resolve_dump_path};
pub use generate::{DUMPLOG_FILENAME, GenerateError, generate};
pub use replay::{RunOptions, run};
pub use report::{DumpFile, DumplogError, LatencySummary, OpenLoop, Report};
pub use timeline::MAX_BUCKETS as MAX_TIMELINE_BUCKETS;
pub use workload::{
    MAX_SHOWN_TEXT, MalformedLine, ParsedWorkload, WorkloadCommand, parse_file, parse_reader,
    parse_str,
};
