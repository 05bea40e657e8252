//! Streaming the audit log as XML, the same way for every back end: rows
//! are fetched a page at a time by key range, rendered, and sent in chunks
//! through a small channel, all on one blocking thread. Memory stays flat
//! whatever the log's size, and a client that stops reading stops the
//! fetching.

use bytes::Bytes;
use engine::UserId;
use futures::Stream;
use tokio::sync::mpsc;

use crate::record::LogRow;
use crate::{StoreError, xml};

/// Rows fetched per page.
pub(crate) const PAGE: usize = 1_000;
/// Bytes of XML gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks rendered ahead of the client.
const CHANNEL: usize = 4;

/// Which rows of the log to read, in `seq` order.
#[derive(Clone, Debug)]
pub(crate) struct LogQuery {
    /// One user's rows, or every row.
    pub user: Option<UserId>,
    /// Rows after this one (exclusive).
    pub after_seq: i64,
    /// Rows up to this one (inclusive).
    pub upto_seq: i64,
    pub limit: usize,
}

/// The XML audit log up to row `upto_seq`, of one user or of everyone.
/// `fetch` reads one page of rows; it is called again after the last row of
/// each full page until a page comes back short.
///
/// The whole dump runs on one blocking thread, `fetch` included: each row
/// is read, rendered and dropped by the thread that allocated it, and only
/// the chunks cross to the thread that writes them out. Spread over tasks
/// and threads, a dump of a million rows left a few megabytes in each of
/// the allocator's per-thread arenas, and its memory grew with the log
/// (docs/benchmarks.md).
pub(crate) fn stream<F>(
    fetch: F,
    user: Option<UserId>,
    upto_seq: i64,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + use<F>
where
    F: FnMut(LogQuery) -> Result<Vec<LogRow>, StoreError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = render(fetch, user, upto_seq, &tx) {
            let _ = tx.blocking_send(Err(error));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

fn render<F>(
    mut fetch: F,
    user: Option<UserId>,
    upto_seq: i64,
    tx: &mpsc::Sender<Result<Bytes, StoreError>>,
) -> Result<(), StoreError>
where
    F: FnMut(LogQuery) -> Result<Vec<LogRow>, StoreError>,
{
    let mut out = String::with_capacity(CHUNK + 4096);
    out.push_str(xml::HEADER);
    let mut query = LogQuery {
        user,
        after_seq: 0,
        upto_seq,
        limit: PAGE,
    };
    loop {
        if tx.is_closed() {
            return Ok(()); // the client went away
        }
        let rows = fetch(query.clone())?;
        for row in &rows {
            xml::render_row(row, &mut out);
            // Each chunk starts at its full size: grown from empty by
            // doubling, every chunk went through a chain of reallocations
            // up to twice its size.
            if out.len() >= CHUNK
                && tx
                    .blocking_send(Ok(Bytes::from(std::mem::replace(
                        &mut out,
                        String::with_capacity(CHUNK + 4096),
                    ))))
                    .is_err()
            {
                return Ok(());
            }
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => query.after_seq = last.seq,
            _ => break,
        }
    }
    out.push_str(xml::FOOTER);
    let _ = tx.blocking_send(Ok(Bytes::from(out)));
    Ok(())
}
