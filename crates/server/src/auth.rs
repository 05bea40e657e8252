//! Who is calling: the supervisor (the admin token) or a trader (one of
//! their personal API tokens, made on the web pages). The admin token is
//! compared in constant time, so response timing reveals nothing of it; a
//! personal token is looked up by its SHA-256, so the database holds no
//! usable secret.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use engine::UserId;
use sha2::{Digest, Sha256};
use store::{Reads, TokenHash};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;
use crate::web::session::Who;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// May act for any user and read the global log.
    Supervisor,
    /// May act only for this user.
    User(UserId),
}

impl Principal {
    pub fn may_act_for(&self, user: &UserId) -> bool {
        match self {
            Principal::Supervisor => true,
            Principal::User(me) => me == user,
        }
    }

    /// Refuses with 403 unless this caller may act for `user`.
    pub fn check(&self, user: &UserId) -> Result<(), ApiError> {
        if self.may_act_for(user) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This token may not act for {user}."
            )))
        }
    }

    pub fn check_supervisor(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Principal::Supervisor => Ok(()),
            Principal::User(_) => Err(ApiError::forbidden(format!(
                "Only the supervisor may {what}."
            ))),
        }
    }

    /// The user id sent to the quote service for a fetch this caller causes.
    pub fn quote_user(&self) -> UserId {
        match self {
            Principal::Supervisor => UserId::parse("supervisor").expect("valid id"),
            Principal::User(user) => user.clone(),
        }
    }
}

/// What a bearer token turned out to be, before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer {
    Supervisor,
    /// A personal token: acts for whoever it was made for, if it still
    /// works.
    Personal(TokenHash),
}

/// The secrets requests are checked against.
pub struct Auth {
    admin_token: Vec<u8>,
}

/// Every personal token starts with this, so that one found in a file or
/// a log is recognisable (and a wrong kind of token costs no lookup).
pub const PERSONAL_PREFIX: &str = "dtu_";

impl Auth {
    pub fn new(admin_token: &str) -> Auth {
        Auth {
            admin_token: admin_token.as_bytes().to_vec(),
        }
    }

    /// Whether `token` is the admin token (in constant time).
    pub fn is_supervisor_token(&self, token: &[u8]) -> bool {
        bool::from(token.ct_eq(&self.admin_token))
    }

    /// Reads an `Authorization` header: the supervisor, a personal token to
    /// look up, or 401.
    pub fn bearer(&self, authorization: Option<&[u8]>) -> Result<Bearer, ApiError> {
        let Some(value) = authorization else {
            return Err(ApiError::unauthorized(
                "This needs an Authorization: Bearer <token> header.",
            ));
        };
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("The Authorization header must be: Bearer <token>.")
            })?;
        if self.is_supervisor_token(token) {
            return Ok(Bearer::Supervisor);
        }
        if token.starts_with(PERSONAL_PREFIX.as_bytes()) {
            return Ok(Bearer::Personal(token_hash(token)));
        }
        Err(invalid_token())
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("The token is not valid (or has been revoked).")
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        match state.auth.bearer(header)? {
            Bearer::Supervisor => Ok(Principal::Supervisor),
            Bearer::Personal(hash) => state
                .trading
                .reader()
                .api_token_user(hash)
                .await?
                .map(Principal::User)
                .ok_or_else(invalid_token),
        }
    }
}

/// A caller by their token, or else by their web session: the pages of
/// the same origin read the event stream through `EventSource`, which sends
/// the session cookie and cannot send headers. A cookie alone can only
/// read (the endpoints taking it are `GET`s that change nothing), so it
/// needs no CSRF check; other origins cannot read the answer (no CORS).
pub struct TokenOrSession(pub Principal);

impl FromRequestParts<AppState> for TokenOrSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            return Principal::from_request_parts(parts, state)
                .await
                .map(TokenOrSession);
        }
        let session = crate::web::session::Session::load(state, &parts.headers)
            .await
            .map_err(|_| {
                ApiError::unavailable(
                    "sessions_unavailable",
                    "Sessions cannot be read right now; try again, or use an API token.",
                )
            })?;
        match session.map(|session| session.who) {
            Some(Who::Trader(user)) => Ok(TokenOrSession(Principal::User(user))),
            Some(Who::Supervisor) => Ok(TokenOrSession(Principal::Supervisor)),
            Some(Who::Visitor) | None => Err(ApiError::unauthorized(
                "This needs an Authorization: Bearer <token> header, or a signed-in session.",
            )),
        }
    }
}

/// A fresh random secret: 32 bytes from the operating system, hex encoded.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// A new personal API token: the secret to show once, and the hash to keep.
pub fn new_personal_token() -> (String, TokenHash) {
    let token = format!("{PERSONAL_PREFIX}{}", generate_token());
    let hash = token_hash(token.as_bytes());
    (token, hash)
}

fn token_hash(token: &[u8]) -> TokenHash {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_supervisor_from_everyone_else() {
        let auth = Auth::new("s3cret");
        assert_eq!(
            auth.bearer(Some(b"Bearer s3cret")).unwrap(),
            Bearer::Supervisor
        );
        let bad = [
            "Bearer s3cre",
            "Bearer s3cret ",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ];
        for header in bad.map(str::as_bytes) {
            assert_eq!(
                auth.bearer(Some(header)).unwrap_err().status,
                401,
                "{header:?}"
            );
        }
        assert_eq!(auth.bearer(None).unwrap_err().code, "unauthorized");
    }

    #[test]
    fn a_personal_token_is_looked_up_by_its_hash() {
        let auth = Auth::new("s3cret");
        let (token, hash) = new_personal_token();
        assert!(token.starts_with(PERSONAL_PREFIX) && token.len() == 68);
        let header = format!("Bearer {token}");
        assert_eq!(
            auth.bearer(Some(header.as_bytes())).unwrap(),
            Bearer::Personal(hash)
        );
        assert_ne!(hash, new_personal_token().1);
    }

    #[test]
    fn a_trader_acts_only_for_themselves() {
        let me = UserId::parse("me").unwrap();
        let other = UserId::parse("other").unwrap();
        let principal = Principal::User(me.clone());
        assert!(principal.check(&me).is_ok());
        assert_eq!(principal.check(&other).unwrap_err().status, 403);
        assert!(principal.check_supervisor("read the log").is_err());
        assert!(Principal::Supervisor.check(&other).is_ok());
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
