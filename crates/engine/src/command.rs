//! The sixteen commands: their names, which arguments each takes, and the
//! validated form the engine executes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::rejection::{RejectCode, Rejection};
use crate::symbol::Symbol;
use crate::user::UserId;

macro_rules! command_names {
    ($($variant:ident => $text:literal, user: $user:ident, symbol: $symbol:ident, amount: $amount:ident;)*) => {
        /// The name of a command, as in the workload files and the audit log.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CommandName {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl CommandName {
            pub const ALL: &'static [CommandName] = &[$(CommandName::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $(CommandName::$variant => $text,)* }
            }

            /// Which arguments the command takes.
            pub const fn shape(self) -> Shape {
                match self {
                    $(CommandName::$variant => Shape {
                        user: Arg::$user,
                        symbol: Arg::$symbol,
                        amount: Arg::$amount,
                    },)*
                }
            }
        }
    };
}

command_names! {
    Add => "ADD", user: Required, symbol: Absent, amount: Required;
    Quote => "QUOTE", user: Required, symbol: Required, amount: Absent;
    Buy => "BUY", user: Required, symbol: Required, amount: Required;
    CommitBuy => "COMMIT_BUY", user: Required, symbol: Absent, amount: Absent;
    CancelBuy => "CANCEL_BUY", user: Required, symbol: Absent, amount: Absent;
    Sell => "SELL", user: Required, symbol: Required, amount: Required;
    CommitSell => "COMMIT_SELL", user: Required, symbol: Absent, amount: Absent;
    CancelSell => "CANCEL_SELL", user: Required, symbol: Absent, amount: Absent;
    SetBuyAmount => "SET_BUY_AMOUNT", user: Required, symbol: Required, amount: Required;
    SetBuyTrigger => "SET_BUY_TRIGGER", user: Required, symbol: Required, amount: Required;
    CancelSetBuy => "CANCEL_SET_BUY", user: Required, symbol: Required, amount: Absent;
    SetSellAmount => "SET_SELL_AMOUNT", user: Required, symbol: Required, amount: Required;
    SetSellTrigger => "SET_SELL_TRIGGER", user: Required, symbol: Required, amount: Required;
    CancelSetSell => "CANCEL_SET_SELL", user: Required, symbol: Required, amount: Absent;
    DumpLog => "DUMPLOG", user: Optional, symbol: Absent, amount: Absent;
    DisplaySummary => "DISPLAY_SUMMARY", user: Required, symbol: Absent, amount: Absent;
}

/// Whether a command takes an argument.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Required,
    Optional,
    Absent,
}

/// The arguments a command takes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub user: Arg,
    pub symbol: Arg,
    pub amount: Arg,
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandName {
    type Err = Rejection;

    /// Case-insensitive, as people type commands in lower case too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommandName::ALL
            .iter()
            .copied()
            .find(|name| name.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let shown: String = s.chars().take(40).collect();
                let (last, rest) = CommandName::ALL.split_last().expect("sixteen commands");
                let rest: Vec<&str> = rest.iter().map(|name| name.as_str()).collect();
                Rejection::new(
                    RejectCode::UnknownCommand,
                    format!(
                        "{shown:?} is not a command; the commands are {} and {last}",
                        rest.join(", ")
                    ),
                )
            })
    }
}

/// A command as received, after structural validation: the user id and
/// symbol are well formed and every required argument is present. The
/// amount stays as its original text so that a refused amount is still
/// recorded as it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRequest {
    pub name: CommandName,
    pub user: Option<UserId>,
    pub symbol: Option<Symbol>,
    pub amount: Option<String>,
    /// DUMPLOG's file name: recorded only; the server never writes to it.
    pub filename: Option<String>,
}

/// The longest amount text accepted before it is refused as malformed
/// rather than stored.
pub const MAX_AMOUNT_TEXT: usize = 32;
/// The longest DUMPLOG file name recorded, in characters.
pub const MAX_FILENAME: usize = 255;

