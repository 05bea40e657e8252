//! The whole suite, step by step, in one run on one machine.
//!
//! The cluster steps come first, starting with the ceiling, so that the
//! ceiling and the figures compared with it are measured close together.
//! Every cluster is fresh (`scripts/cluster up --fresh`): a replay never
//! inherits the previous one's log, whose size changes what PostgreSQL
//! does. A step that fails is recorded in the report's notes and the run
//! goes on with the steps that do not depend on it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cluster::{Cluster, ClusterScript};
use crate::embedded::Embedded;
use crate::model::{self, BenchReport, Note, Profile, ReplayRun, Settings, WrkRun};
use crate::procfs::Roles;
use crate::procs::Procs;
use crate::replay::{self, ReplaySpec};
use crate::wrk::{self, WrkSpec};
use crate::{dumplog, http, locust, machine, plots, profile, render};

/// Where things are and what to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The project's root (scripts/cluster, deploy/locust).
    pub root: PathBuf,
    /// The daytrader binary measured.
    pub bin: PathBuf,
    /// Where report.json goes; raw outputs go under `raw/` in it.
    pub out_dir: PathBuf,
    /// Where benchmarks.md goes; the plots go under `bench/` in it.
    pub docs_dir: PathBuf,
    /// The cluster's base port.
    pub port: u16,
    pub quick: bool,
    /// The course workload files, when present.
    pub workloads: PathBuf,
    /// Locust's executable, when installed.
    pub locust: Option<PathBuf>,
}

/// The name of the suite's cluster: its state directory, database and
/// Redis prefix.
pub const CLUSTER_NAME: &str = "daytrader_bench";

/// The course's 100-user file.
pub const COURSE_FILE: &str = "100User_testWorkLoad.txt";
/// The course's 10-user file: few users, each with one command in flight,
/// where the round trip of a durable command sets the pace.
pub const COURSE_FILE_10: &str = "10User_testWorkLoad.txt";

/// Users of the generated workloads, as in the course's largest file.
const USERS: usize = 100;
/// Users of the large generated workload: many traders, each with fewer
/// commands in flight relative to the whole, and larger accounts.
const MANY_USERS: usize = 1200;

/// How big each step is.
struct Sizes {
    generated: usize,
    /// Commands of the 1,200-user workload: a slice of the
    /// 1,200,000-command workload's size, so that it fits the run's time
    /// (the same generator, the same mix; 200 commands per user).
    many_users: usize,
    course_limit: Option<usize>,
    wrk: Duration,
    half_load_seconds: u64,
    dumplog_rows: [u64; 2],
    locust_users: u32,
    locust: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                generated: 20_000,
                many_users: 24_000,
                course_limit: Some(20_000),
                wrk: Duration::from_secs(3),
                half_load_seconds: 10,
                dumplog_rows: [20_000, 100_000],
                locust_users: 10,
                locust: Duration::from_secs(10),
            }
        } else {
            Sizes {
                generated: 100_000,
                many_users: 240_000,
                course_limit: None,
                wrk: Duration::from_secs(10),
                half_load_seconds: 30,
                dumplog_rows: [100_000, 1_000_000],
                locust_users: 20,
                locust: Duration::from_secs(30),
            }
        }
    }
}

/// A workload file and how the report names it.
#[derive(Clone, Debug)]
struct Workload {
    path: PathBuf,
    describe: String,
    limit: Option<usize>,
    commands: usize,
}

struct Suite {
    config: Config,
    sizes: Sizes,
    raw: PathBuf,
    procs: Procs,
    cluster: ClusterScript,
    cores: u32,
    report: BenchReport,
    generated: Workload,
    /// The generated workload of 1,200 users.
    many_users: Workload,
    course: Option<Workload>,
    /// The course's 10-user file, when present.
    course_10: Option<Workload>,
    started: Instant,
}

