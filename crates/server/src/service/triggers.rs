//! The trigger engine of one process: every price it fetches fires the
//! triggers that price satisfies; the leader also refreshes the prices of
//! symbols with armed triggers.

use std::sync::Arc;
use store::Reads;

use engine::UserId;
use tracing::Instrument as _;

use crate::service::Trading;
use crate::shutdown::Shutdown;

/// The trigger engine of one process: every price this process fetches
/// fires the triggers it satisfies; with `refresh`, the prices of symbols
/// with armed triggers are also refreshed on that period (through the
/// cache, so at most once per cache lifetime per symbol). Embedded, one
/// process does both; in a cluster every instance fires on its own fetches
/// and only the leading worker refreshes. Each job runs in a span naming
/// it, so that whatever it logs (the store, the quote client, the cache)
/// says which job it was part of.
pub fn spawn_trigger_engine(
    trading: Arc<Trading>,
    refresh: Option<std::time::Duration>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let mut prices = trading.quotes().subscribe();
    let refresher = UserId::parse("daytrader-triggers").expect("valid id");
    tokio::spawn(async move {
        // Without a refresh the select below never polls the timer, so its
        // period does not matter.
        let mut tick =
            tokio::time::interval(refresh.unwrap_or(std::time::Duration::from_secs(86_400)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                price = prices.recv() => match price {
                    Ok((symbol, price)) => {
                        trading.announce_price(symbol, price);
                        let job = tracing::info_span!("job", job = "fire_triggers", %symbol, %price);
                        async {
                            if let Err(error) = trading.fire_triggers(symbol, price).await {
                                tracing::warn!(%error, "could not fire triggers; the next refresh retries");
                            }
                        }
                        .instrument(job)
                        .await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        let job = tracing::info_span!("job", job = "recheck_triggers", missed);
                        async {
                            tracing::warn!("the trigger engine fell behind; re-checking from cached prices");
                            for symbol in trading.reader().armed_symbols().await.unwrap_or_default() {
                                if let Some(quote) = trading.quotes().peek(symbol)
                                    && let Err(error) = trading.fire_triggers(symbol, quote.price).await
                                {
                                    tracing::warn!(%error, %symbol, "could not fire triggers");
                                }
                            }
                        }
                        .instrument(job)
                        .await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick(), if refresh.is_some() => {
                    let job = tracing::info_span!("job", job = "refresh_armed_prices");
                    async {
                        if let Err(error) = trading.refresh_armed_prices(&refresher).await {
                            tracing::warn!(%error, "could not refresh the prices of armed triggers");
                        }
                    }
                    .instrument(job)
                    .await;
                }
            }
        }
    })
}
