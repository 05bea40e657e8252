//! `GET /api/v1/log[?user=]`: DUMPLOG as a read. Reading the audit log is
//! itself recorded, as the DUMPLOG command it is.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use engine::{CommandName, CommandRequest};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use store::{Record, StoreError};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    user: Option<String>,
}

pub async fn dump_log(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("malformed_query", e.body_text()))?;
    let request = CommandRequest::new(
        CommandName::DumpLog,
        query.user.as_deref(),
        None,
        None,
        None,
    )?;
    match &request.user {
        Some(user) => principal.check(user)?,
        None => principal.check_supervisor("read the whole system's log")?,
    }
    let user = request.user.clone();
    let done = state.trading.execute(request, None).await?;
    match &done.record {
        Record::Command {
            outcome: Err(rejection),
            ..
        } => Err(ApiError::from(rejection)),
        _ => {
            Ok(xml_response(state.trading.reader().stream_log(
                user,
                done.seq.expect("a command writes a row"),
            )))
        }
    }
}

/// Streams the XML audit log. An error part-way can only cut the stream:
/// the status line has gone out already, so it is logged.
pub fn xml_response(
    chunks: impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static,
) -> Response {
    // The body streams after the handler has returned: its lines are
    // logged under the request's span explicitly.
    let span = tracing::Span::current();
    let body = Body::from_stream(chunks.map(move |chunk| {
        chunk.map_err(|error| {
            span.in_scope(|| tracing::error!(%error, "the log stream failed part-way"));
            std::io::Error::other(error.to_string())
        })
    }));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        )],
        body,
    )
        .into_response()
}
