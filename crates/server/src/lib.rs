//! DayTrader's HTTP service: the JSON API and the web pages over the
//! trading service, with authentication, sessions, health, metrics and the
//! OpenAPI document.

pub mod admin_token;
pub mod api;
pub mod app;
pub mod auth;
pub mod body_deadline;
pub mod demo;
pub mod error;
pub mod history;
pub mod respond;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod worker;

pub use app::{Running, StartError, start};
pub use settings::Settings;
