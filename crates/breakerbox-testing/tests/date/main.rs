//! `http_date` against dates worked out by hand, and round trips through the `httpdate` crate.

use breakerbox_testing::http_date;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn known_dates() {
    let cases = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        // RFC 9110's own example.
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
        (946_684_800, "Sat, 01 Jan 2000 00:00:00 GMT"),
        // 2000 is a leap year (divisible by 400).
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
        (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
        (1_735_689_599, "Tue, 31 Dec 2024 23:59:59 GMT"),
        (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
        // 2100 is not (divisible by 100, not by 400): 28 February, then 1 March.
        (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ];
    for (secs, expected) in cases {
        assert_eq!(http_date(at(secs)), expected, "{secs} s after the epoch");
    }
}

#[test]
fn fractions_of_a_second_are_dropped() {
    let time = at(784_111_777) + Duration::from_millis(999);
    assert_eq!(http_date(time), "Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn times_before_the_epoch_count_back() {
    let before = |d: Duration| UNIX_EPOCH - d;
    assert_eq!(
        http_date(before(Duration::from_secs(1))),
        "Wed, 31 Dec 1969 23:59:59 GMT"
    );
    assert_eq!(
        http_date(before(Duration::from_millis(500))),
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "half a second before midnight is still 23:59:59"
    );
    // 1900 was not a leap year; 1 March 1900 was a Thursday.
    assert_eq!(
        http_date(before(Duration::from_secs(2_203_891_200))),
        "Thu, 01 Mar 1900 00:00:00 GMT"
    );
}

#[test]
fn every_day_for_eighty_years_matches_httpdate() {
    // Every day from 1970 to 2050, at a time of day that moves through the whole day.
    let mut secs = 0u64;
    let mut checked = 0;
    while secs < 2_524_608_000 {
        let time = at(secs);
        let ours = http_date(time);
        assert_eq!(ours, httpdate::fmt_http_date(time), "{secs}");
        assert_eq!(httpdate::parse_http_date(&ours).unwrap(), time, "{ours}");
        secs += 86_400 + 3_607;
        checked += 1;
    }
    assert!(checked > 28_000);
}

#[test]
fn scattered_seconds_to_the_year_9999_match_httpdate() {
    // A fixed linear congruential sequence: the same 100,000 instants on every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..100_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let secs = (state >> 11) % 253_402_300_800;
        let time = at(secs);
        let ours = http_date(time);
        assert_eq!(ours, httpdate::fmt_http_date(time), "{secs}");
        assert_eq!(httpdate::parse_http_date(&ours).unwrap(), time, "{ours}");
    }
}
