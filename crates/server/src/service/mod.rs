//! The trading service: the path every command takes, whichever door it
//! came in by (the JSON API in `crate::api`, the web pages in
//! `crate::web`). It gets the price a command needs (before any
//! transaction, so no transaction ever waits on the quote service), hands
//! the command to the store's group commit, counts it, and answers a
//! [`CommandOutcome`] that each door only renders.

mod dumplog;
pub mod events;
mod expiry;
pub mod money;
mod outcome;
mod triggers;

use engine::{CommandRequest, EventKind, Money, Symbol, UserId};
use quotes::{Origin, Quote, QuoteCache, QuoteClient, QuoteError, QuoteLoader, SharedQuoteLoader};
use store::{
    Done, Job, QuoteFetch, QuoteUse, Reader, Reads, Record, Store, StoreError, Work, Writes,
};

pub use self::dumplog::{Dump, dump_log};
pub use self::events::Publisher;
pub use self::expiry::{ExpiryPass, spawn_expiry_task};
pub use self::outcome::CommandOutcome;
pub use self::triggers::spawn_trigger_engine;

/// How many history lines a summary carries (the API's and the
/// dashboard's).
pub const SUMMARY_HISTORY: usize = 10;

/// What can keep a command from running (as opposed to running and being
/// refused, which is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Quote(#[from] QuoteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transaction number was first used for another kind of step (a
    /// registration); its first outcome cannot answer a command.
    #[error("transaction number {0} was already used for another kind of step")]
    NumberReused(i64),
}

/// Where a miss of the in-process quote cache goes: straight to the quote
/// service (embedded), or through the cache the cluster shares, which makes
/// one request per symbol for all instances.
pub enum Loader {
    Direct(QuoteClient),
    Shared(SharedQuoteLoader),
}

impl QuoteLoader for Loader {
    async fn load(&self, symbol: Symbol, user: &UserId) -> Result<Quote, QuoteError> {
        match self {
            Loader::Direct(client) => client.load(symbol, user).await,
            Loader::Shared(shared) => shared.load(symbol, user).await,
        }
    }
}

pub struct Trading {
    store: Store,
    reader: Reader,
    quotes: QuoteCache<Loader>,
    events: Publisher,
}

impl Trading {
    /// The service over `store`, publishing what happens on `bus`.
    pub fn new(store: Store, quotes: QuoteCache<Loader>, bus: cache::EventBus) -> Trading {
        let reader = store.reader();
        Trading {
            events: Publisher::new(bus, reader.clone()),
            store,
            reader,
            quotes,
        }
    }

    /// What the live event streams are told.
    pub fn events(&self) -> &Publisher {
        &self.events
    }

    /// Every store submission of the service goes through here, so that
    /// the live event streams hear of every committed step, whatever job it
    /// was (a command, a price firing triggers, any later kind): what to
    /// publish is derived from what the store answered.
    async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        let user = job.user.clone();
        let done = self.store.submit(job).await?;
        if let Some(user) = &user {
            self.events.published(user, &done);
        }
        Ok(done)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    pub fn quotes(&self) -> &QuoteCache<Loader> {
        &self.quotes
    }

    /// Runs one command, recording it with its outcome, and counts it in
    /// `commands_total`. `idem_key` is the client's transaction number.
    pub async fn execute(
        &self,
        request: CommandRequest,
        idem_key: Option<i64>,
    ) -> Result<CommandOutcome, ServiceError> {
        let name = request.name;
        let user = request.user.clone();
        // A command refused for its amount needs no price: don't pay for one.
        let symbol = request.command().ok().and_then(|c| c.price_symbol());
        let quote = match (symbol, &user) {
            (Some(symbol), Some(user)) => Some(quote_use(self.quotes.get(symbol, user).await?)),
            _ => None,
        };
        let job = Job {
            user: user.clone(),
            idem_key,
            work: Work::Command { request, quote },
        };
        let done = self.submit(job).await?;
        if !done.duplicate {
            count_fired_triggers(&done.record);
        }
        let outcome = CommandOutcome::of(name, user, done)?;
        outcome.count();
        Ok(outcome)
    }

    /// Registers a trader from the web pages: their empty account and their
    /// password's hash in one atomic step, run once per form submission
    /// (`txn`). A taken user id is [`store::JobError::UserTaken`].
    pub async fn register(
        &self,
        user: UserId,
        password_hash: String,
        txn: i64,
    ) -> Result<Done, ServiceError> {
        let job = Job {
            user: Some(user),
            idem_key: Some(txn),
            work: Work::Register { password_hash },
        };
        Ok(self.submit(job).await?)
    }

