//! Hostile `Retry-After` headers through the tower front end: arbitrary bytes become (or fail
//! to become) an `http::HeaderValue`, go through the `Http` retry policy's header reading and on
//! into `RetryWithBackoff` over a scripted service, in paused tokio time so that every wait is
//! measured exactly.
//!
//! Properties: no panic; a header that is not visible ASCII is ignored; delta-seconds are read
//! exactly; a wait never exceeds `max_delay` nor the time left before `max_elapsed`; an
//! acceptable `Retry-After` on a 429 or 503 is waited at least, and honoured rather than
//! dropped. `PROPTEST_CASES` overrides the case counts.

use breakerbox::RetryConfig;
use breakerbox::backoff::Jitter;
use breakerbox::retry::parse_retry_after;
use breakerbox_http::retry_after;
use breakerbox_tower::RetryWithBackoffLayer;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt, service_fn};

fn cases(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The wall clock, against which HTTP-dates are read (as the front end itself does).
#[allow(
    clippy::disallowed_methods,
    reason = "an HTTP-date in Retry-After is wall-clock time; the policy reads it the same way"
)]
fn wall_now() -> SystemTime {
    SystemTime::now()
}

/// What a server may put in the header, as bytes: anything at all (mostly not a valid header
/// value), any bytes a header value may hold (visible ASCII, tab, obs-text), delta-seconds up to
/// far past u64::MAX, near-miss numbers, and HTTP-dates from the past to far ahead.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header_byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff];
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..48),
        2 => prop::collection::vec(header_byte, 0..48),
        4 => "[ \t]{0,2}[0-9]{1,25}[ \t]{0,2}".prop_map(String::into_bytes),
        2 => "[-+]?[0-9]{0,4}([.,][0-9]{0,3})?([eE][-+]?[0-9]{1,3})?(s| |)".prop_map(String::into_bytes),
        3 => (-3_600i64..=7_200).prop_map(|ahead| {
            let now = wall_now();
            let date = if ahead >= 0 {
                now + Duration::from_secs(ahead.unsigned_abs())
            } else {
                now - Duration::from_secs(ahead.unsigned_abs())
            };
            httpdate::fmt_http_date(date).into_bytes()
        }),
        1 => (0u64..=253_402_300_799)
            .prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)).into_bytes()),
    ]
}

