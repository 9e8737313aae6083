//! The `Date` header: the current time as an IMF-fixdate, such as
//! `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110, section 5.6.7).
//!
//! Every response carries one, so formatting must be cheap: each thread
//! keeps the string it made last and the second it belongs to, and makes a
//! new one only when the second changes. A thread-local rather than a
//! shared cache, because a lock or an atomic swap on every response would
//! cost more than the formatting it saves, and a server has few threads.
//!
//! The calendar arithmetic is written out here instead of pulling in a
//! date crate: turning a day count into a year, month and day is one short,
//! well-known algorithm, and the tests pin it to known dates.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

thread_local! {
    /// The second (since the Unix epoch) and its formatted date.
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current date as an IMF-fixdate to `out`.
pub(crate) fn append_now(out: &mut Vec<u8>) {
    // A clock set before 1970 is a broken clock; 1970 is as good an answer
    // as any, and better than a panic.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, imf_fixdate(secs));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}

/// Formats `secs` seconds after the Unix epoch, in UTC.
pub(crate) fn imf_fixdate(secs: u64) -> String {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1 January 1970 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Year, month (1 to 12) and day (1 to 31) of the day `days` after
/// 1 January 1970, in the proleptic Gregorian calendar.
///
/// Howard Hinnant's `civil_from_days`, for days on or after the epoch only:
/// count in 400-year eras (each exactly 146 097 days long) of years that
/// start on 1 March, so that the leap day falls at the end of a year and
/// the month lengths before it follow one fixed pattern.
pub(crate) fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Shift the origin from 1970-01-01 to 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097; // 0 to 146 096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0 to 399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0 to 365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 (March) to 11 (February)
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    // January and February belong to the next civil year.
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days_convert_to_their_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(58), (1970, 2, 28));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2000 was a leap year (divisible by 400), 2100 will not be.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_722), (2023, 12, 31));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Walks 150 years day by day: each date is the previous one plus a
        // day, with month lengths and leap years checked independently.
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let month_len = |y: u64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut expected = (1970, 1, 1);
        for days in 0..(150 * 366) {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            expected = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn formats_known_instants() {
        // The example in RFC 9110 itself.
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(imf_fixdate(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn now_is_a_fixdate_and_is_cached_per_second() {
        let mut a = Vec::new();
        append_now(&mut a);
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.len(), "Sun, 06 Nov 1994 08:49:37 GMT".len());
        assert!(text.ends_with(" GMT"), "{text}");
        CACHE.with(|cache| assert_eq!(cache.borrow().1, text));
    }
}
