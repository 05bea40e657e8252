//! `POST /api/v1/commands`: one command of the sixteen.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::{CommandBody, CommandName, Reply};
use store::{Done, Record};

use crate::auth::Principal;
use crate::error::{ApiError, status_of};
use crate::routes::log::xml_response;
use crate::state::AppState;
use crate::views::{CommandResponse, ResultView, SUMMARY_HISTORY, SummaryView};

/// The largest command body accepted; a command is a few dozen bytes.
pub const MAX_BODY: usize = 16 * 1024;

pub async fn run_command(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("A command body is at most {MAX_BODY} bytes."),
            )
        }
        other => ApiError::bad_request(
            "malformed_body",
            format!("The request body could not be read: {other}."),
        ),
    })?;
    check_json_content_type(&headers)?;
    let body = CommandBody::from_json(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("The body is not a valid command: {e}."),
        )
    })?;
    let (request, transaction_num) = body.decode()?;
    let name = request.name;
    match &request.user {
        Some(user) => principal.check(user)?,
        None => principal.check_supervisor("read the whole system's log")?,
    }
    let user = request.user.clone();
    let done = state.trading.execute(request, transaction_num).await?;
    count(name, &done);

    let Record::Command {
        outcome, balance, ..
    } = &done.record
    else {
        unreachable!("a command job records a command");
    };
    let mut response = match outcome {
        Err(rejection) => ApiError::from(rejection).into_response(),
        Ok(Reply::DumpLog(_)) => {
            let seq = done.seq.expect("a command always writes a row");
            xml_response(state.trading.reader().stream_log(user, seq))
        }
        Ok(reply) => {
            let summary_view;
            let history;
            let result = match (reply, &user) {
                (Reply::Summary(summary), Some(user)) => {
                    history = state
                        .trading
                        .reader()
                        .history(user, SUMMARY_HISTORY)
                        .await?;
                    summary_view = SummaryView {
                        user: user.as_str(),
                        summary,
                        history,
                    };
                    ResultView::Summary(summary_view)
                }
                (reply, _) => ResultView::Reply(reply),
            };
            let body = CommandResponse {
                transaction_num: done.txn,
                command: name.as_str(),
                user: user.as_ref().map(|u| u.as_str()),
                result,
                cash: balance.map(|b| b.cash),
                reserved_cash: balance.map(|b| b.reserved_cash),
            };
            json_response(
                StatusCode::OK,
                serde_json::to_vec(&body).expect("plain data serializes"),
            )
        }
    };
    if done.duplicate {
        response
            .headers_mut()
            .insert("x-idempotent-replay", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Counts a command in `commands_total`, whichever door it came in by.
pub fn count(name: CommandName, done: &Done) {
    metrics::counter!("commands_total", "command" => name.as_str(), "outcome" => outcome_label(done)).increment(1);
}

fn outcome_label(done: &Done) -> &'static str {
    match &done.record {
        Record::Command { outcome: Ok(_), .. } if done.duplicate => "replayed",
        Record::Command { outcome: Ok(_), .. } => "accepted",
        Record::Command {
            outcome: Err(r), ..
        } => match status_of(r.kind()).as_u16() {
            404 => "unknown_user",
            _ => "refused",
        },
        _ => "other",
    }
}

/// A body is JSON when it says so, and only then: a body without a
/// content type is refused like one of another type, as the API documents.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Commands are JSON: send Content-Type: application/json.",
        ))
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(body),
    )
        .into_response()
}
