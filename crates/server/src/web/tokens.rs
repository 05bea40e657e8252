//! Personal API tokens (SPEC section 4): made and revoked here, each acting
//! on the JSON API for its trader alone. The secret is shown once, on the
//! page that made it; only its hash is kept.

use std::time::Duration;
use store::{NewApiToken, Reads, Writes};

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::new_personal_token;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::format::utc;
use crate::web::forms::{Empty, Posted, new_txn, parse_txn};
use crate::web::origin::origin;
use crate::web::refused::{self, Kept};
use crate::web::session::{Flash, Trader};
use crate::web::templates::html;

/// Working tokens one trader may hold.
const MAX_ACTIVE: usize = 20;
const MAX_NAME: usize = 40;
/// How long a creation form's number is remembered, so that sending the
/// form twice makes one token.
const FORM_MEMORY: Duration = Duration::from_secs(3600);

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    txn: i64,
    tokens: Vec<TokenRow>,
    name: String,
    name_error: Option<String>,
    /// A token just made: its name and secret, shown this once.
    created: Option<(String, String)>,
    /// The site's address as the trader reached it, for the example.
    origin: Option<String>,
}

struct TokenRow {
    id: i64,
    name: String,
    created: String,
    revoked: Option<String>,
}

const PAGE: &str = "/tokens";

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    trader: Trader,
) -> Result<Response, PageError> {
    let (shown, status) = match refused::take_for(&state, &trader, PAGE).await {
        Some(kept) => {
            let shown = Shown {
                name: kept.get("name"),
                name_error: kept.error_of("name"),
                created: None,
            };
            (shown, kept.status())
        }
        None => (Shown::default(), StatusCode::OK),
    };
    render(&state, &headers, &trader, shown, status).await
}

/// What the page shows besides the list.
#[derive(Default)]
struct Shown {
    name: String,
    name_error: Option<String>,
    created: Option<(String, String)>,
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    trader: &Trader,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::trader(state, trader, "tokens").await?;
    let tokens = state.trading.reader().api_tokens(&trader.user).await?;
    let page = TokensPage {
        chrome,
        txn: new_txn(),
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name.clone(),
                created: utc(t.created_ms),
                revoked: t.revoked_ms.map(utc),
            })
            .collect(),
        name: shown.name,
        name_error: shown.name_error,
        created: shown.created,
        origin: origin(headers),
    };
    html(status, &page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    txn: String,
    #[serde(default)]
    name: String,
}

/// `POST /tokens`: makes a token and shows its secret once (no redirect:
/// the secret must not wait anywhere for a next page).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<CreateForm>,
) -> Result<Response, PageError> {
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let name = form.name.trim().to_owned();
    let refuse = |status, message: String| {
        let kept = Kept::new("create", status)
            .value("name", &name)
            .error("name", Some(message));
        refused::refuse(&state, &trader.session, PAGE, PAGE, kept)
    };
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        let message = format!(
            "Name the token (1 to {MAX_NAME} characters), e.g. after the script that uses it."
        );
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, message).await;
    }
    let reader = state.trading.reader();
    let active = reader
        .api_tokens(&trader.user)
        .await?
        .iter()
        .filter(|t| t.revoked_ms.is_none())
        .count();
    if active >= MAX_ACTIVE {
        let message = format!(
            "You have {MAX_ACTIVE} working tokens, the most there may be. Revoke one first."
        );
        return refuse(StatusCode::CONFLICT, message).await;
    }
    let first_time = state
        .cache
        .set_nx(&format!("form:{}:{txn}", trader.user), b"1", FORM_MEMORY)
        .await
        .map_err(|_| PageError::sessions_unavailable())?;
    if !first_time {
        trader
            .session
            .flash(
                &state,
                Flash::success(
                    "This form had already been sent: the token it made is in the list \
                     (its secret was shown once, on the page that made it).",
                ),
            )
            .await;
        return Ok(Redirect::to("/tokens").into_response());
    }
    let (secret, hash) = new_personal_token();
    state
        .trading
        .store()
        .create_api_token(NewApiToken {
            user: trader.user.clone(),
            name: name.clone(),
            hash,
            created_ms: (state.clock)(),
        })
        .await?;
    let shown = Shown {
        name: String::new(),
        name_error: None,
        created: Some((name, secret)),
    };
    render(&state, &headers, &trader, shown, StatusCode::CREATED).await
}

/// `POST /tokens/{id}/revoke`. Only the trader's own tokens can be
/// revoked; any other id is "not found", whoever's it is.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Empty>,
) -> Result<Response, PageError> {
    let (trader, _) = posted.trader()?;
    let revoked = state
        .trading
        .store()
        .revoke_api_token(&trader.user, id, (state.clock)())
        .await?;
    if !revoked {
        return Err(PageError::not_found(
            "You have no working token with that number: it may be revoked already.",
        ));
    }
    trader
        .session
        .flash(
            &state,
            Flash::success("The token is revoked: it no longer works."),
        )
        .await;
    Ok(Redirect::to("/tokens").into_response())
}
