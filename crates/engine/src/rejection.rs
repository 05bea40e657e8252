//! Why a command was refused: a stable machine code and a human sentence.

use std::fmt;

/// The class of a refusal, which the HTTP layer maps to a status code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RejectKind {
    /// The request is malformed: it is not a command the system can
    /// interpret (400). Nothing is recorded.
    Malformed,
    /// The user does not exist (404).
    NotFound,
    /// Nothing to act on: nothing pending, trigger not set (409).
    Conflict,
    /// A business rule: funds, holdings, amount (422).
    Rule,
    /// Not allowed for this caller (403).
    Forbidden,
}

macro_rules! reject_codes {
    ($($variant:ident => $code:literal, $kind:ident;)*) => {
        /// Stable machine codes of every refusal the engine can give.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum RejectCode { $($variant,)* }

        impl RejectCode {
            pub const ALL: &'static [RejectCode] = &[$(RejectCode::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $(RejectCode::$variant => $code,)* }
            }

            pub const fn kind(self) -> RejectKind {
                match self { $(RejectCode::$variant => RejectKind::$kind,)* }
            }
        }
    };
}

reject_codes! {
    UnknownCommand => "unknown_command", Malformed;
    MissingField => "missing_field", Malformed;
    UnexpectedField => "unexpected_field", Malformed;
    InvalidUser => "invalid_user", Malformed;
    InvalidSymbol => "invalid_symbol", Malformed;
    MalformedAmount => "malformed_amount", Malformed;
    InvalidTransactionNum => "invalid_transaction_num", Malformed;
    InvalidAmount => "invalid_amount", Rule;
    UnknownUser => "unknown_user", NotFound;
    InsufficientFunds => "insufficient_funds", Rule;
    InsufficientShares => "insufficient_shares", Rule;
    AmountTooSmall => "amount_too_small", Rule;
    NoHoldings => "no_holdings", Rule;
    BalanceLimit => "balance_limit", Rule;
    NoPendingBuy => "no_pending_buy", Conflict;
    NoPendingSell => "no_pending_sell", Conflict;
    NoBuyAmount => "no_buy_amount", Conflict;
    NoSellAmount => "no_sell_amount", Conflict;
    Forbidden => "forbidden", Forbidden;
}

impl std::str::FromStr for RejectCode {
    type Err = UnknownRejectCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RejectCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or(UnknownRejectCode)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a known refusal code")]
pub struct UnknownRejectCode;

// Stored by its stable text, so that records stay readable if variants are
// ever reordered.
impl serde::Serialize for RejectCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RejectCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> RejectKind {
        self.code.kind()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in RejectCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(code.as_str().parse::<RejectCode>(), Ok(*code));
        }
        assert_eq!("nope".parse::<RejectCode>(), Err(UnknownRejectCode));
    }
}
