//! End-to-end tests: the real `daytrader` binary, over HTTP.

mod api;
mod helpers;
mod lifecycle;
mod oracle;
mod triggers;
mod workloads;
