//! The trading service: the path every command takes, whichever door it
//! came in by (the JSON API in `crate::api`, the web pages in
//! `crate::web`). It gets the price a command needs (before any
//! transaction, so no transaction ever waits on the quote service), hands
//! the command to the store's group commit, counts it, and answers a
//! [`CommandOutcome`] that each door only renders.

mod dumplog;
pub mod money;
mod outcome;
mod triggers;

use engine::{CommandRequest, Money, Symbol, UserId};
use quotes::{Origin, Quote, QuoteCache, QuoteClient, QuoteError, QuoteLoader, SharedQuoteLoader};
use store::{Done, Job, QuoteFetch, QuoteUse, Reader, Reads, Store, StoreError, Work, Writes};

pub use self::dumplog::{Dump, dump_log};
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
}

impl Trading {
    pub fn new(store: Store, quotes: QuoteCache<Loader>) -> Trading {
        let reader = store.reader();
        Trading {
            store,
            reader,
            quotes,
        }
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
        let done = self.store.submit(job).await?;
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
        Ok(self.store.submit(job).await?)
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
            self.store.submit(job).await?;
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
            self.store.submit(Job {
                user: Some(user),
                idem_key: None,
                work: Work::Price { symbol, price },
            })
        });
        let mut fired = 0;
        for done in futures::future::join_all(jobs).await {
            fired += usize::from(done?.seq.is_some());
        }
        if fired > 0 {
            metrics::counter!("triggers_fired_total").increment(fired as u64);
        }
        Ok(fired)
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
