//! The machine, the software and the commit a run measured, so that a
//! report says what its figures are figures of.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{GitInfo, Machine};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0)
}

pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn describe() -> Machine {
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':').or_else(|| l.split_once('='))?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_default()
    };
    let meminfo = read("/proc/meminfo");
    let memory_kb: f64 = field(&meminfo, "MemTotal")
        .split_whitespace()
        .next()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0.0);
    Machine {
        hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
        cpu_model: field(&read("/proc/cpuinfo"), "model name"),
        cores: cores(),
        memory_gib: (memory_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        os: field(&read("/etc/os-release"), "PRETTY_NAME"),
        load_before: load_average(),
        load_after: 0.0,
    }
}

/// The first line a command prints (on stdout or stderr), or `None`.
fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if output.stdout.iter().any(|b| !b.is_ascii_whitespace()) {
        output.stdout
    } else {
        output.stderr
    };
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// The versions of everything measured or measuring.
pub fn versions(bin: &Path, locust: Option<&Path>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |name: &str, program: &Path, args: &[&str]| {
        if let Some(line) = first_line(program, args) {
            out.insert(name.to_owned(), line);
        }
    };
    add("daytrader", bin, &["--version"]);
    add("rustc", Path::new("rustc"), &["--version"]);
    add("wrk", Path::new("wrk"), &["-v"]);
    add("haproxy", Path::new("haproxy"), &["-v"]);
    add(
        "postgresql",
        Path::new("psql"),
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            "SELECT version()",
        ],
    );
    add("redis", Path::new("redis-server"), &["--version"]);
    add("perf", Path::new("perf"), &["--version"]);
    if let Some(locust) = locust {
        add("locust", locust, &["--version"]);
    }
    // "locust 2.47.0 from /home/…/site-packages/locust (Python 3.11.7)":
    // the page is published, the install path is nobody's business.
    if let Some(v) = out.get_mut("locust")
        && let Some((version, rest)) = v.split_once(" from ")
    {
        let python = rest.rsplit_once(" (").map(|(_, p)| format!(" ({p}"));
        *v = format!("{version}{}", python.unwrap_or_default());
    }
    out
}

pub fn git(root: &Path) -> GitInfo {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    GitInfo {
        commit: run(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned()),
        dirty: run(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty()),
    }
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    engine::clock::rfc3339(ms)
}
