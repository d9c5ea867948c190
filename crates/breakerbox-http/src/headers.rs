//! HTTP's part of the engine's rules: which requests may be sent twice, and what a response's
//! `Retry-After` asks for.

use breakerbox::retry::parse_retry_after;
use breakerbox::{BreakerConfig, RetryConfig};
use http::{HeaderMap, HeaderName, Method};
use std::time::{Duration, SystemTime};

/// The header that makes a non-idempotent request (a `POST`, a `PATCH`) safe to retry: the server
/// promises to apply a request carrying a key it has seen only once.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Whether a request with `method` and `headers` may be sent more than once under `config`: an
/// idempotent method (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`), an
/// [`Idempotency-Key`](IDEMPOTENCY_KEY) header, or `retry_non_idempotent` set. The header is
/// looked up only when the method does not decide.
///
/// ```
/// use breakerbox::RetryConfig;
/// use breakerbox_http::may_retry;
/// use http::{HeaderMap, Method};
///
/// let config = RetryConfig::default();
/// let mut headers = HeaderMap::new();
/// assert!(may_retry(&config, &Method::GET, &headers));
/// assert!(!may_retry(&config, &Method::POST, &headers));
/// headers.insert("idempotency-key", "order-1234".parse().unwrap());
/// assert!(may_retry(&config, &Method::POST, &headers));
/// ```
#[inline]
pub fn may_retry(config: &RetryConfig, method: &Method, headers: &HeaderMap) -> bool {
    config.may_retry_with(method.is_idempotent(), || {
        headers.contains_key(&IDEMPOTENCY_KEY)
    })
}

/// The `Retry-After` of a response, if present and well-formed: delta-seconds or an HTTP-date
/// (read against the wall clock). A malformed or non-UTF-8 value is ignored (`None`), never an
/// error; the engine caps what it honours.
///
/// ```
/// use breakerbox_http::retry_after;
/// use http::HeaderMap;
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
/// headers.insert("retry-after", "soon".parse().unwrap());
/// assert_eq!(retry_after(&headers), None);
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    // An HTTP-date is wall-clock time: the one place the wall clock is read.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    parse_retry_after(value, now)
}

/// The server's word on a response: how long a 429 or 503 asks the client to stay away, by its
/// `Retry-After` or the breaker's rate-limit reset header, when the breaker opens on it (see
/// [`BreakerConfig::server_wait`]; HTTP-dates and epoch times are read against the wall clock).
/// Only 429 and 503 answers read their headers.
///
/// ```
/// use breakerbox::BreakerConfig;
/// use breakerbox_http::server_wait;
/// use http::HeaderMap;
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "30".parse().unwrap());
/// let config = BreakerConfig::default();
/// assert_eq!(server_wait(&config, 429, &headers), Some(Duration::from_secs(30)));
/// assert_eq!(server_wait(&config, 200, &headers), None);
/// ```
#[inline]
pub fn server_wait(config: &BreakerConfig, status: u16, headers: &HeaderMap) -> Option<Duration> {
    if !matches!(status, 429 | 503) {
        return None;
    }
    // An HTTP-date or an epoch time is wall-clock time.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    config.server_wait(status, |name| headers.get(name).map(|v| v.as_bytes()), now)
}
