//! The HTTP routes, one module per resource.

pub mod commands;
pub mod health;
pub mod log;
pub mod notifications;
pub mod quotes;
pub mod users;
