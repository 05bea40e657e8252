//! Assembling and running an instance: the router with its middleware, the
//! store, the quote cache and the trigger engine; start and graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use cache::{Cache, EventBus, RedisConfig};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use quotes::{QuoteCache, QuoteClient, QuoteSource, SharedQuoteLoader};
use store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutBody;
use tracing::Instrument;

use crate::admin_token::{self, TokenSource};
use crate::auth::Auth;
use crate::body_deadline::DeadlineBody;
use crate::error::ApiError;
use crate::respond::MAX_BODY;
use crate::service::{Loader, Trading, spawn_expiry_task, spawn_trigger_engine};
use crate::settings::{Database, Settings};
use crate::shutdown::{self, Shutdown};
use crate::state::AppState;
use crate::telemetry;

pub const X_INSTANCE_ID: HeaderName = HeaderName::from_static("x-instance-id");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let instance = HeaderValue::from_str(&state.instance_id)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid-instance-id"));
    crate::api::router()
        .merge(crate::web::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn(refuse_oversized))
        .layer(from_fn_with_state(state.clone(), observe))
        // Outermost, so that every response carries it, errors included.
        .layer(SetResponseHeaderLayer::overriding(X_INSTANCE_ID, instance))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("There is no such endpoint; see /api/v1/openapi.json.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not take that method; see /api/v1/openapi.json.",
    )
}

/// The largest request head (target and headers) a handler sees; real ones
/// are under 2 KiB. HTTP/1.1 parsing stops at [`MAX_HEAD_BYTES`] already, but
/// only roughly (a head that arrives in one read can be longer), and with a
/// bare 431; this answers a clear error.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long a request body may go without a byte arriving before reading
/// it fails (a 400 for a command): the counterpart, for bodies, of
/// [`HEADER_READ_TIMEOUT`].
pub const BODY_READ_TIMEOUT: Duration = HEADER_READ_TIMEOUT;

/// The longest a whole request body may take to arrive, however steadily
/// it trickles in (a command is a few dozen bytes).
pub const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);

/// Refuses, before anything reads them, a request whose head is too large
/// (431) or whose declared body is (413): a client announcing 10 MB is
/// answered at once rather than read until the limit. A body that stalls
/// fails after [`BODY_READ_TIMEOUT`], and one still arriving after
/// [`BODY_READ_DEADLINE`] fails then.
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let head = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len())
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if head > MAX_HEADER_BYTES {
        return ApiError::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("The request's target and headers are at most {MAX_HEADER_BYTES} bytes."),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("A request body is at most {} bytes.", MAX_BODY),
        )
        .into_response();
    }
    let request = request.map(|body| {
        let idle_limited = Body::new(TimeoutBody::new(BODY_READ_TIMEOUT, body));
        Body::new(DeadlineBody::new(BODY_READ_DEADLINE, idle_limited))
    });
    next.run(request).await
}

/// One log line and the metrics of every request, under the request id the
/// balancer set (or a new one), which the response carries back. The
/// request runs in a span carrying that id, so every line logged while it
/// is served (by the store, the quote client, the cache) carries it too.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| v.len() <= 128 && v.to_str().is_ok())
        .cloned()
        .unwrap_or_else(|| {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            HeaderValue::from_str(&format!("{}-{n}", state.instance_id))
                .unwrap_or_else(|_| HeaderValue::from_static("-"))
        });
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = request_id.to_str().unwrap_or("-"));
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    response
        .headers_mut()
        .insert(X_REQUEST_ID, request_id.clone());
    metrics::counter!("http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status,
            micros = elapsed.as_micros() as u64,
            "request"
        );
    });
    response
}

/// Makes a write past the file-size limit (`ulimit -f`) an I/O error
/// rather than a death: by default such a write kills the process with
/// SIGXFSZ. Ignored, the write fails with EFBIG, which the store answers
/// as it answers a full disk (503, and not ready until writes succeed).
pub fn survive_file_size_limit() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// A started instance.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub token_source: TokenSource,
    /// The demo traders, with `--demo`.
    pub demo: Option<crate::demo::Seeded>,
    trigger: shutdown::Trigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    triggers: tokio::task::JoinHandle<()>,
    /// The expiry task, when this process does the lead's work.
    expiry: Option<tokio::task::JoinHandle<()>>,
    trading: Arc<Trading>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot keep the admin token in the data directory: {0}")]
    AdminToken(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("invalid quote settings: {0}")]
    Quotes(String),
    #[error("the shared cache: {0}")]
    Cache(String),
    #[error(
        "a cluster instance needs DAYTRADER_ADMIN_TOKEN (or DAYTRADER_ADMIN_TOKEN_FILE), the same for every instance"
    )]
    AdminTokenRequired,
    #[error("the worker runs beside a cluster: set DATABASE_URL (or DB_HOST) to its PostgreSQL")]
    WorkerNeedsPostgres,
    #[error("the demo is for the embedded mode: leave DATABASE_URL and DB_HOST unset")]
    DemoNeedsEmbedded,
    #[error("the demo traders could not be made: {0}")]
    Demo(#[from] crate::service::ServiceError),
}

/// What a serving or working process runs on.
pub struct Services {
    pub trading: Arc<Trading>,
    /// The cache shared between instances, when there is one.
    pub cache: Option<Cache>,
    pub clock: store::Clock,
}