impl CommandRequest {
    /// Checks the structure of a command: each argument present exactly
    /// when the command takes it, user ids and symbols well formed. These
    /// refusals are all [`crate::RejectKind::Malformed`].
    pub fn new(
        name: CommandName,
        user: Option<&str>,
        symbol: Option<&str>,
        amount: Option<&str>,
        filename: Option<&str>,
    ) -> Result<CommandRequest, Rejection> {
        let shape = name.shape();
        let user = check_arg(name, "user", shape.user, user)?
            .map(UserId::parse)
            .transpose()
            .map_err(|e| Rejection::new(RejectCode::InvalidUser, e.to_string()))?;
        let symbol = check_arg(name, "symbol", shape.symbol, symbol)?
            .map(Symbol::parse)
            .transpose()
            .map_err(|e| Rejection::new(RejectCode::InvalidSymbol, e.to_string()))?;
        let amount = check_arg(name, "amount", shape.amount, amount)?;
        if amount.is_some_and(|a| a.len() > MAX_AMOUNT_TEXT) {
            return Err(Rejection::new(
                RejectCode::MalformedAmount,
                format!("The amount is longer than {MAX_AMOUNT_TEXT} characters."),
            ));
        }
        let filename_shape = if name == CommandName::DumpLog {
            Arg::Optional
        } else {
            Arg::Absent
        };
        let filename = check_arg(name, "filename", filename_shape, filename)?;
        if let Some(f) = filename
            && (f.chars().count() > MAX_FILENAME || f.chars().any(char::is_control))
        {
            return Err(Rejection::new(
                RejectCode::UnexpectedField,
                format!("A DUMPLOG file name is at most {MAX_FILENAME} printable characters."),
            ));
        }
        Ok(CommandRequest {
            name,
            user,
            symbol,
            amount: amount.map(str::to_owned),
            filename: filename.map(str::to_owned),
        })
    }

    /// The executable command, or `invalid_amount` when the amount breaks the
    /// rules (positive, two decimals, at most 1,000,000,000.00).
    pub fn command(&self) -> Result<Command, Rejection> {
        let symbol = || self.symbol.expect("shape checked: symbol present");
        let amount = || {
            let text = self
                .amount
                .as_deref()
                .expect("shape checked: amount present");
            Money::parse_amount(text).map_err(|e| {
                let what = match self.name {
                    CommandName::SetBuyTrigger | CommandName::SetSellTrigger => "trigger price",
                    _ => "amount",
                };
                Rejection::new(
                    RejectCode::InvalidAmount,
                    format!("The {what} {text:?} is not valid: {e}."),
                )
            })
        };
        Ok(match self.name {
            CommandName::Add => Command::Add { amount: amount()? },
            CommandName::Quote => Command::Quote { symbol: symbol() },
            CommandName::Buy => Command::Buy {
                symbol: symbol(),
                amount: amount()?,
            },
            CommandName::CommitBuy => Command::CommitBuy,
            CommandName::CancelBuy => Command::CancelBuy,
            CommandName::Sell => Command::Sell {
                symbol: symbol(),
                amount: amount()?,
            },
            CommandName::CommitSell => Command::CommitSell,
            CommandName::CancelSell => Command::CancelSell,
            CommandName::SetBuyAmount => Command::SetBuyAmount {
                symbol: symbol(),
                amount: amount()?,
            },
            CommandName::SetBuyTrigger => Command::SetBuyTrigger {
                symbol: symbol(),
                price: amount()?,
            },
            CommandName::CancelSetBuy => Command::CancelSetBuy { symbol: symbol() },
            CommandName::SetSellAmount => Command::SetSellAmount {
                symbol: symbol(),
                amount: amount()?,
            },
            CommandName::SetSellTrigger => Command::SetSellTrigger {
                symbol: symbol(),
                price: amount()?,
            },
            CommandName::CancelSetSell => Command::CancelSetSell { symbol: symbol() },
            CommandName::DumpLog => Command::DumpLog,
            CommandName::DisplaySummary => Command::DisplaySummary,
        })
    }
}

fn check_arg<'a>(
    name: CommandName,
    field: &str,
    arg: Arg,
    value: Option<&'a str>,
) -> Result<Option<&'a str>, Rejection> {
    match (arg, value) {
        (Arg::Required, None) => Err(Rejection::new(
            RejectCode::MissingField,
            format!("{name} needs a {field}."),
        )),
        (Arg::Absent, Some(_)) => Err(Rejection::new(
            RejectCode::UnexpectedField,
            format!("{name} takes no {field}."),
        )),
        (_, value) => Ok(value),
    }
}

