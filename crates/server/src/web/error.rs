//! What stops a page from being shown, and the one place that turns it into
//! an HTML error page.
//!
//! A handler or extractor returns a [`PageError`]; its response carries the
//! error in an extension and no body, and `chrome::render_errors` (a
//! middleware around every page) renders it with the layout, which needs
//! the state (the instance id in the footer) and the request's session (the
//! signed-in trader's menu) that `IntoResponse` has no access to. Refusals
//! of a form's content are not page errors: the form's page shows them next
//! to the field they are about.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;

#[derive(Clone, Debug)]
pub enum PageError {
    /// Shown as an error page with this status.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// Sent elsewhere: to where the caller belongs.
    Redirect(&'static str),
    /// Sent to sign in, to come back to this path (with its query).
    SignIn(Option<String>),
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> PageError {
        PageError::Page {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "This request cannot be used",
            message,
        )
    }

    /// The shared cache that holds sessions cannot be reached.
    pub fn sessions_unavailable() -> PageError {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "Sessions are kept in a store that cannot be reached right now. Nothing was changed; \
             please try again in a few seconds.",
        )
    }
}

/// Failures of the services a page reads from (database, quote service),
/// with the JSON API's status and sentence.
impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        let title = if error.status.is_server_error() {
            "Something is unavailable"
        } else {
            "This cannot be done"
        };
        PageError::new(error.status, title, error.message)
    }
}

impl From<store::StoreError> for PageError {
    fn from(error: store::StoreError) -> PageError {
        PageError::from(ApiError::from(error))
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> PageError {
        tracing::error!(%error, "a page failed to render");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "This page could not be shown; the error has been logged.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Redirect(to) => Redirect::to(to).into_response(),
            PageError::SignIn(next) => {
                Redirect::to(&crate::web::return_to::sign_in_url(next.as_deref())).into_response()
            }
            PageError::Page { status, .. } => {
                let mut response = status.into_response();
                response.extensions_mut().insert(self);
                response
            }
        }
    }
}
