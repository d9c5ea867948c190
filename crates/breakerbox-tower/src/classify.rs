//! Classification: how a call's result becomes what its breaker records.
//!
//! Every classifier translates a service's result into the engine's one vocabulary
//! ([`AttemptOutcome`]), and the breaker's config decides what that counts as (its `statuses`:
//! by default 5xx, 408 and 429 fail, other 4xx are ignored, see
//! [`BreakerConfig::outcome_of`](breakerbox::BreakerConfig::outcome_of)).
//!
//! - [`HttpStatus`], the default of [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) and
//!   [`KeyedCircuitBreakerLayer`](crate::KeyedCircuitBreakerLayer): for services answering
//!   `http::Response<B>`. The status decides, and the call ends when its response body does: a
//!   failing status (a 503) is recorded when the head arrives; any other response keeps its
//!   permit in its body ([`ResponseBody`]), and a body error or timeout while reading it is a
//!   failure, a body read to its end or dropped early gives the status's outcome. The slow-call
//!   clock runs to the end of the body.
//! - [`OkIsSuccess`]: for any other service, the explicit choice: `Ok` is a success, an error
//!   a failure (except a timeout or connection error, which are failures too, and a rejection by
//!   another breaker further in, which is ignored).
//! - A closure `Fn(Result<&T, &BoxError>) -> Outcome` is a classifier through [`from_fn`].
//! - With the `tower-http` feature, `TowerHttp` adapts tower-http's `ClassifyResponse`
//!   classifiers.
//!
//! Errors are classified by [`attempt_outcome`] for all of them: timeouts (tower's and tokio's
//! `Elapsed`) and connection errors are failures; a [`CircuitOpen`] from a breaker further in is
//! ignored (it says nothing about this upstream). A call whose response future is dropped before
//! it completes (cancelled) records nothing.
//!
//! A service that answers something other than `http::Response` does not compile with the
//! default classifier (the error says: ``HttpStatus` cannot classify a service's `String``,
//! and what to write instead); choose one:
//!
//! ```compile_fail
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # async fn run() -> Result<(), BoxError> {
//! let mut artists = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::named("artists", BreakerConfig::default()))
//!     .service(service_fn(|id: u32| async move { Ok::<String, BoxError>(format!("artist {id}")) }));
//! artists.ready().await?.call(7).await?; // does not compile: not an HTTP service
//! # Ok(())
//! # }
//! ```
//!
//! ```
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, CircuitOpen, classify::OkIsSuccess};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // Not HTTP: a lookup that takes a second and fails with an error of its own.
//! let lookup = service_fn(|id: u32| async move {
//!     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//!     if id == 0 { Err::<String, BoxError>("no such artist".into()) } else { Ok(format!("artist {id}")) }
//! });
//! let config = BreakerConfig::builder().consecutive_failures(2).build()?;
//! let mut svc = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::named("artists", config).classifier(OkIsSuccess))
//!     .service(lookup);
//!
//! assert!(svc.ready().await?.call(0).await.is_err());
//! assert!(svc.ready().await?.call(0).await.is_err());
//! let err = svc.ready().await?.call(1).await.unwrap_err();
//! assert!(err.is::<CircuitOpen>());
//! # Ok(())
//! # }
//! ```

use crate::circuit_breaker::Guard;
use breakerbox::{AttemptOutcome, CircuitOpen, Outcome};
use std::error::Error;
use std::io;
use tower::BoxError;
use tower::timeout::error::Elapsed;

/// A response body that reports its call's outcome to the breaker when it ends: what services
/// under the [`HttpStatus`] classifier answer. See the [module docs](self).
pub type ResponseBody<B> = breakerbox_http::body::ResponseBody<B, Guard>;