/// Runs everything and writes the report, the page and the plots. The
/// report is written even when steps failed; the error then says which.
pub async fn run(config: Config) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let sizes = Sizes::new(config.quick);
    let raw = config.out_dir.join("raw");
    std::fs::create_dir_all(raw.join("logs"))?;
    std::fs::create_dir_all(raw.join("workloads"))?;
    let procs = Procs::new(&raw.join("pids"))?;
    let generated = generate(&raw, USERS, sizes.generated, 1, "generated")?;
    let many_users = generate(&raw, MANY_USERS, sizes.many_users, 4, "generated")?;
    let course_10_path = config.workloads.join(COURSE_FILE_10);
    let course_10 = course_10_path.is_file().then(|| Workload {
        describe: format!("course {COURSE_FILE_10}"),
        commands: 10_000,
        path: course_10_path.clone(),
        limit: None,
    });
    let course_path = config.workloads.join(COURSE_FILE);
    let course = course_path.is_file().then(|| Workload {
        describe: match sizes.course_limit {
            Some(n) => format!(
                "course {COURSE_FILE}, its first {} commands",
                render::thousands(n as f64)
            ),
            None => format!("course {COURSE_FILE}"),
        },
        commands: sizes.course_limit.unwrap_or(100_000),
        path: course_path.clone(),
        limit: sizes.course_limit,
    });
    let mut notes = Vec::new();
    if course.is_none() {
        notes.push(Note {
            step: "course workload".to_owned(),
            kind: "skipped".to_owned(),
            message: format!(
                "{} is absent: the generated workload is used alone",
                course_path.display()
            ),
        });
    }
    let report = BenchReport {
        schema: model::SCHEMA,
        mode: if config.quick { "quick" } else { "full" }.to_owned(),
        started_at: machine::now_rfc3339(),
        duration_s: 0.0,
        machine: machine::describe(),
        git: machine::git(&config.root),
        versions: machine::versions(&config.bin, config.locust.as_deref()),
        settings: Settings {
            quick: config.quick,
            port: config.port,
            wrk_seconds: sizes.wrk.as_secs(),
            generated_commands: sizes.generated,
            course_file: course.as_ref().map(|c| c.path.display().to_string()),
            course_commands: course.as_ref().map(|c| c.commands),
            half_load_seconds: sizes.half_load_seconds,
            dumplog_rows: sizes.dumplog_rows.to_vec(),
            locust_users: sizes.locust_users,
            locust_seconds: sizes.locust.as_secs(),
            environment: daytrader_environment(),
        },
        ceiling: Vec::new(),
        replays: Vec::new(),
        cached_reads: Vec::new(),
        dumplogs: Vec::new(),
        locust: None,
        profile: None,
        figures: Vec::new(),
        targets: Vec::new(),
        notes,
    };
    let mut suite = Suite {
        cluster: ClusterScript {
            script: config.root.join("scripts/cluster"),
            bin: config.bin.clone(),
            name: CLUSTER_NAME.to_owned(),
            port: config.port,
        },
        cores: machine::cores(),
        config,
        sizes,
        raw,
        procs,
        report,
        generated,
        many_users,
        course,
        course_10,
        started,
    };
    suite.all().await;
    suite.report.duration_s = started.elapsed().as_secs_f64();
    suite.report.machine.load_after = machine::load_average();
    suite.report.finish();
    write(&suite.report, &suite.config.out_dir, &suite.config.docs_dir)?;
    Ok(suite.report)
}

/// Writes report.json, the page and the plots.
pub fn write(report: &BenchReport, out_dir: &Path, docs_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    let json = out_dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    plots::write_all(report, &docs_dir.join("bench"))?;
    let page = docs_dir.join("benchmarks.md");
    std::fs::write(&page, render::page(report)?)
        .with_context(|| format!("writing {}", page.display()))?;
    Ok(())
}

/// The DayTrader settings set in this environment, secrets left out: the
/// instances inherit them, so the report must say which were set.
fn daytrader_environment() -> Vec<String> {
    const NAMES: &[&str] = &[
        "DB_POOL_SIZE",
        "DB_COMMITTERS",
        "MAX_BATCH",
        "QUOTE_TTL_SECS",
        "QUOTE_LATENCY",
        "QUOTE_FAULT_RATE",
        "QUOTE_SEED",
        "TRIGGER_REFRESH_SECS",
        "LOG_FORMAT",
    ];
    let mut out: Vec<String> = NAMES
        .iter()
        .filter_map(|n| std::env::var(n).ok().map(|v| format!("{n}={v}")))
        .collect();
    out.sort();
    out
}

