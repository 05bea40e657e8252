//! Post-redirect-get for refused forms: a form the server refuses is kept
//! briefly in the shared cache (under the session, so any instance can show
//! it) and the browser is sent back to the form's page with a 303; that
//! page takes the kept form once and shows the refusal next to the values
//! the visitor typed. Reloading the page then sends nothing again.
//!
//! Every page form goes through [`refuse`]; passwords are never kept (the
//! forms that carry one keep only the other fields).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::web::error::PageError;
use crate::web::forms::{Field, FormState};
use crate::web::session::{Session, Trader};

/// How long a refused form waits for its page: the redirect follows at
/// once, so this only bounds what a lost redirect leaves behind.
const KEPT_TTL: Duration = Duration::from_secs(300);

/// A refused form, as its page shows it again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Which form of the page was refused (a page may have several).
    pub form: String,
    /// What was typed, by field name (never a password).
    pub values: BTreeMap<String, String>,
    /// The refusals, by the field each is about (`form` for the whole
    /// form).
    pub errors: BTreeMap<String, String>,
    /// The refusal's status, which the page answers with when it shows it.
    pub status: u16,
}

impl Kept {
    /// A refusal of `form` with `status`, values and errors to be added.
    pub fn new(form: &str, status: StatusCode) -> Kept {
        Kept {
            form: form.to_owned(),
            status: status.as_u16(),
            ..Kept::default()
        }
    }

    pub fn value(mut self, field: &str, value: &str) -> Kept {
        self.values.insert(field.to_owned(), value.to_owned());
        self
    }

    pub fn error(mut self, field: &str, message: Option<String>) -> Kept {
        if let Some(message) = message {
            self.errors.insert(field.to_owned(), message);
        }
        self
    }

    /// A trading form's state (symbol, amount and its one refusal).
    pub fn of_form(form: &str, status: StatusCode, state: &FormState) -> Kept {
        let kept = Kept::new(form, status)
            .value("symbol", &state.symbol)
            .value("amount", &state.amount);
        match &state.error {
            Some((field, message)) => kept.error(field.name(), Some(message.clone())),
            None => kept,
        }
    }

    /// The typed value of `field` ("" when none was kept).
    pub fn get(&self, field: &str) -> String {
        self.values.get(field).cloned().unwrap_or_default()
    }

    /// The refusal of `field`, if any.
    pub fn error_of(&self, field: &str) -> Option<String> {
        self.errors.get(field).cloned()
    }

    /// The trading form state it was made from, with a fresh transaction
    /// number (the refused one may have been spent on the refusal).
    pub fn form_state(&self) -> FormState {
        let mut state = FormState::with_symbol(self.get("symbol"));
        state.amount = self.get("amount");
        state.error = self
            .errors
            .iter()
            .next()
            .map(|(field, message)| (Field::named(field), message.clone()));
        state
    }

    /// Any one of its refusals (for places that show a single message).
    pub fn message(&self) -> String {
        self.errors.values().next().cloned().unwrap_or_default()
    }

    /// The status the page shows the refusal with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    }
}

fn key(session: &Session, page: &str) -> String {
    format!("refused:{}:{page}", session.key())
}

/// Keeps `kept` for the page at `page` (a path without query) and sends
/// the browser to `to` (that page, perhaps with a query) with a 303.
pub async fn refuse(
    state: &AppState,
    session: &Session,
    page: &str,
    to: &str,
    kept: Kept,
) -> Result<Response, PageError> {
    let bytes = serde_json::to_vec(&kept).expect("plain data serializes");
    state
        .cache
        .set(&key(session, page), &bytes, KEPT_TTL)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "could not keep a refused form");
            PageError::sessions_unavailable()
        })?;
    Ok(Redirect::to(to).into_response())
}

/// Keeps a trading form refused on `page` and sends the browser back there.
pub async fn refuse_form(
    state: &AppState,
    session: &Session,
    page: &str,
    form: &str,
    status: StatusCode,
    refused: &FormState,
) -> Result<Response, PageError> {
    let kept = Kept::of_form(form, status, refused);
    refuse(state, session, page, page, kept).await
}

/// The form refused on `page` for this session, shown once.
pub async fn take(state: &AppState, session: &Session, page: &str) -> Option<Kept> {
    let key = key(session, page);
    let bytes = state.cache.get(&key).await.ok().flatten()?;
    if let Err(error) = state.cache.delete(&key).await {
        tracing::warn!(%error, "could not clear a shown refusal");
    }
    serde_json::from_slice(&bytes).ok()
}

/// The form refused on a signed-in trader's `page`, shown once. A live
/// refresh (app.js reading the page again after an event) takes nothing:
/// it may come between the refusal and the page view its redirect brings,
/// which would then show the form as if nothing had been refused.
pub async fn take_for(state: &AppState, trader: &Trader, page: &str) -> Option<Kept> {
    if trader.live_refresh {
        return None;
    }
    take(state, &trader.session, page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trading_form_comes_back_as_it_was_refused() {
        let mut state = FormState::with_symbol("ABC".into());
        state.amount = "12.50".into();
        state.error = Some((Field::Amount, "Not enough cash.".into()));
        let kept = Kept::of_form("buy", StatusCode::UNPROCESSABLE_ENTITY, &state);
        let json = serde_json::to_vec(&kept).unwrap();
        let back: Kept = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, kept);
        let shown = back.form_state();
        assert_eq!(
            (shown.symbol.as_str(), shown.amount.as_str()),
            ("ABC", "12.50")
        );
        assert_eq!(shown.error_for("amount"), Some("Not enough cash."));
        assert_ne!(shown.txn, state.txn, "a fresh transaction number");
        assert_eq!(back.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
