//! `POST /api/v1/commands`: one command of the sixteen.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use engine::{CommandBody, CommandName, Reply};
use store::Reads;

use crate::api::shapes::{CommandResponse, ResultView, SummaryView};
use crate::auth::Principal;
use crate::error::{ApiError, X_IDEMPOTENT_REPLAY};
use crate::respond::{MAX_BODY, json, xml_response};
use crate::service::{SUMMARY_HISTORY, dump_log, money};
use crate::state::AppState;

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
    if request.name == CommandName::DumpLog {
        let dump = dump_log(&state.trading, &principal, request, transaction_num).await?;
        return Ok(replayed(xml_response(dump.chunks), dump.replay));
    }
    let user = request
        .user
        .clone()
        .expect("every command but DUMPLOG names its user");
    principal.check(&user)?;
    let outcome = state.trading.execute(request, transaction_num).await?;
    let reply = match &outcome.result {
        Ok(reply) => reply,
        Err(rejection) => return Err(ApiError::from(rejection).replayed(outcome.replay)),
    };
    let valuation;
    let result = match reply {
        Reply::Summary(summary) => {
            // The money view values the account the summary shows (the
            // stored reply is the engine's summary, which has none): the
            // command's own copy of it, or for a retry, the account as it
            // stands now.
            let reader = state.trading.reader();
            let symbols = money::held_symbols(summary);
            let (account, extras) = match outcome.account {
                Some(account) => (
                    *account,
                    reader
                        .summary_extras(&user, symbols, SUMMARY_HISTORY)
                        .await?,
                ),
                None => {
                    let (account, extras) = tokio::join!(
                        reader.account(&user),
                        reader.summary_extras(&user, symbols, SUMMARY_HISTORY),
                    );
                    (
                        account?.map(|loaded| loaded.account).unwrap_or_default(),
                        extras?,
                    )
                }
            };
            valuation = money::value(&account, summary, &extras.prices);
            ResultView::Summary(SummaryView::new(&user, summary, &valuation, extras.history))
        }
        reply => ResultView::Reply(reply),
    };
    let body = CommandResponse {
        transaction_num: outcome.transaction_num,
        command: outcome.command.as_str(),
        user: Some(user.as_str()),
        result,
        cash: outcome.balance.map(|b| b.cash),
        reserved_cash: outcome.balance.map(|b| b.reserved_cash),
    };
    Ok(replayed(json(StatusCode::OK, &body), outcome.replay))
}

/// Marks the answer to a retried transaction number as the first outcome
/// again.
fn replayed(mut response: Response, replay: bool) -> Response {
    if replay {
        response
            .headers_mut()
            .insert(X_IDEMPOTENT_REPLAY, HeaderValue::from_static("true"));
    }
    response
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
