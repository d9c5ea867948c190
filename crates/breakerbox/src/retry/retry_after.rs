//! Parsing the `Retry-After` response header.

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` header value (RFC 9110 §10.2.3): delta-seconds (`"120"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), read against `now`, the wall-clock time the
/// response arrived.
///
/// A date in the past means zero. Anything else (negative or fractional numbers, unknown date
/// formats, empty values) gives `None`, and callers fall back to their backoff. Delta-seconds
/// too large for a [`Duration`] saturate, so they are simply "too long".
///
/// ```
/// use breakerbox::retry::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_400); // Wed, 21 Oct 2015 07:26:40 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
///     Some(Duration::from_secs(80)),
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// Wed, 21 Oct 2015 07:28:00 GMT.
    fn date() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    #[test]
    fn delta_seconds() {
        let now = date();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("007", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn http_dates_in_all_three_formats() {
        let now = date() - Duration::from_secs(90);
        for value in [
            "Wed, 21 Oct 2015 07:28:00 GMT",     // IMF-fixdate
            "Wednesday, 21-Oct-15 07:28:00 GMT", // RFC 850
            "Wed Oct 21 07:28:00 2015",          // asctime
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::from_secs(90)),
                "{value}"
            );
        }
    }

    #[test]
    fn past_dates_are_zero() {
        let now = date() + Duration::from_secs(3600);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_none() {
        for value in [
            "",
            "  ",
            "-1",
            "+5",
            "1.5",
            "1e3",
            "soon",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "30s",
        ] {
            assert_eq!(parse_retry_after(value, date()), None, "{value:?}");
        }
    }
}
