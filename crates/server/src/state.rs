//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Auth;
use crate::trading::Trading;

#[derive(Clone)]
pub struct AppState {
    pub trading: Arc<Trading>,
    pub auth: Arc<Auth>,
    pub instance_id: Arc<str>,
    pub metrics: PrometheusHandle,
    /// The cache shared between instances, when there is one.
    pub cache: Option<cache::Cache>,
    /// The wall clock in Unix ms (the store's, so that reads and writes
    /// agree on what has expired).
    pub clock: store::Clock,
}