/// Writes a generated workload (once per size and seed) and describes it.
fn generate(
    raw: &Path,
    users: usize,
    commands: usize,
    seed: u64,
    what: &str,
) -> anyhow::Result<Workload> {
    let path = raw
        .join("workloads")
        .join(format!("{what}-{users}u-{commands}c-seed{seed}.txt"));
    if !path.is_file() {
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial)?;
        loadgen::generate(users, commands, seed, file)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(Workload {
        describe: format!(
            "generated: {} users, {} commands, seed {seed}",
            render::thousands(users as f64),
            render::thousands(commands as f64)
        ),
        path,
        limit: None,
        commands,
    })
}

/// "100k", "1M": a log size for a name.
fn short(rows: u64) -> String {
    if rows >= 1_000_000 && rows.is_multiple_of(1_000_000) {
        format!("{}M", rows / 1_000_000)
    } else if rows >= 1000 {
        format!("{}k", rows / 1000)
    } else {
        rows.to_string()
    }
}

impl Suite {
    fn say(&self, text: &str) {
        let t = self.started.elapsed().as_secs();
        eprintln!("[bench {:02}:{:02}] {text}", t / 60, t % 60);
    }

    /// Records a step's failure (or skip) and says so.
    fn record(&mut self, step: &str, result: anyhow::Result<()>) {
        if let Err(error) = result {
            self.say(&format!("{step} FAILED: {error:#}"));
            self.report.notes.push(Note {
                step: step.to_owned(),
                kind: "failed".to_owned(),
                message: format!("{error:#}"),
            });
        }
    }

    fn skip(&mut self, step: &str, why: String) {
        self.say(&format!("{step} skipped: {why}"));
        self.report.notes.push(Note {
            step: step.to_owned(),
            kind: "skipped".to_owned(),
            message: why,
        });
    }

    async fn all(&mut self) {
        let r = self.main_cluster().await;
        self.record("ceiling, cluster replay, cached reads", r);
        if let Some(course) = self.course.clone() {
            let r = self
                .fresh_cluster_replay(model::CLUSTER_COURSE, &course, 3)
                .await;
            self.record(model::CLUSTER_COURSE, r);
        }
        if let Some(course) = self.course_10.clone() {
            let r = self
                .fresh_cluster_replay(model::CLUSTER_COURSE_10, &course, 3)
                .await;
            self.record(model::CLUSTER_COURSE_10, r);
        }
        let many_users = self.many_users.clone();
        let r = self
            .fresh_cluster_replay(model::CLUSTER_MANY_USERS, &many_users, 3)
            .await;
        self.record(model::CLUSTER_MANY_USERS, r);
        let r = self.half_load().await;
        self.record(model::HALF_LOAD, r);
        let r = self.profile_and_locust().await;
        self.record("profile and Locust", r);
        let r = self.slow_quote().await;
        self.record(model::SLOW_QUOTE, r);
        for n in [1, 2] {
            let generated = self.generated.clone();
            let r = self
                .fresh_cluster_replay(&model::scaling_name(n), &generated, n)
                .await;
            self.record(&model::scaling_name(n), r);
        }
        let r = self.embedded_generated_and_dumplog().await;
        self.record("embedded replay and DUMPLOG", r);
        if let Some(course) = self.course.clone() {
            let r = self.embedded_replay(model::EMBEDDED_COURSE, &course).await;
            self.record(model::EMBEDDED_COURSE, r);
        }
        let many_users = self.many_users.clone();
        let r = self
            .embedded_replay(model::EMBEDDED_MANY_USERS, &many_users)
            .await;
        self.record(model::EMBEDDED_MANY_USERS, r);
        let r = self.embedded_half_load().await;
        self.record(model::EMBEDDED_HALF_LOAD, r);
    }

    fn spec(&self, name: &str, workload: &Workload, target: &str, token: &str) -> ReplaySpec {
        ReplaySpec {
            name: name.to_owned(),
            workload: workload.path.clone(),
            limit: workload.limit,
            skip_dumplog: false,
            rate: None,
            target: target.to_owned(),
            token: token.to_owned(),
            dir: self.raw.join("replays").join(name),
        }
    }

