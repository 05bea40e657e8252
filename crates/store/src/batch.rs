//! The engine side of a group commit, shared by every back end.
//!
//! A back end collects the jobs that are waiting, loads the accounts and
//! idempotency records they touch (locking the accounts where the database
//! is shared), hands everything to [`apply`], writes what comes back and
//! commits once. Jobs apply in arrival order, so two jobs of one user in the
//! same batch run one after the other, exactly as in separate transactions.

use std::collections::HashMap;

use engine::{
    Account, ArmedTriggerKey, CommandName, CommandRequest, Context, Money, Symbol, UserId, execute,
    transaction_num,
};

use crate::notification::NewNotification;
use crate::record::{Balance, LogRow, QuoteFetch, QuoteUse, Record};

/// One unit of work for the store: a step of one user (or of the system).
#[derive(Clone, Debug)]
pub struct Job {
    /// `None` only for the global DUMPLOG and for system quote fetches.
    pub user: Option<UserId>,
    /// The client's transaction number: a retry with a number already
    /// executed for this user returns the first outcome instead of running.
    /// Without one, the step is logged under a number of the system's own
    /// ([`engine::transaction_num::system_chosen`]), which no client's can
    /// equal.
    pub idem_key: Option<i64>,
    pub work: Work,
}

#[derive(Clone, Debug)]
pub enum Work {
    /// A command as received, with the price it needs (fetched before the
    /// job was queued, so that no transaction waits for the quote service).
    Command {
        request: CommandRequest,
        quote: Option<QuoteUse>,
    },
    /// A new price is known for `symbol`: fire the user's triggers it
    /// satisfies.
    Price { symbol: Symbol, price: Money },
    /// Record a quote fetched outside any command.
    Quote(QuoteFetch),
    /// A trader registers on the web pages: their empty account and their
    /// credentials are created in one step, so that no account exists
    /// without its password nor a password without its account. Refused
    /// with [`JobError::UserTaken`] when the user id already exists (an
    /// earlier registration, or a first ADD of a workload).
    Register {
        /// The password's PHC string (argon2); the store never sees the
        /// password itself.
        password_hash: String,
    },
    /// Expire the user's pending orders that are due, without a command of
    /// theirs: the orders that ran out first, stamped at the moment they
    /// did (a later job takes any due after them). Writes nothing when
    /// nothing is due, as when a command of the user's expired the orders
    /// first.
    Expire,
}

/// What a job came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The row written, `None` when there was nothing to record (a price
    /// that fired no trigger).
    pub seq: Option<i64>,
    pub txn: i64,
    pub ts_ms: i64,
    /// The step as recorded; for a retried command, as first recorded.
    pub record: Record,
    /// True when the transaction number had already been executed.
    pub duplicate: bool,
    /// The user's account as this step left it, for a command whose answer
    /// shows the whole account (DISPLAY_SUMMARY): its money view is valued
    /// from this copy rather than from the account read back after the
    /// commit. `None` for every other step, and for a retry.
    pub account: Option<Box<Account>>,
}

impl Done {
    /// A step that left nothing to record (a price that fired no trigger).
    fn unrecorded(ts_ms: i64, record: Record) -> Done {
        Done {
            seq: None,
            txn: 0,
            ts_ms,
            record,
            duplicate: false,
            account: None,
        }
    }
}

/// A job the store refuses to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("{0} needs the current price of its symbol, and none was supplied")]
    MissingPrice(CommandName),
    #[error("a {0} job needs a user")]
    MissingUser(&'static str),
    #[error("the user id {0} is taken")]
    UserTaken(UserId),
}

/// A user's account as loaded for the batch.
#[derive(Clone, Debug)]
pub struct LoadedAccount {
    pub account: Account,
    pub version: i64,
}

/// An already executed command, found by its idempotency key.
#[derive(Clone, Debug)]
pub struct PriorRow {
    pub seq: i64,
    pub ts_ms: i64,
    pub txn: i64,
    pub record: Record,
}

/// A row to insert.
#[derive(Clone, Debug)]
pub struct NewRow {
    pub row: LogRow,
    pub idem_key: Option<i64>,
}

/// An account to write back.
#[derive(Clone, Debug)]
pub struct AccountWrite {
    pub user: UserId,
    pub account: Account,
    /// The new version; versions start at 1.
    pub version: i64,
    /// The armed triggers, when they changed in this batch.
    pub triggers: Option<Vec<ArmedTriggerKey>>,
}

