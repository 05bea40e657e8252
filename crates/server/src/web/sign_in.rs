//! Opening an account, signing in and out, and the supervisor's sign-in.

use askama::Template;
use axum::extract::State;
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
use crate::web::session::{Flash, Session, Visitor, Who, is_https, with_cookie};
use crate::web::templates::html;
use crate::web::throttle::{Attempt, LIMITED};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    user: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    txn: i64,
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
async fn visitor_session(
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
fn respond(page: Response, cookie: Option<HeaderValue>) -> Response {
    match cookie {
        Some(cookie) => with_cookie(page, cookie),
        None => page,
    }
}

/// Replaces the session a form came from with a new one for `who`: a new
/// id and CSRF secret at every change of privilege, so an id planted or
/// seen before signing in is worth nothing after.
async fn rotate(
    state: &AppState,
    old: &Session,
    who: Who,
    https: bool,
) -> Result<(Session, HeaderValue), PageError> {
    old.end(state, https).await;
    Session::start(state, who, https).await
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Visitor(session): Visitor,
) -> Result<Response, PageError> {
    let (session, cookie) = visitor_session(&state, &headers, session, true).await?;
    let flash = session.take_flash(&state).await;
    let page = LoginPage {
        chrome: Chrome {
            flash,
            ..Chrome::visitor(&state, &session, "login")
        },
        user: String::new(),
        error: None,
    };
    Ok(respond(html(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
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
    let refuse = |status, error: &str| {
        let page = LoginPage {
            chrome: Chrome::visitor(&state, &session, "login"),
            user: name.to_owned(),
            error: Some(error.to_owned()),
        };
        html(status, &page)
    };
    if attempt.limited(&state).await? {
        return refuse(StatusCode::TOO_MANY_REQUESTS, LIMITED);
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
        return refuse(StatusCode::UNAUTHORIZED, WRONG_PASSWORD);
    };
    if !password::verify(form.password, stored).await? {
        attempt.failed(&state).await;
        return refuse(StatusCode::UNAUTHORIZED, WRONG_PASSWORD);
    }
    attempt.succeeded(&state).await;
    let (_, cookie) = rotate(&state, &session, Who::Trader(user), https).await?;
    Ok(with_cookie(Redirect::to("/"), cookie))
}

const WRONG_PASSWORD: &str =
    "That user name and password do not match an account. Check them and try again.";

pub async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Visitor(session): Visitor,
) -> Result<Response, PageError> {
    let (session, cookie) = visitor_session(&state, &headers, session, true).await?;
    let page = RegisterPage {
        chrome: Chrome::visitor(&state, &session, "register"),
        txn: new_txn(),
        user: String::new(),
        user_error: None,
        password_error: None,
        confirm_error: None,
    };
    Ok(respond(html(StatusCode::OK, &page)?, cookie))
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
    let name = form.user.trim().to_owned();
    let mut page = RegisterPage {
        chrome: Chrome::visitor(&state, &session, "register"),
        txn: new_txn(),
        user: name.clone(),
        user_error: None,
        password_error: password::check(&form.password),
        confirm_error: (form.password != form.confirm)
            .then(|| "The two passwords are not the same.".to_owned()),
    };
    let user = match UserId::parse(&name) {
        Ok(user) => Some(user),
        Err(error) => {
            page.user_error = Some(error.to_string());
            None
        }
    };
    let Some(user) = user.filter(|_| page.password_error.is_none() && page.confirm_error.is_none())
    else {
        return html(StatusCode::UNPROCESSABLE_ENTITY, &page);
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
        page.user_error = Some(format!(
            "The name {user} is taken. Please choose another one."
        ));
        return html(StatusCode::CONFLICT, &page);
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
    let page = AdminLoginPage {
        chrome: Chrome::visitor(&state, &session, "admin"),
        error: None,
    };
    Ok(respond(html(StatusCode::OK, &page)?, cookie))
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
    let refuse = |status, error: &str| {
        let page = AdminLoginPage {
            chrome: Chrome::visitor(&state, &session, "admin"),
            error: Some(error.to_owned()),
        };
        html(status, &page)
    };
    if attempt.limited(&state).await? {
        return refuse(StatusCode::TOO_MANY_REQUESTS, LIMITED);
    }
    if !state.auth.is_supervisor_token(form.token.trim().as_bytes()) {
        attempt.failed(&state).await;
        return refuse(
            StatusCode::UNAUTHORIZED,
            "That is not the supervisor token. Check it and try again.",
        );
    }
    attempt.succeeded(&state).await;
    let (_, cookie) = rotate(&state, &session, Who::Supervisor, https).await?;
    Ok(with_cookie(Redirect::to("/admin"), cookie))
}
