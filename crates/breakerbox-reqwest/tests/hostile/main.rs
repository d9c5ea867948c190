//! Hostile `Retry-After` headers through the reqwest middleware, from a raw loopback server that
//! writes whatever bytes it is given into the header line: valid header values, obs-text, and
//! bytes no header may hold (control characters, bare CR or LF, which break the response head).
//! Everything runs in paused tokio time, so every wait is measured exactly.
//!
//! Properties: no panic and no hang (every call resolves); a wait never exceeds `max_delay` nor
//! the time left before `max_elapsed`; a delta-seconds `Retry-After` on a 429 or 503 is waited
//! at least, and honoured rather than dropped when it is within the caps; a response head the
//! client cannot parse is retried as a transient failure. `PROPTEST_CASES` overrides the count.

use breakerbox::RetryConfig;
use breakerbox::backoff::Jitter;
use breakerbox_reqwest::RetryMiddleware;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

const BASE_DELAY: Duration = Duration::from_millis(10);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

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

/// One exchange: the first response has `status` and the hostile `Retry-After` bytes, the
/// second is a 200.
#[derive(Debug, Clone)]
struct Case {
    status: u16,
    header: Vec<u8>,
    max_delay: Duration,
    max_elapsed: Option<Duration>,
    jitter: Jitter,
}

/// Header bytes: anything at all (CR, LF and NUL included), any bytes a header value may hold,
/// delta-seconds far past u64::MAX, near-miss numbers, dates.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header_byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff];
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..40),
        2 => prop::collection::vec(header_byte, 0..40),
        4 => "[ \t]{0,2}[0-9]{1,25}[ \t]{0,2}".prop_map(String::into_bytes),
        2 => "[-+]?[0-9]{0,4}([.,][0-9]{0,3})?([eE][-+]?[0-9]{1,3})?(s| |)"
            .prop_map(String::into_bytes),
        1 => "(Mon|Wed|Xyz), [0-9]{2} (Oct|Foo) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
            .prop_map(String::into_bytes),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    // Caps up to a year: tokio's paused clock cannot sleep through eons; the engine's own
    // properties cover caps up to Duration::MAX.
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

/// A raw HTTP/1.1 server on 127.0.0.1: the first request of the case gets `first` (bytes as
/// they are), every later one a 200; one response per connection. Records each arrival.
async fn raw_server(first: Vec<u8>, hits: Arc<Mutex<Vec<Instant>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let first = first.clone();
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let is_first = {
                    let mut hits = hits.lock().unwrap();
                    hits.push(Instant::now());
                    hits.len() == 1
                };
                let response: &[u8] = if is_first {
                    &first
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// What the client may read from the bytes as delta-seconds (HTTP's whitespace trimmed),
/// if the bytes are a header value at all.
fn delta_seconds(bytes: &[u8]) -> Option<Duration> {
    let value = http::HeaderValue::from_bytes(bytes).ok()?;
    let text = value.to_str().ok()?.trim_matches([' ', '\t']);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = text.bytes().fold(0u128, |n, d| {
        (n * 10 + u128::from(d - b'0')).min(u128::from(u64::MAX) + 1)
    });
    Some(u64::try_from(secs).map_or(Duration::MAX, Duration::from_secs))
}

/// Sends one GET through `RetryMiddleware` to the raw server; the call's result (status or
/// error text) and the arrivals.
async fn exchange(case: &Case) -> (Result<u16, String>, Vec<Instant>) {
    let mut head = format!("HTTP/1.1 {} Hostile\r\nretry-after: ", case.status).into_bytes();
    head.extend_from_slice(&case.header);
    head.extend_from_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let addr = raw_server(head, hits.clone()).await;
    let config = RetryConfig::builder()
        .max_retries(1)
        .base_delay(BASE_DELAY)
        .max_delay(case.max_delay)
        .max_elapsed(case.max_elapsed)
        .jitter(case.jitter)
        .without_budget()
        .build()
        .expect("a valid config");
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("upstream.example", addr)
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(http)
        .with(RetryMiddleware::new(config))
        .build();
    let send = client.get("http://upstream.example/v1/items").send();
    // No call may hang: longer than any wait a case allows means lost.
    let result = match tokio::time::timeout(3 * YEAR, send).await {
        Ok(Ok(response)) => Ok(response.status().as_u16()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("hung".to_owned()),
    };
    let hits = hits.lock().unwrap().clone();
    (result, hits)
}

#[test]
fn hostile_retry_after_bytes_never_stretch_a_reqwest_retry_past_its_caps() {
    let config = cases(2048);
    let n = config.cases as usize;
    let (retried, returned) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        // A runtime per case: its paused clock starts afresh however far the last case slept.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let (result, hits) = runtime.block_on(exchange(&case));
        let shown = String::from_utf8_lossy(&case.header).into_owned();
        let status = result.map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?;
        prop_assert!(hits.len() <= 2 && !hits.is_empty());
        let honoured = matches!(case.status, 429 | 503);
        let wish = delta_seconds(&case.header).filter(|_| honoured);
        if let [first, second] = hits[..] {
            retried.fetch_add(1, Ordering::Relaxed);
            let gap = second - first;
            prop_assert_eq!(status, 200);
            prop_assert!(
                gap <= case.max_delay,
                "{:?}: waited {:?} > max_delay",
                shown,
                gap
            );
            if let Some(max) = case.max_elapsed {
                prop_assert!(gap <= max, "{:?}: waited {:?} > max_elapsed", shown, gap);
            }
            if let Some(wish) = wish {
                prop_assert!(gap >= wish, "{:?}: waited {:?}", shown, gap);
            }
        } else {
            returned.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(status, case.status, "one attempt: its answer comes back");
            let no_time = case.max_elapsed.is_some_and(|max| max < BASE_DELAY);
            if !no_time {
                // Only an honoured Retry-After the client could read stops a retry: too long
                // for the caps, or a date (read against the wall clock, not checked here).
                prop_assert!(honoured, "{:?}: a {} not retried", shown, case.status);
                if let Some(wish) = wish {
                    prop_assert!(
                        wish > case.max_delay || case.max_elapsed.is_some_and(|max| wish > max),
                        "{:?} within the caps, yet not retried",
                        shown
                    );
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (retried, returned) = (retried.into_inner(), returned.into_inner());
    eprintln!("reqwest retry: {n} cases, {retried} retried, {returned} answered at once");
    if n >= 256 {
        assert!(
            retried * 5 >= n && returned * 10 >= n,
            "both outcomes must be exercised"
        );
    }
}
