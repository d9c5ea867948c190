//! Retry with backoff for any `tower::Service` (DESIGN.md section 5), driven by the engine's
//! rules.
//!
//! [`RetryWithBackoff`] sends a request and, while the engine's
//! [`RetryState`](breakerbox::retry::RetryState) says so, waits and sends a copy again:
//!
//! - at most `max_retries` retries, waits of `base_delay × multiplier^n` capped at `max_delay`
//!   with the configured jitter, and nothing past `max_elapsed`;
//! - only transient failures: timeouts, connection errors, and (HTTP) 408, 429 and 5xx by
//!   default; a [`CircuitOpen`](breakerbox::CircuitOpen) rejection fails fast, never retried;
//! - `Retry-After` on 429 / 503 (seconds or HTTP-date) is waited for at least; one longer than
//!   `max_delay` or the time left returns the response at once instead of sleeping;
//! - HTTP: only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), unless the config
//!   opts in or the request carries an `Idempotency-Key`;
//! - a retry budget shared by the layer's services caps retries to a fraction of recent requests
//!   plus a floor, so a fleet cannot amplify an outage;
//! - a request the [`Policy`] cannot copy is sent exactly once, never dropped;
//! - a retried response (HTTP) carries [`Attempts`] ([`Attempts::of`] reads 1 on the others);
//!   `retry_attempts_total`, `retry_exhausted_total` and `retry_budget_rejected_total` count
//!   what happened.
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
//! use breakerbox::{BreakerConfig, RetryConfig, backoff::Jitter};
//! use breakerbox_tower::{CircuitBreakerLayer, RetryWithBackoffLayer, retry::Attempts};
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
//!     .layer(RetryWithBackoffLayer::new(retry).http())
//!     .layer(CircuitBreakerLayer::named("musicbrainz", BreakerConfig::default()).http())
//!     .timeout(Duration::from_secs(10))
//!     .service(service_fn(move |_req: http::Request<String>| {
//!         // 503 twice, then 200.
//!         let status = if seen.fetch_add(1, Ordering::SeqCst) < 2 { 503 } else { 200 };
//!         async move { Ok::<_, BoxError>(http::Response::builder().status(status).body(()).unwrap()) }
//!     }));
//!
//! let request = http::Request::get("https://musicbrainz.org/ws/2/recording").body(String::new())?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(Attempts::of(&response), 3);
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
pub use self::policy::{Attempts, CloneRequest, Http, IDEMPOTENCY_KEY, Policy, retry_after};

use breakerbox::RetryBudget;
use breakerbox::retry::Retrier;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

/// Retries a service's failed calls with backoff; see the [module docs](self).
pub struct RetryWithBackoff<S, P = CloneRequest> {
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