    /// Runs a replay and adds it to the report.
    async fn replay(&mut self, job: Job<'_>) -> anyhow::Result<ReplayRun> {
        let name = job.spec.name.clone();
        self.say(&format!("{name}: replaying {}", job.workload.describe));
        let replayed = replay::run(&self.procs, &job.spec, job.roles, self.cores).await?;
        let r = &replayed.report;
        self.say(&format!(
            "{name}: {} commands/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            render::thousands(r.throughput_per_s),
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.failed
        ));
        let run = ReplayRun {
            name: name.clone(),
            deployment: job.deployment.to_owned(),
            instances: job.instances,
            workload: job.workload.describe.clone(),
            quote_latency: job.quote_latency.to_owned(),
            report: replayed.report,
            cpu: replayed.cpu,
        };
        if run.report.failed > 0 {
            self.report.notes.push(Note {
                step: name,
                kind: "failed".to_owned(),
                message: format!(
                    "{} commands failed ({:?}); the replay's figures do not count",
                    run.report.failed, run.report.failed_by_reason
                ),
            });
        }
        self.report.replays.push(run.clone());
        Ok(run)
    }

    async fn cluster_replay(
        &mut self,
        cluster: &Cluster,
        name: &str,
        workload: &Workload,
    ) -> anyhow::Result<ReplayRun> {
        let spec = self.spec(name, workload, cluster.url(), cluster.token());
        self.replay(Job::cluster(cluster, workload, spec)).await
    }

    async fn up(&self, instances: u32) -> anyhow::Result<Cluster> {
        self.say(&format!(
            "starting a fresh cluster of {instances} instance(s)"
        ));
        self.cluster.up(instances).await
    }

    async fn fresh_cluster_replay(
        &mut self,
        name: &str,
        workload: &Workload,
        instances: u32,
    ) -> anyhow::Result<()> {
        let cluster = self.up(instances).await?;
        self.cluster_replay(&cluster, name, workload).await?;
        cluster.down().await
    }

    /// The ceiling, the generated replay on three instances, the cached
    /// reads and the cluster's DUMPLOG, on one cluster.
    async fn main_cluster(&mut self) -> anyhow::Result<()> {
        let cluster = self.up(3).await?;
        self.ceiling(&cluster).await?;
        let generated = self.generated.clone();
        self.cluster_replay(&cluster, model::CLUSTER_GENERATED, &generated)
            .await?;
        let r = self.cached_reads(&cluster).await;
        self.record("cached reads", r);
        let rows = generated.commands as u64 + 1;
        let r = self
            .dumplog(
                &format!("postgresql-{}", short(generated.commands as u64)),
                "postgresql",
                &cluster.instance_url(1),
                cluster.token(),
                cluster.pid("web1").context("the cluster has no web1")?,
                rows,
            )
            .await;
        self.record("cluster DUMPLOG", r);
        cluster.down().await
    }

    async fn wrk(&mut self, spec: WrkSpec) -> anyhow::Result<WrkRun> {
        // A second of warm-up: connections, caches, the CPU's clock.
        let mut warm = spec.clone();
        warm.name = format!("{}-warm-up", spec.name);
        warm.duration = Duration::from_secs(1);
        wrk::run(&self.procs, &warm, &self.raw).await?;
        let run = wrk::run(&self.procs, &spec, &self.raw).await?;
        self.say(&format!(
            "{}: {} requests/s, p99 {:.2} ms, {} errors",
            spec.name,
            render::thousands(run.requests_per_s),
            run.latency_ms.p99,
            run.errors.total()
        ));
        if run.errors.total() > 0 {
            self.report.notes.push(Note {
                step: spec.name.clone(),
                kind: "failed".to_owned(),
                message: format!("wrk saw errors: {:?}", run.errors),
            });
        }
        Ok(run)
    }

    async fn ceiling(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        for (name, via, connections) in [
            (model::DIRECT, "direct", 100),
            (model::BALANCER, "balancer", 100),
            (model::DIRECT_C10, "direct", 10),
            (model::BALANCER_C10, "balancer", 10),
        ] {
            let base_url = if via == "direct" {
                cluster.instance_url(1)
            } else {
                cluster.url().to_owned()
            };
            let run = self
                .wrk(WrkSpec {
                    name: name.to_owned(),
                    via: via.to_owned(),
                    base_url,
                    paths: vec!["/healthz".to_owned()],
                    token: None,
                    connections,
                    threads: 2,
                    duration: self.sizes.wrk,
                    request: "GET /healthz".to_owned(),
                })
                .await?;
            self.report.ceiling.push(run);
        }
        Ok(())
    }

