//! How money and time read on the pages.

use engine::Money;

/// `$1,234.50`, `-$3.00`: a currency sign and thousands separators, which
/// the wire format (`1234.50`) leaves out. The same as in the engine's
/// refusals ([`Money::dollars`]), for templates that want a `String`.
pub fn dollars(money: Money) -> String {
    money.dollars().to_string()
}

/// `2026-11-23 17:18:03 UTC`: the engine's one way to write a moment.
pub use engine::clock::utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_have_separators_and_a_sign() {
        let cases = [
            (0, "$0.00"),
            (5, "$0.05"),
            (123_456, "$1,234.56"),
            (100_000_000, "$1,000,000.00"),
            (-30_000, "-$300.00"),
            (99_999, "$999.99"),
        ];
        for (cents, text) in cases {
            assert_eq!(dollars(Money::from_cents(cents)), text);
        }
    }
}
