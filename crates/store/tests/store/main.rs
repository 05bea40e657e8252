//! The store through its public API, on both back ends: each case is
//! written once against a [`fixture::Fixture`] and runs on SQLite and on
//! PostgreSQL (a fresh database per test, so tests run in parallel).
//! PostgreSQL-only behaviour (several instances on one database, waiting
//! for the database, leadership) is in `postgres`.

mod fixture;

mod accounts;
mod commands;
mod expiry;
mod log;
mod notifications;
mod postgres;
mod prices;
mod sqlite;
