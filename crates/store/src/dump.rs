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

impl LogQuery {
    /// Up to `limit` rows of everyone's log after row `after_seq`.
    pub(crate) fn whole_log(after_seq: i64, limit: usize) -> LogQuery {
        LogQuery {
            user: None,
            after_seq,
            upto_seq: i64::MAX,
            limit,
        }
    }
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
    let (tx, stream) = channel();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = render(fetch, user, upto_seq, &tx) {
            let _ = tx.blocking_send(Err(error));
        }
    });
    stream
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
    let mut chunks = Chunks::new();
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
            if let Some(chunk) = chunks.push(row)
                && tx.blocking_send(Ok(chunk)).is_err()
            {
                return Ok(());
            }
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => query.after_seq = last.seq,
            _ => break,
        }
    }
    let _ = tx.blocking_send(Ok(chunks.finish()));
    Ok(())
}

/// The XML of a dump, cut into chunks of about [`CHUNK`] bytes: the header
/// first, then each row's entries, then the footer.
pub(crate) struct Chunks {
    out: String,
}

impl Chunks {
    pub fn new() -> Chunks {
        let mut out = Self::buffer();
        out.push_str(xml::HEADER);
        Chunks { out }
    }

    /// Each chunk starts at its full size: grown from empty by doubling,
    /// every chunk went through a chain of reallocations up to twice its
    /// size.
    fn buffer() -> String {
        String::with_capacity(CHUNK + 4096)
    }

    /// Renders a row; a chunk, when one is full.
    pub fn push(&mut self, row: &LogRow) -> Option<Bytes> {
        xml::render_row(row, &mut self.out);
        (self.out.len() >= CHUNK)
            .then(|| Bytes::from(std::mem::replace(&mut self.out, Self::buffer())))
    }

    /// The last chunk, with the footer.
    pub fn finish(mut self) -> Bytes {
        self.out.push_str(xml::FOOTER);
        Bytes::from(self.out)
    }
}

/// The channel a dump's chunks go through, and the stream that reads it:
/// for a back end that produces the chunks itself (PostgreSQL streams the
/// whole dump from one query).
pub(crate) fn channel() -> (
    mpsc::Sender<Result<Bytes, StoreError>>,
    impl Stream<Item = Result<Bytes, StoreError>> + Send + use<>,
) {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, stream)
}
