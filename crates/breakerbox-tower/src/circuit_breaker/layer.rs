use super::{BreakerHandle, CircuitBreaker};
use crate::classify::HttpStatus;
use breakerbox::BreakerConfig;
use breakerbox::circuit_breaker::BreakerName;
use breakerbox_http::{Probe, TokioClock};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::Layer;

/// Applies [`CircuitBreaker`] to services. Every service the layer wraps shares the layer's one
/// engine breaker: build one layer per upstream, or use
/// [`KeyedCircuitBreakerLayer`](super::KeyedCircuitBreakerLayer) for many.
///
/// It classifies `http::Response`s by status ([`HttpStatus`]) unless given another classifier;
/// a service answering anything else needs one (see [`classify`](crate::classify)).
///
/// ```
/// use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, State};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// // MusicBrainz, as the field runs it: 3 failures in a row, 2 successes to close.
/// let config = BreakerConfig::builder().consecutive_failures(3).success_threshold(2).build()?;
/// let layer = CircuitBreakerLayer::named("musicbrainz", config);
/// let breaker = layer.breaker().clone(); // for its state, snapshot and controls
/// let mut client = ServiceBuilder::new().layer(layer).service(service_fn(|_: http::Request<()>| async {
///     tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the upstream takes 500 ms
///     Ok::<_, BoxError>(http::Response::builder().status(502).body(String::new())?)
/// }));
///
/// for _ in 0..3 {
///     let response = client.ready().await?.call(http::Request::new(())).await?;
///     assert_eq!(response.status(), 502);
/// }
/// assert_eq!(breaker.state(), State::Open);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = HttpStatus> {
    breaker: BreakerHandle,
    classifier: C,
    probe: Option<Probe>,
}

/// How many breakers [`CircuitBreakerLayer::new`] has named.
static UNNAMED: AtomicUsize = AtomicUsize::new(0);

impl CircuitBreakerLayer {
    /// A breaker with `config`, named `circuit_breaker_<n>` (1 for the first made this way, 2
    /// for the next, …), reading a [`TokioClock`]. Use [`named`](Self::named) to give it the
    /// upstream's name, as it shows in errors, logs and metrics.
    pub fn new(config: BreakerConfig) -> Self {
        let n = UNNAMED.fetch_add(1, Ordering::Relaxed) + 1;
        Self::named(format!("circuit_breaker_{n}"), config)
    }

    /// A breaker named `name` (the name shows in errors, logs and metrics) with `config`,
    /// reading a [`TokioClock`].
    pub fn named(name: impl Into<BreakerName>, config: BreakerConfig) -> Self {
        Self::from_breaker(
            breakerbox::CircuitBreaker::builder(name, config)
                .clock(Arc::new(TokioClock::new()))
                .build(),
        )
    }

    /// Shares an existing engine breaker (built with a [`TokioClock`] if tests pause time).
    pub fn from_breaker(breaker: breakerbox::CircuitBreaker) -> Self {
        Self::from_handle(breaker.into())
    }

    /// Shares an engine breaker that lives as long as the program (in a `static`, say): its
    /// calls then touch no reference count at all, the cheapest way through the layer.
    ///
    /// ```
    /// use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer};
    /// use breakerbox_tower::engine::CircuitBreaker;
    /// use std::sync::LazyLock;
    ///
    /// static SPOTIFY: LazyLock<CircuitBreaker> =
    ///     LazyLock::new(|| CircuitBreaker::new("spotify", BreakerConfig::default()));
    ///
    /// let layer = CircuitBreakerLayer::from_static(LazyLock::force(&SPOTIFY));
    /// assert_eq!(layer.breaker().name(), "spotify");
    /// ```
    pub fn from_static(breaker: &'static breakerbox::CircuitBreaker) -> Self {
        Self::from_handle(breaker.into())
    }

    fn from_handle(breaker: BreakerHandle) -> Self {
        Self {
            breaker,
            classifier: HttpStatus,
            probe: None,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies results with `classifier`: [`OkIsSuccess`](crate::classify::OkIsSuccess)
    /// for a service that is not HTTP, a closure, or any [`Classify`](crate::classify::Classify).
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
            probe: self.probe,
        }
    }

    /// Runs `probe` while the breaker is open, when its `probe_interval` says one is due.
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The engine breaker the layer's services share.
    pub fn breaker(&self) -> &breakerbox::CircuitBreaker {
        self.breaker.get()
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::with_classifier(
            inner,
            self.breaker.clone(),
            self.classifier.clone(),
            self.probe.clone(),
        )
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .field("probe", &self.probe.is_some())
            .finish_non_exhaustive()
    }
}
