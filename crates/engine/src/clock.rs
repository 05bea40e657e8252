//! How a moment (Unix milliseconds) reads as text: the engine's sentences
//! (an expired order says when it expired), the pages and the CSV export
//! all write times from here, so every instance renders the same text for
//! the same moment.

/// `2026-11-23 17:18:03 UTC`, for people.
pub fn utc(ms: i64) -> String {
    let ((year, month, day), (hour, minute, second), _) = parts(ms);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// `2026-11-23T17:18:03.250Z`: ISO 8601 in UTC, to the millisecond, for
/// files that programs read.
pub fn iso8601(ms: i64) -> String {
    let ((year, month, day), (hour, minute, second), millis) = parts(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// `2026-11-23T17:18:03Z`: RFC 3339 in UTC, to the second (the bench's
/// report stamps).
pub fn rfc3339(ms: i64) -> String {
    let ((year, month, day), (hour, minute, second), _) = parts(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

type Date = (i64, u32, u32);
type Time = (i64, i64, i64);

fn parts(ms: i64) -> (Date, Time, i64) {
    let secs = ms.div_euclid(1000);
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let time = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    (civil_from_days(days), time, ms.rem_euclid(1000))
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> Date {
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
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_330_546_050_315), "2012-02-29 20:07:30 UTC");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn rfc3339_is_to_the_second() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_250), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn iso8601_keeps_the_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_330_546_050_315), "2012-02-29T20:07:30.315Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
    }
}
