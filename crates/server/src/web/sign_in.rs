//! Opening an account, signing in and out, and the supervisor's sign-in.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use engine::UserId;
use serde::Deserialize;
use store::{JobError, Reads, StoreError};

use crate::error::ApiError;
use crate::service::ServiceError;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::forms::{Empty, Posted, new_txn, parse_txn};
use crate::web::password;
use crate::web::refused::{self, Kept};
use crate::web::return_to;
use crate::web::session::{Flash, Session, Visitor, Who, is_https, with_cookie};
use crate::web::templates::html;
use crate::web::throttle::{Attempt, limited};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    user: String,
    error: Option<String>,
    /// Where to go once signed in (a path on this site, or empty).
    next: String,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    txn: i64,
    /// The characters a user name may hold, in the engine's own words.
    user_rule: String,
    user: String,
    user_error: Option<String>,
    password_error: Option<String>,
    confirm_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct AdminLoginPage {
    chrome: Chrome,
    error: Option<String>,
}

/// The session a sign-in or registration form is rendered for: the
/// visitor's own, or a new one (whose cookie the page sets). Someone
/// already signed in goes where they belong instead.
pub(super) async fn visitor_session(
    state: &AppState,
    headers: &HeaderMap,
    session: Option<Session>,
    signed_in_goes_on: bool,
) -> Result<(Session, Option<HeaderValue>), PageError> {
    match session {
        Some(session) if signed_in_goes_on && session.trader().is_some() => {
            Err(PageError::Redirect("/"))
        }
        Some(session) if signed_in_goes_on && session.who == Who::Supervisor => {
            Err(PageError::Redirect("/admin"))
        }
        Some(session) => Ok((session, None)),
        None => {
            let (session, cookie) = Session::start(state, Who::Visitor, is_https(headers)).await?;
            Ok((session, Some(cookie)))
        }
    }
}

/// A page, with the cookie of the session it was rendered for when that
/// session is new.
pub(super) fn respond(page: Response, cookie: Option<HeaderValue>) -> Response {
    match cookie {
        Some(cookie) => with_cookie(page, cookie),
        None => page,
    }
}

/// Replaces the session a form came from with a new one for `who`: a new
/// id and CSRF secret at every change of privilege, so an id planted or
/// seen before signing in is worth nothing after.
pub(super) async fn rotate(
    state: &AppState,
    old: &Session,
    who: Who,
    https: bool,
) -> Result<(Session, HeaderValue), PageError> {
    old.end(state, https).await;
    Session::start(state, who, https).await
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Visitor(session): Visitor,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let (session, cookie) = visitor_session(&state, &headers, session, true).await?;
    let flash = session.take_flash(&state).await;
    let kept = refused::take(&state, &session, "/login").await;
    let page = LoginPage {
        chrome: Chrome {
            flash,
            ..Chrome::visitor(&state, &session, "login")
        },
        user: kept.as_ref().map(|k| k.get("user")).unwrap_or_default(),
        error: kept.as_ref().and_then(|k| k.error_of("form")),
        next: query
            .next
            .as_deref()
            .and_then(return_to::safe)
            .unwrap_or_default()
            .to_owned(),
    };
    let status = kept.map_or(StatusCode::OK, |k| k.status());
    Ok(respond(html(status, &page)?, cookie))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    /// The page to return to, as the sign-in page was given it.
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<LoginForm>,
) -> Result<Response, PageError> {
    let Posted {
        session,
        form,
        https,
    } = posted;
    let name = form.user.trim();
    let user = UserId::parse(name).ok();
    let attempt = Attempt::trader(user.as_ref(), &headers);
    let next = Some(form.next.as_str()).filter(|next| !next.is_empty());
    let back = return_to::sign_in_url(next);
    let refuse = |status, error: String| {
        let kept = Kept::new("login", status)
            .value("user", name)
            .error("form", Some(error));
        refused::refuse(&state, &session, "/login", &back, kept)
    };
    if let Some(wait) = attempt.wait(&state).await? {
        return refuse(StatusCode::TOO_MANY_REQUESTS, limited(wait)).await;
    }
    let stored = match &user {
        Some(user) => state.trading.reader().password_hash(user).await?,
        None => None,
    };
    let Some(user) = user.filter(|_| stored.is_some()) else {
        // Spend the same effort as a wrong password, so that timing does
        // not tell which names exist.
        password::verify(form.password, None).await?;
        attempt.failed(&state).await;
        return refuse(StatusCode::UNAUTHORIZED, WRONG_PASSWORD.to_owned()).await;
    };
    if !password::verify(form.password, stored).await? {
        attempt.failed(&state).await;
        return refuse(StatusCode::UNAUTHORIZED, WRONG_PASSWORD.to_owned()).await;
    }
    attempt.succeeded(&state).await;
    let (_, cookie) = rotate(&state, &session, Who::Trader(user), https).await?;
    Ok(with_cookie(
        Redirect::to(return_to::after_sign_in(next)),
        cookie,
    ))
}

const WRONG_PASSWORD: &str =
    "That user name and password do not match an account. Check them and try again.";

