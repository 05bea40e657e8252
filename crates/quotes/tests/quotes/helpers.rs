//! Test servers and small constructors shared by the tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{Symbol, UserId};
use quotes::server::{QuoteServerConfig, QuoteServerCore, serve};
use quotes::{ClientConfig, QuoteClient, QuoteSource};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn symbol(text: &str) -> Symbol {
    Symbol::parse(text).unwrap()
}

pub fn user(text: &str) -> UserId {
    UserId::parse(text).unwrap()
}

/// The wall clock in Unix ms, as quotes are stamped.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// Short limits, no hedging: tests that want a hedge or a longer wait say so.
pub fn quick_config() -> ClientConfig {
    ClientConfig {
        attempt_timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::from_millis(10),
        deadline: Duration::from_secs(20),
        hedge_after: None,
    }
}

pub fn builtin(config: QuoteServerConfig) -> Arc<QuoteServerCore> {
    Arc::new(QuoteServerCore::new(config).unwrap())
}

pub fn builtin_client(core: &Arc<QuoteServerCore>, config: ClientConfig) -> QuoteClient {
    QuoteClient::new(QuoteSource::Builtin(Arc::clone(core)), config)
}

pub fn tcp_client(address: &str, config: ClientConfig) -> QuoteClient {
    QuoteClient::new(QuoteSource::Tcp(address.to_owned()), config)
}

/// The real quote server on an ephemeral port.
pub struct RunningServer {
    pub address: String,
    pub core: Arc<QuoteServerCore>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub async fn start(config: QuoteServerConfig) -> RunningServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let core = builtin(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&core), stopped));
        RunningServer {
            address,
            core,
            stop,
            task,
        }
    }

    /// Signals shutdown and waits until `serve` has returned.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap();
    }
}

/// What a scripted server does with one connection.
#[derive(Clone)]
pub enum Act {
    /// Reads the request and never answers (the connection stays open).
    Stall,
    /// Sends this line verbatim.
    Send(String),
    /// Sends a valid fixed-price reply to the request.
    Quote,
}

/// A connection's act, after a delay.
#[derive(Clone)]
pub struct Step {
    pub delay: Duration,
    pub act: Act,
}

pub fn now(act: Act) -> Step {
    Step {
        delay: Duration::ZERO,
        act,
    }
}

pub fn after(millis: u64, act: Act) -> Step {
    Step {
        delay: Duration::from_millis(millis),
        act,
    }
}

/// A misbehaving quote server: connection `n` gets `steps[n]` (the last
/// step repeats).
pub struct Scripted {
    pub address: String,
    connections: Arc<AtomicUsize>,
}

impl Scripted {
    pub async fn start(steps: Vec<Step>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let honest = builtin(QuoteServerConfig::default());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let step = steps[n.min(steps.len() - 1)].clone();
                let honest = Arc::clone(&honest);
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut request = String::new();
                    stream.read_line(&mut request).await.unwrap();
                    tokio::time::sleep(step.delay).await;
                    let line = match step.act {
                        Act::Stall => std::future::pending().await,
                        Act::Send(line) => line,
                        Act::Quote => honest.respond(&request).reply.unwrap(),
                    };
                    // The client may have given up and gone already.
                    let _ = stream.get_mut().write_all(line.as_bytes()).await;
                });
            }
        });
        Scripted {
            address,
            connections,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