    /// Quotes and summaries of the generated workload's first ten symbols
    /// and users, through the balancer.
    async fn cached_reads(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        let parsed = loadgen::parse_file(&self.generated.path)?;
        let mut users = Vec::new();
        let mut symbols = Vec::new();
        let (mut seen_users, mut seen_symbols) = (HashSet::new(), HashSet::new());
        for c in &parsed.commands {
            if let Some(u) = &c.user
                && users.len() < 10
                && seen_users.insert(u.clone())
            {
                users.push(format!("/api/v1/users/{u}"));
            }
            if let Some(s) = &c.symbol
                && symbols.len() < 10
                && seen_symbols.insert(s.to_ascii_uppercase())
            {
                symbols.push(format!("/api/v1/quotes/{}", s.to_ascii_uppercase()));
            }
        }
        for (name, paths, request) in [
            (model::READ_QUOTE, symbols, "GET /api/v1/quotes/{symbol}"),
            (model::READ_SUMMARY, users, "GET /api/v1/users/{user}"),
        ] {
            if paths.is_empty() {
                bail!("the generated workload has nothing to read for {name}");
            }
            http::warm(cluster.url(), &paths, cluster.token()).await?;
            let run = self
                .wrk(WrkSpec {
                    name: name.to_owned(),
                    via: "balancer".to_owned(),
                    base_url: cluster.url().to_owned(),
                    paths,
                    token: Some(cluster.token().to_owned()),
                    connections: 10,
                    threads: 2,
                    duration: self.sizes.wrk,
                    request: request.to_owned(),
                })
                .await?;
            self.report.cached_reads.push(run);
        }
        Ok(())
    }

    async fn dumplog(
        &mut self,
        name: &str,
        store: &str,
        url: &str,
        token: &str,
        pid: u32,
        rows: u64,
    ) -> anyhow::Result<()> {
        self.say(&format!(
            "{name}: DUMPLOG of about {} rows",
            render::thousands(rows as f64)
        ));
        let run = dumplog::measure(name, store, url, token, pid, rows).await?;
        self.say(&format!(
            "{name}: {:.1} MB in {:.2} s ({:.1} MB/s), memory {:.1} -> {:.1} MB",
            run.bytes as f64 / 1e6,
            run.seconds,
            run.mb_per_s,
            run.rss_before_mb,
            run.rss_peak_mb
        ));
        self.report.dumplogs.push(run);
        Ok(())
    }

    /// An open loop at half the cluster's peak (its generated replay).
    async fn half_load(&mut self) -> anyhow::Result<()> {
        let Some((rate, workload)) =
            self.half_load_workload(model::HALF_LOAD, model::CLUSTER_GENERATED, "cluster")?
        else {
            return Ok(());
        };
        let cluster = self.up(3).await?;
        let mut spec = self.spec(model::HALF_LOAD, &workload, cluster.url(), cluster.token());
        spec.rate = Some(rate);
        spec.skip_dumplog = true;
        self.replay(Job::cluster(&cluster, &workload, spec)).await?;
        cluster.down().await
    }

    /// An open loop at half the embedded server's peak (its generated
    /// replay), against a fresh embedded server.
    async fn embedded_half_load(&mut self) -> anyhow::Result<()> {
        let Some((rate, workload)) = self.half_load_workload(
            model::EMBEDDED_HALF_LOAD,
            model::EMBEDDED_GENERATED,
            "embedded",
        )?
        else {
            return Ok(());
        };
        let (server, roles) = self.start_embedded().await?;
        let mut spec = self.spec(
            model::EMBEDDED_HALF_LOAD,
            &workload,
            &server.url,
            &server.token,
        );
        spec.rate = Some(rate);
        spec.skip_dumplog = true;
        self.replay(Job::embedded(&workload, spec, roles)).await?;
        server.stop().await
    }

    /// Half the throughput of the replay `peak`, and a generated workload
    /// that lasts the half-load time at that rate; `None` (and run `id`
    /// noted as skipped) without a clean peak of the `mode`.
    fn half_load_workload(
        &mut self,
        id: &str,
        peak: &str,
        mode: &str,
    ) -> anyhow::Result<Option<(f64, Workload)>> {
        let Some(peak) = self
            .report
            .replay(peak)
            .filter(|r| r.report.failed == 0)
            .map(|r| r.report.throughput_per_s)
        else {
            self.skip(id, format!("no clean {mode} peak to take half of"));
            return Ok(None);
        };
        let rate = peak / 2.0;
        let commands = ((rate * self.sizes.half_load_seconds as f64) as usize).max(USERS * 10);
        let mut workload = generate(&self.raw, USERS, commands, 2, "half-load")?;
        workload.describe = format!("{}, without its DUMPLOG", workload.describe);
        Ok(Some((rate, workload)))
    }

