//! The quote server on TCP: one connection, one request line, one reply.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::QuoteServerCore;
use crate::protocol::MAX_REQUEST_LEN;

/// How long a client may take to send its request line before the server
/// hangs up, so idle connections cannot pile up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to pause after a failed `accept` (typically out of file
/// descriptors) so the loop does not spin while connections drain.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the legacy protocol on `listener` until `shutdown` resolves, each
/// connection on its own task. On shutdown it stops accepting and waits for
/// the connections in progress to finish (each is bounded by
/// [`READ_TIMEOUT`] plus the latency profile's longest delay).
pub async fn serve(listener: TcpListener, core: Arc<QuoteServerCore>, shutdown: impl Future) {
    let mut shutdown = pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer(stream, Arc::clone(&core)));
                }
                Err(error) => {
                    tracing::warn!(%error, "quote server: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(finished) = connections.join_next(), if !connections.is_empty() => log_outcome(finished),
        }
    }
    drop(listener);
    while let Some(finished) = connections.join_next().await {
        log_outcome(finished);
    }
}

fn log_outcome(finished: Result<io::Result<()>, tokio::task::JoinError>) {
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "quote server: connection failed"),
        Err(error) => tracing::error!(%error, "quote server: connection task failed"),
    }
}

async fn answer(mut stream: TcpStream, core: Arc<QuoteServerCore>) -> io::Result<()> {
    let mut request = Vec::with_capacity(64);
    let mut reader = BufReader::new(&mut stream).take(MAX_REQUEST_LEN as u64);
    match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut request)).await {
        // Too slow, or gone before saying anything: nothing to answer.
        Err(_) | Ok(Ok(0)) => return Ok(()),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(_)) => {}
    }
    // Invalid UTF-8 becomes U+FFFD, which no valid request contains, so the
    // core refuses it like any other malformed request. An over-long line
    // arrives cut at MAX_REQUEST_LEN and is refused the same way.
    let response = core.respond(&String::from_utf8_lossy(&request));
    tokio::time::sleep(response.delay).await;
    if let Some(reply) = response.reply {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await?;
    }
    Ok(())
}
