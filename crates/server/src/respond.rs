//! Building responses, for every route of both doors: JSON bodies, the
//! streamed XML audit log, and the one cap on request bodies.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use store::StoreError;

/// The largest request body accepted, on every route: a command is a few
/// dozen bytes, and no form or JSON body comes near this.
pub const MAX_BODY: usize = 16 * 1024;

pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// `value` as a JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    json_response(
        status,
        serde_json::to_vec(value).expect("plain data serializes"),
    )
}

/// Streams the XML audit log. An error part-way can only cut the stream:
/// the status line has gone out already, so it is logged.
pub fn xml_response(
    chunks: impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static,
) -> Response {
    stream_response("application/xml", chunks)
}

/// Streams a body of `content_type` made as it is sent (the XML log, the
/// CSV history). An error part-way can only cut the stream: the status
/// line has gone out already, so it is logged.
pub fn stream_response(
    content_type: &'static str,
    chunks: impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static,
) -> Response {
    // The body streams after the handler has returned: its lines are
    // logged under the request's span explicitly.
    let span = tracing::Span::current();
    let body = Body::from_stream(chunks.map(move |chunk| {
        chunk.map_err(|error| {
            span.in_scope(|| tracing::error!(%error, "a streamed body failed part-way"));
            std::io::Error::other(error.to_string())
        })
    }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