impl AccountWrite {
    /// Whether the batch created this account (no row exists yet), as
    /// opposed to changing a loaded one.
    pub fn is_new(&self) -> bool {
        self.version == 1
    }
}

/// The credentials of a trader who registered in this batch.
#[derive(Clone, Debug)]
pub struct NewCredentials {
    pub user: UserId,
    pub password_hash: String,
    pub created_ms: i64,
}

/// Everything a batch writes, and each job's answer in job order.
#[derive(Debug, Default)]
pub struct Applied {
    pub rows: Vec<NewRow>,
    pub accounts: Vec<AccountWrite>,
    /// Written with the accounts the same registrations created.
    pub credentials: Vec<NewCredentials>,
    /// What the batch's steps tell their users (triggers, expiries), in
    /// the order they happened.
    pub notifications: Vec<NewNotification>,
    pub results: Vec<Result<Done, JobError>>,
}

/// The users and idempotency keys a batch needs loaded.
pub fn keys(jobs: &[Job]) -> (Vec<UserId>, Vec<(String, i64)>) {
    let mut users: Vec<UserId> = jobs.iter().filter_map(|j| j.user.clone()).collect();
    users.sort();
    users.dedup();
    let mut idem: Vec<(String, i64)> = jobs.iter().filter_map(Job::idempotency_key).collect();
    idem.sort();
    idem.dedup();
    (users, idem)
}

impl Job {
    /// What a retry of this job is found by: its user (a global command's
    /// under [`GLOBAL_USER`]) and its transaction number.
    pub fn idempotency_key(&self) -> Option<(String, i64)> {
        let user = self.user.as_ref().map_or(GLOBAL_USER, UserId::as_str);
        Some((user.to_owned(), self.idem_key?))
    }
}

/// The key under which global (user-less) commands keep their idempotency
/// records.
pub const GLOBAL_USER: &str = "";

struct Slot {
    account: Option<Account>,
    version: i64,
    triggers_before: Vec<ArmedTriggerKey>,
    touched: bool,
}

impl Slot {
    /// A user without an account row.
    fn absent() -> Slot {
        Slot {
            account: None,
            version: 0,
            triggers_before: Vec::new(),
            touched: false,
        }
    }
}

/// The state of one batch while its jobs apply.
struct Batch<'a, F> {
    slots: HashMap<UserId, Slot>,
    prior: HashMap<(String, i64), PriorRow>,
    rows: Vec<NewRow>,
    notifications: Vec<NewNotification>,
    credentials: Vec<NewCredentials>,
    now_ms: i64,
    server: &'a str,
    next_seq: F,
}

/// Applies a batch. `accounts` holds every existing account among the jobs'
/// users; `prior` every already executed (user, key) pair among them (the
/// global DUMPLOG's under [`GLOBAL_USER`]); `next_seq` hands out row numbers
/// in increasing order. A job writes at most one row, so `next_seq` is
/// called at most `jobs.len()` times: a back end that allocates numbers
/// ahead of the batch needs no more than that.
pub fn apply(
    jobs: &[Job],
    accounts: HashMap<UserId, LoadedAccount>,
    prior: HashMap<(String, i64), PriorRow>,
    now_ms: i64,
    server: &str,
    next_seq: impl FnMut() -> i64,
) -> Applied {
    let slots = accounts
        .into_iter()
        .map(|(user, loaded)| {
            let slot = Slot {
                triggers_before: loaded.account.armed_triggers(),
                account: Some(loaded.account),
                version: loaded.version,
                touched: false,
            };
            (user, slot)
        })
        .collect();
    let mut batch = Batch {
        slots,
        prior,
        rows: Vec::new(),
        notifications: Vec::new(),
        credentials: Vec::new(),
        now_ms,
        server,
        next_seq,
    };
    let results = jobs.iter().map(|job| batch.run(job)).collect();
    let accounts = batch.account_writes();
    Applied {
        rows: batch.rows,
        accounts,
        credentials: batch.credentials,
        notifications: batch.notifications,
        results,
    }
}

