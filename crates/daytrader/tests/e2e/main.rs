//! End-to-end tests: the real `daytrader` binary, over HTTP, on real
//! PostgreSQL and Redis where the cluster is concerned.

mod api;
mod audit;
mod bad_input;
mod balancer;
mod cluster;
mod configuration;
mod events;
mod expiry;
mod faults;
mod helpers;
mod history;
mod infra;
mod lifecycle;
mod local_cluster;
mod logs;
mod money;
mod numbering;
mod oracle;
mod readiness;
mod replayer;
mod tamper;
mod triggers;
mod web;
mod wiring;
mod workloads;
