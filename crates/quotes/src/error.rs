//! Why a quote could not be had.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use engine::Symbol;

/// What went wrong with one request to the quote service, or with a whole
/// fetch ([`QuoteError::Unavailable`]).
///
/// `Clone` because the cache hands one failed fetch to every caller that was
/// waiting on it; I/O errors are therefore shared behind an `Arc`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("the quote server sent garbage: {reason}")]
    Garbage { reason: String },
    #[error("the quote server answered for symbol {got:?} instead of {expected}")]
    WrongSymbol { expected: Symbol, got: String },
    #[error("the quote server answered for user {got:?} instead of {expected:?}")]
    WrongUser { expected: String, got: String },
    #[error("the quote server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not connect to the quote server: {0}")]
    Connect(#[source] Arc<io::Error>),
    #[error("the connection to the quote server failed: {0}")]
    Io(#[source] Arc<io::Error>),
    #[error("the quote server closed the connection without a reply")]
    Closed,
    /// The fetch's task ended without an outcome: the runtime is shutting
    /// down, or the fetch panicked.
    #[error("the quote fetch was cancelled before it finished")]
    Cancelled,
    #[error(
        "the quote service is unavailable: {attempts} attempt(s), {requests_sent} request(s) sent; last error: {last}"
    )]
    Unavailable {
        attempts: u32,
        /// Requests paid for even though none gave a price.
        requests_sent: u32,
        last: Box<QuoteError>,
    },
}

impl QuoteError {
    pub(crate) fn garbage(reason: impl Into<String>) -> QuoteError {
        QuoteError::Garbage {
            reason: reason.into(),
        }
    }

    /// A short, stable label for metrics (`reason="timeout"`).
    pub fn reason(&self) -> &'static str {
        match self {
            QuoteError::Garbage { .. } => "garbage",
            QuoteError::WrongSymbol { .. } => "wrong_symbol",
            QuoteError::WrongUser { .. } => "wrong_user",
            QuoteError::Timeout(_) => "timeout",
            QuoteError::Connect(_) => "connect",
            QuoteError::Io(_) => "io",
            QuoteError::Closed => "closed",
            QuoteError::Cancelled => "cancelled",
            QuoteError::Unavailable { .. } => "unavailable",
        }
    }
}
