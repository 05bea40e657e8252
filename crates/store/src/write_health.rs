//! Whether the store can write, as its last attempts showed.
//!
//! A database can answer every read while refusing every write: a full
//! disk, a PostgreSQL turned read-only. Readiness must see that, or a
//! balancer keeps sending commands to an instance that can only answer 503.
//! Each back end's committer notes how its batches end; while the last one
//! failed, readiness asks the back end to write a probe row, and the first
//! write that succeeds again (a probe's or a batch's) clears the failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::StoreError;

/// Shared by a store's committers and readiness; cheap to clone.
#[derive(Clone, Default)]
pub struct WriteHealth(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Read on every batch: the common case takes no lock.
    failing: AtomicBool,
    why: Mutex<String>,
}

impl WriteHealth {
    /// A write committed.
    pub(crate) fn succeeded(&self) {
        if self.0.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("the database takes writes again");
        }
    }

    /// A write failed. Only a database that refused or could not take the
    /// work counts: a job the store refuses, or data it cannot read, says
    /// nothing about whether writes go through.
    pub(crate) fn failed(&self, error: &StoreError) {
        if let StoreError::Unavailable(why) = error {
            *self.0.why.lock().expect("not poisoned") = why.clone();
            if !self.0.failing.swap(true, Ordering::AcqRel) {
                tracing::warn!(error = %why, "writes fail: reporting not ready until one succeeds");
            }
        }
    }

    /// Why the last write failed, while no write has succeeded since.
    pub fn failing(&self) -> Option<String> {
        self.0
            .failing
            .load(Ordering::Acquire)
            .then(|| self.0.why.lock().expect("not poisoned").clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_write_decides() {
        let health = WriteHealth::default();
        assert_eq!(health.failing(), None);
        health.failed(&StoreError::Corrupt("a bad row".into()));
        assert_eq!(health.failing(), None, "not a write failure");
        health.failed(&StoreError::Unavailable("disk full".into()));
        assert_eq!(health.failing().as_deref(), Some("disk full"));
        health.clone().succeeded();
        assert_eq!(health.failing(), None);
    }
}
