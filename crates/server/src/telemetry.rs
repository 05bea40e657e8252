//! Metrics: one Prometheus recorder per process, shared by every app in it
//! (tests start several).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_process::Collector;

pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ];
            let batch = [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("store_batch_size".into()), &batch)
                })
                .expect("valid buckets")
                .install_recorder()
                .expect("the only metrics recorder of the process")
        })
        .clone()
}

/// The metrics in Prometheus's text format, with the process's own
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, ...) read afresh for this scrape.
pub fn render(handle: &PrometheusHandle) -> String {
    static PROCESS: OnceLock<Collector> = OnceLock::new();
    PROCESS
        .get_or_init(|| {
            let collector = Collector::default();
            collector.describe();
            collector
        })
        .collect();
    handle.render()
}
