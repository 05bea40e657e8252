//! Failed sign-ins slow further tries, counted per user name and per
//! client address in the shared cache, so guessing is slow whichever
//! instance the guesses reach.
//!
//! There is no lock-out: after a few free failures each further failure
//! makes the next try of that name (or from that address) wait, twice as
//! long each time, up to a ceiling. The ceiling of a user name is short
//! (a minute), so a stranger who types wrong passwords for someone else's
//! name delays its owner by a minute at most, never locks them out; an
//! address's is long (15 minutes), as it slows only whoever guesses from
//! it. A try made while a wait runs is refused without checking the
//! password and does not count. A success clears its name's failures.

use std::time::Duration;

use axum::http::HeaderMap;
use engine::UserId;

use crate::state::AppState;
use crate::web::error::PageError;

/// How failures are counted against one kind of key.
struct Rule {
    /// Failures that cost no wait (typing mistakes).
    free: i64,
    /// The longest wait one failure imposes.
    ceiling: Duration,
    /// How long failures are remembered after the first.
    window: Duration,
}

/// Per user name: a short ceiling, so nobody can lock an owner out.
const PER_USER: Rule = Rule {
    free: 3,
    ceiling: Duration::from_secs(60),
    window: Duration::from_secs(3600),
};
/// Per client address: more free failures (several people may share an
/// address) and a long ceiling (it slows the guesser alone).
const PER_ADDRESS: Rule = Rule {
    free: 10,
    ceiling: Duration::from_secs(15 * 60),
    window: Duration::from_secs(3600),
};

impl Rule {
    /// The wait after the `failures`-th failure: none while free, then 1 s
    /// doubling each time, up to the ceiling.
    fn wait_after(&self, failures: i64) -> Duration {
        let over = failures - self.free;
        if over <= 0 {
            return Duration::ZERO;
        }
        let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(20);
        Duration::from_secs(1u64 << doublings).min(self.ceiling)
    }
}

/// What a sign-in form says while a try must wait (with 429).
pub fn limited(wait: Duration) -> String {
    // Rounded up: "1 second" must not come back too early.
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    let unit = if seconds == 1 { "second" } else { "seconds" };
    format!(
        "There have been several failed sign-ins for this user name or from this address, \
         so the next try must wait: try again in {seconds} {unit}."
    )
}

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
/// nginx's `$proxy_add_x_forwarded_for`); entries before it are whatever
/// the client claimed. Without a balancer there is none, and only the
/// per-user count applies.
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

    /// Each key failures count against (`login-failures:…`), with its rule.
    fn keys(&self) -> impl Iterator<Item = (String, &'static Rule)> + '_ {
        let account = self
            .account
            .as_ref()
            .map(|account| (format!("login-failures:{account}"), &PER_USER));
        let address = self
            .address
            .as_ref()
            .map(|address| (format!("login-failures:addr:{address}"), &PER_ADDRESS));
        account.into_iter().chain(address)
    }

    /// How long this try must still wait, if it must: the longest wait
    /// running on its name or address. A wait is kept as the moment it
    /// ends, under `<key>:wait`, living as long as the wait.
    pub async fn wait(&self, state: &AppState) -> Result<Option<Duration>, PageError> {
        let now = (state.clock)();
        let mut longest = None;
        for (key, _) in self.keys() {
            let until = state
                .cache
                .get(&format!("{key}:wait"))
                .await
                .map_err(|_| PageError::sessions_unavailable())?
                .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse::<i64>().ok());
            if let Some(until) = until.filter(|&until| until > now) {
                let left = Duration::from_millis((until - now) as u64);
                longest = longest.max(Some(left));
            }
        }
        Ok(longest)
    }

    /// Counts a failure and starts the wait it earns.
    pub async fn failed(&self, state: &AppState) {
        let now = (state.clock)();
        for (key, rule) in self.keys() {
            let failures = match state.cache.incr_with_ttl(&key, rule.window).await {
                Ok(failures) => failures,
                Err(error) => {
                    tracing::warn!(%error, "could not count a failed sign-in");
                    continue;
                }
            };
            let wait = rule.wait_after(failures);
            if wait.is_zero() {
                continue;
            }
            let until = (now + wait.as_millis() as i64).to_string();
            let wait_key = format!("{key}:wait");
            if let Err(error) = state.cache.set(&wait_key, until.as_bytes(), wait).await {
                tracing::warn!(%error, "could not start a sign-in wait");
            }
        }
    }

    /// Forgets the account's failures and wait (the address's stay).
    pub async fn succeeded(&self, state: &AppState) {
        let Some((key, _)) = self.keys().next().filter(|_| self.account.is_some()) else {
            return;
        };
        for key in [format!("{key}:wait"), key] {
            if let Err(error) = state.cache.delete(&key).await {
                tracing::warn!(%error, "could not clear the failed sign-ins of an account");
            }
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

    #[test]
    fn waits_grow_from_one_second_to_a_ceiling() {
        let waits: Vec<u64> = (1..=12).map(|n| PER_USER.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(PER_USER.wait_after(i64::MAX), PER_USER.ceiling);
        assert_eq!(PER_ADDRESS.wait_after(10), Duration::ZERO);
        assert_eq!(PER_ADDRESS.wait_after(11), Duration::from_secs(1));
        assert_eq!(PER_ADDRESS.wait_after(1000), Duration::from_secs(900));
    }
}
