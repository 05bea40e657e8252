//! DayTrader's quotes: the legacy quote service's wire protocol, a client
//! that validates every reply and bounds its waiting (timeouts, retries,
//! hedged requests), the per-symbol cache with single-flight, and the quote
//! server DayTrader ships for development, tests and benchmarks. In a
//! cluster, [`SharedQuoteLoader`] puts the cache the instances share
//! (Redis) behind the in-process one.
//!
//! Prices are [`engine::Money`] (integer cents) everywhere; floating point
//! appears only in latency and fault-rate draws.

mod cache;
mod client;
mod clock;
mod error;
mod latency;
mod price;
mod prng;
pub mod protocol;
pub mod server;
mod shared;
mod source;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use cache::{DEFAULT_CACHE_TTL, Origin, Quote, QuoteCache, QuoteLoader};
pub use client::{COST_PER_REQUEST_CENTS, ClientConfig, Fetched, QuoteClient};
pub use error::QuoteError;
pub use latency::LatencyProfile;
pub use price::{RandomWalk, fixed_price, fnv1a_32};
pub use protocol::{QuoteReply, parse_reply};
pub use shared::SharedQuoteLoader;
pub use source::{
    BuiltinConfig, BuiltinPrices, InvalidQuoteServer, QuoteServerSetting, QuoteSource,
};

/// Locks a mutex whose data stays consistent even if a holder panicked:
/// every critical section in this crate is a single insert, remove or
/// generator step, so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
