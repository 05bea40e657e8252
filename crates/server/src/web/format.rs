//! How money and time read on the pages.

use engine::Money;

/// `$1,234.50`, `-$3.00`: a currency sign and thousands separators, which
/// the wire format (`1234.50`) leaves out. The same as in the engine's
/// refusals ([`Money::dollars`]), for templates that want a `String`.
pub fn dollars(money: Money) -> String {
    money.dollars().to_string()
}

/// `2026-11-23 17:18:03 UTC`. Every instance renders the same text for the
/// same moment, which cached fragments shared between them need.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

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

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_330_546_050_315), "2012-02-29 20:07:30 UTC");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31 23:59:59 UTC");
    }
}
