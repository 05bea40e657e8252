//! Every failure the API can answer with, and the one place that turns it
//! into a status code and the `{"error": {"code", "message"}}` body.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::{ErrorBody, RejectKind, Rejection};
use quotes::QuoteError;
use store::StoreError;

use crate::service::ServiceError;

/// Set on an answer that is the first outcome of a transaction number
/// sent again.
pub const X_IDEMPOTENT_REPLAY: HeaderName = HeaderName::from_static("x-idempotent-replay");

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A refusal answered again to a retried transaction number.
    pub replay: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            replay: false,
        }
    }

    /// Marks the refusal as the first outcome of a transaction number,
    /// answered again (`X-Idempotent-Replay: true`).
    pub fn replayed(self, replay: bool) -> ApiError {
        ApiError { replay, ..self }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The JSON body alone, for responses built elsewhere.
    pub fn body(code: &str, message: &str) -> Vec<u8> {
        ErrorBody::new(code, message).to_json()
    }
}

pub fn status_of(kind: RejectKind) -> StatusCode {
    match kind {
        RejectKind::Malformed => StatusCode::BAD_REQUEST,
        RejectKind::NotFound => StatusCode::NOT_FOUND,
        RejectKind::Conflict => StatusCode::CONFLICT,
        RejectKind::Rule => StatusCode::UNPROCESSABLE_ENTITY,
        RejectKind::Forbidden => StatusCode::FORBIDDEN,
    }
}

impl From<&Rejection> for ApiError {
    fn from(rejection: &Rejection) -> ApiError {
        ApiError::new(
            status_of(rejection.kind()),
            rejection.code.as_str(),
            rejection.message.clone(),
        )
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        ApiError::from(&rejection)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed => {
                tracing::warn!(%error, "the store could not serve a request");
                ApiError::unavailable(
                    "database_unavailable",
                    "The database is unavailable right now; nothing was changed. Retry shortly.",
                )
            }
            StoreError::Corrupt(_) | StoreError::Job(_) => {
                tracing::error!(%error, "internal store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "An internal error occurred; it has been logged.",
                )
            }
        }
    }
}

impl From<QuoteError> for ApiError {
    fn from(error: QuoteError) -> ApiError {
        ApiError::unavailable(
            "quote_unavailable",
            format!(
                "No price could be obtained from the quote service ({error}); nothing was changed. Retry shortly."
            ),
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Quote(e) => ApiError::from(e),
            ServiceError::Store(e) => ApiError::from(e),
            ServiceError::NumberReused(n) => ApiError::new(
                StatusCode::CONFLICT,
                "transaction_num_reused",
                format!(
                    "Transaction number {n} was already used for another kind of step; send the command with a new number."
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            ApiError::body(self.code, &self.message),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.replay {
            response
                .headers_mut()
                .insert(X_IDEMPOTENT_REPLAY, HeaderValue::from_static("true"));
        }
        response
    }
}