/// A validated command, ready for the engine.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Add { amount: Money },
    Quote { symbol: Symbol },
    Buy { symbol: Symbol, amount: Money },
    CommitBuy,
    CancelBuy,
    Sell { symbol: Symbol, amount: Money },
    CommitSell,
    CancelSell,
    SetBuyAmount { symbol: Symbol, amount: Money },
    SetBuyTrigger { symbol: Symbol, price: Money },
    CancelSetBuy { symbol: Symbol },
    SetSellAmount { symbol: Symbol, amount: Money },
    SetSellTrigger { symbol: Symbol, price: Money },
    CancelSetSell { symbol: Symbol },
    DumpLog,
    DisplaySummary,
}

impl Command {
    /// The symbol whose current price this command needs, if any.
    pub fn price_symbol(&self) -> Option<Symbol> {
        match *self {
            Command::Quote { symbol }
            | Command::Buy { symbol, .. }
            | Command::Sell { symbol, .. }
            | Command::SetBuyTrigger { symbol, .. }
            | Command::SetSellTrigger { symbol, .. } => Some(symbol),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        name: CommandName,
        user: Option<&str>,
        symbol: Option<&str>,
        amount: Option<&str>,
    ) -> Result<CommandRequest, Rejection> {
        CommandRequest::new(name, user, symbol, amount, None)
    }

    #[test]
    fn names_round_trip_in_any_case() {
        for name in CommandName::ALL {
            assert_eq!(name.as_str().parse::<CommandName>().unwrap(), *name);
            assert_eq!(
                name.as_str().to_lowercase().parse::<CommandName>().unwrap(),
                *name
            );
        }
        assert_eq!(CommandName::ALL.len(), 16);
        assert_eq!(
            "BUYX".parse::<CommandName>().unwrap_err().code,
            RejectCode::UnknownCommand
        );
    }

    #[test]
    fn checks_each_argument_against_the_command_shape() {
        use CommandName::*;
        let missing = |r: Result<CommandRequest, Rejection>| r.unwrap_err().code;
        assert_eq!(
            missing(req(Buy, Some("u"), None, Some("1"))),
            RejectCode::MissingField
        );
        assert_eq!(
            missing(req(Buy, None, Some("A"), Some("1"))),
            RejectCode::MissingField
        );
        assert_eq!(
            missing(req(Buy, Some("u"), Some("A"), None)),
            RejectCode::MissingField
        );
        assert_eq!(
            missing(req(Add, Some("u"), Some("A"), Some("1"))),
            RejectCode::UnexpectedField
        );
        assert_eq!(
            missing(req(CommitBuy, Some("u"), None, Some("1"))),
            RejectCode::UnexpectedField
        );
        assert_eq!(
            missing(req(Quote, Some("u u"), Some("A"), None)),
            RejectCode::InvalidUser
        );
        assert_eq!(
            missing(req(Quote, Some("u"), Some("ABCD"), None)),
            RejectCode::InvalidSymbol
        );
        assert!(req(DumpLog, None, None, None).is_ok());
        assert!(req(DumpLog, Some("u"), None, None).is_ok());
        let r = req(Quote, Some("u"), Some("abc"), None).unwrap();
        assert_eq!(
            r.command().unwrap(),
            Command::Quote {
                symbol: Symbol::parse("ABC").unwrap()
            }
        );
    }

    #[test]
    fn a_bad_amount_is_a_rule_refusal_not_a_malformed_request() {
        let r = req(CommandName::Add, Some("u"), None, Some("-73280.58")).unwrap();
        let rejection = r.command().unwrap_err();
        assert_eq!(rejection.code, RejectCode::InvalidAmount);
        assert_eq!(rejection.kind(), crate::RejectKind::Rule);
        assert!(
            rejection.message.contains("-73280.58"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn dumplog_file_names_are_bounded() {
        let ok =
            CommandRequest::new(CommandName::DumpLog, None, None, None, Some("./testLOG")).unwrap();
        assert_eq!(ok.filename.as_deref(), Some("./testLOG"));
        let long = "x".repeat(MAX_FILENAME + 1);
        assert!(CommandRequest::new(CommandName::DumpLog, None, None, None, Some(&long)).is_err());
        assert!(CommandRequest::new(CommandName::DumpLog, None, None, None, Some("a\nb")).is_err());
        assert!(
            CommandRequest::new(CommandName::Add, Some("u"), None, Some("1"), Some("f")).is_err()
        );
    }
}
