//! Exact money: integer cents, never floating point.
//!
//! On the wire and in logs money is a decimal string with exactly two places
//! (`"1234.50"`, its `Display`); in storage formats that are not human
//! readable it is the raw cent count. In sentences for people (refusals,
//! notifications, the web pages) it is in dollars, `$1,234.50`: see
//! [`Money::dollars`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in cents. May be negative only as a delta; balances
/// never are (the engine's invariants guarantee it).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a decimal string is not an acceptable command amount.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("it is empty")]
    Empty,
    #[error("it is not a decimal number like 12.50")]
    Malformed,
    #[error("it has more than two decimal places")]
    TooManyDecimals,
    #[error("it must be greater than zero")]
    NotPositive,
    #[error("it is larger than {}", Money::MAX_AMOUNT.dollars())]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(0);
    /// The largest amount a single command may carry: 1,000,000,000.00.
    pub const MAX_AMOUNT: Money = Money(100_000_000_000);

    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parses a command amount: positive, at most two decimals, at most
    /// [`Money::MAX_AMOUNT`]. A sign, exponent or white space is malformed.
    pub fn parse_amount(text: &str) -> Result<Money, AmountError> {
        let money = Money::parse_decimal(text)?;
        if !money.is_positive() {
            return Err(AmountError::NotPositive);
        }
        if money > Money::MAX_AMOUNT {
            return Err(AmountError::TooLarge);
        }
        Ok(money)
    }

    /// Parses a decimal with an optional leading `-` and at most two
    /// decimals, with no bound other than the `i64` range (reported as
    /// [`AmountError::TooLarge`]).
    pub fn parse_decimal(text: &str) -> Result<Money, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) {
            return Err(AmountError::Malformed);
        }
        let fraction_cents = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !all_digits(f) => return Err(AmountError::Malformed),
            Some(f) if f.len() > 2 => {
                // "12.500" is still exactly representable; "12.505" is not.
                if f[2..].bytes().all(|b| b == b'0') {
                    parse_fraction(&f[..2])
                } else {
                    return Err(AmountError::TooManyDecimals);
                }
            }
            Some(f) => parse_fraction(f),
        };
        let mut cents: i64 = 0;
        for digit in whole.bytes() {
            cents = cents
                .checked_mul(10)
                .and_then(|c| c.checked_add(i64::from(digit - b'0')))
                .ok_or(AmountError::TooLarge)?;
        }
        let cents = cents
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction_cents))
            .ok_or(AmountError::TooLarge)?;
        Ok(Money(if negative { -cents } else { cents }))
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// The cost of `shares` at this price per share.
    pub fn times(self, shares: i64) -> Option<Money> {
        self.0.checked_mul(shares).map(Money)
    }

    /// This amount as people read it, for sentences: `$4,999.85`,
    /// `-$300.00` (a dollar sign, thousands separated by commas, two
    /// decimals). Every human sentence that shows money shows it this way;
    /// the wire and the logs' money fields keep [`Display`](fmt::Display)'s
    /// plain `4999.85`.
    pub fn dollars(self) -> Dollars {
        Dollars(self)
    }

    /// How many whole shares this amount buys at `price` (floor); zero when
    /// the price is not positive.
    pub fn shares_at(self, price: Money) -> i64 {
        if price.0 <= 0 || self.0 <= 0 {
            0
        } else {
            self.0 / price.0
        }
    }
}

/// "5" means 50 cents, "05" means 5 cents.
fn parse_fraction(f: &str) -> i64 {
    let value: i64 = f.bytes().fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
    if f.len() == 1 { value * 10 } else { value }
}

/// Room for the longest decimal: a sign, 17 whole digits, the point and
/// two places (`-92233720368547758.08`).
const DECIMAL_LEN: usize = 21;

/// [`Money`] as its decimal string, written into a buffer of its own: a
/// summary carries hundreds of amounts, and going through `core::fmt` and
/// serde's `collect_str` for each was a tenth of a summary's cost.
pub struct Decimal {
    bytes: [u8; DECIMAL_LEN],
    start: usize,
}

impl Decimal {
    fn of(money: Money) -> Decimal {
        let mut bytes = [0u8; DECIMAL_LEN];
        let mut at = DECIMAL_LEN;
        let mut put = |byte: u8| {
            at -= 1;
            bytes[at] = byte;
        };
        let abs = money.0.unsigned_abs();
        let (mut whole, fraction) = (abs / 100, abs % 100);
        put(b'0' + (fraction % 10) as u8);
        put(b'0' + (fraction / 10) as u8);
        put(b'.');
        loop {
            put(b'0' + (whole % 10) as u8);
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        if money.0 < 0 {
            put(b'-');
        }
        Decimal { bytes, start: at }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.start..]).expect("only ASCII digits, '-' and '.'")
    }
}

