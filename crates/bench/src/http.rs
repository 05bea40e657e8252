//! The few plain HTTP requests the suite makes itself: warming a cache,
//! and a DUMPLOG read to its end without keeping it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What a streamed GET received.
#[derive(Clone, Copy, Debug)]
pub struct Streamed {
    pub status: u16,
    pub bytes: u64,
    /// From sending the request to the last byte.
    pub elapsed: Duration,
}

/// GETs `path` from `base` (`http://host:port`), reading the body to its
/// end chunk by chunk and counting it.
pub async fn get(base: &str, path: &str, token: &str) -> anyhow::Result<Streamed> {
    let authority = base
        .strip_prefix("http://")
        .with_context(|| format!("{base} is not an http:// URL"))?
        .trim_end_matches('/');
    let started = Instant::now();
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(HOST, authority)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await.context("sending")?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.context("reading the answer")?.into_data() {
            bytes += data.len() as u64;
        }
    }
    let elapsed = started.elapsed();
    drop(sender);
    let _ = driver.await;
    Ok(Streamed {
        status,
        bytes,
        elapsed,
    })
}

/// GETs every path once and checks each answered 200.
pub async fn warm(base: &str, paths: &[String], token: &str) -> anyhow::Result<()> {
    for path in paths {
        let answer = get(base, path, token).await?;
        if answer.status != 200 {
            bail!("GET {path} answered {}", answer.status);
        }
    }
    Ok(())
}