pub async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Visitor(session): Visitor,
) -> Result<Response, PageError> {
    let (session, cookie) = visitor_session(&state, &headers, session, true).await?;
    let kept = refused::take(&state, &session, "/register")
        .await
        .unwrap_or_else(|| Kept::new("register", StatusCode::OK));
    let page = RegisterPage {
        chrome: Chrome::visitor(&state, &session, "register"),
        txn: new_txn(),
        user_rule: UserId::rule(),
        user: kept.get("user"),
        user_error: kept.error_of("user"),
        password_error: kept.error_of("password"),
        confirm_error: kept.error_of("confirm"),
    };
    Ok(respond(html(kept.status(), &page)?, cookie))
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    txn: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn register(
    State(state): State<AppState>,
    posted: Posted<RegisterForm>,
) -> Result<Response, PageError> {
    let Posted {
        session,
        form,
        https,
    } = posted;
    let txn = parse_txn(&form.txn)?;
    let name = form.user.trim();
    // Refusals keep the name, never the passwords.
    let refuse = |kept: Kept| {
        refused::refuse(
            &state,
            &session,
            "/register",
            "/register",
            kept.value("user", name),
        )
    };
    let password_error = password::check(&form.password);
    let confirm_error =
        (form.password != form.confirm).then(|| "The two passwords are not the same.".to_owned());
    let user = UserId::parse(name);
    let invalid = user.is_err() || password_error.is_some() || confirm_error.is_some();
    let Some(user) = user.ok().filter(|_| !invalid) else {
        let user_error = UserId::parse(name)
            .err()
            .map(|_| format!("A user name is {}.", UserId::rule()));
        let kept = Kept::new("register", StatusCode::UNPROCESSABLE_ENTITY)
            .error("user", user_error)
            .error("password", password_error)
            .error("confirm", confirm_error);
        return refuse(kept).await;
    };
    let hash = password::hash(form.password.clone()).await?;
    let registered = match state.trading.register(user.clone(), hash, txn).await {
        // A double submit answers the first registration: it is this
        // visitor's only if the password is theirs too.
        Ok(done) if done.duplicate => {
            let stored = state.trading.reader().password_hash(&user).await?;
            password::verify(form.password, stored).await?
        }
        Ok(_) => true,
        Err(ServiceError::Store(StoreError::Job(JobError::UserTaken(_)))) => false,
        Err(error) => return Err(PageError::from(ApiError::from(error))),
    };
    if !registered {
        let taken = format!("The user name {user} is taken. Please choose another one.");
        let kept = Kept::new("register", StatusCode::CONFLICT).error("user", Some(taken));
        return refuse(kept).await;
    }
    let (session, cookie) = rotate(&state, &session, Who::Trader(user.clone()), https).await?;
    session
        .flash(
            &state,
            Flash::success(format!(
                "Welcome, {user}! Your account is open. Add funds below to start trading."
            )),
        )
        .await;
    Ok(with_cookie(Redirect::to("/"), cookie))
}

pub async fn logout(
    State(state): State<AppState>,
    posted: Posted<Empty>,
) -> Result<Response, PageError> {
    posted.session.end(&state, posted.https).await;
    let (session, cookie) = Session::start(&state, Who::Visitor, posted.https).await?;
    session
        .flash(&state, Flash::success("You have signed out. See you soon!"))
        .await;
    Ok(with_cookie(Redirect::to("/login"), cookie))
}

pub async fn admin_login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Visitor(session): Visitor,
) -> Result<Response, PageError> {
    if session.as_ref().is_some_and(|s| s.who == Who::Supervisor) {
        return Ok(Redirect::to("/admin").into_response());
    }
    let (session, cookie) = visitor_session(&state, &headers, session, false).await?;
    let kept = refused::take(&state, &session, "/admin/login").await;
    let page = AdminLoginPage {
        chrome: Chrome::visitor(&state, &session, "admin"),
        error: kept.as_ref().and_then(|k| k.error_of("form")),
    };
    let status = kept.map_or(StatusCode::OK, |k| k.status());
    Ok(respond(html(status, &page)?, cookie))
}

#[derive(Deserialize)]
pub struct AdminLoginForm {
    #[serde(default)]
    token: String,
}

pub async fn admin_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<AdminLoginForm>,
) -> Result<Response, PageError> {
    let Posted {
        session,
        form,
        https,
    } = posted;
    let attempt = Attempt::supervisor(&headers);
    let refuse = |status, error: String| {
        let kept = Kept::new("admin-login", status).error("form", Some(error));
        refused::refuse(&state, &session, "/admin/login", "/admin/login", kept)
    };
    if let Some(wait) = attempt.wait(&state).await? {
        return refuse(StatusCode::TOO_MANY_REQUESTS, limited(wait)).await;
    }
    if !state.auth.is_supervisor_token(form.token.trim().as_bytes()) {
        attempt.failed(&state).await;
        let wrong = "That is not the supervisor token. Check it and try again.";
        return refuse(StatusCode::UNAUTHORIZED, wrong.to_owned()).await;
    }
    attempt.succeeded(&state).await;
    let (_, cookie) = rotate(&state, &session, Who::Supervisor, https).await?;
    Ok(with_cookie(Redirect::to("/admin"), cookie))
}
