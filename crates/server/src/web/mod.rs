//! The web pages: server-rendered HTML for traders and the supervisor,
//! over the same trading service, error mapping and metrics as the JSON
//! API, so a command from a form is recorded and idempotent exactly as one
//! from the API.
//!
//! Instances keep no state of their own: sessions (with their CSRF
//! secrets), failed sign-in counters, one-time messages and cached page
//! fragments live in the shared cache (Redis in a cluster, memory when
//! embedded), so any instance serves any page of any signed-in trader.
//! The pages need no script; one small file adds live countdowns and
//! keeps them up to date as things happen (see [`live`]).

mod admin;
mod assets;
mod charts;
mod chrome;
mod credentials;
mod dashboard;
mod error;
mod format;
mod forms;
mod history;
mod live;
mod notifications;
mod origin;
mod page_cache;
pub(crate) mod password;
mod quotes;
mod refused;
mod return_to;
mod run;
pub(crate) mod session;
mod sign_in;
mod templates;
mod throttle;
mod tokens;
mod trade;
mod triggers;
mod views;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// Pages may load only this site's own files, run only its own script (no
/// inline script, so injected markup cannot run), submit forms only to it
/// and be framed by nobody.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// Every page and asset route, with the headers that protect them.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(dashboard::page))
        .route(
            "/register",
            get(sign_in::register_page).post(sign_in::register),
        )
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/funds", post(dashboard::add_funds))
        .route("/trade", get(trade::page))
        .route("/trade/buy", post(trade::buy))
        .route("/trade/sell", post(trade::sell))
        .route("/trade/pending-buy", post(trade::decide_buy))
        .route("/trade/pending-sell", post(trade::decide_sell))
        .route("/triggers", get(triggers::page))
        .route("/triggers/{side}/amount", post(triggers::set_amount))
        .route("/triggers/{side}/price", post(triggers::set_price))
        .route("/triggers/{side}/cancel", post(triggers::cancel))
        .route("/quote", get(quotes::page))
        .route("/history", get(history::page))
        .route("/history/log.xml", get(history::download_log))
        .route("/history/history.csv", get(history::download_csv))
        .route("/notifications", get(notifications::page))
        .route("/notifications/read", post(notifications::mark_read))
        .route(
            "/account/password",
            get(credentials::change_page).post(credentials::change),
        )
        .route(
            "/sign-in-link/{secret}",
            get(credentials::link_page).post(credentials::use_link),
        )
        .route("/admin/sign-in-links", post(credentials::issue))
        .route("/tokens", get(tokens::page).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/admin", get(admin::page))
        .route(
            "/admin/login",
            get(sign_in::admin_login_page).post(sign_in::admin_login),
        )
        .route("/admin/log.xml", get(admin::download_log))
        // Personal data: never kept by a browser or a proxy.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let assets = Router::new().route("/static/{version}/{name}", get(assets::serve));
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ];
    let mut router = pages
        .merge(assets)
        .layer(from_fn_with_state(state, chrome::render_errors));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}
