//! `GET /api/v1/log[?user=]`: DUMPLOG as a read. Reading the audit log is
//! itself recorded, as the DUMPLOG command it is.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use engine::{CommandName, CommandRequest};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::xml_response;
use crate::service::dump_log;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    user: Option<String>,
}

pub async fn dump(
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
    let dump = dump_log(&state.trading, &principal, request, None).await?;
    Ok(xml_response(dump.chunks))
}
