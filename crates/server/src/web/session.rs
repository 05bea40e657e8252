//! Web sessions, kept server-side in the shared cache so that any instance
//! serves any page of a signed-in trader.
//!
//! The browser holds only a random id in an HttpOnly, SameSite=Lax cookie
//! (Secure when the balancer says the request came over HTTPS). The cache
//! holds the session under the SHA-256 of that id, so a look at Redis
//! yields no cookie that works. Every browser gets a session on its first
//! page, before signing in, so that the sign-in and registration forms have
//! a CSRF secret too; signing in replaces it with a new id and a new
//! secret (no fixation), and signing out deletes it.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::generate_token;
use crate::state::AppState;
use crate::web::error::PageError;

pub const COOKIE_NAME: &str = "dt_session";
/// A visitor's session (before signing in): long enough to fill in a form.
const VISITOR_TTL: Duration = Duration::from_secs(3600);
/// A trader signs in again after this long.
const TRADER_TTL: Duration = Duration::from_secs(8 * 3600);
/// The supervisor's sessions are shorter: they may act for everyone.
const SUPERVISOR_TTL: Duration = Duration::from_secs(3600);
/// A one-time message waits this long for the page it was meant for.
const FLASH_TTL: Duration = Duration::from_secs(60);

/// Who a session belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Who {
    /// Not signed in.
    Visitor,
    Trader(UserId),
    Supervisor,
}

/// What the cache holds for a session.
#[derive(Serialize, Deserialize)]
struct Stored {
    who: Who,
    /// Every form of the session carries it; see [`Session::csrf_matches`].
    csrf: String,
    /// When it started (the server's clock, ms): a trader's sessions
    /// started before their password changed are over
    /// ([`Session::end_all_of`]).
    #[serde(default)]
    started_ms: i64,
}

/// The cache key of the moment before which `user`'s sessions are over.
fn ended_before_key(user: &UserId) -> String {
    format!("sessions-ended-before:{user}")
}

/// A live session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The cache key: the SHA-256 of the cookie's id.
    key: String,
    pub who: Who,
    csrf: String,
}

/// A message shown once, on the page after a redirect.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    /// `success`, `error` or `info`: the alert's style.
    pub kind: String,
    pub text: String,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Flash {
        Flash {
            kind: "success".into(),
            text: text.into(),
        }
    }
}

fn key_of(id: &str) -> String {
    format!("session:{}", hex::encode(Sha256::digest(id.as_bytes())))
}

/// The session id the request's cookie carries.
fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, id)| id)
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request reached the balancer over HTTPS, which decides
/// whether cookies are `Secure`.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

impl Session {
    /// The request's session, if its cookie names a live one.
    pub async fn load(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, PageError> {
        let Some(id) = cookie_id(headers) else {
            return Ok(None);
        };
        let key = key_of(id);
        let stored = state.cache.get(&key).await.map_err(|error| {
            tracing::warn!(%error, "could not read a session");
            PageError::sessions_unavailable()
        })?;
        let Some(stored) = stored.and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
        else {
            return Ok(None);
        };
        if let Who::Trader(user) = &stored.who
            && stored.started_ms < Self::ended_before(state, user).await?
        {
            return Ok(None);
        }
        Ok(Some(Session {
            key,
            who: stored.who,
            csrf: stored.csrf,
        }))
    }

    /// The moment before which `user`'s sessions are over (0 when none
    /// were ended).
    async fn ended_before(state: &AppState, user: &UserId) -> Result<i64, PageError> {
        let bytes = state
            .cache
            .get(&ended_before_key(user))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "could not read when a trader's sessions ended");
                PageError::sessions_unavailable()
            })?;
        Ok(bytes
            .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Ends every session of `user` started until now, on every instance
    /// (their password changed): a session started afterwards, such as
    /// the one the change goes on in, is unaffected. The mark lives as
    /// long as a trader's session can, after which none it ends is left.
    pub async fn end_all_of(state: &AppState, user: &UserId) -> Result<(), PageError> {
        let now = (state.clock)().to_string();
        state
            .cache
            .set(&ended_before_key(user), now.as_bytes(), TRADER_TTL)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "could not end a trader's sessions");
                PageError::sessions_unavailable()
            })
    }

    /// Starts a session for `who` with a new id and CSRF secret; the cookie
    /// to set comes with it.
    pub async fn start(
        state: &AppState,
        who: Who,
        https: bool,
    ) -> Result<(Session, HeaderValue), PageError> {
        let ttl = match who {
            Who::Visitor => VISITOR_TTL,
            Who::Trader(_) => TRADER_TTL,
            Who::Supervisor => SUPERVISOR_TTL,
        };
        let id = generate_token();
        let stored = Stored {
            who,
            csrf: generate_token(),
            started_ms: (state.clock)(),
        };
        let key = key_of(&id);
        let bytes = serde_json::to_vec(&stored).expect("plain data serializes");
        state.cache.set(&key, &bytes, ttl).await.map_err(|error| {
            tracing::warn!(%error, "could not store a session");
            PageError::sessions_unavailable()
        })?;
        let cookie = cookie(&format!("{id}; Max-Age={}", ttl.as_secs()), https);
        let session = Session {
            key,
            who: stored.who,
            csrf: stored.csrf,
        };
        Ok((session, cookie))
    }

    /// Deletes the session; the returned cookie clears the browser's.
    pub async fn end(&self, state: &AppState, https: bool) -> HeaderValue {
        if let Err(error) = state.cache.delete(&self.key).await {
            // It still expires with its TTL; the browser forgets it now.
            tracing::warn!(%error, "could not delete a session");
        }
        if let Err(error) = state.cache.delete(&self.flash_key()).await {
            tracing::warn!(%error, "could not delete a session's message");
        }
        cookie("; Max-Age=0", https)
    }

    /// The key it is cached under, which things kept for this session only
    /// (a message, a refused form) are keyed by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The secret every form of this session carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's token is this session's secret (in constant time,
    /// so timing tells nothing of it).
    pub fn csrf_matches(&self, token: &str) -> bool {
        bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    pub fn trader(&self) -> Option<&UserId> {
        match &self.who {
            Who::Trader(user) => Some(user),
            _ => None,
        }
    }

    fn flash_key(&self) -> String {
        format!("flash:{}", self.key)
    }

    /// Keeps a message for the next page this session shows. Losing it
    /// (the cache is down) loses a courtesy, not data.
    pub async fn flash(&self, state: &AppState, flash: Flash) {
        let bytes = serde_json::to_vec(&flash).expect("plain data serializes");
        if let Err(error) = state.cache.set(&self.flash_key(), &bytes, FLASH_TTL).await {
            tracing::warn!(%error, "could not keep a message for the next page");
        }
    }

    /// The message kept for this page, if any; it is shown once.
    pub async fn take_flash(&self, state: &AppState) -> Option<Flash> {
        let key = self.flash_key();
        let bytes = state.cache.get(&key).await.ok().flatten()?;
        if let Err(error) = state.cache.delete(&key).await {
            tracing::warn!(%error, "could not clear a shown message");
        }
        serde_json::from_slice(&bytes).ok()
    }
}

