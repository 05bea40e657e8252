//! The quotes crate end to end: the TCP server and the client over real
//! sockets on 127.0.0.1, the client's timeouts, retries and hedging, and the
//! cache, alone and shared between instances through Redis. One test
//! binary, so it links once.

mod cache;
mod client;
mod helpers;
mod metrics;
mod server;
mod shared;