    /// The current price of `symbol` for a read that is not a command. A
    /// fetch it causes is still recorded, since it cost money.
    pub async fn quote(
        &self,
        symbol: Symbol,
        for_user: &UserId,
        recorded_as: Option<UserId>,
    ) -> Result<Quote, ServiceError> {
        let quote = self.quotes.get(symbol, for_user).await?;
        if let Origin::Fetched(fetched) = &quote.origin {
            let job = Job {
                user: recorded_as,
                idem_key: None,
                work: Work::Quote(fetch_record(fetched)),
            };
            self.submit(job).await?;
        }
        Ok(quote)
    }

    /// A new price is known for `symbol`: fire every trigger it satisfies,
    /// each user's in its own atomic step. Returns how many users' triggers
    /// fired.
    pub async fn fire_triggers(&self, symbol: Symbol, price: Money) -> Result<usize, StoreError> {
        let users = self
            .reader
            .users_with_firing_triggers(symbol, price)
            .await?;
        let jobs = users.into_iter().map(|user| {
            self.submit(Job {
                user: Some(user),
                idem_key: None,
                work: Work::Price { symbol, price },
            })
        });
        let mut fired = 0;
        for done in futures::future::join_all(jobs).await {
            let done = done?;
            fired += usize::from(done.seq.is_some());
            count_fired_triggers(&done.record);
        }
        Ok(fired)
    }

    /// A new price of `symbol` was fetched: the streams watching the symbol
    /// hear of it.
    pub fn announce_price(&self, symbol: Symbol, price: Money) {
        let at = self.quotes.peek(symbol).map_or_else(
            || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as i64)
            },
            |quote| quote.fetched_at_ms,
        );
        self.events.quote(symbol, price, at);
    }

    /// Expires the pending orders due at `now_ms` of up to `limit` users,
    /// each user's in its own atomic step through the group commit, so
    /// that its audit entry, its reserve and its notification are written
    /// exactly as when a command of the user's expires them (but stamped
    /// when the orders ran out). A user whose command got there first
    /// writes nothing.
    pub async fn expire_due(&self, now_ms: i64, limit: usize) -> Result<ExpiryPass, StoreError> {
        let users = self.reader.users_with_orders_due(now_ms, limit).await?;
        let due = users.len();
        // Through the service's own submission, so that the expiry's
        // notification goes out on the user's live stream.
        let jobs = users.into_iter().map(|user| async move {
            let done = self
                .submit(Job {
                    user: Some(user.clone()),
                    idem_key: None,
                    work: Work::Expire,
                })
                .await?;
            Ok::<_, StoreError>((user, done))
        });
        let mut pass = ExpiryPass {
            due,
            ..ExpiryPass::default()
        };
        for result in futures::future::join_all(jobs).await {
            let (user, done) = result?;
            let orders = expiry::orders_expired(&done);
            if orders > 0 {
                tracing::info!(%user, orders, expired_at_ms = done.ts_ms, "expired pending orders");
                pass.users += 1;
                pass.orders += orders;
            }
        }
        if pass.orders > 0 {
            metrics::counter!("orders_expired_total").increment(pass.orders as u64);
        }
        Ok(pass)
    }

    /// Fetches (through the cache) the price of every symbol with an armed
    /// trigger; each new price fires triggers through the cache's
    /// subscription. `refresher` is the id sent to the quote service.
    pub async fn refresh_armed_prices(&self, refresher: &UserId) -> Result<(), ServiceError> {
        for symbol in self.reader.armed_symbols().await? {
            self.quote(symbol, refresher, None).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Counts in `triggers_fired_total` every trigger that fired in a step:
/// those a new price fired, and those that fired at once as they were
/// armed (inside the SET_*_TRIGGER command), which count the same.
fn count_fired_triggers(record: &Record) {
    let fired = record
        .events()
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::BuyTriggerExecuted { .. }
                    | EventKind::BuyTriggerUnfilled { .. }
                    | EventKind::SellTriggerExecuted { .. }
            )
        })
        .count();
    if fired > 0 {
        metrics::counter!("triggers_fired_total").increment(fired as u64);
    }
}

fn fetch_record(fetched: &quotes::Fetched) -> QuoteFetch {
    QuoteFetch {
        symbol: fetched.symbol,
        price: fetched.price,
        user: fetched.user.clone(),
        quote_server_time_ms: fetched.quote_server_time_ms,
        cryptokey: fetched.cryptokey.clone(),
    }
}

fn quote_use(quote: Quote) -> QuoteUse {
    match &quote.origin {
        Origin::Fetched(fetched) => QuoteUse::Fetched(fetch_record(fetched)),
        Origin::Cached => QuoteUse::Cached {
            symbol: quote.symbol,
            price: quote.price,
        },
    }
}