/// `dt_session=<value>` with the attributes every session cookie has.
fn cookie(value: &str, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("ids and attributes are visible ASCII")
}

/// A response that also sets (or clears) the session cookie.
pub fn with_cookie(response: impl IntoResponse, cookie: HeaderValue) -> Response {
    let mut response = response.into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// The request's session, if it has one: for pages anyone may see.
pub struct Visitor(pub Option<Session>);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Session::load(state, &parts.headers).await.map(Visitor)
    }
}

/// A signed-in trader; anyone else is sent to sign in (the supervisor to
/// the admin page).
pub struct Trader {
    pub session: Session,
    pub user: UserId,
    /// The page is fetched by its own script to bring it up to date
    /// ([`crate::web::live`]), not shown by the browser.
    pub live_refresh: bool,
}

impl FromRequestParts<AppState> for Trader {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let session = Session::load(state, &parts.headers).await?;
        // A page asked for comes back after signing in; a form does not
        // (it was posted by a session that has ended).
        let sign_in = || {
            let next = (parts.method == Method::GET)
                .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
                .flatten();
            PageError::SignIn(next)
        };
        match session {
            Some(session) => match session.who.clone() {
                Who::Trader(user) => Ok(Trader {
                    session,
                    user,
                    live_refresh: crate::web::live::is_refresh(&parts.headers),
                }),
                Who::Supervisor => Err(PageError::Redirect("/admin")),
                Who::Visitor => Err(sign_in()),
            },
            None => Err(sign_in()),
        }
    }
}

/// The supervisor, signed in with the admin token. A trader is told the
/// page is not theirs; anyone else is sent to the admin sign-in.
pub struct Supervisor {
    pub session: Session,
}

impl FromRequestParts<AppState> for Supervisor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match Session::load(state, &parts.headers).await? {
            Some(session) if session.who == Who::Supervisor => Ok(Supervisor { session }),
            Some(session) if session.trader().is_some() => Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This page is for the supervisor",
                "You are signed in as a trader. The admin pages need the supervisor's token: \
                 sign out, then sign in on the admin page.",
            )),
            _ => Err(PageError::Redirect("/admin/login")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn finds_its_cookie_among_others_and_refuses_malformed_ids() {
        let id = "a".repeat(64);
        assert_eq!(
            cookie_id(&headers(&format!("theme=dark; {COOKIE_NAME}={id}; x=1"))),
            Some(id.as_str())
        );
        for bad in [
            format!("{COOKIE_NAME}=short"),
            format!("{COOKIE_NAME}={}", "g".repeat(64)),
            format!("other{COOKIE_NAME}={id}"),
            String::new(),
        ] {
            assert_eq!(cookie_id(&headers(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_http_only_same_site_and_secure_over_https() {
        let plain = cookie("abc; Max-Age=5", false);
        assert_eq!(
            plain,
            "dt_session=abc; Max-Age=5; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(cookie("abc", true).to_str().unwrap().ends_with("; Secure"));
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(is_https(&forwarded));
        assert!(!is_https(&HeaderMap::new()));
    }

    #[test]
    fn the_cache_key_does_not_reveal_the_id() {
        let id = generate_token();
        let key = key_of(&id);
        assert!(key.starts_with("session:") && !key.contains(&id));
        assert_eq!(key, key_of(&id));
    }
}