    /// The generated replay under perf, then Locust on the same cluster.
    async fn profile_and_locust(&mut self) -> anyhow::Result<()> {
        let cluster = self.up(3).await?;
        match profile::available().await {
            Ok(()) => {
                let r = self.profile(&cluster).await;
                self.record("profile", r);
            }
            Err(why) => self.skip("profile", why),
        }
        match self.config.locust.clone() {
            Some(locust) => {
                let r = self.locust(&cluster, &locust).await;
                self.record("Locust", r);
            }
            None => self.skip(
                "Locust",
                "Locust is not installed (scripts/bench installs it into bench/.venv)".to_owned(),
            ),
        }
        cluster.down().await
    }

    async fn profile(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        let data = self.raw.join("perf.data");
        let perf = profile::start(&self.procs, &data, &self.raw.join("logs/perf.log"))?;
        let mut roles = cluster.roles();
        roles
            .named
            .push(("perf (the profiler)".to_owned(), perf.pid()));
        // Give perf a moment to attach before the window opens.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let name = "cluster-generated-profiled";
        let spec = self.spec(
            name,
            &self.generated.clone(),
            cluster.url(),
            cluster.token(),
        );
        self.say(&format!("{name}: replaying under perf record"));
        let replayed = replay::run(&self.procs, &spec, roles, self.cores).await;
        profile::stop(perf).await?;
        let replayed = replayed?;
        self.say("profile: reading perf's samples");
        let instances: Vec<u32> = (1..=cluster.instances)
            .filter_map(|i| cluster.pid(&format!("web{i}")))
            .collect();
        let binary = self.config.bin.file_name().map_or_else(
            || "daytrader".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let (hot, components) =
            profile::hot(&data, profile::Filter::Pids(&instances), &binary, 25).await?;
        let postgres_hot =
            match profile::hot(&data, profile::Filter::Comm("postgres"), "postgres", 12).await {
                Ok((hot, _)) => hot,
                Err(_) => Vec::new(),
            };
        self.report.profile = Some(Profile {
            replay: name.to_owned(),
            seconds: replayed.report.duration_s,
            throughput_per_s: replayed.report.throughput_per_s,
            processes: replayed.cpu,
            hot_functions: hot,
            by_component: components,
            postgres_hot,
        });
        Ok(())
    }

    async fn locust(&mut self, cluster: &Cluster, locust: &Path) -> anyhow::Result<()> {
        self.say(&format!(
            "Locust: {} simulated traders for {} s",
            self.sizes.locust_users,
            self.sizes.locust.as_secs()
        ));
        let run = locust::run(
            &self.procs,
            &locust::LocustSpec {
                locust: locust.to_owned(),
                locustfile: self.config.root.join("deploy/locust/locustfile.py"),
                host: cluster.url().to_owned(),
                token: cluster.token().to_owned(),
                users: self.sizes.locust_users,
                duration: self.sizes.locust,
                dir: self.raw.clone(),
            },
        )
        .await?;
        self.say(&format!(
            "Locust: {} requests/s, {} failures of {}",
            render::thousands(run.requests_per_s),
            run.failures,
            run.requests
        ));
        if run.failures > 0 {
            self.report.notes.push(Note {
                step: "Locust".to_owned(),
                kind: "failed".to_owned(),
                message: format!("{} of {} requests failed", run.failures, run.requests),
            });
        }
        self.report.locust = Some(run);
        Ok(())
    }

    /// The generated replay with a quote server as slow as the legacy one
    /// in place of the cluster's instant one.
    async fn slow_quote(&mut self) -> anyhow::Result<()> {
        let mut cluster = self.up(3).await?;
        cluster.stop_quote_server().await?;
        let port = cluster.quote_port();
        let log = std::fs::File::create(self.raw.join("logs/quotes-legacy.log"))?;
        let mut command = tokio::process::Command::new(&self.config.bin);
        command
            .args([
                "quote-server",
                "--mode",
                "fixed",
                "--latency",
                "legacy",
                "--bind",
                "127.0.0.1",
            ])
            .arg("--port")
            .arg(port.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let server = self.procs.spawn("legacy-latency quote server", command)?;
        wait_port(port).await?;
        cluster.adopt("quotes", server.pid());
        let generated = self.generated.clone();
        let spec = self.spec(
            model::SLOW_QUOTE,
            &generated,
            cluster.url(),
            cluster.token(),
        );
        let mut workload = generated;
        workload.describe = format!(
            "{}; quote server with the legacy latency",
            workload.describe
        );
        let mut job = Job::cluster(&cluster, &workload, spec);
        job.quote_latency = "legacy";
        let result = self.replay(job).await;
        server.stop(Duration::from_secs(10)).await?;
        result?;
        cluster.down().await
    }

    /// A DUMPLOG of the embedded server's log of about `rows` rows, named
    /// for its intended `size`.
    async fn sqlite_dumplog(
        &mut self,
        server: &Embedded,
        size: u64,
        rows: u64,
    ) -> anyhow::Result<()> {
        let name = format!("sqlite-{}", short(size));
        let (url, token) = (&server.url, &server.token);
        self.dumplog(&name, "sqlite", url, token, server.pid(), rows)
            .await
    }

    /// The generated replay on an embedded server, then DUMPLOGs of its log
    /// at two sizes.
    async fn embedded_generated_and_dumplog(&mut self) -> anyhow::Result<()> {
        let (server, roles) = self.start_embedded().await?;
        let generated = self.generated.clone();
        let spec = self.spec(
            model::EMBEDDED_GENERATED,
            &generated,
            &server.url,
            &server.token,
        );
        self.replay(Job::embedded(&generated, spec, roles.clone()))
            .await?;
        let [small, large] = self.sizes.dumplog_rows;
        // Every command is a row, the DUMPLOG asked for included.
        let mut rows = generated.commands as u64 + 1;
        self.sqlite_dumplog(&server, small, rows).await?;
        let fill = large.saturating_sub(rows) as usize;
        if fill > USERS {
            let workload = generate(&self.raw, USERS, fill + 1, 3, "fill")?;
            let mut spec = self.spec("embedded-fill", &workload, &server.url, &server.token);
            spec.skip_dumplog = true;
            let mut described = workload.clone();
            described.describe = format!(
                "{}, without its DUMPLOG: fills the log for the large DUMPLOG",
                workload.describe
            );
            self.replay(Job::embedded(&described, spec, roles)).await?;
            rows += fill as u64 + 1;
        }
        self.sqlite_dumplog(&server, large, rows).await?;
        server.stop().await
    }

    /// A fresh embedded server, and the role its process plays in the CPU
    /// accounting of the replays against it.
    async fn start_embedded(&self) -> anyhow::Result<(Embedded, Roles)> {
        let server = Embedded::start(
            &self.procs,
            &self.config.bin,
            &self.raw.join("embedded-data"),
            &self.raw.join("logs/embedded.log"),
        )
        .await?;
        let roles = Roles {
            named: vec![("embedded server".to_owned(), server.pid())],
            ..Roles::default()
        };
        Ok((server, roles))
    }

    async fn embedded_replay(&mut self, name: &str, workload: &Workload) -> anyhow::Result<()> {
        let (server, roles) = self.start_embedded().await?;
        let spec = self.spec(name, workload, &server.url, &server.token);
        self.replay(Job::embedded(workload, spec, roles)).await?;
        server.stop().await
    }
}

/// A replay for [`Suite::replay`], and how the report describes it.
struct Job<'a> {
    deployment: &'static str,
    instances: u32,
    workload: &'a Workload,
    spec: ReplaySpec,
    roles: Roles,
    quote_latency: &'static str,
}

impl<'a> Job<'a> {
    fn cluster(cluster: &Cluster, workload: &'a Workload, spec: ReplaySpec) -> Job<'a> {
        Job {
            deployment: "cluster",
            instances: cluster.instances,
            workload,
            spec,
            roles: cluster.roles(),
            quote_latency: "none",
        }
    }

    fn embedded(workload: &'a Workload, spec: ReplaySpec, roles: Roles) -> Job<'a> {
        Job {
            deployment: "embedded",
            instances: 1,
            workload,
            spec,
            roles,
            quote_latency: "none",
        }
    }
}

/// Waits until something listens on a local port.
async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing listens on port {port} after 15 s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_log_sizes_shortly() {
        assert_eq!(short(100_000), "100k");
        assert_eq!(short(1_000_000), "1M");
        assert_eq!(short(20_000), "20k");
        assert_eq!(short(999), "999");
    }
}