/// `text` without HTTP's optional whitespace (SP and HTAB).
fn ows_trimmed(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// The delta-seconds of a header, read independently of the engine (saturating), if it is one.
fn delta_seconds(value: &HeaderValue) -> Option<Duration> {
    let text = ows_trimmed(value.to_str().ok()?);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = text.bytes().fold(0u128, |n, d| {
        (n * 10 + u128::from(d - b'0')).min(u128::from(u64::MAX) + 1)
    });
    Some(u64::try_from(secs).map_or(Duration::MAX, Duration::from_secs))
}

#[test]
fn header_bytes_are_read_as_the_engine_reads_text_or_ignored() {
    let mut runner = TestRunner::new(cases(4096));
    let result = runner.run(
        &(header_bytes(), prop::option::of(header_bytes())),
        |(first, second)| {
            let Ok(value) = HeaderValue::from_bytes(&first) else {
                // Not a header value: no response can carry it.
                prop_assert!(first.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f));
                return Ok(());
            };
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, value.clone());
            if let Some(second) = second.and_then(|b| HeaderValue::from_bytes(&b).ok()) {
                headers.append(RETRY_AFTER, second); // only the first one counts
            }
            let before = wall_now();
            let read = retry_after(&headers);
            let after = wall_now();
            match value.to_str() {
                // obs-text is not text: ignored.
                Err(_) => prop_assert_eq!(read, None),
                Ok(text) => {
                    if let Some(delta) = delta_seconds(&value) {
                        prop_assert_eq!(read, Some(delta));
                    } else {
                        // A date: what the engine reads from the same text, between its
                        // readings at wall-clock times taken just before and just after.
                        let (early, late) = (
                            parse_retry_after(text, before),
                            parse_retry_after(text, after),
                        );
                        prop_assert!(
                            late <= read && read <= early,
                            "{:?}: {:?}, engine {:?} .. {:?}",
                            text,
                            read,
                            late,
                            early
                        );
                    }
                }
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

const BASE_DELAY: Duration = Duration::from_millis(10);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// One scripted exchange: the first answer carries the hostile header, the second is a 200.
#[derive(Debug, Clone)]
struct Case {
    status: u16,
    header: Vec<u8>,
    max_delay: Duration,
    max_elapsed: Option<Duration>,
    jitter: Jitter,
}

fn case() -> impl Strategy<Value = Case> {
    // Caps up to a year: tokio's paused clock cannot sleep through eons (a wait of 10^18 s
    // spins there); the engine's own properties cover caps up to Duration::MAX, and tests/retry
    // `an_endless_retry_after_under_an_unbounded_config_waits_without_panicking` the front
    // end's side of them.
    let max_delay = prop_oneof![
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(30)),
        Just(Duration::from_secs(3600)),
        Just(YEAR),
        (1u64..=7_200_000).prop_map(Duration::from_millis),
    ];
    let max_elapsed = prop::option::of(prop_oneof![
        Just(YEAR),
        (1u64..=7_200_000).prop_map(Duration::from_millis),
    ]);
    let jitter = prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ];
    (
        prop_oneof![3 => Just(503u16), 3 => Just(429u16), 1 => Just(500u16), 1 => Just(408u16)],
        header_bytes(),
        max_delay,
        max_elapsed,
        jitter,
    )
        .prop_map(|(status, header, max_delay, max_elapsed, jitter)| Case {
            status,
            header,
            max_delay,
            max_elapsed,
            jitter,
        })
}

/// Sends one GET through `RetryWithBackoff` (the `Http` policy) to a service answering
/// `case.status` with the hostile `Retry-After`, then 200; returns the final status and the
/// instants the service was called at.
async fn exchange(case: &Case, header: HeaderValue) -> Result<(u16, Vec<Instant>), BoxError> {
    let config = RetryConfig::builder()
        .max_retries(1)
        .base_delay(BASE_DELAY)
        .max_delay(case.max_delay)
        .max_elapsed(case.max_elapsed)
        .jitter(case.jitter)
        .without_budget()
        .build()
        .expect("a valid config");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let status = case.status;
    let upstream = service_fn(move |_req: http::Request<String>| {
        let header = header.clone();
        let first = {
            let mut calls = seen.lock().unwrap();
            calls.push(Instant::now());
            calls.len() == 1
        };
        async move {
            let response = if first {
                http::Response::builder()
                    .status(status)
                    .header(RETRY_AFTER, header)
            } else {
                http::Response::builder().status(200)
            };
            Ok::<_, BoxError>(response.body(()).unwrap())
        }
    });
    let service = RetryWithBackoffLayer::new(config).layer(upstream);
    let request = http::Request::get("https://api.example.com/v1/items")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await?;
    let calls = calls.lock().unwrap().clone();
    Ok((response.status().as_u16(), calls))
}

#[test]
fn retry_after_headers_never_stretch_a_tower_retry_past_its_caps() {
    let config = cases(2048);
    let n = config.cases as usize;
    let (retried, returned) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        let Ok(header) = HeaderValue::from_bytes(&case.header) else {
            return Ok(());
        };
        // What the policy reads; an HTTP-date may read a second apart from the run's reading.
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, header.clone());
        let slack = if delta_seconds(&header).is_some() {
            Duration::ZERO
        } else {
            Duration::from_secs(2)
        };
        let honoured = matches!(case.status, 429 | 503);
        let wish = retry_after(&headers).filter(|_| honoured);
        // A runtime per case: its paused clock starts afresh however far the last case slept.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (status, calls) = runtime
            .block_on(exchange(&case, header))
            .map_err(|e| TestCaseError::fail(format!("the call failed: {e}")))?;
        prop_assert!(calls.len() <= 2);
        if let [first, second] = calls[..] {
            retried.fetch_add(1, Ordering::Relaxed);
            let gap = second - first;
            prop_assert_eq!(status, 200);
            prop_assert!(
                gap <= case.max_delay,
                "waited {:?} > max_delay {:?}",
                gap,
                case.max_delay
            );
            if let Some(max) = case.max_elapsed {
                prop_assert!(gap <= max, "waited {:?} > max_elapsed {:?}", gap, max);
            }
            if let Some(wish) = wish {
                prop_assert!(gap + slack >= wish, "waited {:?}, asked {:?}", gap, wish);
            }
        } else {
            returned.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(status, case.status, "one attempt: its answer comes back");
            // A backoff longer than max_elapsed stops too.
            let no_time = case.max_elapsed.is_some_and(|max| max < BASE_DELAY);
            let within_caps = |wish: Duration| {
                wish + slack <= case.max_delay
                    && case.max_elapsed.is_none_or(|max| wish + slack <= max)
            };
            prop_assert!(
                no_time || wish.is_some_and(|wish| !within_caps(wish)),
                "not retried: status {}, Retry-After {:?} read as {:?}",
                case.status,
                String::from_utf8_lossy(&case.header),
                wish
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (retried, returned) = (retried.into_inner(), returned.into_inner());
    eprintln!("tower retry: {n} cases, {retried} retried, {returned} answered at once");
    if n >= 256 {
        assert!(
            retried * 5 >= n && returned * 10 >= n,
            "both outcomes must be exercised"
        );
    }
}
