//! Expiry on time: a pending BUY or SELL that reaches 60 s is released
//! within a couple of seconds of that moment, with no command from its
//! user, so that a trader who walked away gets the reserve back and is
//! told (an `order_expired` notification).
//!
//! The store keeps each account's next expiry beside it, indexed; once a
//! second this task asks for the accounts due and submits one expiry job
//! per user ([`Trading::expire_due`]). Embedded, the server runs it; in a
//! cluster only the leading worker does, so that a due order is expired by
//! one instance and not raced for by all of them. A user's own command
//! still expires what is due before it runs, so the task being late, or
//! not running, never lets an expired order be committed.

use std::sync::Arc;
use std::time::Duration;

use engine::EventKind;
use store::{Clock, Done};
use tracing::Instrument as _;

use crate::service::Trading;
use crate::shutdown::Shutdown;

/// How often the task looks for due orders: the bound, beyond the time a
/// batch takes, on how late an order is expired.
const PERIOD: Duration = Duration::from_secs(1);
/// The most users expired in one pass, so that a pass is one bounded
/// query and a bounded burst of jobs. A full pass is followed by another
/// at once, so a backlog drains without waiting for the next period.
const MAX_USERS_PER_PASS: usize = 256;

/// What one pass of the task did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiryPass {
    /// Users found with orders due.
    pub due: usize,
    /// Users whose orders this pass expired (the others' own commands had
    /// expired them first).
    pub users: usize,
    /// Orders expired.
    pub orders: usize,
}

/// Starts the expiry task; it stops when `shutdown` fires.
pub fn spawn_expiry_task(
    trading: Arc<Trading>,
    clock: Clock,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = tick.tick() => {}
            }
            let passes = async {
                loop {
                    match trading.expire_due(clock(), MAX_USERS_PER_PASS).await {
                        // More may be due than one pass took: go on while
                        // passes are full and make progress.
                        Ok(pass) if pass.due == MAX_USERS_PER_PASS && pass.users > 0 => {}
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "could not expire due orders; the next pass retries");
                            break;
                        }
                    }
                }
            };
            tokio::select! {
                () = shutdown.wait() => break,
                () = passes.instrument(tracing::info_span!("job", job = "expire_orders")) => {}
            }
        }
    })
}

/// How many pending orders an expiry job released.
pub(super) fn orders_expired(done: &Done) -> usize {
    if done.seq.is_none() {
        return 0;
    }
    done.record
        .events()
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::BuyExpired { .. } | EventKind::SellExpired { .. }
            )
        })
        .count()
}
