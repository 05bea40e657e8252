//! What the layout around every page shows: who is signed in, the
//! navigation, a one-time message, the instance that served the page; and
//! the error page, rendered in that layout around a [`PageError`].

use std::sync::Arc;
use store::Reads;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::web::assets;
use crate::web::error::PageError;
use crate::web::session::{Flash, Session, Supervisor, Trader, Who};
use crate::web::templates::html;

pub struct Chrome {
    /// The instance serving this page: in every footer.
    pub instance: Arc<str>,
    /// The server's clock when the page was made, so that countdowns run on
    /// it rather than on the browser's.
    pub now_ms: i64,
    /// The signed-in trader's name.
    pub user: Option<String>,
    pub supervisor: bool,
    /// The session's CSRF token, for the sign-out form in the header.
    pub csrf: String,
    /// Which navigation entry is the current page.
    pub nav: &'static str,
    pub unread: u64,
    pub flash: Option<Flash>,
    pub css: String,
    pub js: String,
    pub icon: String,
}

impl Chrome {
    fn new(state: &AppState, nav: &'static str) -> Chrome {
        Chrome {
            instance: state.instance_id.clone(),
            now_ms: (state.clock)(),
            user: None,
            supervisor: false,
            csrf: String::new(),
            nav,
            unread: 0,
            flash: None,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            icon: assets::url("icon.svg"),
        }
    }

    /// For error pages: the header of whoever the session belongs to (a
    /// signed-in trader keeps their menu and sign-out form), or none when
    /// there is no session or it cannot be read: no session is needed to
    /// tell what went wrong. The unread count is asked for only when the
    /// error is not a service being unavailable (it would likely fail too,
    /// slowly), and is then left out if it cannot be had; the one-time
    /// message is left for the page it was meant for.
    pub async fn for_error(
        state: &AppState,
        session: Option<&Session>,
        status: StatusCode,
    ) -> Chrome {
        let bare = Chrome::new(state, "");
        match session.map(|session| (session, &session.who)) {
            Some((session, Who::Trader(user))) => {
                let unread = if status.is_server_error() {
                    0
                } else {
                    state
                        .trading
                        .reader()
                        .unread_notifications(user)
                        .await
                        .unwrap_or(0)
                };
                Chrome {
                    user: Some(user.to_string()),
                    csrf: session.csrf().to_owned(),
                    unread,
                    ..bare
                }
            }
            Some((session, Who::Supervisor)) => Chrome {
                supervisor: true,
                csrf: session.csrf().to_owned(),
                ..bare
            },
            Some((_, Who::Visitor)) | None => bare,
        }
    }

    /// For the sign-in and registration pages.
    pub fn visitor(state: &AppState, session: &Session, nav: &'static str) -> Chrome {
        Chrome {
            csrf: session.csrf().to_owned(),
            ..Chrome::new(state, nav)
        }
    }

    /// For a trader's pages: with their unread notifications and any
    /// message left for this page (which a live refresh leaves alone).
    pub async fn trader(
        state: &AppState,
        trader: &Trader,
        nav: &'static str,
    ) -> Result<Chrome, PageError> {
        let unread = state
            .trading
            .reader()
            .unread_notifications(&trader.user)
            .await?;
        Ok(Chrome {
            user: Some(trader.user.to_string()),
            csrf: trader.session.csrf().to_owned(),
            unread,
            flash: if trader.live_refresh {
                None
            } else {
                trader.session.take_flash(state).await
            },
            ..Chrome::new(state, nav)
        })
    }

    pub async fn supervisor(state: &AppState, supervisor: &Supervisor) -> Chrome {
        Chrome {
            supervisor: true,
            csrf: supervisor.session.csrf().to_owned(),
            flash: supervisor.session.take_flash(state).await,
            ..Chrome::new(state, "admin")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: &'static str,
    message: String,
}

/// Renders the [`PageError`] a response carries, with the header of
/// whoever the request's session belongs to (a signed-in trader keeps their
/// menu on a refusal, as on every other page).
pub async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
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
