//! `spawn_app`: the real `daytrader` binary on a random port with its own
//! data directory, and a small HTTP client to talk to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const TOKEN: &str = "e2e-supervisor-token-0123456789";
pub const BIN: &str = env!("CARGO_BIN_EXE_daytrader");

pub struct App {
    pub data_dir: PathBuf,
    /// Everything the process printed on stdout before it was ready.
    pub banner: Vec<String>,
    /// Every line it wrote on stderr (its logs) so far.
    logged: Arc<Mutex<Vec<String>>>,
    client: Http,
    child: Child,
    _temp: Option<tempfile::TempDir>,
}

/// Talks to one instance; cheap to clone into tasks.
#[derive(Clone)]
pub struct Http {
    pub url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::ops::Deref for App {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.client
    }
}

/// Options beyond the defaults (a fresh data dir, the fixed quote server,
/// the test supervisor token).
#[derive(Default)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub env: Vec<(&'static str, String)>,
    /// Leave DAYTRADER_ADMIN_TOKEN unset.
    pub no_token: bool,
    /// Run `daytrader worker` instead of `serve`.
    pub worker: bool,
}

pub fn spawn_app() -> App {
    spawn_with(Options::default())
}

pub fn spawn_with(options: Options) -> App {
    try_spawn(options).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the binary; fails with everything it printed if it never became
/// ready.
pub fn try_spawn(options: Options) -> Result<App, String> {
    let temp = match options.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().unwrap()),
    };
    let data_dir = options
        .data_dir
        .unwrap_or_else(|| temp.as_ref().unwrap().path().join("data"));
    let mut command = Command::new(BIN);
    command
        .arg(if options.worker { "worker" } else { "serve" })
        .env("PORT", "0")
        .env("BIND", "127.0.0.1")
        .env("DAYTRADER_DATA_DIR", &data_dir)
        .env("INSTANCE_ID", "e2e-1")
        .env("RUST_LOG", "warn")
        .env_remove("DAYTRADER_ADMIN_TOKEN_FILE")
        .env_remove("QUOTE_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if options.no_token {
        command.env_remove("DAYTRADER_ADMIN_TOKEN");
    } else {
        command.env("DAYTRADER_ADMIN_TOKEN", TOKEN);
    }
    for (key, value) in &options.env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {BIN}: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Drain stderr so the child never blocks on a full pipe; keep it for
    // errors and for tests that read the logs.
    let logged = Arc::new(Mutex::new(Vec::new()));
    let (etx, erx) = mpsc::channel();
    let sink = Arc::clone(&logged);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
        let _ = etx.send(());
    });
    let mut banner = Vec::new();
    let url = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = line
                    .strip_prefix("DayTrader listening on http://")
                    .or_else(|| line.strip_prefix("DayTrader worker listening on http://"))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(|addr| format!("http://{addr}"));
                banner.push(line);
                if let Some(url) = found {
                    break url;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = erx.recv_timeout(Duration::from_secs(5));
                let errors = logged.lock().unwrap().join("\n");
                return Err(format!(
                    "the server never became ready.\nstdout: {banner:?}\nstderr: {errors}"
                ));
            }
        }
    };
    // Keep reading stdout so the pipe never fills.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    let app = App {
        data_dir,
        banner,
        logged,
        client: Http::new(url),
        child,
        _temp: temp,
    };
    // Listening is not ready: a cluster instance waits for its database.
    app.wait_until_ready(Duration::from_secs(30))?;
    Ok(app)
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an error reply; empty for anything else.
    pub fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    pub fn new(url: String) -> Http {
        Http {
            url,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        self.try_request(builder.body(body).unwrap())
            .await
            .expect("the server answers")
    }

    /// Sends a request; a transport failure is an `Err`, not a panic.
    pub async fn try_request(&self, request: hyper::Request<Full<Bytes>>) -> Result<Reply, String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// POSTs a command as the supervisor; a transport failure is an `Err`.
    pub async fn try_command(&self, body: Value) -> Result<Reply, String> {
        let request = hyper::Request::post(format!("{}/api/v1/commands", self.url))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.try_request(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, Some(TOKEN), None).await
    }

    /// POSTs a command as the supervisor.
    pub async fn command(&self, body: Value) -> Reply {
        self.request(
            Method::POST,
            "/api/v1/commands",
            Some(TOKEN),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }
}

impl App {
    /// Polls `/readyz` until it answers 200, as a balancer would.
    fn wait_until_ready(&self, limit: Duration) -> Result<(), String> {
        let address = self.url.trim_start_matches("http://").to_owned();
        let deadline = std::time::Instant::now() + limit;
        loop {
            let ready = std::net::TcpStream::connect(&address)
                .ok()
                .and_then(|mut stream| {
                    use std::io::{Read, Write};
                    stream
                        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .ok()?;
                    let mut head = [0u8; 12];
                    stream.read_exact(&mut head).ok()?;
                    Some(head.starts_with(b"HTTP/1.1 200"))
                });
            if ready == Some(true) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{} never became ready", self.url));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client(&self) -> Http {
        self.client.clone()
    }

    /// Replays a workload file with `daytrader workload run`; returns the
    /// JSON report and where DUMPLOGs went.
    pub async fn replay(&self, file: &Path) -> (Value, PathBuf) {
        let out = self.data_dir.parent().unwrap().join("replay-out");
        let (status, report) = run_workload(&self.url, TOKEN, file, &out, &[]).await;
        assert!(status.success(), "the replay failed: {report:#}");
        (report, out)
    }

    /// The lines the process has logged (on stderr) so far.
    pub fn logs(&self) -> Vec<String> {
        self.logged.lock().unwrap().clone()
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command that must have succeeded; its stderr tells why it did not.
pub fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Validates XML against the project's own copy of the log schema, and the
/// course's when `../shared` is there. In CI a missing xmllint fails.
pub fn assert_valid_log(path: &Path) {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/schema/logfile.xsd");
    let course =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seng468/logfile-anytime.xsd");
    for schema in [Some(ours), course.exists().then_some(course)]
        .into_iter()
        .flatten()
    {
        match Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(path)
            .output()
        {
            Ok(out) => assert!(
                out.status.success(),
                "{} does not validate against {}: {}",
                path.display(),
                schema.display(),
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect::<String>()
            ),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("xmllint is required in CI: {e}")
            }
            Err(e) => eprintln!("SKIPPED schema validation, xmllint not found: {e}"),
        }
    }
}

/// The course workload `name`, for a test that needs it: `None` (the
/// test says it skipped) when `../shared/workloads` is not beside the
/// project; in CI, a failure.
pub fn course_file(name: &str) -> Option<PathBuf> {
    loadgen::testing::course_file(name)
}

/// Writes a workload of the project's own (`daytrader workload generate`)
/// into `dir`, and answers its path: the same file for the same arguments.
pub fn generate_workload(dir: &Path, users: u32, commands: u32, seed: u32) -> PathBuf {
    let file = dir.join(format!("generated-{users}x{commands}-{seed}.txt"));
    let status = Command::new(BIN)
        .args(["workload", "generate"])
        .args(["--users", &users.to_string()])
        .args(["--commands", &commands.to_string()])
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success(), "workload generate failed");
    file
}

/// `daytrader quote-server` as a process of its own, on a free loopback
/// port; killed when dropped.
pub struct QuoteServer {
    /// `host:port`, as `QUOTE_SERVER` takes it.
    pub address: String,
    child: Child,
}

impl QuoteServer {
    /// Starts one with price mode `mode` (`fixed` or `walk`).
    pub fn spawn(mode: &str) -> QuoteServer {
        let mut child = Command::new(BIN)
            .args(["quote-server", "--mode", mode])
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("Quote server listening on ")
            .expect("the quote server prints its address")
            .to_owned();
        QuoteServer { address, child }
    }

    /// Kills it now, as if it crashed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for QuoteServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `daytrader workload run FILE` against `target` with `options`
/// besides the usual ones, saving DUMPLOGs and the report under `out`;
/// answers how it exited and its JSON report.
pub async fn run_workload(
    target: &str,
    token: &str,
    file: &Path,
    out: &Path,
    options: &[&str],
) -> (ExitStatus, Value) {
    let report = out.join("report.json");
    let status = tokio::process::Command::new(BIN)
        .args(["workload", "run"])
        .arg(file)
        .args(["--target", target, "--token", token, "--quiet", "--out-dir"])
        .arg(out)
        .arg("--report")
        .arg(&report)
        .args(options)
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    let report = serde_json::from_slice(&std::fs::read(&report).expect("a report")).unwrap();
    (status, report)
}
