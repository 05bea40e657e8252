//! HTTP/1.1 to the server, one keep-alive connection per replay worker.
//!
//! hyper's connection API is used directly rather than a pooled client: a
//! worker sends one request at a time, so it owns exactly one connection and
//! needs no pool, no locks and no per-request lookups. A broken connection
//! is dropped and the next request opens a new one.

use std::io;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The path of the command endpoint under the target's base URL.
const COMMANDS_PATH: &str = "/api/v1/commands";

/// Where and as whom commands are sent; resolved once per run so that a
/// reconnection costs a TCP handshake and nothing else.
#[derive(Debug)]
pub(crate) struct Endpoint {
    addrs: Vec<SocketAddr>,
    host: HeaderValue,
    commands_uri: Uri,
    authorization: HeaderValue,
    json: HeaderValue,
}

impl Endpoint {
    /// `target` is a base URL such as `http://127.0.0.1:9999` (a path
    /// prefix is kept, for a server mounted under one).
    pub(crate) async fn resolve(target: &str, token: &str) -> anyhow::Result<Endpoint> {
        let uri: Uri = target
            .parse()
            .with_context(|| format!("the target {target:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                bail!("the target {target:?} uses {other}://; only http:// is supported")
            }
            None => bail!("the target {target:?} needs a scheme, like http://127.0.0.1:9999"),
        }
        let authority = uri
            .authority()
            .with_context(|| format!("the target {target:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .collect();
        if addrs.is_empty() {
            bail!("{host} resolves to no address");
        }
        let base = uri.path().trim_end_matches('/');
        let commands_uri = format!("{base}{COMMANDS_PATH}")
            .parse()
            .with_context(|| format!("the target {target:?} has an unusable path"))?;
        let mut authorization = HeaderValue::try_from(format!("Bearer {token}"))
            .context("the token holds characters that cannot go in an HTTP header")?;
        authorization.set_sensitive(true);
        Ok(Endpoint {
            addrs,
            host: HeaderValue::from_str(authority.as_str())
                .context("the target's host is not a valid header")?,
            commands_uri,
            authorization,
            json: HeaderValue::from_static("application/json"),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let stream = TcpStream::connect(&self.addrs[..])
            .await
            .map_err(TransportError::Connect)?;
        // Requests are small and sent whole: Nagle's delay would only add
        // latency to each of them.
        stream.set_nodelay(true).map_err(TransportError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(TransportError::Http)?;
        // The connection's I/O runs in its own task; it ends when the
        // sender is dropped or the server closes the connection.
        tokio::spawn(connection);
        Ok(sender)
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.commands_uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, self.json.clone());
        request
    }
}

/// Why a request got no HTTP answer; all of these are retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("connection error: {0}")]
    Http(hyper::Error),
    #[error("no answer within the request timeout")]
    Timeout,
}

impl TransportError {
    /// Whether the server was not reached at all (no connection, or no
    /// answer of any kind), as opposed to an answer that broke off.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, TransportError::Connect(_) | TransportError::Timeout)
    }

    /// The key under which a command that failed this way is counted.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            TransportError::Connect(_) => "connect_failed",
            TransportError::Http(_) => "connection_error",
            TransportError::Timeout => "timeout",
        }
    }
}

/// A worker's connection, opened on first use and after any failure.
pub(crate) struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub(crate) fn new() -> Connection {
        Connection { sender: None }
    }

    /// Sends one command and returns the answer's head; the caller reads
    /// the body. The connection is kept only once a response has come, so a
    /// request abandoned half way (a timeout drops this future) never leaves
    /// a connection in an unknown state behind.
    pub(crate) async fn send(
        &mut self,
        endpoint: &Endpoint,
        body: Bytes,
    ) -> Result<Response<Incoming>, TransportError> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => endpoint.connect().await?,
        };
        if sender.ready().await.is_err() {
            // The server closed the idle connection; nothing was sent on it,
            // so opening another one is not a retry.
            sender = endpoint.connect().await?;
            sender.ready().await.map_err(TransportError::Http)?;
        }
        let response = sender
            .send_request(endpoint.request(body))
            .await
            .map_err(TransportError::Http)?;
        self.sender = Some(sender);
        Ok(response)
    }

    /// Forgets the connection after an error in the middle of an answer.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }
}
