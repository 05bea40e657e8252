//! Whether Redis is usable, as the last operation or probe saw it: what
//! `status()` reports, what the `cache_up` gauge shows, and what makes
//! operations fail fast during an outage instead of each waiting out its
//! timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Whether a cache is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    Up,
    /// Unusable since `since` (wall clock): operations fail with
    /// [`crate::CacheError::Unavailable`] and callers go around the cache.
    Down {
        since: SystemTime,
        reason: String,
    },
}

/// One Redis cache's health. Transitions are logged once each, not once
/// per failed call, so an outage is two log lines however busy the
/// instance is.
pub(crate) struct Health {
    /// The namespace of the cache, to tell caches apart in the logs.
    prefix: Box<str>,
    /// Mirrors `State::Up`, so that the hot path (a success while up) reads
    /// an atomic instead of taking the lock.
    up: AtomicBool,
    state: Mutex<State>,
}

enum State {
    /// Never connected yet. Unlike `Down`, operations still try: nothing
    /// has failed, and the first connection is usually a millisecond away.
    Connecting {
        since: SystemTime,
    },
    Up,
    Down {
        since: SystemTime,
        reason: String,
    },
}

impl Health {
    pub(crate) fn new(prefix: &str) -> Health {
        metrics::gauge!("cache_up").set(0.0);
        Health {
            prefix: prefix.into(),
            up: AtomicBool::new(false),
            state: Mutex::new(State::Connecting {
                since: SystemTime::now(),
            }),
        }
    }

    pub(crate) fn status(&self) -> CacheStatus {
        match &*self.state() {
            State::Up => CacheStatus::Up,
            State::Connecting { since } => CacheStatus::Down {
                since: *since,
                reason: "connecting to Redis".to_owned(),
            },
            State::Down { since, reason } => CacheStatus::Down {
                since: *since,
                reason: reason.clone(),
            },
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Why operations should not even try, during an outage; `None` when
    /// they should.
    pub(crate) fn outage(&self) -> Option<String> {
        if self.is_up() {
            return None;
        }
        match &*self.state() {
            State::Down { reason, .. } => Some(reason.clone()),
            State::Up | State::Connecting { .. } => None,
        }
    }

    /// Redis answered.
    pub(crate) fn answered(&self) {
        if self.is_up() {
            return;
        }
        let mut state = self.state();
        match &*state {
            State::Up => return,
            State::Connecting { .. } => {
                tracing::info!(prefix = %self.prefix, "connected to Redis: the shared cache is in use");
            }
            State::Down { since, .. } => {
                let down_for = SystemTime::now().duration_since(*since).unwrap_or_default();
                tracing::info!(prefix = %self.prefix, ?down_for, "Redis is back: the shared cache is in use again");
            }
        }
        *state = State::Up;
        self.up.store(true, Ordering::Release);
        metrics::gauge!("cache_up").set(1.0);
    }

    /// Redis could not be used, for `reason`.
    pub(crate) fn failed(&self, reason: &str) {
        let mut state = self.state();
        match &*state {
            State::Down { .. } => return,
            State::Up => {
                tracing::warn!(prefix = %self.prefix, %reason, "Redis is down: going around the shared cache until it is back");
            }
            State::Connecting { .. } => {
                tracing::warn!(prefix = %self.prefix, %reason, "cannot reach Redis: going around the shared cache until it answers");
            }
        }
        *state = State::Down {
            since: SystemTime::now(),
            reason: reason.to_owned(),
        };
        self.up.store(false, Ordering::Release);
        metrics::gauge!("cache_up").set(0.0);
    }

    /// The state stays consistent if a holder panicked: every critical
    /// section is a single assignment.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down_since(status: CacheStatus) -> (SystemTime, String) {
        match status {
            CacheStatus::Down { since, reason } => (since, reason),
            CacheStatus::Up => panic!("expected down"),
        }
    }

    #[test]
    fn tries_while_connecting_and_fails_fast_only_once_down() {
        let health = Health::new("t:");
        assert!(!health.is_up());
        assert_eq!(down_since(health.status()).1, "connecting to Redis");
        assert_eq!(health.outage(), None, "nothing has failed yet");

        health.answered();
        assert!(health.is_up());
        assert_eq!(health.status(), CacheStatus::Up);
        assert_eq!(health.outage(), None);

        health.failed("connection refused");
        assert_eq!(health.outage().as_deref(), Some("connection refused"));
        let (since, reason) = down_since(health.status());
        assert_eq!(reason, "connection refused");

        // Further failures do not move the start of the outage.
        health.failed("timed out");
        assert_eq!(down_since(health.status()), (since, reason));

        health.answered();
        assert_eq!(health.status(), CacheStatus::Up);
        assert_eq!(health.outage(), None);
    }
}
