//! Retry with backoff for any `tower::Service`, driven by the engine's rules.
//!
//! [`RetryWithBackoff`] sends a request and, while the engine says so, waits and sends a copy
//! again. By default it retries HTTP requests (`http::Request<B>`, the [`Http`] policy):
//!
//! - at most `max_retries` retries, waits of `base_delay × multiplier^n` capped at `max_delay`
//!   with the configured jitter, and nothing past `max_elapsed`;
//! - only transient failures: timeouts, connection errors, and the configured `statuses` (408,
//!   429 and 5xx by default); a [`CircuitOpen`](breakerbox::CircuitOpen) rejection fails fast,
//!   never retried;
//! - `Retry-After` on 429 / 503 (seconds or HTTP-date) is waited for at least; one longer than
//!   `max_delay` or the time left returns the response at once instead of sleeping;
//! - only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), unless the config opts in
//!   or the request carries an `Idempotency-Key`: a `POST` is sent once;
//! - a request whose body cannot be copied ([`RetryBody`]) is sent exactly once, never dropped;
//! - a retry budget shared by the layer's services caps retries to a fraction of recent requests
//!   plus a floor, so a fleet cannot amplify an outage;
//! - the last real answer: once an attempt reached the upstream, the caller gets the last
//!   upstream result, never a `CircuitOpen` from a breaker that refused a later attempt. A
//!   `CircuitOpen` reaches the caller only when nothing of the call was sent. The previous
//!   attempt's result (an HTTP response with its body unread, holding its connection) is kept
//!   while the next attempt waits, for that;
//! - a response that was retried, or whose retry a breaker refused, carries
//!   [`Attempts`] in its extensions: how many attempts reached the
//!   upstream, and why retrying stopped (`stopped_by_open_breaker()`);
//! - `retry_attempts_total`, `retry_exhausted_total` and `retry_budget_rejected_total` count
//!   what happened.
//!
//! Any other service takes a policy of its own: [`CloneRequest`] (any `Clone` request, `Ok` a
//! success) or a [`Policy`]. A request type the default policy cannot retry does not compile
//! (the error names the policy, the request and what to write instead):
//!
//! ```compile_fail
//! use breakerbox_tower::{RetryConfig, RetryWithBackoffLayer};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # async fn run() -> Result<(), BoxError> {
//! let mut lookup = ServiceBuilder::new()
//!     .layer(RetryWithBackoffLayer::new(RetryConfig::default()))
//!     .service(service_fn(|id: u32| async move { Ok::<u32, BoxError>(id) }));
//! lookup.ready().await?.call(7).await?; // does not compile: not an HTTP request
//! # Ok(())
//! # }
//! ```
//!
//! A call whose first attempt settles it (a success, a client error) costs no retry
//! bookkeeping and no clock read; the retry state and `max_elapsed` start at the first
//! transient failure, so the whole call takes at most the first attempt (bounded by the timeout
//! inside) plus `max_elapsed`.
//!
//! Put it outermost: retry → rate limit → circuit breaker → timeout → client. Each attempt then
//! goes through the breaker (and counts there), and a timeout is a transient failure.
//!
//! ```
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, Jitter, RetryConfig, RetryWithBackoffLayer};
//! use breakerbox_tower::retry::Attempts;
//! use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
//! use std::time::Duration;
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! let retry = RetryConfig::builder()
//!     .max_retries(3)
//!     .base_delay(Duration::from_millis(100))
//!     .jitter(Jitter::None)
//!     .build()?;
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = calls.clone();
//! let mut client = ServiceBuilder::new()
//!     .layer(RetryWithBackoffLayer::named("musicbrainz", retry))
//!     .layer(CircuitBreakerLayer::named("musicbrainz", BreakerConfig::default()))
//!     .timeout(Duration::from_secs(10))
//!     .service(service_fn(move |_req: http::Request<String>| {
//!         // 503 twice, then 200.
//!         let status = if seen.fetch_add(1, Ordering::SeqCst) < 2 { 503 } else { 200 };
//!         async move { Ok::<_, BoxError>(http::Response::builder().status(status).body(String::new())?) }
//!     }));
//!
//! let request = http::Request::get("https://musicbrainz.org/ws/2/recording").body(String::new())?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.extensions().get::<Attempts>().map(Attempts::count), Some(3));
//!
//! // A POST is not idempotent: sent once, its 503 handed back.
//! let post = http::Request::post("https://musicbrainz.org/ws/2/rating").body("5".to_owned())?;
//! calls.store(0, Ordering::SeqCst);
//! assert_eq!(client.ready().await?.call(post).await?.status(), 503);
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # Ok(())
//! # }
//! ```

mod budget;
pub mod future;
mod layer;
mod policy;

pub use self::budget::TowerBudget;
pub use self::future::ResponseFuture;
pub use self::layer::RetryWithBackoffLayer;
pub use self::policy::{CloneRequest, Http, Policy, RetryBody};
pub use breakerbox::retry::Attempts;
pub use breakerbox_http::IDEMPOTENCY_KEY;

use breakerbox::RetryBudget;
use breakerbox::retry::Retrier;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

/// Retries a service's failed calls with backoff; see the [module docs](self).
pub struct RetryWithBackoff<S, P = Http> {
    inner: S,
    retrier: Arc<Retrier>,
    policy: P,
}

// === impl RetryWithBackoff ===

impl<S, P> RetryWithBackoff<S, P> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the retry service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The retry budget the layer's services share, if the config has one.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.retrier.budget()
    }
}

impl<S, P, Req> Service<Req> for RetryWithBackoff<S, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: Policy<Req, S::Response> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, P, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let copy = if self.policy.is_retryable(&req, self.retrier.config()) {
            self.policy.clone_request(&req)
        } else {
            None
        };
        let Some(copy) = copy else {
            self.retrier.sent_once();
            return ResponseFuture::once(self.inner.call(req), self.policy.clone());
        };
        // The clone keeps retrying; the polled-ready original sends the first attempt.
        let service = self.inner.clone();
        ResponseFuture::retrying(
            self.inner.call(req),
            self.policy.clone(),
            service,
            self.retrier.clone(),
            copy,
        )
    }
}

impl<S: Clone, P: Clone> Clone for RetryWithBackoff<S, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            retrier: self.retrier.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<S: fmt::Debug, P> fmt::Debug for RetryWithBackoff<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryWithBackoff")
            .field("inner", &self.inner)
            .field("config", self.retrier.config())
            .finish_non_exhaustive()
    }
}
