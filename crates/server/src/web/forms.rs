//! Forms: every POST carries its session's CSRF token, checked before the
//! form is read; every form that runs a command carries a transaction
//! number made when its page was rendered, so a double submit runs once.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;
use crate::web::error::PageError;
use crate::web::session::{Session, Trader, is_https};

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A form posted by a live session, its CSRF token checked.
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
    /// Whether the request came over HTTPS (for the cookies it may set).
    pub https: bool,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = request.into_parts();
        let session = Session::load(state, &parts.headers).await?.ok_or_else(|| {
            PageError::new(
                StatusCode::FORBIDDEN,
                "Your session has expired",
                "This form belongs to a session that has ended (or this browser does not keep \
                 cookies). Nothing was changed. Go back, reload the page and try again.",
            )
        })?;
        let https = is_https(&parts.headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                PageError::new(
                    rejection.status(),
                    "This form cannot be read",
                    rejection.body_text(),
                )
            })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| PageError::bad_request(format!("The form could not be read: {e}.")))?;
        let token = fields
            .iter()
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.as_str());
        if !token.is_some_and(|token| session.csrf_matches(token)) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form was refused",
                "The form did not carry this session's security token (CSRF), so it may not come \
                 from this site's own pages. Nothing was changed. Go back, reload the page and \
                 submit it again.",
            ));
        }
        let form = serde_urlencoded::from_bytes(&body)
            .map_err(|e| PageError::bad_request(format!("The form could not be read: {e}.")))?;
        Ok(Posted {
            session,
            form,
            https,
        })
    }
}

impl<T> Posted<T> {
    /// The signed-in trader who posted the form; anyone else is sent to
    /// sign in.
    pub fn trader(self) -> Result<(Trader, T), PageError> {
        match self.session.trader().cloned() {
            Some(user) => Ok((
                Trader {
                    session: self.session,
                    user,
                    live_refresh: false,
                },
                self.form,
            )),
            None => Err(PageError::SignIn(None)),
        }
    }
}

/// A form with nothing in it but its CSRF token (sign out, revoke).
#[derive(serde::Deserialize)]
pub struct Empty {}

/// A form that names a symbol and an amount of money: an order's (trade
/// page), or the amount set aside for a trigger (triggers page).
#[derive(serde::Deserialize)]
pub struct SymbolAmount {
    #[serde(default)]
    pub txn: String,
    #[serde(default)]
    pub symbol: String,
    #[serde(default)]
    pub amount: String,
}

/// The transaction number for a form about to be rendered: random from
/// 2^32 to 2^52, far above the numbers an API client or a workload counts
/// up from 1, and as likely to meet another form's as two 52-bit draws are
/// to be equal. The store runs a (user, number) pair once.
pub fn new_txn() -> i64 {
    const LOW: u64 = 1 << 32;
    const HIGH: u64 = 1 << 52;
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    (LOW + u64::from_le_bytes(bytes) % (HIGH - LOW)) as i64
}

/// A posted transaction number, as [`new_txn`] makes them.
pub fn parse_txn(text: &str) -> Result<i64, PageError> {
    text.parse::<i64>()
        .ok()
        .filter(|&n| engine::transaction_num::is_client_chosen(n))
        .ok_or_else(|| {
            PageError::bad_request("The form's transaction number is missing or not a number.")
        })
}

/// Where on a form a refusal belongs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Symbol,
    /// The amount, or the price of a trigger.
    Amount,
    /// The form as a whole (nothing pending, a service down).
    Form,
}

impl Field {
    /// The name templates and kept forms call it by.
    pub fn name(self) -> &'static str {
        match self {
            Field::Symbol => "symbol",
            Field::Amount => "amount",
            Field::Form => "form",
        }
    }

    /// The field called `name` (the whole form for any other name).
    pub fn named(name: &str) -> Field {
        match name {
            "symbol" => Field::Symbol,
            "amount" => Field::Amount,
            _ => Field::Form,
        }
    }

    /// The field a refusal code is about.
    pub fn of(code: &str) -> Field {
        match code {
            "invalid_symbol" | "no_holdings" => Field::Symbol,
            "invalid_amount"
            | "malformed_amount"
            | "insufficient_funds"
            | "insufficient_shares"
            | "amount_too_small"
            | "balance_limit" => Field::Amount,
            _ => Field::Form,
        }
    }
}

/// The state of one form on a page: the values to show in it, its
/// transaction number and the refusal to show next to the field it is
/// about.
#[derive(Clone, Debug)]
pub struct FormState {
    pub txn: i64,
    pub symbol: String,
    pub amount: String,
    pub error: Option<(Field, String)>,
}

impl FormState {
    /// An empty form with a fresh transaction number.
    pub fn fresh() -> FormState {
        FormState::with_symbol(String::new())
    }

    pub fn with_symbol(symbol: String) -> FormState {
        FormState {
            txn: new_txn(),
            symbol,
            amount: String::new(),
            error: None,
        }
    }

    /// The form as it was posted, with its refusal and a fresh number: the
    /// refused command ran (and was recorded) under the old one.
    pub fn refused(symbol: &str, amount: &str, error: &ApiError) -> FormState {
        FormState {
            txn: new_txn(),
            symbol: symbol.to_owned(),
            amount: amount.to_owned(),
            error: Some((Field::of(error.code), error.message.clone())),
        }
    }

    /// The form as it was posted, with a problem the page found before
    /// running anything (so the posted number is still unused, but a fresh
    /// one does no harm).
    pub fn invalid(symbol: &str, amount: &str, field: Field, message: &str) -> FormState {
        FormState {
            txn: new_txn(),
            symbol: symbol.to_owned(),
            amount: amount.to_owned(),
            error: Some((field, message.to_owned())),
        }
    }

    /// The message for `field` (templates call this).
    pub fn error_for(&self, field: &str) -> Option<&str> {
        let wanted = Field::named(field);
        self.error
            .as_ref()
            .filter(|(field, _)| *field == wanted)
            .map(|(_, message)| message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_numbers_are_large_and_distinct() {
        let numbers: std::collections::HashSet<i64> = (0..1000).map(|_| new_txn()).collect();
        assert_eq!(numbers.len(), 1000);
        assert!(numbers.iter().all(|n| (1 << 32..1 << 52).contains(n)));
        assert_eq!(parse_txn("4294967297").unwrap(), 4_294_967_297);
        for bad in ["", "0", "-5", "1e9", "x"] {
            assert!(parse_txn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_land_next_to_their_field() {
        assert_eq!(Field::of("insufficient_funds"), Field::Amount);
        assert_eq!(Field::of("invalid_symbol"), Field::Symbol);
        assert_eq!(Field::of("no_pending_buy"), Field::Form);
        assert_eq!(Field::of("quote_unavailable"), Field::Form);
        let error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
            "poor",
        );
        let form = FormState::refused("ABC", "5.00", &error);
        assert_eq!(form.error_for("amount"), Some("poor"));
        assert_eq!(form.error_for("symbol"), None);
        assert_eq!(form.error_for("form"), None);
    }
}
