//! DUMPLOG, the one path every door takes: `POST /api/v1/commands`,
//! `GET /api/v1/log`, and the trader's and the supervisor's downloads on
//! the web pages. Reading the audit log is itself a command: it is
//! authorized, recorded (so the log it streams includes it), counted, and
//! then streamed up to its own row.

use std::pin::Pin;
use store::{Reads, StoreError};

use bytes::Bytes;
use engine::{CommandName, CommandRequest};
use futures::Stream;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::service::Trading;

/// The XML audit log, in chunks, as it is read.
pub type LogChunks = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// A DUMPLOG that ran: the log to stream.
pub struct Dump {
    pub chunks: LogChunks,
    /// The transaction number had run before; the log is streamed up to
    /// where it first ran.
    pub replay: bool,
}

/// Runs `request` (a DUMPLOG of one user, or of everyone) for `caller`:
/// only the supervisor reads the whole system's log, and a trader only
/// their own. A refusal (an unknown user) is an error, as there is no log
/// to stream.
pub async fn dump_log(
    trading: &Trading,
    caller: &Principal,
    request: CommandRequest,
    txn: Option<i64>,
) -> Result<Dump, ApiError> {
    debug_assert_eq!(request.name, CommandName::DumpLog);
    match &request.user {
        Some(user) => caller.check(user)?,
        None => caller.check_supervisor("read the whole system's log")?,
    }
    let user = request.user.clone();
    let outcome = trading.execute(request, txn).await?;
    if let Err(rejection) = outcome.result {
        return Err(ApiError::from(rejection).replayed(outcome.replay));
    }
    Ok(Dump {
        chunks: Box::pin(trading.reader().stream_log(user, outcome.seq)),
        replay: outcome.replay,
    })
}
