//! Passwords after registration: a signed-in trader changes theirs (the
//! current one required; their other sessions end), and the supervisor
//! gives an account made through the API (a workload's user, which has no
//! password) a one-time sign-in link, with which its trader sets one.
//!
//! A link is a random secret; the shared cache keeps only its SHA-256, with
//! the user it is for, for 24 hours. Setting the password consumes it
//! atomically (on any instance), so it works once; a used or expired link
//! answers 410 Gone with a page that says so.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Redirect, Response};
use engine::UserId;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use store::{Reads, Writes};

use crate::auth::generate_token;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::forms::Posted;
use crate::web::origin::origin;
use crate::web::password;
use crate::web::refused::{self, Kept};
use crate::web::session::{Flash, Session, Supervisor, Trader, Who, with_cookie};
use crate::web::sign_in::{respond, rotate, visitor_session};
use crate::web::templates::html;
use crate::web::throttle::{Attempt, limited};

/// How long a sign-in link works.
const LINK_TTL: Duration = Duration::from_secs(24 * 3600);
const CHANGE_PAGE: &str = "/account/password";

#[derive(Template)]
#[template(path = "password.html")]
struct ChangePage {
    chrome: Chrome,
    /// Set from a sign-in link for this user (no current password asked),
    /// or changed by the signed-in trader.
    link_user: Option<String>,
    /// Where the form posts.
    action: String,
    current_error: Option<String>,
    password_error: Option<String>,
    confirm_error: Option<String>,
}

#[derive(Template)]
#[template(path = "link_issued.html")]
struct IssuedPage {
    chrome: Chrome,
    user: String,
    link: String,
}

/// What a new password's form refuses before anything else: its length,
/// and the two copies differing.
fn check_new(form: &PasswordForm) -> Kept {
    let confirm_error =
        (form.password != form.confirm).then(|| "The two passwords are not the same.".to_owned());
    Kept::new("password", StatusCode::UNPROCESSABLE_ENTITY)
        .error("password", password::check(&form.password))
        .error("confirm", confirm_error)
}

fn page_of(chrome: Chrome, link_user: Option<String>, action: String, kept: &Kept) -> ChangePage {
    ChangePage {
        chrome,
        link_user,
        action,
        current_error: kept.error_of("current"),
        password_error: kept.error_of("password"),
        confirm_error: kept.error_of("confirm"),
    }
}

