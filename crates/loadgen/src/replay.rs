//! Replaying a workload against a server.
//!
//! The order rules are the course's: each user's commands run one after
//! another, in file order, each only once the previous one has its answer;
//! different users run concurrently. A command without a user (the global
//! DUMPLOG) is a barrier: everything before it finishes, then it runs alone,
//! then the rest goes on. So the workload is cut at its barriers into
//! phases, and within a phase each worker takes whole users' command
//! streams, one user at a time, over its own connection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::buf::BufMut;
use bytes::{Bytes, BytesMut};
use engine::{CommandBody, CommandName, ErrorBody};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Incoming;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::compact::Workload;
use crate::connection::{Connection, Endpoint, TransportError};
use crate::dump_path::resolve_dump_path;
use crate::report::{DumpFile, DumplogError, OpenLoop, Report};
use crate::tally::{Latencies, Outcome, Tally};
use crate::workload::WorkloadCommand;

/// How to replay a workload.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The server's base URL, like `http://127.0.0.1:9999`.
    pub target: String,
    /// Sent as `Authorization: Bearer {token}`; a supervisor token, since a
    /// workload acts for many users and reads the global log.
    pub token: String,
    /// The most users in flight at once; `None` for all of them.
    pub concurrency: Option<usize>,
    /// Where DUMPLOG answers are saved; created if missing.
    pub out_dir: PathBuf,
    /// How many times a command is sent again after a transport error or a
    /// 503, with the same transaction number.
    pub retries: u32,
    /// The longest time one command may take, all its attempts and the
    /// pauses between them included: retries stop at whichever of
    /// `retries` and this comes first. It is also how long the target may
    /// stay unreachable before the whole run stops.
    pub deadline: Duration,
    /// The longest wait for one attempt, connection and whole answer
    /// included (never past the command's deadline).
    pub request_timeout: Duration,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Open loop: command `k` of the file (0-based, in file order) is due
    /// `k / rate` seconds after the start, whether or not the server keeps
    /// up; `None` is the closed loop, where a user's next command goes as
    /// soon as the previous one has its answer. A closed loop measures the
    /// most the server can do, but its latencies hide queueing (a slow
    /// answer delays the commands behind it instead of making them late);
    /// an open loop at a fixed rate measures the latency a trader sees at
    /// that load. A user's commands still run in order, one at a time.
    pub rate: Option<f64>,
}

impl RunOptions {
    /// The defaults: every user in flight, 8 retries within 30 s per
    /// command, 30 s per attempt, a progress bar.
    pub fn new(
        target: impl Into<String>,
        token: impl Into<String>,
        out_dir: impl Into<PathBuf>,
    ) -> RunOptions {
        RunOptions {
            target: target.into(),
            token: token.into(),
            concurrency: None,
            out_dir: out_dir.into(),
            retries: 8,
            deadline: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            progress: true,
            rate: None,
        }
    }
}

