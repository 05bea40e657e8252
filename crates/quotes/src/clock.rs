//! The wall clock, in the Unix milliseconds the protocol and the audit log
//! use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is set before 1970.
pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// What is left of the life of a price fetched at `fetched_at_ms` that is
/// fresh for `ttl`; zero once it is over. A price from the future (another
/// instance's clock runs ahead of ours) counts as just fetched, so it never
/// lives longer than `ttl`.
pub(crate) fn remaining_life(fetched_at_ms: i64, ttl: Duration) -> Duration {
    let age_ms = wall_clock_ms().saturating_sub(fetched_at_ms).max(0);
    ttl.saturating_sub(Duration::from_millis(age_ms.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_price_lives_for_the_ttl_from_when_it_was_fetched() {
        let now = wall_clock_ms();
        let fresh = remaining_life(now, TTL);
        assert!(
            fresh <= TTL && fresh > TTL - Duration::from_secs(1),
            "{fresh:?}"
        );
        let older = remaining_life(now - 50_000, TTL);
        assert!(
            older <= Duration::from_secs(10) && older > Duration::from_secs(9),
            "{older:?}"
        );
        assert_eq!(remaining_life(now - 60_000, TTL), Duration::ZERO);
        assert_eq!(remaining_life(0, TTL), Duration::ZERO);
        assert_eq!(
            remaining_life(now + 3_600_000, TTL),
            TTL,
            "never beyond the TTL"
        );
    }
}
