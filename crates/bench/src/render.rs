//! docs/benchmarks.md: the template's prose with the run's tables in it.
//!
//! The prose lives in `assets/benchmarks.md` as Markdown, with a
//! `{{section}}` marker where each generated part goes; this module writes
//! the parts. A marker the code does not know, or a section the template
//! lacks, is an error, so that the two cannot drift apart silently.

use std::fmt::Write as _;

use anyhow::bail;
use loadgen::LatencySummary;

use crate::model::{
    BALANCER, BALANCER_C10, BenchReport, CLUSTER_GENERATED, EMBEDDED_GENERATED, EMBEDDED_HALF_LOAD,
    Figure, HALF_LOAD, ReplayRun, SLOW_QUOTE, ceiling_for_replay,
};
use crate::plots;

const TEMPLATE: &str = include_str!("../assets/benchmarks.md");

/// Renders one `{{name}}` section of the page.
type Section = fn(&BenchReport) -> String;

/// The page for `report`.
pub fn page(report: &BenchReport) -> anyhow::Result<String> {
    let sections: [(&str, Section); 13] = [
        ("run", run),
        ("targets", targets),
        ("figures", figures),
        ("ceiling", ceiling),
        ("replays", replays),
        ("reads", reads),
        ("half_load", half_load),
        ("slow_quote", slow_quote),
        ("dumplog", dumplog),
        ("scaling", scaling),
        ("locust", locust),
        ("profile", profile),
        ("notes", notes),
    ];
    let mut out = String::with_capacity(TEMPLATE.len() * 2);
    let mut rest = TEMPLATE;
    let mut used = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            bail!("the template has an unclosed {{{{ marker");
        };
        let key = &rest[start + 2..start + len];
        let Some((_, write)) = sections.iter().find(|(k, _)| *k == key) else {
            bail!("the template names an unknown section {{{{{key}}}}}");
        };
        out.push_str(write(report).trim_end());
        used.push(key);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    for (key, _) in sections {
        if !used.contains(&key) {
            bail!("the template has no place for the section {{{{{key}}}}}");
        }
    }
    // The plots the page shows must be the ones plots.rs writes.
    for file in [
        plots::THROUGHPUT,
        plots::LATENCY,
        plots::INSTANCES,
        plots::RATIOS,
        plots::DUMPLOG_MEMORY,
    ] {
        if !out.contains(&format!("(bench/{file})")) {
            bail!("the template does not show the plot {file}");
        }
    }
    Ok(out)
}

/// 12345.6 as "12,346".
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let rounded = v.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
}

fn figure<'a>(report: &'a BenchReport, id: &str) -> Option<&'a Figure> {
    report.figures.iter().find(|f| f.id == id)
}

fn figure_ratio(report: &BenchReport, id: &str) -> String {
    ratio(figure(report, id).and_then(|f| f.ratio))
}

fn run(r: &BenchReport) -> String {
    let m = &r.machine;
    let mut out = String::from("| | |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| run | {} ({}), started {}, took {:.1} min |",
        r.mode,
        if r.settings.quick {
            "`scripts/bench --quick`: small workloads, a smoke run"
        } else {
            "`scripts/bench`"
        },
        r.started_at,
        r.duration_s / 60.0
    );
    let _ = writeln!(
        out,
        "| machine | {}, {} cores, {} GiB, {} ({}) |",
        m.hostname, m.cores, m.memory_gib, m.os, m.kernel
    );
    let _ = writeln!(out, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(
        out,
        "| load average (1 min) | {:.2} at the start, {:.2} at the end |",
        m.load_before, m.load_after
    );
    let others: Vec<f64> = r
        .replays
        .iter()
        .flat_map(|x| &x.cpu)
        .filter(|p| p.name.starts_with("other processes"))
        .map(|p| p.share * 100.0)
        .collect();
    if !others.is_empty() {
        let lo = others.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = others.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| other processes on the machine | {lo:.0}% to {hi:.0}% of its CPU during the replays (see the CPU table under Replays) |"
        );
    }
    let _ = writeln!(
        out,
        "| commit | `{}`{} |",
        r.git.commit,
        if r.git.dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    );
    for (tool, version) in &r.versions {
        let _ = writeln!(out, "| {tool} | {} |", version.replace('|', "\\|"));
    }
    let env = if r.settings.environment.is_empty() {
        "none (the defaults)".to_owned()
    } else {
        r.settings
            .environment
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "| DayTrader settings from the environment | {env} |");
    out
}