/// The first pause before a retry; it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Replays `workload` against `options.target` on the caller's tokio
/// runtime. An error means the run could not take place (a bad target, an
/// output directory that cannot be created); what happened to the commands
/// is in the [`Report`], including a run that stopped half way because the
/// server refused the token or could not be reached.
pub async fn run(workload: impl Into<Workload>, options: RunOptions) -> anyhow::Result<Report> {
    let workload = workload.into();
    ensure!(
        options.concurrency != Some(0),
        "the concurrency must be at least 1"
    );
    if let Some(rate) = options.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "the rate must be a positive number of commands per second, not {rate}"
        );
    }
    ensure!(
        !options.deadline.is_zero(),
        "the deadline of a command must be more than zero"
    );
    let endpoint = Endpoint::resolve(&options.target, &options.token).await?;
    tokio::fs::create_dir_all(&options.out_dir)
        .await
        .with_context(|| {
            format!(
                "creating the output directory {}",
                options.out_dir.display()
            )
        })?;

    let users = workload.users();
    let phases = phases(&workload);
    let concurrency = options.concurrency.unwrap_or(users).max(1);
    let progress = options
        .progress
        .then(|| progress_bar(workload.len() as u64));
    let shared = Arc::new(Shared {
        endpoint,
        target: options.target.clone(),
        out_dir: options.out_dir,
        retries: options.retries,
        deadline: options.deadline,
        request_timeout: options.request_timeout,
        progress,
        started: Instant::now(),
        rate: options.rate,
        stopped: OnceLock::new(),
        outage: Mutex::new(None),
        latencies: Latencies::new(),
        workload,
    });

    let mut total = Tally::new();
    let mut idle: Vec<Connection> = Vec::new();
    let mut most_in_flight = 0;
    for phase in phases {
        if shared.is_stopped() {
            break;
        }
        match phase {
            Phase::Users(streams) => {
                let workers = concurrency.min(streams.len());
                most_in_flight = most_in_flight.max(workers);
                let streams = Arc::new(streams);
                let next = Arc::new(AtomicUsize::new(0));
                let mut handles = Vec::with_capacity(workers);
                for _ in 0..workers {
                    let connection = idle.pop().unwrap_or_else(Connection::new);
                    let worker = Worker {
                        shared: Arc::clone(&shared),
                        streams: Arc::clone(&streams),
                        next: Arc::clone(&next),
                    };
                    handles.push(tokio::spawn(worker.run(connection)));
                }
                for handle in handles {
                    let (connection, tally) = handle.await.context("a replay worker panicked")?;
                    idle.push(connection);
                    total.merge(tally);
                }
            }
            Phase::Alone(index) => {
                most_in_flight = most_in_flight.max(1);
                let mut connection = idle.pop().unwrap_or_else(Connection::new);
                execute(&shared, &mut connection, &mut total, index).await;
                idle.push(connection);
            }
        }
    }
    let duration = shared.started.elapsed();
    if let Some(progress) = &shared.progress {
        if shared.is_stopped() {
            progress.abandon();
        } else {
            progress.finish();
        }
    }

    let duration_s = duration.as_secs_f64();
    let command_count = shared.workload.len() as u64;
    let (latency_ms, service_latency_ms) = shared.latencies.summaries();
    let open_loop = shared.rate.map(|rate_per_s| OpenLoop {
        rate_per_s,
        service_latency_ms,
        behind_schedule: total.behind_schedule,
    });
    total.timeline.cover(duration);
    let (timeline_step_s, timeline) = total.timeline.into_parts();
    total.dumplogs.sort_by_key(|d| d.line);
    total.dumplog_errors.sort_by_key(|d| d.line);
    let answered = total.accepted + total.rejected + total.failed;
    Ok(Report {
        target: options.target,
        commands: command_count,
        accepted: total.accepted,
        rejected: total.rejected,
        rejected_by_code: total.rejected_by_code.into_iter().collect(),
        failed: total.failed,
        failed_by_reason: total.failed_by_reason.into_iter().collect(),
        retries: total.retries,
        not_sent: command_count.saturating_sub(answered),
        stopped: shared.stopped.get().cloned(),
        malformed_lines: shared.workload.malformed_lines(),
        malformed: shared.workload.malformed().to_vec(),
        users: users as u64,
        concurrency: most_in_flight as u64,
        duration_s,
        throughput_per_s: if duration_s > 0.0 {
            command_count as f64 / duration_s
        } else {
            0.0
        },
        latency_ms,
        dumplogs: total.dumplogs,
        dumplog_errors: total.dumplog_errors,
        timeline,
        timeline_step_s,
        open_loop,
    })
}

/// What every worker reads.
struct Shared {
    endpoint: Endpoint,
    target: String,
    out_dir: PathBuf,
    retries: u32,
    deadline: Duration,
    request_timeout: Duration,
    progress: Option<ProgressBar>,
    started: Instant,
    rate: Option<f64>,
    /// Why the run stopped, once it has: no command is sent after.
    stopped: OnceLock<String>,
    /// Since when, and why, the target has not been reached.
    outage: Mutex<Option<(Instant, String)>>,
    latencies: Latencies,
    workload: Workload,
}

impl Shared {
    /// When command `index` is due in an open-loop run.
    fn due(&self, index: usize) -> Option<Instant> {
        self.rate.map(|rate| self.started + due_after(index, rate))
    }

    fn is_stopped(&self) -> bool {
        self.stopped.get().is_some()
    }

    /// Stops the run: commands in flight finish, no other is sent.
    fn stop(&self, why: String) {
        if self.stopped.set(why.clone()).is_ok() {
            self.notice(&format!("stopping the replay: {why}"));
        }
    }