impl Money {
    /// The decimal string with exactly two places (`"1234.50"`), without
    /// allocating.
    pub fn decimal(self) -> Decimal {
        Decimal::of(self)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.decimal().as_str())
    }
}

/// [`Money`] shown in dollars: see [`Money::dollars`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Dollars(Money);

impl fmt::Display for Dollars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0.0;
        if cents < 0 {
            f.write_str("-")?;
        }
        let abs = cents.unsigned_abs();
        let whole = (abs / 100).to_string();
        f.write_str("$")?;
        for (i, digit) in whole.char_indices() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                f.write_str(",")?;
            }
            write!(f, "{digit}")?;
        }
        write!(f, ".{:02}", abs % 100)
    }
}

impl FromStr for Money {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_decimal(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.decimal().as_str())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string with at most two places, or integer cents")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse_decimal(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                Ok(Money(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v).map(Money).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(MoneyVisitor)
        } else {
            deserializer.deserialize_i64(MoneyVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_amounts_exactly() {
        assert_eq!(Money::parse_amount("1234.50"), Ok(Money(123_450)));
        assert_eq!(Money::parse_amount("1234.5"), Ok(Money(123_450)));
        assert_eq!(Money::parse_amount("0.05"), Ok(Money(5)));
        assert_eq!(Money::parse_amount("7"), Ok(Money(700)));
        assert_eq!(Money::parse_amount("12.500"), Ok(Money(1250)));
        assert_eq!(Money::parse_amount("1000000000.00"), Ok(Money::MAX_AMOUNT));
    }

    #[test]
    fn rejects_bad_amounts_with_a_reason() {
        use AmountError::*;
        for (text, why) in [
            ("", Empty),
            ("abc", Malformed),
            ("1.", Malformed),
            (".5", Malformed),
            ("+5", Malformed),
            (" 5", Malformed),
            ("5 ", Malformed),
            ("1e5", Malformed),
            ("1,000", Malformed),
            ("--1", Malformed),
            ("NaN", Malformed),
            ("1.234", TooManyDecimals),
            ("0", NotPositive),
            ("0.00", NotPositive),
            ("-73280.58", NotPositive),
            ("1000000000.01", TooLarge),
            ("99999999999999999999999", TooLarge),
        ] {
            assert_eq!(Money::parse_amount(text), Err(why), "{text:?}");
        }
    }

    #[test]
    fn displays_two_places() {
        assert_eq!(Money(123_450).to_string(), "1234.50");
        assert_eq!(Money(5).to_string(), "0.05");
        assert_eq!(Money(0).to_string(), "0.00");
        assert_eq!(Money(-7_328_058).to_string(), "-73280.58");
        assert_eq!(Money(i64::MIN).to_string(), "-92233720368547758.08");
        assert_eq!(Money(i64::MAX).to_string(), "92233720368547758.07");
    }

    proptest::proptest! {
        /// The hand-written digits say what the obvious formatting says,
        /// and read back to the same cents.
        #[test]
        fn the_decimal_is_the_formatted_cents(cents in proptest::prelude::any::<i64>()) {
            let sign = if cents < 0 { "-" } else { "" };
            let abs = cents.unsigned_abs();
            let expected = format!("{sign}{}.{:02}", abs / 100, abs % 100);
            let decimal = Money(cents).decimal();
            proptest::prop_assert_eq!(decimal.as_str(), expected.as_str());
            let json = serde_json::to_string(&Money(cents)).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), Money(cents));
        }
    }

    #[test]
    fn shows_dollars_for_people() {
        let cases = [
            (0, "$0.00"),
            (5, "$0.05"),
            (99_999, "$999.99"),
            (100_000, "$1,000.00"),
            (499_985, "$4,999.85"),
            (123_456_789, "$1,234,567.89"),
            (-30_000, "-$300.00"),
            (i64::MIN, "-$92,233,720,368,547,758.08"),
        ];
        for (cents, text) in cases {
            assert_eq!(Money(cents).dollars().to_string(), text);
        }
        assert_eq!(
            AmountError::TooLarge.to_string(),
            "it is larger than $1,000,000,000.00"
        );
    }

    #[test]
    fn floors_shares() {
        assert_eq!(Money(27_683).shares_at(Money(5_817)), 4);
        assert_eq!(Money(100).shares_at(Money(101)), 0);
        assert_eq!(Money(100).shares_at(Money(0)), 0);
    }

    #[test]
    fn serializes_as_string_for_people_and_cents_for_machines() {
        let json = serde_json::to_string(&Money(1050)).unwrap();
        assert_eq!(json, "\"10.50\"");
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), Money(1050));
        let bytes = postcard::to_allocvec(&Money(-1050)).unwrap();
        assert_eq!(postcard::from_bytes::<Money>(&bytes).unwrap(), Money(-1050));
    }
}
