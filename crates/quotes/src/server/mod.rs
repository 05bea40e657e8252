//! The quote server DayTrader ships for development, tests and benchmarks:
//! it speaks the legacy protocol, with prices, latency and faults chosen by
//! its configuration.

mod core;
mod fault;
mod tcp;

pub use self::core::{InvalidFaultRate, PriceMode, QuoteServerConfig, QuoteServerCore, Response};
pub use self::tcp::{READ_TIMEOUT, serve};