    /// Tells the person running the replay, above the progress bar if
    /// there is one; even a quiet run says this much.
    fn notice(&self, text: &str) {
        match &self.progress {
            Some(progress) => progress.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// An attempt found no server: the first one of an outage says so at
    /// once.
    fn unreachable(&self, error: &TransportError) {
        let mut outage = self.outage.lock().expect("not poisoned");
        if outage.is_none() {
            let why = match error {
                TransportError::Connect(error) => {
                    format!("cannot connect to {}: {error}", self.target)
                }
                other => format!("{} gives no answer: {other}", self.target),
            };
            self.notice(&format!(
                "{why}; retrying each command for up to {} s",
                self.deadline.as_secs_f64()
            ));
            *outage = Some((Instant::now(), why));
        }
    }

    /// An answer came: an outage, if there was one, is over.
    fn reached(&self) {
        let mut outage = self.outage.lock().expect("not poisoned");
        if let Some((since, _)) = outage.take() {
            self.notice(&format!(
                "reached {} again after {:.1} s",
                self.target,
                since.elapsed().as_secs_f64()
            ));
        }
    }

    /// Stops the run if the target has been unreachable for longer than a
    /// command's deadline: every command would fail the same way.
    fn give_up_if_unreachable(&self) {
        let outage = self.outage.lock().expect("not poisoned");
        if let Some((since, why)) = &*outage
            && since.elapsed() >= self.deadline
        {
            let why = format!(
                "{why} (for {:.0} s, longer than a command's deadline)",
                since.elapsed().as_secs_f64()
            );
            drop(outage);
            self.stop(why);
        }
    }
}

/// How long after the start command `index` is due at `rate` commands per
/// second.
fn due_after(index: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(index as f64 / rate)
}

/// A command starting later than this after its due time is counted as
/// behind schedule; below it, the lateness is the timer's granularity.
const LATE: Duration = Duration::from_millis(1);

/// A stretch of the workload between barriers.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Each user's commands (indices into the workload), users in order of
    /// first appearance. Indices are 32-bit: a workload's commands are
    /// held in 32-bit records anyway, and a million-command file's streams
    /// take 4 MB instead of 8.
    Users(Vec<Vec<u32>>),
    /// A command without a user, run on its own.
    Alone(usize),
}

fn phases(workload: &Workload) -> Vec<Phase> {
    let mut phases = Vec::new();
    let mut streams: Vec<Vec<u32>> = Vec::new();
    let mut stream_of: HashMap<u32, usize> = HashMap::new();
    for index in 0..workload.len() {
        match workload.user_index(index) {
            Some(user) => {
                let stream = *stream_of.entry(user).or_insert_with(|| {
                    streams.push(Vec::new());
                    streams.len() - 1
                });
                streams[stream].push(index as u32);
            }
            None => {
                if !streams.is_empty() {
                    phases.push(Phase::Users(std::mem::take(&mut streams)));
                    stream_of.clear();
                }
                phases.push(Phase::Alone(index));
            }
        }
    }
    if !streams.is_empty() {
        phases.push(Phase::Users(streams));
    }
    phases
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} commands, {rate}, ETA {eta}",
        )
        .expect("the progress template is valid")
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = out.write_str(&rate_text(state.per_sec()));
            },
        )
        .progress_chars("=> "),
    );
    bar
}

/// A rate for the progress bar: whole commands per second, with one
/// decimal only below ten (indicatif's own `{per_sec}` shows four).
fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0/s".to_owned()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.0}/s")
    }
}

/// One connection working through users' streams, one whole user at a time.
struct Worker {
    shared: Arc<Shared>,
    streams: Arc<Vec<Vec<u32>>>,
    next: Arc<AtomicUsize>,
}

impl Worker {
    async fn run(self, mut connection: Connection) -> (Connection, Tally) {
        let mut tally = Tally::new();
        'streams: loop {
            let stream = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(stream) = self.streams.get(stream) else {
                break;
            };
            for &index in stream {
                if self.shared.is_stopped() {
                    break 'streams;
                }
                execute(&self.shared, &mut connection, &mut tally, index as usize).await;
            }
        }
        (connection, tally)
    }
}

