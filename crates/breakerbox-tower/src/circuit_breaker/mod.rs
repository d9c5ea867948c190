//! A circuit breaker for any `tower::Service`.
//!
//! [`CircuitBreaker`] guards one upstream with one engine breaker;
//! [`KeyedCircuitBreaker`] guards many, picking a breaker per request from a
//! [`BreakerBox`](breakerbox::BreakerBox) (a breaker per host, or per host + path rule).
//!
//! Both classify `http::Response`s by status by default ([`HttpStatus`]): 5xx, 408 and 429 fail,
//! other 4xx are ignored, and a call ends when its response body does (a body that fails while
//! being read is a failure). Any other service takes an explicit classifier, such as
//! [`OkIsSuccess`](crate::classify::OkIsSuccess); see [`classify`](crate::classify).
//!
//! # The readiness contract
//!
//! A rejected call never reaches the inner service, never polls its readiness and never waits:
//! it fails at once with [`CircuitOpen`] (the breaker's name and how long
//! until it admits a trial call), boxed into `tower::BoxError`, from which callers downcast it.
//!
//! - [`CircuitBreaker`] decides in `poll_ready`: it asks its breaker for a permit first, and only
//!   when admitted polls the inner service's readiness. When rejected it reports ready at once,
//!   and the following `call` returns the rejection without calling the inner service. The
//!   permit is held from `poll_ready` to the end of the call (like tower's `ConcurrencyLimit`
//!   holds its semaphore permit), so a HalfOpen trial slot is reserved only for a caller that is
//!   about to call.
//! - [`KeyedCircuitBreaker`] cannot know the breaker before it sees the request, so it polls the
//!   inner service's readiness in `poll_ready` and decides in `call`. A rejected request is still
//!   never sent and fails at once; only the readiness of the shared inner service is awaited.
//!
//! Dropping a response future early records nothing and frees its HalfOpen slot. An outcome
//! counts only in the state period its call was admitted in: a call admitted before the breaker
//! opened, closed or was reset can never count against the newer period. A panic inside the
//! call counts as a failure.
//!
//! # Redirects
//!
//! hyper-util's client does not follow redirects: a 3xx is an answer, and a success of the
//! host that gave it. With tower-http's `FollowRedirect`, put it outside the breaker (outermost
//! first: follow redirects → retry → breaker → client) so that every hop is a call of its own
//! through the breaker of its own host (a [`KeyedCircuitBreaker`] keys each hop by its URI).
//! Inside the breaker, every hop would be charged to the first host.
//!
//! # Names
//!
//! A breaker's name labels its errors, logs and metrics. [`CircuitBreakerLayer::named`] sets it;
//! [`CircuitBreakerLayer::new`] numbers its breakers `circuit_breaker_1`, `circuit_breaker_2`,
//! … in the order they are made, so that two unnamed breakers never share metrics. The breakers
//! of a [`KeyedCircuitBreakerLayer`] are named by their rules, or after their host.
//!
//! ```
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, CircuitOpen};
//! use std::time::Duration;
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // An upstream answering 503 after 500 ms: hyper-util's client in a real program.
//! let client = service_fn(|_req: http::Request<String>| async {
//!     tokio::time::sleep(Duration::from_millis(500)).await;
//!     Ok::<_, BoxError>(http::Response::builder().status(503).body(String::new())?)
//! });
//! let config = BreakerConfig::builder().consecutive_failures(3).build()?;
//! let mut espn = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::named("espn", config))
//!     .timeout(Duration::from_secs(10))
//!     .service(client);
//!
//! let get = || http::Request::get("https://site.api.espn.com/apis/v2/scoreboard").body(String::new());
//! for _ in 0..3 {
//!     assert_eq!(espn.ready().await?.call(get()?).await?.status(), 503);
//! }
//! let err = espn.ready().await?.call(get()?).await.unwrap_err();
//! let open = err.downcast_ref::<CircuitOpen>().expect("rejected by the breaker");
//! assert_eq!(open.breaker(), "espn");
//! assert!(open.retry_after().is_some());
//! # Ok(())
//! # }
//! ```

pub mod future;
mod guard;
mod handle;
mod keyed;
mod layer;

/// Error types.
pub mod error {
    pub use breakerbox::CircuitOpen;
}

pub use self::future::ResponseFuture;
pub use self::guard::Guard;
pub use self::keyed::{KeyedCircuitBreaker, KeyedCircuitBreakerLayer, TargetOf, UriTarget};
pub use self::layer::CircuitBreakerLayer;

use self::handle::BreakerHandle;
use crate::classify::{Classify, HttpStatus};
use breakerbox::CircuitOpen;
use breakerbox_http::Probe;
use std::fmt;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

/// Guards a service with one circuit breaker; see the [module docs](self). Usually made by a
/// [`CircuitBreakerLayer`].
///
/// Clones share the breaker (each clone holds its own admission state).
pub struct CircuitBreaker<S, C = HttpStatus> {
    inner: S,
    breaker: BreakerHandle,
    classifier: C,
    probe: Option<Probe>,
    /// What `poll_ready` decided, for the next `call`: a permit, a rejection, or (both `None`)
    /// nothing yet. Two fields rather than one enum: the healthy path then only tests and moves
    /// the permit.
    permit: Option<Guard>,
    rejected: Option<CircuitOpen>,
}

// === impl CircuitBreaker ===

impl<S, C> CircuitBreaker<S, C> {
    pub(crate) fn with_classifier(
        inner: S,
        breaker: BreakerHandle,
        classifier: C,
        probe: Option<Probe>,
    ) -> Self {
        Self {
            inner,
            breaker,
            classifier,
            probe,
            permit: None,
            rejected: None,
        }
    }

    /// The engine breaker: its state, snapshot and control methods.
    pub fn breaker(&self) -> &breakerbox::CircuitBreaker {
        self.breaker.get()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the breaker service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response> + Clone,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.permit.is_none() {
            match self.breaker.try_acquire() {
                Ok(permit) => {
                    self.permit = Some(permit);
                    // Asked again after a rejection, and admitted this time.
                    self.rejected = None;
                }
                Err(open) => {
                    if let Some(probe) = &self.probe {
                        probe.run_if_due(self.breaker.get());
                    }
                    self.rejected = Some(open);
                    return Poll::Ready(Ok(()));
                }
            }
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                // The inner service broke: that says nothing about the upstream's health.
                self.permit = None;
                Poll::Ready(Err(e.into()))
            }
            other => other.map_err(Into::into),
        }
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        if let Some(permit) = self.permit.take() {
            return ResponseFuture::called(self.inner.call(req), permit, self.classifier.clone());
        }
        match self.rejected.take() {
            Some(open) => ResponseFuture::rejected(open),
            None => panic!("CircuitBreaker called before poll_ready returned Ready"),
        }
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreaker<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
            probe: self.probe.clone(),
            permit: None,
            rejected: None,
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreaker<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}
