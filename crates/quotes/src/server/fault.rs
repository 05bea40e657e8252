//! The kinds of garbage the legacy quote server was known to send.

use engine::Symbol;

use crate::prng::Prng;
use crate::protocol::QuoteReply;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    NonNumericPrice,
    NegativePrice,
    WrongSymbol,
    WrongUser,
    MissingFields,
    /// Close the connection without a reply.
    HangUp,
}

impl Fault {
    const ALL: [Fault; 6] = [
        Fault::NonNumericPrice,
        Fault::NegativePrice,
        Fault::WrongSymbol,
        Fault::WrongUser,
        Fault::MissingFields,
        Fault::HangUp,
    ];

    /// One kind, uniformly.
    pub(crate) fn pick(prng: &mut Prng) -> Fault {
        Fault::ALL[prng.below(Fault::ALL.len() as u64) as usize]
    }

    /// The faulty reply line standing in for `quote`, or `None` to hang up.
    pub(crate) fn corrupt(self, quote: &QuoteReply) -> Option<String> {
        let QuoteReply {
            price,
            symbol,
            user,
            timestamp_ms,
            cryptokey,
        } = quote;
        Some(match self {
            Fault::NonNumericPrice => format!("N/A,{symbol},{user},{timestamp_ms},{cryptokey}\n"),
            Fault::NegativePrice => format!("-{}", quote.to_line()),
            Fault::WrongSymbol => {
                let other = neighbour(*symbol);
                format!("{price},{other},{user},{timestamp_ms},{cryptokey}\n")
            }
            Fault::WrongUser => format!("{price},{symbol},{user}x,{timestamp_ms},{cryptokey}\n"),
            Fault::MissingFields => format!("{price},{symbol},{user}\n"),
            Fault::HangUp => return None,
        })
    }
}

/// A symbol that is surely not `symbol`: its first letter moved on by one
/// (Z wraps to A).
fn neighbour(symbol: Symbol) -> String {
    let mut letters = symbol.as_str().chars();
    let first = match letters.next() {
        Some('Z') | None => 'A',
        Some(letter) => char::from(letter as u8 + 1),
    };
    std::iter::once(first).chain(letters).collect()
}

#[cfg(test)]
mod tests {
    use engine::Money;

    use super::*;
    use crate::QuoteError;
    use crate::protocol::parse_reply;

    #[test]
    fn every_fault_fails_validation_as_its_kind() {
        let quote = QuoteReply {
            price: Money::from_cents(5817),
            symbol: Symbol::parse("ZBC").unwrap(),
            user: "jsmith".into(),
            timestamp_ms: 1_330_546_050_315,
            cryptokey: "key==".into(),
        };
        let check =
            |fault: Fault| parse_reply(&fault.corrupt(&quote).unwrap(), quote.symbol, "jsmith");
        assert!(
            matches!(check(Fault::NonNumericPrice), Err(QuoteError::Garbage { reason }) if reason.contains("price"))
        );
        assert!(
            matches!(check(Fault::NegativePrice), Err(QuoteError::Garbage { reason }) if reason.contains("price"))
        );
        assert!(
            matches!(check(Fault::WrongSymbol), Err(QuoteError::WrongSymbol { got, .. }) if got == "ABC")
        );
        assert!(
            matches!(check(Fault::WrongUser), Err(QuoteError::WrongUser { got, .. }) if got == "jsmithx")
        );
        assert!(
            matches!(check(Fault::MissingFields), Err(QuoteError::Garbage { reason }) if reason.contains("fields"))
        );
        assert_eq!(Fault::HangUp.corrupt(&quote), None);
    }
}