fn targets(r: &BenchReport) -> String {
    if r.targets.is_empty() {
        return "No target could be checked in this run.".to_owned();
    }
    let met = r.targets.iter().filter(|t| t.met).count();
    let mut out = format!("{met} of {} checks met.\n\n", r.targets.len());
    out.push_str("| target | measured | value | goal | verdict |\n|---|---|---:|---:|---|\n");
    for t in &r.targets {
        let (value, goal) = if t.id.ends_with(".throughput") {
            (
                format!("{}/s", thousands(t.value)),
                format!("{}/s", thousands(t.goal)),
            )
        } else if t.id.ends_with(".p99") || t.id.ends_with(".p50") {
            (format!("{} ms", ms(t.value)), format!("{} ms", ms(t.goal)))
        } else if t.id.ends_with(".mb-per-s") {
            (
                format!("{:.1} MB/s", t.value),
                format!("{:.0} MB/s", t.goal),
            )
        } else if t.id.contains("memory") {
            (format!("{:.1} MB", t.value), format!("{:.1} MB", t.goal))
        } else {
            (format!("{:.3}", t.value), format!("{:.2}", t.goal))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {value} | {}{goal} | **{}** |",
            t.target,
            t.measured,
            if t.direction == "at_least" {
                "≥ "
            } else {
                "≤ "
            },
            t.verdict()
        );
    }
    out
}

fn figures(r: &BenchReport) -> String {
    let mut out = String::from("| figure | value | ceiling | ratio |\n|---|---:|---|---:|\n");
    for f in &r.figures {
        let value = match f.unit.as_str() {
            "ms" => format!("{} ms", ms(f.value)),
            "ratio" => format!("{:.3}", f.value),
            "MB" | "MB/s" => format!("{:.1} {}", f.value, f.unit),
            unit => format!("{} {unit}", thousands(f.value)),
        };
        let _ = writeln!(
            out,
            "| {} | {value} | {} | {} |",
            f.label,
            f.ceiling.as_deref().unwrap_or("-"),
            ratio(f.ratio)
        );
    }
    out
}

fn ceiling(r: &BenchReport) -> String {
    if r.ceiling.is_empty() {
        return "Not measured in this run.".to_owned();
    }
    let mut out = String::from(
        "| ceiling | path | connections | requests/s | ratio to the balancer's | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in &r.ceiling {
        // The balancer's run with as many connections.
        let reference = r
            .ceiling(if c.connections == 10 {
                BALANCER_C10
            } else {
                BALANCER
            })
            .map(|c| c.requests_per_s);
        let _ = writeln!(
            out,
            "| `{}` | {} `{}` | {} | {} | {} | {} | {} | {} |",
            c.name,
            if c.via == "direct" {
                "instance 1"
            } else {
                "HAProxy, 3 instances"
            },
            c.request,
            c.connections,
            thousands(c.requests_per_s),
            ratio(reference.filter(|r| *r > 0.0).map(|r| c.requests_per_s / r)),
            ms(c.latency_ms.p50),
            ms(c.latency_ms.p99),
            c.errors.total()
        );
    }
    out.push_str(
        "\nDESIGN.md measured about 100,000 requests/s for a hello-world axum server and 30,000 through HAProxy over three instances on this kind of machine; the figures above are this run's, on this machine as loaded as it was.",
    );
    out
}

fn latency_cells(l: &LatencySummary) -> String {
    format!(
        "{} | {} | {} | {}",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max)
    )
}