/// Reports a call's result to its breaker, through the call's [`Guard`], and hands the result
/// on (an HTTP response with its body wrapped, so that the call can end with its body).
///
/// Implemented by [`HttpStatus`], [`OkIsSuccess`], closures through [`from_fn`] and (feature
/// `tower-http`) `TowerHttp`. Classifiers
/// are cloned into every response future: keep them cheap to clone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot classify a service's `{Res}`",
    label = "this classifier",
    note = "the breaker layers classify `http::Response`s by status unless told otherwise; for a service answering `{Res}`, choose how its results count: `.classifier(breakerbox_tower::classify::OkIsSuccess)` (`Ok` is a success, an error a failure) or a closure `breakerbox_tower::classify::from_fn(|result: Result<&{Res}, &tower::BoxError>| -> breakerbox_tower::Outcome)`"
)]
pub trait Classify<Res> {
    /// What the caller gets.
    type Response;

    /// Reports `result` through `guard` (now, or when the response body ends) and returns it.
    fn classify(
        &self,
        result: Result<Res, BoxError>,
        guard: Guard,
    ) -> Result<Self::Response, BoxError>;
}

/// A classifier from a closure that tells how a result counts: see [`from_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F>(F);

/// A classifier from a closure `Fn(Result<&T, &BoxError>) -> Outcome`, for a service answering
/// `T`; the outcome is recorded when the response future completes.
///
/// ```
/// use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, Outcome, State, classify};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// // A search whose empty answers mean the index is broken.
/// let config = BreakerConfig::builder().consecutive_failures(2).build()?;
/// let layer = CircuitBreakerLayer::named("search", config).classifier(classify::from_fn(
///     |result: Result<&Vec<String>, &BoxError>| match result {
///         Ok(hits) if hits.is_empty() => Outcome::Failure,
///         Ok(_) => Outcome::Success,
///         Err(_) => Outcome::Failure,
///     },
/// ));
/// let breaker = layer.breaker().clone();
/// let mut search = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|_q: &str| async {
///         tokio::time::sleep(std::time::Duration::from_secs(1)).await; // a slow, broken index
///         Ok::<Vec<String>, BoxError>(Vec::new())
///     }));
/// search.ready().await?.call("daft").await?;
/// search.ready().await?.call("punk").await?;
/// assert_eq!(breaker.state(), State::Open);
/// # Ok(())
/// # }
/// ```
pub fn from_fn<F>(f: F) -> ClassifyFn<F> {
    ClassifyFn(f)
}

impl<T, F> Classify<T> for ClassifyFn<F>
where
    F: Fn(Result<&T, &BoxError>) -> Outcome,
{
    type Response = T;

    #[inline]
    fn classify(&self, result: Result<T, BoxError>, guard: Guard) -> Result<T, BoxError> {
        guard.record((self.0)(result.as_ref()));
        result
    }
}

impl<F> std::fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifyFn").finish_non_exhaustive()
    }
}

/// For any service: `Ok` is a success, an error a failure (see [`attempt_outcome`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OkIsSuccess;

impl<T> Classify<T> for OkIsSuccess {
    type Response = T;

    #[inline(always)]
    fn classify(&self, result: Result<T, BoxError>, guard: Guard) -> Result<T, BoxError> {
        match &result {
            Ok(_) => guard.report(AttemptOutcome::Success),
            Err(e) => guard.report(attempt_outcome(e)),
        }
        result
    }
}

/// For `http::Response<B>`: by status, as the breaker's `statuses` say, to the end of the body
/// (see the [module docs](self)); errors by [`attempt_outcome`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpStatus;

impl<B> Classify<http::Response<B>> for HttpStatus {
    type Response = http::Response<ResponseBody<B>>;

    #[inline]
    fn classify(
        &self,
        result: Result<http::Response<B>, BoxError>,
        guard: Guard,
    ) -> Result<Self::Response, BoxError> {
        match result {
            Ok(response) => Ok(breakerbox_http::body::guard(response, guard)),
            Err(e) => {
                guard.report(attempt_outcome(&e));
                Err(e)
            }
        }
    }
}

