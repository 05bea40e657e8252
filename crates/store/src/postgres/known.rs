//! The accounts this instance last committed, kept decoded so that a batch
//! of users it served last can skip locking and loading them.
//!
//! Nothing here is trusted: a batch that starts from these accounts writes
//! them back only where each row still holds the version it was read at,
//! in one statement that also numbers and writes the batch's rows (the
//! fenced write, `committer.rs`). Another instance's write, a notification
//! marked read, anything that moved a version in between makes that
//! statement fail and change nothing, and the batch runs again the long
//! way. A stale entry costs time, never correctness.
//!
//! The balancer sends each trader's requests to one instance (HAProxy
//! hashes on the user), so that instance's entries are the current ones.
//! Behind a balancer that spreads a trader over every instance, most
//! entries would be stale and the fenced write would fail more often than
//! not; the gate then shuts it for a while and every batch takes the long
//! way, as before.

use std::collections::HashMap;

use engine::UserId;

use crate::batch::{AccountWrite, LoadedAccount};

/// The most accounts kept. Reaching it empties the map: traders active now
/// come back on their next command, and memory stays bounded whatever the
/// number of users.
const CAPACITY: usize = 65_536;
/// Fenced writes counted before the gate judges them.
const WINDOW: u32 = 256;
/// The gate shuts when more than one fenced write in this many met a
/// stale account...
const STALE_ONE_IN: u32 = 4;
/// ...for this many batches, then opens again to look.
const SHUT_FOR: u32 = 4_096;

#[derive(Default)]
pub(crate) struct KnownAccounts {
    accounts: HashMap<UserId, LoadedAccount>,
    /// Fenced writes tried and found stale in the current window.
    tried: u32,
    stale: u32,
    /// Batches left before the gate opens again; 0 when open.
    shut: u32,
    /// Batches written fenced since the store started.
    written: u64,
}

impl KnownAccounts {
    /// The accounts of every one of `users`, when all are known and the
    /// gate is open; `None` sends the batch the long way.
    pub fn all_of(&mut self, users: &[UserId]) -> Option<HashMap<UserId, LoadedAccount>> {
        if self.shut > 0 {
            self.shut -= 1;
            return None;
        }
        users
            .iter()
            .map(|user| Some((user.clone(), self.accounts.get(user)?.clone())))
            .collect()
    }

    /// Keeps what a batch committed. A write older than the entry (two
    /// committers finishing out of order) is not kept.
    pub fn remember(&mut self, writes: &[AccountWrite]) {
        if self.accounts.len() + writes.len() > CAPACITY {
            self.accounts.clear();
        }
        for write in writes {
            let newer = self
                .accounts
                .get(&write.user)
                .is_none_or(|known| known.version < write.version);
            if newer {
                let loaded = LoadedAccount {
                    account: write.account.clone(),
                    version: write.version,
                };
                self.accounts.insert(write.user.clone(), loaded);
            }
        }
    }

    /// Drops `users`: what a failed batch did to them is unknown.
    pub fn forget(&mut self, users: &[UserId]) {
        for user in users {
            self.accounts.remove(user);
        }
    }

    /// Batches written fenced since the store started.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Counts one fenced write that committed.
    pub fn wrote(&mut self) {
        self.written += 1;
    }

    /// Counts one fenced write, and shuts the gate when too many of the
    /// window's were stale.
    pub fn tried(&mut self, stale: bool) {
        self.tried += 1;
        self.stale += u32::from(stale);
        if self.tried >= WINDOW {
            if self.stale * STALE_ONE_IN > self.tried {
                self.shut = SHUT_FOR;
                tracing::info!(
                    stale = self.stale,
                    of = self.tried,
                    "most fenced writes met accounts another instance had changed (is the balancer hashing on the user?); locking and loading every batch for a while"
                );
            }
            self.tried = 0;
            self.stale = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Account;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn write(name: &str, version: i64) -> AccountWrite {
        AccountWrite {
            user: user(name),
            account: Account::default(),
            version,
            triggers: None,
        }
    }

    #[test]
    fn a_batch_starts_from_known_accounts_only_when_every_user_is_known() {
        let mut known = KnownAccounts::default();
        known.remember(&[write("a", 2), write("b", 5)]);
        let both = known.all_of(&[user("a"), user("b")]).unwrap();
        assert_eq!(both[&user("a")].version, 2);
        assert_eq!(both[&user("b")].version, 5);
        assert!(known.all_of(&[user("a"), user("c")]).is_none());
        known.forget(&[user("a")]);
        assert!(known.all_of(&[user("a")]).is_none());
    }

    #[test]
    fn an_older_write_never_replaces_a_newer_one() {
        let mut known = KnownAccounts::default();
        known.remember(&[write("a", 7)]);
        known.remember(&[write("a", 6)]);
        assert_eq!(known.all_of(&[user("a")]).unwrap()[&user("a")].version, 7);
    }

    #[test]
    fn the_gate_shuts_when_most_fenced_writes_are_stale_and_opens_again() {
        let mut known = KnownAccounts::default();
        known.remember(&[write("a", 1)]);
        for n in 0..WINDOW {
            known.tried(n % 2 == 0);
        }
        for _ in 0..SHUT_FOR {
            assert!(known.all_of(&[user("a")]).is_none());
        }
        assert!(known.all_of(&[user("a")]).is_some());
        // A window with few stale writes leaves it open.
        for n in 0..WINDOW {
            known.tried(n % 8 == 0);
        }
        assert!(known.all_of(&[user("a")]).is_some());
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut known = KnownAccounts::default();
        for n in 0..CAPACITY + 10 {
            known.remember(&[write(&format!("u{n}"), 1)]);
        }
        assert!(known.accounts.len() <= CAPACITY);
    }
}