/// Sends one command until it has a final answer, and records it.
async fn execute(shared: &Shared, connection: &mut Connection, tally: &mut Tally, index: usize) {
    let command = shared.workload.command(index);
    let body = encode(&command);
    let dump_path = if command.name == CommandName::DumpLog {
        match resolve_dump_path(
            &shared.out_dir,
            command.filename.as_deref().unwrap_or_default(),
        ) {
            Ok(path) => Some(path),
            Err(refused) => {
                // The command is still sent: the server records it, and the
                // run is judged on everything else it does.
                tally.dumplog_errors.push(DumplogError {
                    line: command.line,
                    transaction_num: command.transaction_num,
                    filename: command.filename.clone(),
                    error: refused.to_string(),
                });
                None
            }
        }
    } else {
        None
    };

    let started = match shared.due(index) {
        None => Instant::now(),
        Some(due) => {
            let now = Instant::now();
            if now < due {
                // Early: wait for its time, and time it from when the timer
                // woke, so that the timer's rounding (up to a millisecond)
                // is not counted as the server's.
                tokio::time::sleep_until(due.into()).await;
                Instant::now()
            } else {
                // Late: its user's previous command was answered after this
                // one was due. Timed from its due time, so that the delay a
                // slow answer causes to the commands behind it counts (the
                // correction for coordinated omission).
                if now.duration_since(due) > LATE {
                    tally.behind_schedule += 1;
                }
                due
            }
        }
    };
    let sent = Instant::now();
    let mut attempt = 0;
    let mut no_server;
    let outcome = loop {
        // Never past the command's deadline.
        let limit = shared
            .request_timeout
            .min(shared.deadline.saturating_sub(sent.elapsed()));
        let answer = tokio::time::timeout(
            limit,
            send_once(
                &shared.endpoint,
                connection,
                body.clone(),
                dump_path.as_deref(),
            ),
        )
        .await
        .unwrap_or(Err(TransportError::Timeout));
        no_server = matches!(&answer, Err(error) if error.is_unreachable());
        match &answer {
            Ok(_) => shared.reached(),
            Err(error) if error.is_unreachable() => shared.unreachable(error),
            Err(_) => {}
        }
        let retry_reason = match answer {
            Ok(Answer::Unavailable) => "http_503",
            Err(error) => {
                connection.reset();
                error.reason()
            }
            Ok(Answer::Accepted { saved }) => {
                match saved {
                    Some(Ok(bytes)) => tally.dumplogs.push(DumpFile {
                        line: command.line,
                        transaction_num: command.transaction_num,
                        user: command.user.clone(),
                        filename: command.filename.clone().unwrap_or_default(),
                        path: dump_path.clone().unwrap_or_default(),
                        bytes,
                    }),
                    Some(Err(error)) => tally.dumplog_errors.push(DumplogError {
                        line: command.line,
                        transaction_num: command.transaction_num,
                        filename: command.filename.clone(),
                        error,
                    }),
                    None => {}
                }
                break Outcome::Accepted;
            }
            Ok(Answer::Rejected(code)) => break Outcome::Rejected(code),
            Ok(Answer::Unauthorized { status, code }) => {
                shared.stop(unauthorized(status, &code, command.user.as_deref()));
                break Outcome::Failed(format!("http_{}", status.as_u16()));
            }
            Ok(Answer::Failed(reason)) => break Outcome::Failed(reason),
        };
        let pause = backoff(attempt);
        if attempt >= shared.retries
            || shared.is_stopped()
            || sent.elapsed() + pause >= shared.deadline
        {
            break Outcome::Failed(retry_reason.to_owned());
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
        tally.retries += 1;
    };
    if command.name == CommandName::DumpLog
        && dump_path.is_some()
        && !matches!(outcome, Outcome::Accepted)
    {
        // The file asked for this log, and it is not there.
        let answer = match &outcome {
            Outcome::Rejected(code) | Outcome::Failed(code) => code.as_str(),
            Outcome::Accepted => unreachable!("matched above"),
        };
        tally.dumplog_errors.push(DumplogError {
            line: command.line,
            transaction_num: command.transaction_num,
            filename: command.filename.clone(),
            error: format!("no log was saved: the command got {answer}"),
        });
    }
    if no_server {
        shared.give_up_if_unreachable();
    }
    if shared.rate.is_some() {
        shared.latencies.record_service(sent.elapsed());
    }
    shared.latencies.record(started.elapsed());
    tally.record(outcome, shared.started.elapsed());
    if let Some(progress) = &shared.progress {
        progress.inc(1);
    }
}

/// Why a refused token stops the run: every other command would be refused
/// the same way.
fn unauthorized(status: StatusCode, code: &str, user: Option<&str>) -> String {
    if status == StatusCode::UNAUTHORIZED {
        format!(
            "the server refused the token ({} {code}): a replay needs the supervisor token \
             (--token or DAYTRADER_ADMIN_TOKEN)",
            status.as_u16()
        )
    } else {
        let whom = user.map_or_else(
            || "the whole system's log".to_owned(),
            |u| format!("user {u}"),
        );
        format!(
            "the token may not act for {whom} ({} {code}): a replay acts for every user of the \
             file, which takes the supervisor token",
            status.as_u16()
        )
    }
}

/// The pause before retry number `attempt + 1`.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .checked_mul(1 << attempt.min(16))
        .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}