/// `GET /account/password`.
pub async fn change_page(
    State(state): State<AppState>,
    trader: Trader,
) -> Result<Response, PageError> {
    let chrome = Chrome::trader(&state, &trader, "password").await?;
    let kept = refused::take_for(&state, &trader, CHANGE_PAGE)
        .await
        .unwrap_or_else(|| Kept::new("password", StatusCode::OK));
    let page = page_of(chrome, None, CHANGE_PAGE.to_owned(), &kept);
    html(kept.status(), &page)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/password`: the current password (throttled as a sign-in
/// is, so a borrowed session cannot guess it quickly), then the new one.
pub async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<PasswordForm>,
) -> Result<Response, PageError> {
    let https = posted.https;
    let (trader, form) = posted.trader()?;
    let refuse = |kept| refused::refuse(&state, &trader.session, CHANGE_PAGE, CHANGE_PAGE, kept);
    let attempt = Attempt::trader(Some(&trader.user), &headers);
    if let Some(wait) = attempt.wait(&state).await? {
        let kept = Kept::new("password", StatusCode::TOO_MANY_REQUESTS)
            .error("current", Some(limited(wait)));
        return refuse(kept).await;
    }
    let stored = state.trading.reader().password_hash(&trader.user).await?;
    if !password::verify(form.current.clone(), stored).await? {
        attempt.failed(&state).await;
        let wrong = "That is not your current password.".to_owned();
        let kept = Kept::new("password", StatusCode::UNAUTHORIZED).error("current", Some(wrong));
        return refuse(kept).await;
    }
    attempt.succeeded(&state).await;
    let invalid = check_new(&form);
    if !invalid.errors.is_empty() {
        return refuse(invalid).await;
    }
    set_and_sign_in(
        &state,
        &trader.session,
        &trader.user,
        form.password,
        https,
        "Your password is changed. Your other sessions are signed out.",
    )
    .await
}

/// Stores `user`'s new password, ends every session of theirs and signs
/// this browser in as them in a new one.
async fn set_and_sign_in(
    state: &AppState,
    session: &Session,
    user: &UserId,
    new_password: String,
    https: bool,
    said: &str,
) -> Result<Response, PageError> {
    let hash = password::hash(new_password).await?;
    state
        .trading
        .store()
        .set_password(user, hash, (state.clock)())
        .await?;
    Session::end_all_of(state, user).await?;
    let (session, cookie) = rotate(state, session, Who::Trader(user.clone()), https).await?;
    session.flash(state, Flash::success(said)).await;
    Ok(with_cookie(Redirect::to("/"), cookie))
}

fn link_key(secret: &str) -> String {
    format!(
        "sign-in-link:{}",
        hex::encode(Sha256::digest(secret.as_bytes()))
    )
}

#[derive(Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    user: String,
}

/// `POST /admin/sign-in-links`: a link for an existing account, shown to
/// the supervisor once (it is a secret: it waits nowhere for a next page).
pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    supervisor: Supervisor,
    posted: Posted<IssueForm>,
) -> Result<Response, PageError> {
    let name = posted.form.user.trim();
    let user = UserId::parse(name).ok();
    let exists = match &user {
        Some(user) => state
            .trading
            .reader()
            .account_version(user)
            .await?
            .is_some(),
        None => false,
    };
    let Some(user) = user.filter(|_| exists) else {
        let unknown = format!("There is no account called “{name}”.");
        let kept = Kept::new("sign-in-link", StatusCode::UNPROCESSABLE_ENTITY)
            .value("user", name)
            .error("user", Some(unknown));
        return refused::refuse(&state, &supervisor.session, "/admin", "/admin", kept).await;
    };
    let secret = generate_token();
    state
        .cache
        .set(&link_key(&secret), user.as_str().as_bytes(), LINK_TTL)
        .await
        .map_err(|_| PageError::sessions_unavailable())?;
    let site = origin(&headers).unwrap_or_default();
    let page = IssuedPage {
        chrome: Chrome::supervisor(&state, &supervisor).await,
        user: user.to_string(),
        link: format!("{site}/sign-in-link/{secret}"),
    };
    html(StatusCode::CREATED, &page)
}

/// The user a live link is for.
async fn link_user(state: &AppState, secret: &str) -> Result<UserId, PageError> {
    let user = state
        .cache
        .get(&link_key(secret))
        .await
        .map_err(|_| PageError::sessions_unavailable())?
        .and_then(|bytes| UserId::parse(std::str::from_utf8(&bytes).ok()?).ok());
    user.ok_or_else(gone)
}

fn gone() -> PageError {
    PageError::new(
        StatusCode::GONE,
        "This sign-in link no longer works",
        "It has been used already, or more than 24 hours have passed since it was made. \
         Ask the supervisor for a new one.",
    )
}

/// `GET /sign-in-link/{secret}`: the form to set a password. Showing it
/// does not use the link up (a link preview must not), setting one does.
pub async fn link_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
    session: crate::web::session::Visitor,
) -> Result<Response, PageError> {
    let user = link_user(&state, &secret).await?;
    let (session, cookie) = visitor_session(&state, &headers, session.0, false).await?;
    let action = format!("/sign-in-link/{secret}");
    let kept = refused::take(&state, &session, &action)
        .await
        .unwrap_or_else(|| Kept::new("password", StatusCode::OK));
    let page = page_of(
        Chrome::visitor(&state, &session, "password"),
        Some(user.to_string()),
        action,
        &kept,
    );
    Ok(respond(html(kept.status(), &page)?, cookie))
}

/// `POST /sign-in-link/{secret}`: sets the password, using the link up,
/// and signs its trader in.
pub async fn use_link(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    posted: Posted<PasswordForm>,
) -> Result<Response, PageError> {
    let user = link_user(&state, &secret).await?;
    let invalid = check_new(&posted.form);
    if !invalid.errors.is_empty() {
        let page = format!("/sign-in-link/{secret}");
        return refused::refuse(&state, &posted.session, &page, &page, invalid).await;
    }
    // Only one of two uses at once (on any instances) deletes it.
    let consumed = state
        .cache
        .delete_if_equals(&link_key(&secret), user.as_str().as_bytes())
        .await
        .map_err(|_| PageError::sessions_unavailable())?;
    if !consumed {
        return Err(gone());
    }
    let said = format!("Welcome, {user}! Your password is set: sign in with it from now on.");
    let Posted {
        session,
        form,
        https,
    } = posted;
    set_and_sign_in(&state, &session, &user, form.password, https, &said).await
}
