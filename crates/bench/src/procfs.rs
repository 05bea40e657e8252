//! CPU time and memory of processes, from /proc.
//!
//! CPU is accounted by snapshots: every process's user + system time at the
//! start and at the end of a window, and the machine's busy time from
//! /proc/stat. The difference, grouped by role (an instance, HAProxy, the
//! PostgreSQL backends of the run's database...), is where the CPU went;
//! what the machine spent beyond the groups is "other processes", the noise
//! of a shared machine, measured rather than guessed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::model::ProcessCpu;

/// Clock ticks per second of the times in /proc.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// What /proc/PID/stat says of a process: its name, parent and CPU ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// User + system time of all its threads, in clock ticks.
    pub ticks: u64,
}

/// Parses a /proc/PID/stat line. The name is in parentheses and may hold
/// spaces or parentheses itself, so the fields are counted from its end.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = line.get(close + 2..)?.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        ticks: utime + stime,
    })
}

/// The machine's busy and total ticks, summed over its CPUs, from the
/// `cpu` line of /proc/stat. Busy excludes idle and I/O wait.
pub fn parse_machine(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// A value in kB from /proc/PID/status (VmRSS, VmHWM...).
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Every process's CPU at one moment, and the machine's.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub at: Option<Instant>,
    pub processes: HashMap<u32, Stat>,
    pub busy: u64,
    pub total: u64,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut processes = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(parse_stat)
                {
                    processes.insert(pid, stat);
                }
            }
        }
        let (busy, total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .as_deref()
            .and_then(parse_machine)
            .unwrap_or_default();
        Snapshot {
            at: Some(Instant::now()),
            processes,
            busy,
            total,
        }
    }

    /// `pid` and every process below it.
    pub fn tree(&self, pid: u32) -> Vec<u32> {
        let mut out = vec![pid];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                self.processes
                    .iter()
                    .filter(|(_, s)| s.ppid == parent)
                    .map(|(&p, _)| p),
            );
            i += 1;
        }
        out
    }
}

/// How a window's CPU is grouped.
#[derive(Clone, Debug, Default)]
pub struct Roles {
    /// Named processes, each with its descendants (HAProxy's workers).
    pub named: Vec<(String, u32)>,
    /// The PostgreSQL database the run uses: its backends are the run's;
    /// PostgreSQL's other processes are shared with whatever else runs.
    pub database: Option<String>,
    /// CPU seconds measured by processes themselves (a child that has
    /// exited by the end of the window, like the load generator).
    pub reported: Vec<(String, f64)>,
}

/// Where the CPU went between two snapshots.
pub fn account(start: &Snapshot, end: &Snapshot, roles: &Roles, cores: u32) -> Vec<ProcessCpu> {
    let hz = ticks_per_second();
    let seconds = match (start.at, end.at) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let delta = |pid: &u32| -> u64 {
        let now = end.processes.get(pid).map_or(0, |s| s.ticks);
        let before = start.processes.get(pid).map_or(0, |s| s.ticks);
        now.saturating_sub(before)
    };
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    let mut claimed = std::collections::HashSet::new();
    for (name, pid) in &roles.named {
        let ticks: u64 = end
            .tree(*pid)
            .into_iter()
            .filter(|p| claimed.insert(*p))
            .map(|p| delta(&p))
            .sum();
        *groups.entry(name.clone()).or_default() += ticks;
    }
    for (pid, stat) in &end.processes {
        if claimed.contains(pid) {
            continue;
        }
        let group = match stat.comm.as_str() {
            "postgres" => {
                let ours = roles.database.as_deref().is_some_and(|db| {
                    cmdline(*pid).is_some_and(|c| c.split_whitespace().any(|w| w == db))
                });
                if ours {
                    "PostgreSQL backends (the run's database)"
                } else {
                    "PostgreSQL, shared (WAL writer, checkpointer, other databases)"
                }
            }
            "redis-server" => "Redis",
            _ => continue,
        };
        claimed.insert(*pid);
        *groups.entry(group.to_owned()).or_default() += delta(pid);
    }
    let window = seconds * f64::from(cores.max(1));
    let share = |cpu_s: f64| if window > 0.0 { cpu_s / window } else { 0.0 };
    let mut out: Vec<ProcessCpu> = groups
        .into_iter()
        .map(|(name, ticks)| ProcessCpu {
            name,
            cpu_s: ticks as f64 / hz,
            share: share(ticks as f64 / hz),
        })
        .collect();
    for (name, cpu_s) in &roles.reported {
        out.push(ProcessCpu {
            name: name.clone(),
            cpu_s: *cpu_s,
            share: share(*cpu_s),
        });
    }
    let ours: f64 = out.iter().map(|p| p.cpu_s).sum();
    let busy = end.busy.saturating_sub(start.busy) as f64 / hz;
    let total = end.total.saturating_sub(start.total) as f64 / hz;
    let other = (busy - ours).max(0.0);
    out.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    out.push(ProcessCpu {
        name: "other processes on the machine".to_owned(),
        cpu_s: other,
        share: share(other),
    });
    out.push(ProcessCpu {
        name: "idle".to_owned(),
        cpu_s: (total - busy).max(0.0),
        share: share((total - busy).max(0.0)),
    });
    out
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// The process's resident memory now, in MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, "VmRSS").map(|kb| kb as f64 / 1024.0)
}