impl<F: FnMut() -> i64> Batch<'_, F> {
    fn run(&mut self, job: &Job) -> Result<Done, JobError> {
        match &job.work {
            Work::Command { request, quote } => self.command(job, request, quote.as_ref()),
            Work::Price { symbol, price } => {
                let user = job.user.as_ref().ok_or(JobError::MissingUser("price"))?;
                Ok(self.price(user, *symbol, *price))
            }
            Work::Quote(fetch) => {
                let seq = (self.next_seq)();
                Ok(self.push(
                    self.now_ms,
                    seq,
                    job.user.clone(),
                    transaction_num::system_chosen(seq),
                    None,
                    Record::Quote(fetch.clone()),
                ))
            }
            Work::Register { password_hash } => self.register(job, password_hash),
            Work::Expire => {
                let user = job.user.as_ref().ok_or(JobError::MissingUser("expiry"))?;
                Ok(self.expire(user))
            }
        }
    }

    /// The first outcome of an already executed key, answered to its retry.
    fn earlier(&self, key: Option<&(String, i64)>) -> Option<Done> {
        let earlier = self.prior.get(key?)?;
        Some(Done {
            seq: Some(earlier.seq),
            txn: earlier.txn,
            ts_ms: earlier.ts_ms,
            record: earlier.record.clone(),
            duplicate: true,
            account: None,
        })
    }

    /// Keeps a step's outcome under its key, so that a retry later in the
    /// same batch is answered with it too.
    fn remember(&mut self, key: Option<(String, i64)>, seq: i64, done: &Done) {
        if let Some(key) = key {
            let prior = PriorRow {
                seq,
                ts_ms: done.ts_ms,
                txn: done.txn,
                record: done.record.clone(),
            };
            self.prior.insert(key, prior);
        }
    }

    fn register(&mut self, job: &Job, password_hash: &str) -> Result<Done, JobError> {
        let user = job
            .user
            .as_ref()
            .ok_or(JobError::MissingUser("registration"))?;
        let key = job.idempotency_key();
        if let Some(done) = self.earlier(key.as_ref()) {
            // The same transaction number ran something else for this
            // user: whatever it was, this registration cannot be it.
            return match done.record {
                Record::Registered => Ok(done),
                _ => Err(JobError::UserTaken(user.clone())),
            };
        }
        let slot = self.slots.entry(user.clone()).or_insert_with(Slot::absent);
        if slot.account.is_some() {
            return Err(JobError::UserTaken(user.clone()));
        }
        slot.account = Some(Account::default());
        slot.touched = true;
        self.credentials.push(NewCredentials {
            user: user.clone(),
            password_hash: password_hash.to_owned(),
            created_ms: self.now_ms,
        });
        let seq = (self.next_seq)();
        let txn = job
            .idem_key
            .unwrap_or_else(|| transaction_num::system_chosen(seq));
        let done = self.push(
            self.now_ms,
            seq,
            Some(user.clone()),
            txn,
            job.idem_key,
            Record::Registered,
        );
        self.remember(key, seq, &done);
        Ok(done)
    }

    fn command(
        &mut self,
        job: &Job,
        request: &CommandRequest,
        quote: Option<&QuoteUse>,
    ) -> Result<Done, JobError> {
        let command = request.command();
        if let Ok(command) = &command
            && let Some(symbol) = command.price_symbol()
            && quote.is_none_or(|q| q.symbol() != symbol)
        {
            return Err(JobError::MissingPrice(request.name));
        }
        let key = job.idempotency_key();
        if let Some(done) = self.earlier(key.as_ref()) {
            // The retry's own fetch was real and cost money: keep it.
            if let Some(QuoteUse::Fetched(fetch)) = quote {
                let seq = (self.next_seq)();
                self.push(
                    self.now_ms,
                    seq,
                    job.user.clone(),
                    done.txn,
                    None,
                    Record::Quote(fetch.clone()),
                );
            }
            return Ok(done);
        }

        let seq = (self.next_seq)();
        let txn = job
            .idem_key
            .unwrap_or_else(|| transaction_num::system_chosen(seq));
        let mut events = Vec::new();
        let mut shown = None;
        let (outcome, balance) = match (command, &job.user) {
            (Err(rejection), _) => (Err(rejection), None),
            // The global DUMPLOG: the caller has checked it is the supervisor.
            (Ok(_), None) => (Ok(engine::Reply::DumpLog(engine::Empty {})), None),
            (Ok(command), Some(user)) => {
                let slot = self.slots.entry(user.clone()).or_insert_with(Slot::absent);
                let ctx = Context {
                    now_ms: self.now_ms,
                    txn,
                    price: quote.map(QuoteUse::price),
                };
                let outcome = execute(&mut slot.account, &command, &ctx, &mut events);
                // Every command of an existing user bumps its version, so
                // that anything cached from it (history included) is stale.
                slot.touched |= slot.account.is_some();
                let balance = slot.account.as_ref().map(|a| Balance {
                    cash: a.cash(),
                    reserved_cash: a.reserved_cash(),
                });
                if let Ok(engine::Reply::Summary(_)) = &outcome {
                    shown = slot.account.clone().map(Box::new);
                }
                (outcome, balance)
            }
        };
        let record = Record::Command {
            request: request.clone(),
            quote: quote.cloned(),
            outcome,
            balance,
            events,
        };
        let mut done = self.push(
            self.now_ms,
            seq,
            job.user.clone(),
            txn,
            job.idem_key,
            record,
        );
        done.account = shown;
        self.remember(key, seq, &done);
        Ok(done)
    }

    fn price(&mut self, user: &UserId, symbol: Symbol, price: Money) -> Done {
        let mut events = Vec::new();
        let mut fired = false;
        if let Some(slot) = self.slots.get_mut(user)
            && let Some(account) = slot.account.as_mut()
            && account.on_price(symbol, price, self.now_ms, &mut events)
        {
            slot.touched = true;
            fired = true;
        }
        let record = Record::Price {
            symbol,
            price,
            events,
        };
        if fired {
            // Recorded against the command that armed the trigger.
            self.push_caused(self.now_ms, user, record)
        } else {
            Done::unrecorded(self.now_ms, record)
        }
    }

    /// Expires the user's orders that ran out first, if that was by now,
    /// in a row stamped at that moment.
    fn expire(&mut self, user: &UserId) -> Done {
        let mut events = Vec::new();
        if let Some(slot) = self.slots.get_mut(user)
            && let Some(account) = slot.account.as_mut()
            && let Some(due_ms) = account.next_expiry_ms().filter(|due| *due <= self.now_ms)
        {
            account.expire(due_ms, &mut events);
            slot.touched = true;
            // Recorded against the command that placed the order.
            return self.push_caused(due_ms, user, Record::Expired { events });
        }
        Done::unrecorded(self.now_ms, Record::Expired { events })
    }

    /// Records at `ts_ms` what `user`'s account did of itself (the triggers
    /// a price fired, the orders that ran out), filed under the number of
    /// the command behind its first event.
    fn push_caused(&mut self, ts_ms: i64, user: &UserId, record: Record) -> Done {
        let seq = (self.next_seq)();
        let txn = record
            .events()
            .first()
            .map_or_else(|| transaction_num::system_chosen(seq), |e| e.txn);
        self.push(ts_ms, seq, Some(user.clone()), txn, None, record)
    }

    /// Records a step that happened at `ts_ms`: the batch's time, except
    /// for an expiry, which is stamped when the orders ran out.
    fn push(
        &mut self,
        ts_ms: i64,
        seq: i64,
        user: Option<UserId>,
        txn: i64,
        idem_key: Option<i64>,
        record: Record,
    ) -> Done {
        if let Some(user) = &user {
            self.notifications.extend(
                record
                    .events()
                    .iter()
                    .filter_map(|event| NewNotification::for_event(user, event, ts_ms)),
            );
        }
        self.rows.push(NewRow {
            row: LogRow {
                seq,
                ts_ms,
                server: self.server.to_owned(),
                user,
                txn,
                record: record.clone(),
            },
            idem_key,
        });
        Done {
            seq: Some(seq),
            txn,
            ts_ms,
            record,
            duplicate: false,
            account: None,
        }
    }

    fn account_writes(&mut self) -> Vec<AccountWrite> {
        let mut writes: Vec<AccountWrite> = self
            .slots
            .drain()
            .filter(|(_, slot)| slot.touched)
            .map(|(user, slot)| {
                let account = slot.account.expect("only existing accounts are touched");
                let triggers = account.armed_triggers();
                AccountWrite {
                    user,
                    version: slot.version + 1,
                    triggers: (triggers != slot.triggers_before).then_some(triggers),
                    account,
                }
            })
            .collect();
        // A stable order, so that back ends that lock rows lock them in one order.
        writes.sort_by(|a, b| a.user.cmp(&b.user));
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::NotificationKind;
    use engine::EventKind;

    fn user() -> UserId {
        UserId::parse("u1").unwrap()
    }

    fn command(key: i64, name: CommandName, symbol: Option<&str>, amount: Option<&str>) -> Job {
        Job {
            user: Some(user()),
            idem_key: Some(key),
            work: Work::Command {
                request: CommandRequest::new(name, Some("u1"), symbol, amount, None).unwrap(),
                quote: symbol.map(|s| {
                    QuoteUse::Fetched(QuoteFetch {
                        symbol: Symbol::parse(s).unwrap(),
                        price: Money::from_cents(1_000),
                        user: "u1".into(),
                        quote_server_time_ms: 0,
                        cryptokey: "k".into(),
                    })
                }),
            },
        }
    }

    /// u1's ADD of 100.00, then 50.00 set aside to buy ABC (at 10.00).
    fn funded_buy_amount() -> Vec<Job> {
        vec![
            command(1, CommandName::Add, None, Some("100.00")),
            command(2, CommandName::SetBuyAmount, Some("ABC"), Some("50.00")),
        ]
    }

    /// A batch at 1 s in which u1 ADDs 100.00 and places a BUY of 50.00 of
    /// ABC (transaction 2), which runs out `PENDING_TTL_MS` later.
    fn placed_buy() -> Applied {
        run(&[
            command(1, CommandName::Add, None, Some("100.00")),
            command(2, CommandName::Buy, Some("ABC"), Some("50.00")),
        ])
        .0
    }

    /// Runs `jobs` as one batch on a fresh database, counting row numbers.
    fn run(jobs: &[Job]) -> (Applied, i64) {
        let mut taken = 0;
        let applied = apply(jobs, HashMap::new(), HashMap::new(), 1_000, "t", || {
            taken += 1;
            taken
        });
        (applied, taken)
    }

    #[test]
    fn a_job_takes_at_most_one_row_number() {
        // Duplicates that fetched a quote, commands, quotes, a price that
        // fires and one that does not: never more numbers than jobs.
        let mut jobs = funded_buy_amount();
        jobs.extend([
            command(2, CommandName::SetBuyAmount, Some("ABC"), Some("50.00")),
            command(3, CommandName::Quote, Some("ABC"), None),
            command(3, CommandName::Quote, Some("ABC"), None),
            Job {
                user: None,
                idem_key: None,
                work: Work::Quote(QuoteFetch {
                    symbol: Symbol::parse("ABC").unwrap(),
                    price: Money::from_cents(1),
                    user: "sys".into(),
                    quote_server_time_ms: 0,
                    cryptokey: "k".into(),
                }),
            },
            Job {
                user: Some(user()),
                idem_key: None,
                work: Work::Price {
                    symbol: Symbol::parse("ABC").unwrap(),
                    price: Money::from_cents(1),
                },
            },
        ]);
        let (applied, taken) = run(&jobs);
        assert!(
            taken as usize <= jobs.len(),
            "{taken} numbers for {} jobs",
            jobs.len()
        );
        assert_eq!(applied.rows.len() as i64, taken);
        assert!(applied.accounts.iter().all(AccountWrite::is_new));
    }

    fn expire_job() -> Job {
        Job {
            user: Some(user()),
            idem_key: None,
            work: Work::Expire,
        }
    }

    /// Runs `jobs` at `now_ms` on the accounts an earlier batch wrote.
    fn run_after(earlier: &Applied, jobs: &[Job], now_ms: i64) -> Applied {
        let accounts = earlier
            .accounts
            .iter()
            .map(|write| {
                let loaded = LoadedAccount {
                    account: write.account.clone(),
                    version: write.version,
                };
                (write.user.clone(), loaded)
            })
            .collect();
        let mut seq = 100;
        apply(jobs, accounts, HashMap::new(), now_ms, "t", || {
            seq += 1;
            seq
        })
    }

    #[test]
    fn an_expiry_job_expires_what_is_due_stamped_when_it_ran_out() {
        // A BUY placed at 1 s: just before it runs out the job writes
        // nothing; 2.5 s after, it expires it, stamped when it ran out.
        let placed = placed_buy();
        let due_ms = 1_000 + engine::PENDING_TTL_MS;
        assert_eq!(placed.accounts[0].account.next_expiry_ms(), Some(due_ms));

        let early = run_after(&placed, &[expire_job()], due_ms - 1);
        assert!(early.rows.is_empty() && early.accounts.is_empty());
        assert_eq!(early.results[0].as_ref().unwrap().seq, None);

        let expired = run_after(&placed, &[expire_job()], due_ms + 2_500);
        let done = expired.results[0].as_ref().unwrap();
        assert_eq!((done.seq, done.txn, done.ts_ms), (Some(101), 2, due_ms));
        assert_eq!(expired.rows.len(), 1);
        assert_eq!(expired.rows[0].row.ts_ms, due_ms, "stamped at the expiry");
        let Record::Expired { events } = &expired.rows[0].row.record else {
            panic!("{:?}", expired.rows[0].row.record)
        };
        assert!(matches!(
            events.as_slice(),
            [
                engine::Event {
                    txn: 2,
                    kind: EventKind::Funds { .. }
                },
                engine::Event {
                    txn: 2,
                    kind: EventKind::BuyExpired { shares: 5, .. }
                }
            ]
        ));
        let note = &expired.notifications[..];
        assert_eq!(note.len(), 1, "{note:?}");
        assert_eq!(
            (note[0].kind, note[0].created_ms, note[0].txn),
            (NotificationKind::OrderExpired, due_ms, 2)
        );
        let account = &expired.accounts[0];
        assert_eq!(account.version, placed.accounts[0].version + 1);
        assert_eq!(
            (account.account.cash(), account.account.reserved_cash()),
            (Money::from_cents(10_000), Money::ZERO),
            "the reserve came back"
        );
        assert_eq!(account.account.next_expiry_ms(), None);
    }

    #[test]
    fn an_expiry_job_after_a_command_that_expired_the_order_writes_nothing() {
        let placed = placed_buy();
        // The user's command in the same batch, just before the job,
        // expired the order on its own.
        let later = 1_000 + engine::PENDING_TTL_MS + 10;
        let applied = run_after(
            &placed,
            &[
                command(3, CommandName::DisplaySummary, None, None),
                expire_job(),
            ],
            later,
        );
        assert_eq!(applied.rows.len(), 1, "only the command's row");
        assert_eq!(applied.results[1].as_ref().unwrap().seq, None);
        assert_eq!(applied.notifications.len(), 1, "the command's expiry");
        // Without an account, and without a user, nothing either.
        let (nobody, taken) = run(&[expire_job()]);
        assert_eq!((nobody.rows.len(), taken), (0, 0));
        let (no_user, _) = run(&[Job {
            user: None,
            ..expire_job()
        }]);
        assert_eq!(
            no_user.results[0],
            Err(JobError::MissingUser("expiry")),
            "an expiry is always a user's"
        );
    }

    #[test]
    fn a_summary_carries_the_account_it_shows_and_nothing_else_does() {
        // The summary sits between two changes of the account: its copy is
        // the account as it stood at the summary, not at the batch's end.
        let jobs = [
            command(1, CommandName::Add, None, Some("100.00")),
            command(2, CommandName::DisplaySummary, None, None),
            command(3, CommandName::Add, None, Some("5.00")),
            command(2, CommandName::DisplaySummary, None, None),
        ];
        let (applied, _) = run(&jobs);
        let done: Vec<&Done> = applied
            .results
            .iter()
            .map(|r| r.as_ref().unwrap())
            .collect();
        let shown = done[1].account.as_deref().expect("the summary's account");
        assert_eq!(shown.cash(), Money::from_cents(10_000));
        let Record::Command {
            outcome: Ok(engine::Reply::Summary(summary)),
            ..
        } = &done[1].record
        else {
            panic!("{:?}", done[1].record)
        };
        assert_eq!(summary.cash, shown.cash(), "the summary's own account");
        assert_eq!(
            applied.accounts[0].account.cash(),
            Money::from_cents(10_500)
        );
        assert!(done[0].account.is_none() && done[2].account.is_none());
        assert!(done[3].duplicate && done[3].account.is_none(), "a retry");
        // An unknown user's summary is refused: no account to show.
        let unknown = run(&[command(1, CommandName::DisplaySummary, None, None)]).0;
        assert!(unknown.results[0].as_ref().unwrap().account.is_none());
    }

    #[test]
    fn a_fired_trigger_becomes_a_notification_of_its_step() {
        let mut jobs = funded_buy_amount();
        // Armed at 10.00 while the price is 10.00: it fires at once.
        jobs.push(command(
            3,
            CommandName::SetBuyTrigger,
            Some("ABC"),
            Some("10.00"),
        ));
        let (applied, _) = run(&jobs);
        assert_eq!(
            applied.notifications.len(),
            1,
            "{:?}",
            applied.notifications
        );
        let note = &applied.notifications[0];
        assert_eq!(
            (note.kind, note.txn, note.created_ms, note.user.as_str()),
            (NotificationKind::TriggerExecuted, 3, 1_000, "u1")
        );
        assert_eq!(
            note.message,
            "Your buy trigger on ABC bought 5 shares at $10.00 for $50.00."
        );
        let fired = applied.rows[2].row.record.events();
        assert!(matches!(
            fired.last().map(|e| &e.kind),
            Some(EventKind::BuyTriggerExecuted { .. })
        ));
    }
}
