//! Retry policies: how a request is copied for another attempt, whether it may be sent twice at
//! all, and what an attempt's result means to the engine's retry rules.

use crate::classify::attempt_outcome;
use breakerbox::retry::Attempts;
use breakerbox::{AttemptOutcome, RetryConfig};
use std::time::Duration;
use tower::BoxError;

/// What [`RetryWithBackoff`](super::RetryWithBackoff) needs to know about requests and
/// responses. The decisions themselves (transient or not, how long to wait, budget) are the
/// engine's.
#[diagnostic::on_unimplemented(
    message = "the retry policy `{Self}` does not retry `{Req}` requests answered with `{Res}`",
    label = "this policy",
    note = "`RetryWithBackoffLayer::new` retries `http::Request`s by HTTP's rules; for other requests choose `.policy(breakerbox_tower::retry::CloneRequest)` (any `Clone` request, `Ok` is a success) or write a `Policy`"
)]
pub trait Policy<Req, Res> {
    /// Whether this request may be sent more than once (HTTP: an idempotent method, an
    /// `Idempotency-Key`, or the config opting in).
    fn is_retryable(&self, req: &Req, config: &RetryConfig) -> bool;

    /// A copy of the request for a possible retry, or `None` when it cannot be copied (a
    /// streaming body): then the request is sent exactly once and its result returned as is.
    fn clone_request(&self, req: &Req) -> Option<Req>;

    /// What an attempt's result means.
    fn outcome(&self, result: Result<&Res, &BoxError>) -> AttemptOutcome;

    /// The response's `Retry-After`, if it has a well-formed one. Asked only after a transient
    /// failure, so a successful call never parses headers.
    fn retry_after(&self, _res: &Res) -> Option<Duration> {
        None
    }

    /// Tells the caller what retrying did: called on the response handed back when there is
    /// something to tell (it was retried, or a breaker refused a retry).
    fn mark(&self, _res: &mut Res, _attempts: Attempts) {}
}

/// For any `Clone` request of a service that is not HTTP: every request may be retried; `Ok` is
/// a success, errors are classified by [`attempt_outcome`] (timeouts and connection errors are
/// transient, anything else is not).
///
/// ```
/// use breakerbox_tower::{RetryConfig, RetryWithBackoffLayer, retry::CloneRequest};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// let calls = Arc::new(AtomicU32::new(0));
/// let seen = calls.clone();
/// let mut lookup = ServiceBuilder::new()
///     .layer(RetryWithBackoffLayer::new(RetryConfig::default()).policy(CloneRequest))
///     .service(service_fn(move |id: u32| {
///         let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
///         async move {
///             if first {
///                 Err::<u32, BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
///             } else {
///                 Ok(id * 2)
///             }
///         }
///     }));
/// assert_eq!(lookup.ready().await?.call(21).await?, 42);
/// assert_eq!(calls.load(Ordering::SeqCst), 2);
/// # Ok(())
/// # }
/// ```
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

/// For `http::Request<B>` and `http::Response`, the default: only idempotent methods (or requests
/// with an `Idempotency-Key`) are retried unless the config opts in; a request whose body
/// cannot be copied ([`RetryBody::try_clone`] is `None`: a stream) is sent once; the status
/// and `Retry-After` (delta-seconds or HTTP-date; a malformed one is ignored) go to the engine;
/// a retried response carries [`Attempts`] in its extensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

impl<B: RetryBody, ResBody> Policy<http::Request<B>, http::Response<ResBody>> for Http {
    fn is_retryable(&self, req: &http::Request<B>, config: &RetryConfig) -> bool {
        breakerbox_http::may_retry(config, req.method(), req.headers())
    }

    fn clone_request(&self, req: &http::Request<B>) -> Option<http::Request<B>> {
        let mut clone = http::Request::new(req.body().try_clone()?);
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
        breakerbox_http::retry_after(res.headers())
    }

    fn mark(&self, res: &mut http::Response<ResBody>, attempts: Attempts) {
        res.extensions_mut().insert(attempts);
    }
}

/// A request body the [`Http`] policy can send again: a copy of it, or `None` when it cannot
/// be copied (a stream), in which case the request is sent exactly once.
///
/// Implemented for the bodies requests are usually built with: `()`, `String`, `Vec<u8>`,
/// `bytes::Bytes`, `&'static str`, `&'static [u8]`, `http_body_util::Full` and `Empty`; and, as
/// never copyable, for `http_body_util`'s boxed bodies and (feature `hyper`) hyper's `Incoming`
/// (a proxy's forwarded request is sent once, never dropped). Implement it for a body type of
/// your own.
#[diagnostic::on_unimplemented(
    message = "the retry layer does not know how to copy a `{Self}` request body",
    note = "implement `breakerbox_tower::retry::RetryBody` for it: return a copy, or `None` to send such requests once"
)]
pub trait RetryBody: Sized {
    /// A copy of the body for another attempt, or `None` to send the request once.
    fn try_clone(&self) -> Option<Self>;
}

macro_rules! clone_bodies {
    ($($body:ty),* $(,)?) => {
        $(impl RetryBody for $body {
            #[inline]
            fn try_clone(&self) -> Option<Self> {
                Some(self.clone())
            }
        })*
    };
}

clone_bodies!(
    (),
    String,
    Vec<u8>,
    bytes::Bytes,
    &'static str,
    &'static [u8]
);

impl<D: Clone> RetryBody for http_body_util::Full<D> {
    #[inline]
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> RetryBody for http_body_util::Empty<D> {
    #[inline]
    fn try_clone(&self) -> Option<Self> {
        Some(*self)
    }
}

impl<D, E> RetryBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

impl<D, E> RetryBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

#[cfg(feature = "hyper")]
impl RetryBody for hyper::body::Incoming {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}
