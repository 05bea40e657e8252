//! DayTrader's HTTP service: the JSON API over the trading service, with
//! authentication, health, metrics and the OpenAPI document.

pub mod admin_token;
pub mod app;
pub mod auth;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod trading;
pub mod views;
pub mod worker;

pub use app::{Running, StartError, start};
pub use settings::Settings;