/// What an error means to the engine: a rejection by a breaker further in
/// ([`AttemptOutcome::CircuitOpen`]), a timeout, a connection error (refused, reset, closed
/// before the response), or anything else. The error's source chain is searched for tower's
/// and tokio's `Elapsed`, `std::io::Error`s and (feature `hyper`, on by default)
/// `hyper::Error`.
///
/// ```
/// use breakerbox_tower::{AttemptOutcome, classify::attempt_outcome};
/// use tower::BoxError;
///
/// let refused: BoxError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
/// assert_eq!(attempt_outcome(&refused), AttemptOutcome::Connect);
/// let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
/// assert_eq!(attempt_outcome(&elapsed), AttemptOutcome::Timeout);
/// ```
pub fn attempt_outcome(error: &BoxError) -> AttemptOutcome {
    if error.is::<CircuitOpen>() {
        return AttemptOutcome::CircuitOpen;
    }
    if error.is::<Elapsed>() {
        return AttemptOutcome::Timeout;
    }
    let mut source: Option<&(dyn Error + 'static)> = Some(&**error);
    while let Some(e) = source {
        if e.is::<Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return AttemptOutcome::Timeout;
        }
        #[cfg(feature = "hyper")]
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            // The connection went away before the response (a pooled connection the server had
            // closed, say): the request may be sent again on a fresh one.
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                return AttemptOutcome::Connect;
            }
            if hyper.is_timeout() {
                return AttemptOutcome::Timeout;
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::TimedOut => AttemptOutcome::Timeout,
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable => AttemptOutcome::Connect,
                _ => AttemptOutcome::OtherError,
            };
        }
        source = e.source();
    }
    AttemptOutcome::OtherError
}

/// tower-http's classifiers as breaker classifiers: a response it classifies as a failure is a
/// failure, recorded at once; one it accepts, or wants to classify at the end of the stream, is
/// a success when its body ends (a body error is a failure). Errors as [`attempt_outcome`].
///
/// ```
/// use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, State, classify::TowerHttp};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
/// use tower_http::classify::ServerErrorsAsFailures;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let config = BreakerConfig::builder().consecutive_failures(1).build()?;
/// let layer = CircuitBreakerLayer::named("api", config).classifier(TowerHttp(ServerErrorsAsFailures::new()));
/// let breaker = layer.breaker().clone();
/// let mut svc = ServiceBuilder::new().layer(layer).service(service_fn(|_: ()| async {
///     Ok::<_, BoxError>(http::Response::builder().status(500).body(String::new()).unwrap())
/// }));
/// let _ = svc.ready().await?.call(()).await?;
/// assert_eq!(breaker.state(), State::Open);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "tower-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-http")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TowerHttp<C>(pub C);

#[cfg(feature = "tower-http")]
impl<C, B> Classify<http::Response<B>> for TowerHttp<C>
where
    C: tower_http::classify::ClassifyResponse + Clone,
{
    type Response = http::Response<ResponseBody<B>>;

    fn classify(
        &self,
        result: Result<http::Response<B>, BoxError>,
        guard: Guard,
    ) -> Result<Self::Response, BoxError> {
        use tower_http::classify::ClassifiedResponse;
        match result {
            Ok(response) => match self.0.clone().classify_response(&response) {
                ClassifiedResponse::Ready(Err(_)) => {
                    guard.record(Outcome::Failure);
                    Ok(response.map(ResponseBody::unguarded))
                }
                ClassifiedResponse::Ready(Ok(())) | ClassifiedResponse::RequiresEos(_) => {
                    Ok(response.map(|body| ResponseBody::new(body, guard, Outcome::Success)))
                }
            },
            Err(e) => {
                guard.report(attempt_outcome(&e));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        let refused: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(attempt_outcome(&refused), AttemptOutcome::Connect);
        let elapsed: BoxError = Box::new(Elapsed::new());
        assert_eq!(attempt_outcome(&elapsed), AttemptOutcome::Timeout);
        let open: BoxError = Box::new(
            breakerbox::CircuitBreaker::new("inner", breakerbox::BreakerConfig::default())
                .tap_force_open(),
        );
        assert_eq!(attempt_outcome(&open), AttemptOutcome::CircuitOpen);
        let other: BoxError = "bad".into();
        assert_eq!(attempt_outcome(&other), AttemptOutcome::OtherError);
    }

    trait TapForceOpen {
        fn tap_force_open(self) -> CircuitOpen;
    }

    impl TapForceOpen for breakerbox::CircuitBreaker {
        fn tap_force_open(self) -> CircuitOpen {
            self.force_open();
            self.try_acquire().unwrap_err()
        }
    }
}
