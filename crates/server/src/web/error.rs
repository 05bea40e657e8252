//! What stops a page from being shown, and the one place that turns it into
//! an HTML error page.
//!
//! A handler or extractor returns a [`PageError`]; its response carries the
//! error in an extension and no body, and [`render`] (a middleware around
//! every page) renders it with the layout, which needs the state (the
//! instance id in the footer) and the request's session (the signed-in
//! trader's menu) that `IntoResponse` has no access to. Refusals
//! of a form's content are not page errors: the form's page shows them next
//! to the field they are about.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::session::Session;
use crate::web::templates::{ErrorPage, html};

#[derive(Clone, Debug)]
pub enum PageError {
    /// Shown as an error page with this status.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// Sent elsewhere: to sign in, or to where the caller belongs.
    Redirect(&'static str),
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
            PageError::Page { status, .. } => {
                let mut response = status.into_response();
                response.extensions_mut().insert(self);
                response
            }
        }
    }
}

/// Renders the [`PageError`] a response carries, with the header of
/// whoever the request's session belongs to (a signed-in trader keeps their
/// menu on a refusal, as on every other page).
pub async fn render(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Only the cookies are kept (cheap clones of the request's bytes), to
    // find the session should the page fail.
    let mut cookies = HeaderMap::new();
    for value in request.headers().get_all(header::COOKIE) {
        cookies.append(header::COOKIE, value.clone());
    }
    let mut response = next.run(request).await;
    let Some(PageError::Page {
        status,
        title,
        message,
    }) = response.extensions_mut().remove::<PageError>()
    else {
        return response;
    };
    // A session that cannot be read (the cache is down) shows no menu.
    let session = Session::load(&state, &cookies).await.ok().flatten();
    let page = ErrorPage {
        chrome: Chrome::for_error(&state, session.as_ref(), status).await,
        title,
        message,
    };
    match html(status, &page) {
        Ok(rendered) => rendered,
        // The error page itself failed: the status still tells.
        Err(_) => status.into_response(),
    }
}