/// The answer to one attempt.
#[derive(Debug)]
enum Answer {
    /// 2xx; for a DUMPLOG with a usable file name, the bytes saved or why
    /// they could not be.
    Accepted { saved: Option<Result<u64, String>> },
    /// 4xx, with the error code from its body. A 429 is one too: a
    /// replay reports rate limiting rather than hiding it behind retries.
    Rejected(String),
    /// 401 or 403: the token is wrong, or may not do this.
    Unauthorized { status: StatusCode, code: String },
    /// 503: a dependency is down, try again.
    Unavailable,
    /// Any other status: not retried, since the server says it failed in a
    /// way that sending the same thing again will not mend.
    Failed(String),
}

async fn send_once(
    endpoint: &Endpoint,
    connection: &mut Connection,
    body: Bytes,
    dump_path: Option<&Path>,
) -> Result<Answer, TransportError> {
    let response = connection.send(endpoint, body).await?;
    let status = response.status();
    let body = response.into_body();
    if status.is_success() {
        let saved = match dump_path {
            Some(path) => Some(save(body, path).await?),
            None => {
                drain(body).await?;
                None
            }
        };
        if matches!(saved, Some(Err(_))) {
            // The rest of the log was left unread on the connection.
            connection.reset();
        }
        Ok(Answer::Accepted { saved })
    } else if status.is_client_error() {
        let bytes = body
            .collect()
            .await
            .map_err(TransportError::Http)?
            .to_bytes();
        let code = error_code(&bytes);
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Ok(Answer::Unauthorized { status, code })
        } else {
            Ok(Answer::Rejected(code))
        }
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        drain(body).await?;
        Ok(Answer::Unavailable)
    } else {
        drain(body).await?;
        Ok(Answer::Failed(format!("http_{}", status.as_u16())))
    }
}

/// Reads an answer to its end without keeping it, so that the connection
/// can carry the next request.
async fn drain(mut body: Incoming) -> Result<(), TransportError> {
    while let Some(frame) = body.frame().await {
        frame.map_err(TransportError::Http)?;
    }
    Ok(())
}

/// Streams a DUMPLOG answer into its file, chunk by chunk: a log of
/// millions of entries never sits in memory. The outer error is the
/// connection's (the attempt is retried, rewriting the file); the inner one
/// is the file's.
async fn save(mut body: Incoming, path: &Path) -> Result<Result<u64, String>, TransportError> {
    let mut file = match create(path).await {
        Ok(file) => file,
        Err(error) => return Ok(Err(error)),
    };
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(TransportError::Http)?;
        if let Ok(data) = frame.into_data() {
            if let Err(error) = file.write_all(&data).await {
                return Ok(Err(format!("writing {}: {error}", path.display())));
            }
            bytes += data.len() as u64;
        }
    }
    Ok(file
        .flush()
        .await
        .map(|()| bytes)
        .map_err(|error| format!("writing {}: {error}", path.display())))
}

async fn create(path: &Path) -> Result<BufWriter<tokio::fs::File>, String> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|error| format!("creating {}: {error}", parent.display()))?;
    }
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|error| format!("creating {}: {error}", path.display()))?;
    Ok(BufWriter::with_capacity(256 * 1024, file))
}

/// The error code of a refusal, `unknown` when the body is not the API's
/// error shape.
fn error_code(body: &[u8]) -> String {
    ErrorBody::code_of(body).unwrap_or_else(|| "unknown".to_owned())
}

fn borrowed(field: &Option<String>) -> Option<Cow<'_, str>> {
    field.as_deref().map(Cow::Borrowed)
}

