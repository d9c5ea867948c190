use super::{Guard, ResponseFuture};
use crate::classify::{Classify, HttpStatus};
use breakerbox::{BoxConfig, BreakerBox, Target};
use breakerbox_http::{Probe, TokioClock};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Layer, Service};

/// Where a request goes, for picking its breaker in a [`BreakerBox`].
pub trait TargetOf<Req> {
    /// The request's target, or `None` for a request no breaker should guard.
    fn target<'a>(&self, req: &'a Req) -> Option<Target<'a>>;
}

/// The target of an `http::Request` from its absolute URI: scheme, host, effective port, path.
/// A request with a relative URI has no target and passes unguarded.
#[derive(Debug, Clone, Copy, Default)]
pub struct UriTarget;

impl<B> TargetOf<http::Request<B>> for UriTarget {
    fn target<'a>(&self, req: &'a http::Request<B>) -> Option<Target<'a>> {
        let uri = req.uri();
        let scheme = uri.scheme_str()?;
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(match scheme {
            "https" | "wss" => 443,
            _ => 80,
        });
        Some(Target::new(scheme, host, port, uri.path()))
    }
}

/// Guards a service with a breaker per request target, from a [`BreakerBox`]; see the
/// [module docs](super) for the readiness contract. Clones share the box.
///
/// ```
/// use breakerbox_tower::{BoxConfig, CircuitOpen, KeyedCircuitBreakerLayer};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let config = BoxConfig::from_toml(r#"
///     [[breakers]]
///     name = "vision"
///     match = { host = "ai.example", path_prefix = "/vision" }
///     consecutive_failures = 1
/// "#)?;
/// let mut client = ServiceBuilder::new()
///     .layer(KeyedCircuitBreakerLayer::new(config))
///     .service(service_fn(|req: http::Request<()>| async move {
///         let status = if req.uri().path().starts_with("/vision") { 503 } else { 200 };
///         Ok::<_, BoxError>(http::Response::builder().status(status).body(String::new())?)
///     }));
///
/// let vision = || http::Request::get("https://ai.example/vision/annotate").body(()).unwrap();
/// let text = || http::Request::get("https://ai.example/text/generate").body(()).unwrap();
/// assert_eq!(client.ready().await?.call(vision()).await?.status(), 503);
/// let err = client.ready().await?.call(vision()).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<CircuitOpen>().unwrap().breaker(), "vision");
/// assert_eq!(client.ready().await?.call(text()).await?.status(), 200);
/// # Ok(())
/// # }
/// ```
pub struct KeyedCircuitBreaker<S, K = UriTarget, C = HttpStatus> {
    inner: S,
    breakers: BreakerBox,
    key: K,
    classifier: C,
    probe: Option<Probe>,
}

impl<S, K, C> KeyedCircuitBreaker<S, K, C> {
    /// The breaker box.
    pub fn breakers(&self) -> &BreakerBox {
        &self.breakers
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

impl<S, K, C, Req> Service<Req> for KeyedCircuitBreaker<S, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: TargetOf<Req>,
    C: Classify<S::Response> + Clone,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let Some(target) = self.key.target(&req) else {
            return ResponseFuture::called(
                self.inner.call(req),
                Guard::unguarded(),
                self.classifier.clone(),
            );
        };
        match self.breakers.try_acquire(&target) {
            Ok(permit) => ResponseFuture::called(
                self.inner.call(req),
                Guard::keyed(permit),
                self.classifier.clone(),
            ),
            Err(open) => {
                if let Some(probe) = &self.probe {
                    self.breakers
                        .with_breaker(&target, |breaker| probe.run_if_due(breaker));
                }
                ResponseFuture::rejected(open)
            }
        }
    }
}

impl<S: Clone, K: Clone, C: Clone> Clone for KeyedCircuitBreaker<S, K, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breakers: self.breakers.clone(),
            key: self.key.clone(),
            classifier: self.classifier.clone(),
            probe: self.probe.clone(),
        }
    }
}

impl<S: fmt::Debug, K, C> fmt::Debug for KeyedCircuitBreaker<S, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreaker")
            .field("inner", &self.inner)
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}

/// Applies [`KeyedCircuitBreaker`] to services; every service it wraps shares its one box.
///
/// It keys requests by their URI ([`UriTarget`]) and classifies `http::Response`s by status,
/// to the end of their body, unless told otherwise.
///
/// ```
/// use breakerbox_tower::{BoxConfig, KeyedCircuitBreakerLayer};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// // The field's profile: Spotify trips after 10 failures, any other host after 5.
/// let layer = KeyedCircuitBreakerLayer::new(BoxConfig::from_toml(r#"
///     [[breakers]]
///     name = "spotify"
///     match = { host = "api.spotify.com" }
///     consecutive_failures = 10
/// "#)?);
/// let panel = layer.breakers().clone(); // the status table, health and snapshots
/// let mut client = ServiceBuilder::new().layer(layer).service(service_fn(|_: http::Request<()>| async {
///     tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the upstream takes 300 ms
///     Ok::<_, BoxError>(http::Response::builder().status(503).body(String::new())?)
/// }));
/// for _ in 0..5 {
///     let espn = http::Request::get("https://site.api.espn.com/apis/v2/scoreboard").body(())?;
///     client.ready().await?.call(espn).await?;
/// }
/// assert_eq!(panel.health().failing, ["site.api.espn.com"]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KeyedCircuitBreakerLayer<K = UriTarget, C = HttpStatus> {
    breakers: BreakerBox,
    key: K,
    classifier: C,
    probe: Option<Probe>,
}

impl KeyedCircuitBreakerLayer {
    /// A breaker box built from `config` on a [`TokioClock`]; requests are keyed by their URI and
    /// classified by HTTP status.
    pub fn new(config: BoxConfig) -> Self {
        Self::from_box(
            BreakerBox::builder(config)
                .clock(Arc::new(TokioClock::new()))
                .build(),
        )
    }

    /// Shares an existing breaker box (for its snapshot, health and status table elsewhere).
    pub fn from_box(breakers: BreakerBox) -> Self {
        Self {
            breakers,
            key: UriTarget,
            classifier: HttpStatus,
            probe: None,
        }
    }
}

impl<K, C> KeyedCircuitBreakerLayer<K, C> {
    /// Picks each request's target with `key`.
    pub fn key<K2>(self, key: K2) -> KeyedCircuitBreakerLayer<K2, C> {
        KeyedCircuitBreakerLayer {
            breakers: self.breakers,
            key,
            classifier: self.classifier,
            probe: self.probe,
        }
    }

    /// Classifies results with `classifier`.
    pub fn classifier<C2>(self, classifier: C2) -> KeyedCircuitBreakerLayer<K, C2> {
        KeyedCircuitBreakerLayer {
            breakers: self.breakers,
            key: self.key,
            classifier,
            probe: self.probe,
        }
    }

    /// Runs `probe` for an open breaker of the box when its `probe_interval` says one is due; the
    /// probe receives the breaker, whose name tells which upstream to check.
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The breaker box the layer's services share.
    pub fn breakers(&self) -> &BreakerBox {
        &self.breakers
    }
}

impl<S, K: Clone, C: Clone> Layer<S> for KeyedCircuitBreakerLayer<K, C> {
    type Service = KeyedCircuitBreaker<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreaker {
            inner,
            breakers: self.breakers.clone(),
            key: self.key.clone(),
            classifier: self.classifier.clone(),
            probe: self.probe.clone(),
        }
    }
}

impl<K, C> fmt::Debug for KeyedCircuitBreakerLayer<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerLayer")
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}