fn replays(r: &BenchReport) -> String {
    if r.replays.is_empty() {
        return "Not measured in this run.".to_owned();
    }
    let mut out = String::from(
        "| replay | instances | workload | commands | accepted | refused | failed | seconds | commands/s | ratio | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in &r.replays {
        let rep = &run.report;
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} (`{}`) | {} |",
            run.name,
            if run.deployment == "embedded" {
                "embedded".to_owned()
            } else {
                run.instances.to_string()
            },
            run.workload,
            thousands(rep.commands as f64),
            thousands(rep.accepted as f64),
            thousands(rep.rejected as f64),
            if rep.failed > 0 {
                format!("**{}**", rep.failed)
            } else {
                "0".to_owned()
            },
            rep.duration_s,
            thousands(rep.throughput_per_s),
            figure_ratio(r, &format!("replay.{}.throughput", run.name)),
            ceiling_for_replay(run),
            latency_cells(&rep.latency_ms)
        );
    }
    let cluster: Vec<&ReplayRun> = r.replays.iter().filter(|x| !x.cpu.is_empty()).collect();
    if !cluster.is_empty() {
        out.push_str("\nWhere the CPU went during each replay (seconds of CPU, and the share of the machine's two cores over the replay). \"Other processes\" is everything outside the run on this shared machine: the noise the ratios to the ceiling are there to remove.\n\n");
        let mut names: Vec<&str> = Vec::new();
        for run in &cluster {
            for p in &run.cpu {
                if !names.contains(&p.name.as_str()) {
                    names.push(&p.name);
                }
            }
        }
        // The run's processes first, then the rest of the machine.
        names.sort_by_key(|n| n.starts_with("other processes") || *n == "idle");
        out.push_str("| process |");
        for run in &cluster {
            let _ = write!(out, " `{}` |", run.name);
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(cluster.len()));
        out.push('\n');
        for name in names {
            let _ = write!(out, "| {name} |");
            for run in &cluster {
                match run.cpu.iter().find(|p| p.name == name) {
                    Some(p) => {
                        let _ = write!(out, " {:.1} s ({:.0}%) |", p.cpu_s, p.share * 100.0);
                    }
                    None => out.push_str(" - |"),
                }
            }
            out.push('\n');
        }
    }
    out
}

fn reads(r: &BenchReport) -> String {
    if r.cached_reads.is_empty() {
        return "Not measured in this run.".to_owned();
    }
    let mut out = String::from(
        "| read | connections | requests/s | ratio to `balancer-c10` | p50 ms | p90 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in &r.cached_reads {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            c.request,
            c.connections,
            thousands(c.requests_per_s),
            figure_ratio(r, &format!("reads.{}", c.name)),
            latency_cells(&c.latency_ms),
            c.errors.total()
        );
    }
    if let Some(c) = r.ceiling(BALANCER_C10) {
        let _ = write!(
            out,
            "\nThe ceiling with the same shape (`GET /healthz`, 10 connections, through HAProxy): {} requests/s, p99 {} ms.",
            thousands(c.requests_per_s),
            ms(c.latency_ms.p99)
        );
    }
    out
}

fn half_load(r: &BenchReport) -> String {
    let sections: Vec<String> = [
        (HALF_LOAD, CLUSTER_GENERATED, "The cluster's"),
        (
            EMBEDDED_HALF_LOAD,
            EMBEDDED_GENERATED,
            "The embedded server's",
        ),
    ]
    .iter()
    .filter_map(|&(name, peak, whose)| half_load_of(r, name, peak, whose))
    .collect();
    if sections.is_empty() {
        "Not measured in this run.".to_owned()
    } else {
        sections.join("\n\n")
    }
}

fn half_load_of(r: &BenchReport, name: &str, peak: &str, whose: &str) -> Option<String> {
    let run = r.replay(name)?;
    let rep = &run.report;
    let Some(open) = rep.open_loop else {
        return Some(format!("`{name}` has no open-loop figures."));
    };
    let peak = r.replay(peak).map_or(0.0, |p| p.report.throughput_per_s);
    Some(format!(
        "`{name}`: {whose} peak, from its generated replay: {} commands/s. Open loop at {} commands/s for {:.0} s ({} commands, {}):\n\n\
         | | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|\n\
         | latency from the due time | {} |\n| service time (send to answer) | {} |\n\n\
         Achieved {} commands/s; {} commands started more than 1 ms behind schedule (their user's previous command was still running); {} failed. \
         p99 against the ceiling's p99 with 10 connections: {}.",
        thousands(peak),
        thousands(open.rate_per_s),
        rep.duration_s,
        thousands(rep.commands as f64),
        run.workload,
        latency_cells(&rep.latency_ms),
        latency_cells(&open.service_latency_ms),
        thousands(rep.throughput_per_s),
        thousands(open.behind_schedule as f64),
        rep.failed,
        figure_ratio(r, &format!("replay.{name}.p99")),
    ))
}

