//! Why a cache operation failed.

/// What went wrong. Callers treat every variant alike — go around the
/// cache — but they mean different things to an operator: `Unavailable` is
/// an outage (it turns the cache's status to down), `Refused` is a bug in
/// how the cache was used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The cache could not be set up: a malformed URL, or no Tokio runtime
    /// to run the connection on.
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// Redis did not answer in time, could not be reached, or cannot serve
    /// right now (loading, read-only, ...).
    #[error("the cache is unavailable: {0}")]
    Unavailable(String),
    /// Redis answered, with an error about this operation (an increment of
    /// something that is not an integer, for example).
    #[error("the cache refused the operation: {0}")]
    Refused(String),
}