/// The JSON body of a command, serialized straight into the buffer that
/// becomes the request body: one allocation per command, shared (not
/// copied) by its retries. Only the fields the line has, amounts as the
/// text they were in the file.
fn encode(command: &WorkloadCommand) -> Bytes {
    let body = CommandBody {
        command: Cow::Borrowed(command.name.as_str()),
        user: borrowed(&command.user),
        symbol: borrowed(&command.symbol),
        amount: borrowed(&command.amount),
        filename: borrowed(&command.filename),
        transaction_num: Some(command.transaction_num),
    };
    let mut buf = BytesMut::with_capacity(128).writer();
    serde_json::to_writer(&mut buf, &body).expect("serializing to memory cannot fail");
    buf.into_inner().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::parse_str;

    #[test]
    fn cuts_the_workload_at_its_barriers() {
        let parsed = parse_str(
            "[1] ADD,a,1\n[2] ADD,b,1\n[3] QUOTE,a,X\n[4] DUMPLOG,./one\n[5] DUMPLOG,./two\n[6] DUMPLOG,b,./b\n[7] ADD,a,1\n[8] DUMPLOG,./end",
        );
        assert_eq!(
            phases(&Workload::from(parsed)),
            vec![
                Phase::Users(vec![vec![0, 2], vec![1]]),
                Phase::Alone(3),
                Phase::Alone(4),
                Phase::Users(vec![vec![5], vec![6]]),
                Phase::Alone(7),
            ]
        );
    }

    #[test]
    fn bodies_carry_only_the_fields_of_the_line() {
        let parsed = parse_str(
            "[3] BUY,u1,ABC,200.00 \n[4] COMMIT_BUY,u1\n[5] DUMPLOG,./testLOG\n[6] ADD,u\"1,-5",
        );
        let bodies: Vec<String> = parsed
            .commands
            .iter()
            .map(|c| String::from_utf8(encode(c).to_vec()).unwrap())
            .collect();
        assert_eq!(
            bodies,
            vec![
                r#"{"command":"BUY","user":"u1","symbol":"ABC","amount":"200.00","transaction_num":3}"#,
                r#"{"command":"COMMIT_BUY","user":"u1","transaction_num":4}"#,
                r#"{"command":"DUMPLOG","filename":"./testLOG","transaction_num":5}"#,
                r#"{"command":"ADD","user":"u\"1","amount":"-5","transaction_num":6}"#,
            ]
        );
    }

    #[test]
    fn an_open_loop_spaces_commands_evenly_from_the_start() {
        assert_eq!(due_after(0, 100.0), Duration::ZERO);
        assert_eq!(due_after(1, 100.0), Duration::from_millis(10));
        assert_eq!(due_after(250, 100.0), Duration::from_millis(2500));
        assert_eq!(due_after(3, 0.5), Duration::from_secs(6));
    }

    #[test]
    fn the_progress_bar_shows_rates_without_decimals_to_spare() {
        assert_eq!(rate_text(12_345.678_9), "12346/s");
        assert_eq!(rate_text(10.04), "10/s");
        assert_eq!(rate_text(3.456), "3.5/s");
        assert_eq!(rate_text(0.0), "0/s");
        assert_eq!(rate_text(f64::NAN), "0/s");
    }

    #[test]
    fn a_refused_token_says_what_to_do() {
        let wrong = unauthorized(StatusCode::UNAUTHORIZED, "unauthorized", Some("u1"));
        assert!(
            wrong.contains("401") && wrong.contains("--token"),
            "{wrong}"
        );
        let limited = unauthorized(StatusCode::FORBIDDEN, "forbidden", Some("u1"));
        assert!(
            limited.contains("user u1") && limited.contains("supervisor"),
            "{limited}"
        );
    }

    #[test]
    fn backs_off_exponentially_up_to_a_second() {
        let ms = |n| backoff(n).as_millis();
        assert_eq!(
            (0..8).map(ms).collect::<Vec<_>>(),
            vec![25, 50, 100, 200, 400, 800, 1000, 1000]
        );
        assert_eq!(ms(40), 1000);
    }

    #[test]
    fn reads_the_code_of_a_refusal() {
        assert_eq!(
            error_code(br#"{"error":{"code":"insufficient_funds","message":"no"}}"#),
            "insufficient_funds"
        );
        assert_eq!(error_code(br#"{"error":{"message":"no"}}"#), "unknown");
        assert_eq!(error_code(b"<html>"), "unknown");
        assert_eq!(error_code(b""), "unknown");
    }
}