fn slow_quote(r: &BenchReport) -> String {
    let (Some(slow), Some(instant)) = (r.replay(SLOW_QUOTE), r.replay(CLUSTER_GENERATED)) else {
        return "Not measured in this run.".to_owned();
    };
    let row = |label: &str, run: &ReplayRun| {
        format!(
            "| {label} | {} | {} | {} |\n",
            thousands(run.report.throughput_per_s),
            figure_ratio(r, &format!("replay.{}.throughput", run.name)),
            latency_cells(&run.report.latency_ms)
        )
    };
    let mut out = String::from(
        "The generated workload against a fresh 3-instance cluster, with the quote server answering at once and like the legacy one (10 ms to 4 s, mean about 560 ms):\n\n| quote server | commands/s | ratio to `balancer` | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    out.push_str(&row("instant", instant));
    out.push_str(&row("legacy latency", slow));
    if let Some(f) = figure(r, "slow-quote.ratio") {
        let _ = write!(
            out,
            "\nThroughput with the slow quote server is {:.3} of that with the instant one.",
            f.value
        );
    }
    out
}

fn dumplog(r: &BenchReport) -> String {
    if r.dumplogs.is_empty() {
        return "Not measured in this run.".to_owned();
    }
    let mut out = String::from(
        "| log | store | rows | MB of XML | seconds | MB/s | rows/s | ratio to `direct` | RSS before MB | peak MB | growth MB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for d in &r.dumplogs {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {:.1} | {:.2} | {:.1} | {} | {} | {:.1} | {:.1} | {:.1} |",
            d.name,
            d.store,
            thousands(d.rows as f64),
            d.bytes as f64 / 1e6,
            d.seconds,
            d.mb_per_s,
            thousands(d.rows_per_s),
            figure_ratio(r, &format!("dumplog.{}.rows_per_s", d.name)),
            d.rss_before_mb,
            d.rss_peak_mb,
            d.rss_growth_mb
        );
    }
    out.push_str("\nRows are the commands in the log when it was dumped (one row per command, the DUMPLOG's own included). The peak is the larger of the sampled VmRSS and the kernel's VmHWM.");
    out
}

fn scaling(r: &BenchReport) -> String {
    let rows = r.scaling();
    if rows.is_empty() {
        return "Not measured in this run.".to_owned();
    }
    let one = rows
        .iter()
        .find(|(n, _)| *n == 1)
        .map(|(_, x)| x.report.throughput_per_s);
    let mut out = String::from(
        "| instances | commands/s | ratio to `balancer` | per instance | against 1 instance | p99 ms | other processes' CPU |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (n, run) in rows {
        let t = run.report.throughput_per_s;
        let others = run
            .cpu
            .iter()
            .find(|p| p.name.starts_with("other processes"))
            .map_or_else(|| "-".to_owned(), |p| format!("{:.0}%", p.share * 100.0));
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} | {} | {} | {others} |",
            thousands(t),
            figure_ratio(r, &format!("replay.{}.throughput", run.name)),
            thousands(t / f64::from(n)),
            one.filter(|o| *o > 0.0)
                .map_or_else(|| "-".to_owned(), |o| format!("{:.2}x", t / o)),
            ms(run.report.latency_ms.p99)
        );
    }
    out.push_str("\nThe generated workload against fresh clusters. Every instance shares this machine's two cores with PostgreSQL, HAProxy and the load generator, so more instances add concurrency (more connections to PostgreSQL, more commands per group commit) but no CPU. The last column is the share of the machine other processes took during each replay: where it differs much between rows, so does the CPU left to DayTrader, and the rows compare that as much as the instances.");
    out
}

fn locust(r: &BenchReport) -> String {
    let Some(l) = &r.locust else {
        return "Not measured in this run.".to_owned();
    };
    let mut out = format!(
        "{} simulated traders (half reading, half trading) for {:.0} s through HAProxy: {} requests, {} failures, {} requests/s (ratio to `balancer`: {}), median {} ms, p95 {} ms, p99 {} ms.\n\n",
        l.users,
        l.duration_s,
        thousands(l.requests as f64),
        l.failures,
        thousands(l.requests_per_s),
        figure_ratio(r, "locust.rps"),
        ms(l.median_ms),
        ms(l.p95_ms),
        ms(l.p99_ms)
    );
    out.push_str("| request | requests | failures | median ms |\n|---|---:|---:|---:|\n");
    for e in &l.by_request {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            e.name,
            thousands(e.requests as f64),
            e.failures,
            ms(e.median_ms)
        );
    }
    out.push_str("\nLocust is Python and runs here on the same two cores as the cluster, one process; each simulated trader waits for its answer before the next request, so its rate says more about Locust on this machine than about DayTrader. It is here to show that the scenarios run against the cluster without failures, and for deployments where it runs on machines of its own.");
    out
}

