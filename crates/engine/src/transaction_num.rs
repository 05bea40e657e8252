//! Transaction numbers: the client's and the system's.
//!
//! A transaction number is what a user's audit log files a step under, and
//! a client's number is also the step's idempotency key. Clients choose
//! numbers from 1 to [`MAX_CLIENT`]; the system numbers the steps no client
//! numbered (a command sent without one, the DUMPLOG that
//! `GET /api/v1/log` records, a price fetched for a read) above that, from
//! its own row numbers. The two ranges never meet, so one user's log never
//! holds two different steps under one number.

/// The largest number a client may choose: 2^53 − 1, the largest integer
/// that every JSON reader (JavaScript's included) reads exactly.
pub const MAX_CLIENT: i64 = (1 << 53) - 1;

/// The number the system gives the step it writes as row `seq` (row
/// numbers start at 1): from 2^53 up, unique because row numbers are.
pub fn system_chosen(seq: i64) -> i64 {
    MAX_CLIENT + seq.max(1)
}

/// Whether a client may use `n`.
pub fn is_client_chosen(n: i64) -> bool {
    (1..=MAX_CLIENT).contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ranges_never_meet() {
        assert_eq!(MAX_CLIENT, 9_007_199_254_740_991);
        assert!(is_client_chosen(1) && is_client_chosen(MAX_CLIENT));
        assert!(!is_client_chosen(0) && !is_client_chosen(-1));
        for seq in [1, 2, 1_000_000, i64::MAX - MAX_CLIENT] {
            assert!(!is_client_chosen(system_chosen(seq)), "{seq}");
        }
        assert_eq!(system_chosen(1), 1 << 53);
        assert_ne!(system_chosen(1), system_chosen(2));
    }
}
