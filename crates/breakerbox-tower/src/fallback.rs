//! Fallback: answer a [`CircuitOpen`] rejection with a response of your own.
//!
//! When a provider is down, a scraper often has something better than an error to give: the
//! last cached answer, or a conservative default. [`FallbackLayer`] turns a circuit-open
//! rejection from the layers inside it into the response its function builds; every other
//! result passes through unchanged.
//!
//! The fallback's answer has the inner service's response type. Over the HTTP breaker that is
//! an `http::Response<ResponseBody<B>>`: wrap the fallback's own body with
//! [`ResponseBody::unguarded`](crate::classify::ResponseBody) (it reports to no breaker).
//!
//! ```
//! use breakerbox_tower::classify::ResponseBody;
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, CircuitOpen, FallbackLayer};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let config = BreakerConfig::builder().consecutive_failures(1).build()?;
//! let mut odds = ServiceBuilder::new()
//!     .layer(FallbackLayer::new(|open: &CircuitOpen| {
//!         let cached = format!("cached odds (live feed {} is down)", open.breaker());
//!         http::Response::new(ResponseBody::unguarded(cached))
//!     }))
//!     .layer(CircuitBreakerLayer::named("espn", config))
//!     .service(service_fn(|_: http::Request<()>| async {
//!         Ok::<_, BoxError>(http::Response::builder().status(503).body(String::new())?)
//!     }));
//!
//! // The failure itself passes through; then the breaker is open and the fallback answers.
//! assert_eq!(odds.ready().await?.call(http::Request::new(())).await?.status(), 503);
//! let answer = odds.ready().await?.call(http::Request::new(())).await?;
//! assert_eq!(answer.body().get_ref(), "cached odds (live feed espn is down)");
//! # Ok(())
//! # }
//! ```

use breakerbox::CircuitOpen;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{BoxError, Layer, Service};

/// Applies [`Fallback`] to services.
#[derive(Clone)]
pub struct FallbackLayer<F> {
    fallback: F,
}

impl<F> FallbackLayer<F> {
    /// Answers circuit-open rejections with `fallback(&rejection)`. The function is cloned into
    /// each call's future: keep its captures cheap to clone (an `Arc` of a cache, say).
    pub fn new(fallback: F) -> Self {
        Self { fallback }
    }
}

impl<S, F: Clone> Layer<S> for FallbackLayer<F> {
    type Service = Fallback<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            fallback: self.fallback.clone(),
        }
    }
}

impl<F> fmt::Debug for FallbackLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").finish_non_exhaustive()
    }
}

/// Turns a [`CircuitOpen`] error of the inner service into a response; see the
/// [module docs](self).
#[derive(Clone)]
pub struct Fallback<S, F> {
    inner: S,
    fallback: F,
}

impl<S, F> Fallback<S, F> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the fallback service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, Req> Service<Req> for Fallback<S, F>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    F: Fn(&CircuitOpen) -> S::Response + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture {
            future: self.inner.call(req),
            fallback: self.fallback.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for Fallback<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`Fallback`].
    pub struct ResponseFuture<Fut, F> {
        #[pin]
        future: Fut,
        fallback: F,
    }
}

impl<Fut, F, T, E> Future for ResponseFuture<Fut, F>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    F: Fn(&CircuitOpen) -> T,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.future.poll(cx)) {
            Ok(response) => Ok(response),
            Err(e) => match e.into().downcast::<CircuitOpen>() {
                Ok(open) => {
                    tracing::debug!(
                        breaker = open.breaker(),
                        "circuit open: serving the fallback"
                    );
                    Ok((this.fallback)(&open))
                }
                Err(other) => Err(other),
            },
        })
    }
}

impl<Fut, F> fmt::Debug for ResponseFuture<Fut, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
