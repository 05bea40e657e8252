//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::api::summaries::Summaries;
use crate::auth::Auth;
use crate::service::Trading;

#[derive(Clone)]
pub struct AppState {
    pub trading: Arc<Trading>,
    pub auth: Arc<Auth>,
    pub instance_id: Arc<str>,
    pub metrics: PrometheusHandle,
    /// The cache shared between instances: Redis in a cluster, this
    /// process's memory when embedded (one instance shares with itself).
    /// Sessions, sign-in counters and the page cache live here.
    pub cache: cache::Cache,
    /// The wall clock in Unix ms (the store's, so that reads and writes
    /// agree on what has expired).
    pub clock: store::Clock,
    /// Summaries rendered by this instance, by account version.
    pub summaries: Arc<Summaries>,
    /// The live event streams' settings.
    pub events: crate::settings::EventSettings,
    /// Fires when the instance stops: long-lived responses (the event
    /// streams) end then, so that a graceful stop does not wait on them.
    pub shutdown: crate::shutdown::Shutdown,
}
