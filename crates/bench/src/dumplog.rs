//! DUMPLOG of the whole log: how fast it streams, and how much memory the
//! serving process takes meanwhile.
//!
//! The answer is counted and dropped, not written, so that the figure is
//! the server's and not the disk's. Memory is watched two ways: VmRSS
//! sampled every 10 ms (for the plot), and the kernel's own high-water mark
//! VmHWM, reset just before the request, which catches a peak between two
//! samples.

use std::time::Duration;

use anyhow::bail;

use crate::http;
use crate::model::DumplogRun;
use crate::procfs;

/// The most points kept for the plot.
const MAX_SAMPLES: usize = 300;

pub async fn measure(
    name: &str,
    store: &str,
    base_url: &str,
    token: &str,
    pid: u32,
    rows: u64,
) -> anyhow::Result<DumplogRun> {
    // Let the last commits and their freeing settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procfs::rss_mb(pid).unwrap_or(0.0);
    let hwm_reset = procfs::reset_peak(pid);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(procfs::sample_rss(pid, Duration::from_millis(10), stopped));
    let answer = http::get(base_url, "/api/v1/log", token).await;
    let _ = stop.send(true);
    let samples = sampler.await.unwrap_or_default();
    let answer = answer?;
    if answer.status != 200 {
        bail!("GET /api/v1/log answered {}", answer.status);
    }
    let sampled_peak = samples.iter().map(|s| s.1).fold(before, f64::max);
    let peak = if hwm_reset {
        procfs::peak_mb(pid).unwrap_or(0.0).max(sampled_peak)
    } else {
        sampled_peak
    };
    let seconds = answer.elapsed.as_secs_f64();
    Ok(DumplogRun {
        name: name.to_owned(),
        store: store.to_owned(),
        rows,
        bytes: answer.bytes,
        seconds,
        mb_per_s: answer.bytes as f64 / 1e6 / seconds,
        rows_per_s: rows as f64 / seconds,
        rss_before_mb: before,
        rss_peak_mb: peak,
        rss_growth_mb: peak - before,
        samples: thin(samples, MAX_SAMPLES),
    })
}

/// Keeps at most `max` samples, evenly spread, and always the highest.
pub fn thin(samples: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if samples.len() <= max || max < 2 {
        return samples;
    }
    let step = samples.len().div_ceil(max - 1);
    let peak = samples
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(i, _)| i);
    samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || Some(*i) == peak || *i == samples.len() - 1)
        .map(|(_, s)| *s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_peak() {
        let samples: Vec<(f64, f64)> = (0..1000)
            .map(|i| (i as f64, if i == 501 { 99.0 } else { 1.0 }))
            .collect();
        let thinned = thin(samples.clone(), 100);
        assert!(thinned.len() <= 101, "{}", thinned.len());
        assert_eq!(thinned.first(), samples.first());
        assert_eq!(thinned.last(), samples.last());
        assert!(thinned.contains(&(501.0, 99.0)));
        assert_eq!(thin(samples[..10].to_vec(), 100).len(), 10);
    }
}
