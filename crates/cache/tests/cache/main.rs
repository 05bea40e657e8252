//! The cache end to end: one suite of cases run on both back ends (memory,
//! and the shared Redis under a prefix of the test's own), then what only
//! Redis has: outages, recovery, health, metrics and logs, on private
//! `redis-server` processes. One test binary, so it links once.

mod observability;
mod outage;
mod redis;
mod suite;
