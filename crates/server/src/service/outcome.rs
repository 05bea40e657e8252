//! What a command came to, as the service answers it to either door.

use engine::{Account, CommandName, RejectKind, Rejection, Reply, UserId};
use store::{Balance, Done, Record};

use crate::service::ServiceError;

/// A command that ran (accepted or refused) and was recorded.
#[derive(Clone, Debug)]
pub struct CommandOutcome {
    pub command: CommandName,
    /// `None` only for the global DUMPLOG.
    pub user: Option<UserId>,
    /// The client's transaction number, or the one the server chose.
    pub transaction_num: i64,
    /// The reply, or why the command was refused.
    pub result: Result<Reply, Rejection>,
    /// The user's balances after the command, when the user exists.
    pub balance: Option<Balance>,
    /// The transaction number had run before: this is its first outcome
    /// again, and nothing ran now.
    pub replay: bool,
    /// The log row that records it (what a DUMPLOG streams up to).
    pub seq: i64,
    /// The account as the command left it, when the answer shows it
    /// (DISPLAY_SUMMARY run now, not a retry): see [`store::Done`].
    pub account: Option<Box<Account>>,
}

impl CommandOutcome {
    /// The outcome of a command job the store answered with `done`.
    pub(super) fn of(
        command: CommandName,
        user: Option<UserId>,
        done: Done,
    ) -> Result<CommandOutcome, ServiceError> {
        let Record::Command {
            outcome, balance, ..
        } = done.record
        else {
            // Only a number first used by a registration gets here.
            return Err(ServiceError::NumberReused(done.txn));
        };
        Ok(CommandOutcome {
            command,
            user,
            transaction_num: done.txn,
            result: outcome,
            balance,
            replay: done.duplicate,
            seq: done.seq.expect("a command always writes a row"),
            account: done.account,
        })
    }

    /// Counts the command in `commands_total`, whichever door it came in by.
    pub(super) fn count(&self) {
        metrics::counter!("commands_total", "command" => self.command.as_str(), "outcome" => self.label())
            .increment(1);
    }

    fn label(&self) -> &'static str {
        match &self.result {
            Ok(_) if self.replay => "replayed",
            Ok(_) => "accepted",
            Err(rejection) if rejection.kind() == RejectKind::NotFound => "unknown_user",
            Err(_) => "refused",
        }
    }
}
