//! Retry policies: how a request is cloned for another attempt, whether it may be retried at
//! all, and what an attempt's result means to the engine's retry rules.

use crate::classify::attempt_outcome;
use breakerbox::RetryConfig;
use breakerbox::retry::{AttemptOutcome, parse_retry_after};
use std::time::{Duration, SystemTime};
use tower::BoxError;

/// What [`RetryWithBackoff`](super::RetryWithBackoff) needs to know about requests and
/// responses. The decisions themselves (transient or not, how long to wait, budget) are the
/// engine's.
pub trait Policy<Req, Res> {
    /// Whether this request may be retried at all (HTTP: an idempotent method, or an
    /// `Idempotency-Key`, or the config opting in).
    fn is_retryable(&self, req: &Req, config: &RetryConfig) -> bool;

    /// A copy of the request for a possible retry, or `None` when it cannot be copied (a
    /// streaming body): then the request is sent exactly once and its outcome returned as is.
    fn clone_request(&self, req: &Req) -> Option<Req>;

    /// What an attempt's result means.
    fn outcome(&self, result: Result<&Res, &BoxError>) -> AttemptOutcome;

    /// The response's `Retry-After`, if it has a well-formed one. Asked only after a transient
    /// failure, so a successful call never parses headers.
    fn retry_after(&self, _res: &Res) -> Option<Duration> {
        None
    }

    /// Marks the final response of a retried request with the number of attempts made (called
    /// only when there was more than one).
    fn mark(&self, _res: &mut Res, _attempts: u32) {}
}

/// For any `Clone` request: every request may be retried; `Ok` is a success, errors are
/// classified by [`attempt_outcome`] (timeouts and connection errors are transient).
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneRequest;

impl<Req: Clone, Res> Policy<Req, Res> for CloneRequest {
    fn is_retryable(&self, _req: &Req, _config: &RetryConfig) -> bool {
        true
    }

    fn clone_request(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }

    fn outcome(&self, result: Result<&Res, &BoxError>) -> AttemptOutcome {
        match result {
            Ok(_) => AttemptOutcome::Success,
            Err(e) => attempt_outcome(e),
        }
    }
}

/// The number of attempts a retried response took, in its extensions. A response without it was
/// answered by the first attempt (the layer adds nothing to a call it did not retry): read it
/// with [`Attempts::of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts(pub u32);

impl Attempts {
    /// How many attempts `response` took: 1 unless it was retried.
    pub fn of<B>(response: &http::Response<B>) -> u32 {
        response.extensions().get::<Attempts>().map_or(1, |a| a.0)
    }
}

/// For `http::Request<B>` with a `Clone` body and `http::Response`: only idempotent methods (or
/// requests with an `Idempotency-Key`) are retried unless the config opts in; the status and
/// `Retry-After` (delta-seconds or HTTP-date; a malformed one is ignored) go to the engine; a
/// retried response carries [`Attempts`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

/// The header that makes a non-idempotent request safe to retry.
pub const IDEMPOTENCY_KEY: http::HeaderName = http::HeaderName::from_static("idempotency-key");

impl<B: Clone, ResBody> Policy<http::Request<B>, http::Response<ResBody>> for Http {
    fn is_retryable(&self, req: &http::Request<B>, config: &RetryConfig) -> bool {
        config.may_retry_with(req.method().is_idempotent(), || {
            req.headers().contains_key(&IDEMPOTENCY_KEY)
        })
    }

    fn clone_request(&self, req: &http::Request<B>) -> Option<http::Request<B>> {
        let mut clone = http::Request::new(req.body().clone());
        *clone.method_mut() = req.method().clone();
        *clone.uri_mut() = req.uri().clone();
        *clone.version_mut() = req.version();
        *clone.headers_mut() = req.headers().clone();
        *clone.extensions_mut() = req.extensions().clone();
        Some(clone)
    }

    fn outcome(&self, result: Result<&http::Response<ResBody>, &BoxError>) -> AttemptOutcome {
        match result {
            Ok(res) => AttemptOutcome::Status(res.status().as_u16()),
            Err(e) => attempt_outcome(e),
        }
    }

    fn retry_after(&self, res: &http::Response<ResBody>) -> Option<Duration> {
        retry_after(res.headers())
    }

    fn mark(&self, res: &mut http::Response<ResBody>, attempts: u32) {
        res.extensions_mut().insert(Attempts(attempts));
    }
}

/// The `Retry-After` of a response, if present and well-formed.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    // An HTTP-date is wall-clock time: the one place the wall clock is read.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    parse_retry_after(value, now)
}