/// Opens the store (waiting for PostgreSQL in the background, so a missing
/// database never stops the process) and the quote cache.
pub fn services(settings: &Settings) -> Result<Services, StartError> {
    let clock = store::system_clock();
    let store = match &settings.database {
        Database::Sqlite { data_dir } => Store::Sqlite(SqliteStore::open(SqliteOptions {
            data_dir: data_dir.clone(),
            server: settings.instance_id.clone(),
            clock: clock.clone(),
            max_batch: settings.max_batch,
        })?),
        Database::Postgres {
            url,
            pool_size,
            committers,
        } => {
            let mut options =
                PgOptions::new(url.clone(), settings.instance_id.clone(), clock.clone());
            options.max_batch = settings.max_batch;
            options.pool_size = *pool_size;
            options.committers = *committers;
            Store::Postgres(PgStore::connect(options))
        }
    };
    let source = QuoteSource::from_setting(&settings.quote_server, settings.builtin_quotes)
        .map_err(|e| StartError::Quotes(e.to_string()))?;
    let client = QuoteClient::new(source, settings.quote_client);
    let cache = match &settings.redis_url {
        Some(url) => Some(
            Cache::redis_with_config(
                url,
                &settings.cache_prefix,
                RedisConfig {
                    timeout: settings.redis_timeout,
                    ..RedisConfig::default()
                },
            )
            .map_err(|e| StartError::Cache(e.to_string()))?,
        ),
        None => None,
    };
    let loader = match &cache {
        Some(cache) => Loader::Shared(SharedQuoteLoader::new(
            cache.clone(),
            client,
            settings.quote_ttl,
        )),
        None => Loader::Direct(client),
    };
    let quotes = QuoteCache::new(loader, settings.quote_ttl);
    // Embedded, the bus is in process like the cache.
    let bus = match &cache {
        Some(shared) => EventBus::new(shared, settings.events.bus),
        None => EventBus::new(&Cache::memory(&settings.cache_prefix), settings.events.bus),
    };
    Ok(Services {
        trading: Arc::new(Trading::new(store, quotes, bus)),
        cache,
        clock,
    })
}

/// The supervisor token: configured, or (embedded only) generated and kept.
fn admin_token(settings: &Settings) -> Result<(String, TokenSource), StartError> {
    match (&settings.database, &settings.admin_token) {
        (Database::Postgres { .. }, None) => Err(StartError::AdminTokenRequired),
        _ => admin_token::resolve(settings.admin_token.as_deref(), &settings.data_dir)
            .map_err(StartError::AdminToken),
    }
}

/// Opens the store, starts the trigger engine and starts serving.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| StartError::Listen(settings.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(settings.listen, e))?;
    let (admin_token, token_source) = admin_token(&settings)?;
    if settings.demo && !matches!(settings.database, Database::Sqlite { .. }) {
        return Err(StartError::DemoNeedsEmbedded);
    }
    let Services {
        trading,
        cache,
        clock,
    } = services(&settings)?;
    let demo = match settings.demo {
        true => Some(crate::demo::seed(&trading).await?),
        false => None,
    };
    let (trigger, shutdown) = shutdown::channel();
    let state = AppState {
        trading: trading.clone(),
        events: settings.events,
        shutdown: shutdown.clone(),
        auth: Arc::new(Auth::new(&admin_token)),
        instance_id: Arc::from(settings.instance_id.as_str()),
        metrics: telemetry::metrics_handle(),
        cache: cache.unwrap_or_else(|| cache::Cache::memory(&settings.cache_prefix)),
        clock: clock.clone(),
        summaries: Default::default(),
    };
    let refresh = settings
        .refresh_triggers
        .then_some(settings.trigger_refresh);
    let triggers = spawn_trigger_engine(trading.clone(), refresh, shutdown.clone());
    let expiry = settings
        .refresh_triggers
        .then(|| spawn_expiry_task(trading.clone(), clock, shutdown.clone()));
    let app = router(state);
    let server = tokio::spawn(serve(listener, app, shutdown));
    tracing::info!(%addr, instance = settings.instance_id, "serving");
    Ok(Running {
        addr,
        admin_token,
        token_source,
        demo,
        trigger,
        server,
        triggers,
        expiry,
        trading,
    })
}

/// How long a client may take to send the head of a request (the request
/// line and headers), which is also how long an idle keep-alive connection
/// stays open. A client that stalls half way is disconnected rather than
/// holding a connection (and a task) for ever. The balancers in `deploy/` use
/// the same value for their own clients.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head accepted; a larger one is answered 431 by the
/// HTTP layer before any handler runs. Real heads are under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` over HTTP/1.1 until `shutdown` fires, then
/// stops accepting and waits for the connections' requests in flight.
///
/// hyper's server is used directly rather than through `axum::serve`, which
/// sets no timer and so cannot bound how long a client takes to send its
/// request head: a slow client could hold a connection open for ever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let stopping = shutdown.wait();
    tokio::pin!(stopping);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait for some to
                    // come back rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

impl Running {
    /// Stops taking connections, lets requests in flight finish, stops the
    /// trigger engine and commits what is queued. Nothing acknowledged is
    /// lost, and nothing in flight is cut off.
    pub async fn stop(self) {
        self.trigger.fire();
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the server stopped with an error"),
            Err(error) => tracing::error!(%error, "the server task failed"),
        }
        let _ = self.triggers.await;
        if let Some(expiry) = self.expiry {
            let _ = expiry.await;
        }
        self.trading.close().await;
        tracing::info!("stopped");
    }
}