/// The most resident memory the process has had, in MB (since start, or
/// since [`reset_peak`]).
pub fn peak_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, "VmHWM").map(|kb| kb as f64 / 1024.0)
}

/// Resets the process's VmHWM to its current resident memory, so that a
/// peak read later belongs to what happened in between. Needs the right to
/// write /proc/PID/clear_refs (the process's owner, or root).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(Path::new(&format!("/proc/{pid}/clear_refs")), "5").is_ok()
}

/// Samples a process's resident memory every `every` until `stop` says so;
/// returns (seconds since the start, MB) pairs.
pub async fn sample_rss(
    pid: u32,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(f64, f64)> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Some(mb) = rss_mb(pid) {
            samples.push((started.elapsed().as_secs_f64(), mb));
        }
        if *stop.borrow() {
            break;
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (tokio (w) 1) S 17 4242 4242 0 -1 4194560 600 0 0 0 1234 567 0 0 20 0 8 0 9999 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "tokio (w) 1".into(),
                ppid: 17,
                ticks: 1234 + 567,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_the_machine_and_memory_lines() {
        let stat = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine(stat), Some((170, 990)));
        let status = "Name:\tdaytrader\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn groups_a_process_with_its_descendants_and_counts_the_rest_as_other() {
        let stat = |comm: &str, ppid, ticks| Stat {
            comm: comm.into(),
            ppid,
            ticks,
        };
        let hz = ticks_per_second();
        let t = |s: f64| (s * hz) as u64;
        let start = Snapshot {
            at: Some(Instant::now()),
            processes: HashMap::from([
                (10, stat("haproxy", 1, 0)),
                (11, stat("haproxy", 10, t(1.0))),
            ]),
            busy: 0,
            total: 0,
        };
        let mut end = start.clone();
        end.at = start.at.map(|a| a + Duration::from_secs(10));
        end.processes.insert(11, stat("haproxy", 10, t(3.0)));
        end.processes.insert(20, stat("redis-server", 1, t(0.5)));
        end.busy = t(6.0);
        end.total = t(20.0);
        let roles = Roles {
            named: vec![("HAProxy".into(), 10)],
            database: None,
            reported: vec![("load generator".into(), 1.5)],
        };
        let cpu = account(&start, &end, &roles, 2);
        let get = |name: &str| cpu.iter().find(|p| p.name == name).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 0.02;
        assert!(close(get("HAProxy").cpu_s, 2.0), "{cpu:?}");
        assert!(close(get("HAProxy").share, 0.1), "{cpu:?}");
        assert!(close(get("Redis").cpu_s, 0.5), "{cpu:?}");
        assert!(close(get("load generator").cpu_s, 1.5), "{cpu:?}");
        assert!(
            close(get("other processes on the machine").cpu_s, 2.0),
            "{cpu:?}"
        );
        assert!(close(get("idle").cpu_s, 14.0), "{cpu:?}");
    }
}
