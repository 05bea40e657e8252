//! Failed sign-ins are counted per user name and per client address in the
//! shared cache (fixed 15-minute windows), so guessing a password is slow
//! whichever instance the guesses reach. A success clears its user's count.

use std::time::Duration;

use axum::http::HeaderMap;
use engine::UserId;

use crate::state::AppState;
use crate::web::error::PageError;

const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of one user name within a window before its sign-ins pause.
const PER_USER: i64 = 5;
/// Failures from one client address within a window: more, as several
/// people may share an address.
const PER_ADDRESS: i64 = 20;

/// What a sign-in form says while its attempts are paused (with 429).
pub const LIMITED: &str = "There have been too many failed sign-ins for this account or from \
    this address, so signing in is paused for your safety. Try again in 15 minutes.";

/// Who a sign-in attempt is counted against.
pub struct Attempt {
    /// The account tried: `trader:<id>` or `supervisor`; `None` for a name
    /// that cannot be a user id (no account to protect).
    account: Option<String>,
    /// The client address, as the balancer reports it.
    address: Option<String>,
}

/// The client's address: the last `X-Forwarded-For` entry, the one the
/// balancer in front of the instances added (HAProxy's `option forwardfor`,
/// nginx's `$proxy_add_x_forwarded_for`). Without a balancer there is none,
/// and only the per-user count applies.
fn client_address(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|entry| !entry.is_empty())
        .map(str::to_owned)
}

impl Attempt {
    /// A trader's sign-in with the name they typed.
    pub fn trader(user: Option<&UserId>, headers: &HeaderMap) -> Attempt {
        Attempt {
            account: user.map(|user| format!("trader:{user}")),
            address: client_address(headers),
        }
    }

    /// A sign-in with the admin token.
    pub fn supervisor(headers: &HeaderMap) -> Attempt {
        Attempt {
            account: Some("supervisor".to_owned()),
            address: client_address(headers),
        }
    }

    fn account_key(&self) -> Option<String> {
        let account = self.account.as_ref()?;
        Some(format!("login-failures:{account}"))
    }

    fn keys(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        let account = self.account_key().map(|key| (key, PER_USER));
        let address = self
            .address
            .as_ref()
            .map(|address| (format!("login-failures:addr:{address}"), PER_ADDRESS));
        account.into_iter().chain(address)
    }

    /// Whether this account or address has failed too often to try now.
    pub async fn limited(&self, state: &AppState) -> Result<bool, PageError> {
        for (key, limit) in self.keys() {
            let count = state
                .cache
                .get(&key)
                .await
                .map_err(|_| PageError::sessions_unavailable())?
                .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse::<i64>().ok())
                .unwrap_or(0);
            if count >= limit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts a failure.
    pub async fn failed(&self, state: &AppState) {
        for (key, _) in self.keys() {
            if let Err(error) = state.cache.incr_with_ttl(&key, WINDOW).await {
                tracing::warn!(%error, "could not count a failed sign-in");
            }
        }
    }

    /// Forgets the account's failures (the address's stay counted).
    pub async fn succeeded(&self, state: &AppState) {
        let Some(key) = self.account_key() else {
            return;
        };
        if let Err(error) = state.cache.delete(&key).await {
            tracing::warn!(%error, "could not clear the failed sign-ins of an account");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_address_is_the_one_the_balancer_added() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_address(&headers), None);
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.0.0.1"),
        );
        assert_eq!(client_address(&headers).as_deref(), Some("10.0.0.1"));
        // HAProxy adds a header of its own after the client's.
        headers.append("x-forwarded-for", HeaderValue::from_static("192.0.2.7"));
        assert_eq!(client_address(&headers).as_deref(), Some("192.0.2.7"));
    }
}
