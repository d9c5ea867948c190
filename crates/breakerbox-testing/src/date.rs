//! IMF-fixdate, the preferred HTTP-date format (RFC 9110 §5.6.7), written without a date crate.

#[cfg(feature = "net")]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats `time` as an IMF-fixdate, the HTTP-date form that `Date`, `Last-Modified`, `Expires`
/// and `Retry-After` use (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Fractions of a second are dropped (HTTP-dates have whole seconds). Times before 1970 work;
/// the year is written with at least four digits, as the format requires.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let time = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(breakerbox_testing::http_date(time), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn http_date(time: SystemTime) -> String {
    // Whole seconds since the epoch, rounded towards the past (so 0.5 s before the epoch is
    // 23:59:59 on the last day of 1969).
    let secs: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::from(after.as_secs()),
        Err(before) => {
            let before = before.duration();
            let whole = i128::from(before.as_secs());
            if before.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    };
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 in WEEKDAYS, which starts on Monday).
    let weekday = WEEKDAYS[(days + 3).rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        month = MONTHS[month as usize - 1],
    )
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) `days` days after 1970-01-01.
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    // Count from 0000-03-01, so that the leap day is the last day of a "year" and the
    // 400-year cycle of 146,097 days starts on a cycle boundary.
    let from_march_0 = days + 719_468;
    let cycle = from_march_0.div_euclid(146_097);
    let day_of_cycle = from_march_0.rem_euclid(146_097); // 0..=146_096
    // Years into the cycle: every 4th year is long, but not the 100th, except the 400th.
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    // Months from March: 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29, which the line
    // (153 * m + 2) / 5 walks exactly.
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + i128::from(month <= 2);
    (year, month, day)
}

/// The HTTP-date `delay` from now on the system's wall clock: what a server sends as
/// `Retry-After: <date>` to ask for that wait.
///
/// The wall clock, not tokio's: an HTTP-date names a moment in calendar time, and a client
/// compares it with its own wall clock. Under `tokio::time::pause()` that clock keeps running.
#[cfg(feature = "net")]
#[allow(clippy::disallowed_methods)] // an HTTP-date for "now + delay" needs the wall clock
pub(crate) fn http_date_in(delay: Duration) -> String {
    http_date(SystemTime::now() + delay)
}
