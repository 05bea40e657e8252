//! Where the instances spend their CPU: `perf record` over a whole cluster
//! replay, read back with `perf report` for the instances' processes.
//!
//! Sampling uses the `cpu-clock` software event, which works in virtual
//! machines without hardware counters, at a modest frequency, so that perf
//! itself stays a small share of a 2-core machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::model::HotFunction;
use crate::procs::{Child, Procs};

/// Samples per second per CPU.
const FREQUENCY: &str = "499";

/// Whether perf can sample here (installed, and allowed to).
pub async fn available() -> Result<(), String> {
    let output = tokio::process::Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-o",
            "/dev/null",
            "-q",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| format!("perf cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "perf record does not work here: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Starts sampling every CPU, with call graphs.
pub fn start(procs: &Procs, data: &Path, log: &Path) -> anyhow::Result<Child> {
    let mut command = tokio::process::Command::new("perf");
    command
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            FREQUENCY,
            "-g",
            "-a",
            "-o",
        ])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?);
    procs.spawn("perf record", command)
}

/// Stops sampling; perf writes its data on SIGINT.
pub async fn stop(perf: Child) -> anyhow::Result<()> {
    let status = perf
        .stop_with(libc::SIGINT, Duration::from_secs(60))
        .await?;
    // perf exits with the signal's status after a clean write.
    if !status.success() && status.code().is_some_and(|c| c != 130 && c != 2) {
        bail!("perf record failed ({status})");
    }
    Ok(())
}

/// One line of `perf report -t '\t' --sort dso,sym`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub percent: f64,
    pub dso: String,
    pub symbol: String,
}

/// Parses perf report's tab-separated output (comments and blanks skipped).
pub fn parse_report(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let percent = fields.next()?.trim().trim_end_matches('%').parse().ok()?;
            let dso = fields.next()?.trim().to_owned();
            let symbol = fields.next()?.trim();
            let symbol = symbol
                .strip_prefix("[k] ")
                .or_else(|| symbol.strip_prefix("[.] "))
                .unwrap_or(symbol)
                .to_owned();
            Some(Sample {
                percent,
                dso,
                symbol,
            })
        })
        .collect()
}

/// The component a sample belongs to: the kernel, a C library, or the
/// Rust crate its function comes from (the crate of the `Self` type for a
/// method, since that is whose code runs).
pub fn component(sample: &Sample, binary: &str) -> String {
    if sample.dso.contains("kernel") {
        return "kernel (network, scheduling, system calls)".to_owned();
    }
    if sample.dso != binary {
        let lib = sample.dso.split(".so").next().unwrap_or(&sample.dso);
        return match lib {
            "libc" => "libc (malloc, free, memcpy, memcmp)".to_owned(),
            other => other.to_owned(),
        };
    }
    let mut s = sample.symbol.as_str();
    loop {
        let trimmed = s
            .trim_start_matches('<')
            .trim_start_matches('&')
            .trim_start_matches("mut ")
            .trim_start_matches("dyn ")
            .trim_start_matches('(')
            .trim_start_matches('[');
        if trimmed.len() == s.len() {
            break;
        }
        s = trimmed;
    }
    let name: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || !s[name.len()..].starts_with("::") {
        "other (unresolved or generic)".to_owned()
    } else {
        name
    }
}

/// Which samples a report covers.
pub enum Filter<'a> {
    /// These processes (all their threads).
    Pids(&'a [u32]),
    /// Processes of this name (PostgreSQL's backends are all `postgres`).
    Comm(&'a str),
}

/// The hot functions of the filtered processes and their time by
/// component, from a perf recording. `binary` is the name of the program
/// whose functions are grouped by crate.
pub async fn hot(
    data: &Path,
    filter: Filter<'_>,
    binary: &str,
    top: usize,
) -> anyhow::Result<(Vec<HotFunction>, Vec<HotFunction>)> {
    let filter = match filter {
        Filter::Pids([]) => bail!("no process to report on"),
        Filter::Pids(pids) => format!(
            "--pid={}",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Filter::Comm(comm) => format!("--comms={comm}"),
    };
    let output = tokio::process::Command::new("perf")
        .arg("report")
        .arg("-i")
        .arg(data)
        .args([
            "--stdio",
            "--no-children",
            "-g",
            "none",
            "--percentage",
            "relative",
        ])
        .args(["--sort", "dso,sym", "-t", "\t"])
        .arg(&filter)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .context("running perf report")?;
    if !output.status.success() {
        bail!("perf report failed ({})", output.status);
    }
    let samples = parse_report(&String::from_utf8_lossy(&output.stdout));
    if samples.is_empty() {
        bail!("perf recorded no samples for {filter}");
    }
    Ok(summarize(&samples, binary, top))
}

/// The top functions, and the share of each component.
pub fn summarize(
    samples: &[Sample],
    binary: &str,
    top: usize,
) -> (Vec<HotFunction>, Vec<HotFunction>) {
    let hot = samples
        .iter()
        .take(top)
        .map(|s| HotFunction {
            name: if s.dso == binary {
                s.symbol.clone()
            } else {
                format!("{} ({})", s.symbol, s.dso)
            },
            percent: s.percent,
        })
        .collect();
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for s in samples {
        *by.entry(component(s, binary)).or_default() += s.percent;
    }
    let mut components: Vec<HotFunction> = by
        .into_iter()
        .map(|(name, percent)| HotFunction { name, percent })
        .collect();
    components.sort_by(|a, b| b.percent.total_cmp(&a.percent));
    (hot, components)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "# Samples: 3K of event 'cpu-clock'\n#\n 7.56%  \t[kernel.kallsyms]\t[k] irqentry_exit_to_user_mode\n 4.00%  \tlibc.so.6        \t[.] __memcmp_evex_movbe\n 1.65%  \tdaytrader        \t[.] core::fmt::write\n 1.40%  \tdaytrader        \t[.] <alloc::string::String as core::fmt::Write>::write_str\n 0.83%  \tdaytrader        \t[.] tokio::runtime::scheduler::multi_thread::worker::Context::run\n 0.50%  \tdaytrader        \t[.] <&mut serde_json::ser::Serializer<W> as serde::Serializer>::serialize_str\n 0.10%  \tdaytrader        \t[.] 0x00000000001234\n\n";

    #[test]
    fn reads_perf_reports_tab_separated_lines() {
        let samples = parse_report(REPORT);
        assert_eq!(samples.len(), 7);
        assert_eq!(
            samples[1],
            Sample {
                percent: 4.0,
                dso: "libc.so.6".into(),
                symbol: "__memcmp_evex_movbe".into()
            }
        );
    }

    #[test]
    fn names_the_component_of_each_sample() {
        let samples = parse_report(REPORT);
        let names: Vec<String> = samples.iter().map(|s| component(s, "daytrader")).collect();
        assert_eq!(
            names,
            vec![
                "kernel (network, scheduling, system calls)",
                "libc (malloc, free, memcpy, memcmp)",
                "core",
                "alloc",
                "tokio",
                "serde_json",
                "other (unresolved or generic)",
            ]
        );
        let (hot, components) = summarize(&samples, "daytrader", 3);
        assert_eq!(hot.len(), 3);
        assert_eq!(hot[1].name, "__memcmp_evex_movbe (libc.so.6)");
        assert_eq!(hot[2].name, "core::fmt::write");
        assert_eq!(
            components[0].name,
            "kernel (network, scheduling, system calls)"
        );
    }
}