fn profile(r: &BenchReport) -> String {
    let Some(p) = &r.profile else {
        return "No profile in this run (see the notes).".to_owned();
    };
    let mut out = format!(
        "The generated workload replayed against a fresh 3-instance cluster under `perf record` ({:.0} s, {} commands/s under perf).\n\n",
        p.seconds,
        thousands(p.throughput_per_s)
    );
    out.push_str("**CPU by process** (from /proc, over the profiled replay):\n\n| process | CPU s | share of the machine |\n|---|---:|---:|\n");
    for c in &p.processes {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1}% |",
            c.name,
            c.cpu_s,
            c.share * 100.0
        );
    }
    out.push('\n');
    out.push_str(&observations(p));
    out.push_str("\n\n**The instances' time by component** (self time, share of the instances' samples):\n\n| component | share |\n|---|---:|\n");
    for c in p.by_component.iter().take(15) {
        let _ = writeln!(out, "| {} | {:.1}% |", c.name, c.percent);
    }
    out.push_str(
        "\n**The instances' hottest functions** (self time):\n\n| function | share |\n|---|---:|\n",
    );
    for h in &p.hot_functions {
        let _ = writeln!(
            out,
            "| `{}` | {:.2}% |",
            h.name.replace('|', "\\|"),
            h.percent
        );
    }
    if !p.postgres_hot.is_empty() {
        out.push_str("\n**PostgreSQL's hottest functions** (all its processes):\n\n| function | share |\n|---|---:|\n");
        for h in &p.postgres_hot {
            let _ = writeln!(
                out,
                "| `{}` | {:.2}% |",
                h.name.replace('|', "\\|"),
                h.percent
            );
        }
    }
    out
}

/// Sentences a reader can act on, from the numbers.
fn observations(p: &crate::model::Profile) -> String {
    let sum = |pred: &dyn Fn(&str) -> bool| -> f64 {
        p.processes
            .iter()
            .filter(|c| pred(&c.name))
            .map(|c| c.share)
            .sum::<f64>()
            * 100.0
    };
    let instances = sum(&|n| n.starts_with("instance"));
    let postgres = sum(&|n| n.starts_with("PostgreSQL"));
    let haproxy = sum(&|n| n == "HAProxy");
    let loadgen = sum(&|n| n == "load generator");
    let other = sum(&|n| n.starts_with("other processes"));
    let idle = sum(&|n| n == "idle");
    let kernel = p
        .by_component
        .iter()
        .filter(|c| c.name.starts_with("kernel"))
        .map(|c| c.percent)
        .sum::<f64>();
    let alloc = p
        .by_component
        .iter()
        .filter(|c| c.name.starts_with("libc"))
        .map(|c| c.percent)
        .sum::<f64>();
    let mut lines = vec![format!(
        "Of the machine's CPU during the replay: the instances {instances:.0}%, PostgreSQL {postgres:.0}%, HAProxy {haproxy:.0}%, the load generator {loadgen:.0}%, other processes on the machine {other:.0}%, idle {idle:.0}%."
    )];
    lines.push(format!(
        "Inside the instances, {kernel:.0}% of the time is the kernel (sockets to HAProxy, PostgreSQL and Redis, and scheduling) and {alloc:.0}% is libc (mostly the allocator)."
    ));
    if idle > 25.0 {
        lines.push(
            "With that much idle CPU the replay is bound by waiting (round trips, commits, the per-user order of the workload), not by CPU: more concurrency or fewer round trips per command would raise throughput before faster code would.".to_owned(),
        );
    }
    if postgres > instances {
        lines.push(
            "PostgreSQL uses more CPU than the instances: the cost per command is in the database (statements per batch, their planning and execution, WAL), which is where batching more commands per transaction pays.".to_owned(),
        );
    }
    lines
        .iter()
        .map(|l| format!("- {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn notes(r: &BenchReport) -> String {
    if r.notes.is_empty() {
        return "Every step ran.".to_owned();
    }
    r.notes
        .iter()
        .map(|n| format!("- **{}** ({}): {}", n.step, n.kind, n.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_thousands_with_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.5), "1,235");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-45_000.0), "-45,000");
        assert_eq!(thousands(f64::NAN), "-");
    }
}
