use super::{BreakerHandle, CircuitBreaker};
use crate::TokioClock;
use crate::classify::{HttpStatus, OkIsSuccess};
use crate::probe::Probe;
use breakerbox::BreakerConfig;
use breakerbox::circuit_breaker::BreakerName;
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// Applies [`CircuitBreaker`] to services. Every service the layer wraps shares the layer's one
/// engine breaker (build one layer per upstream, or use
/// [`KeyedCircuitBreakerLayer`](super::KeyedCircuitBreakerLayer) for many).
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = OkIsSuccess> {
    breaker: BreakerHandle,
    classifier: C,
    probe: Option<Probe>,
}

impl CircuitBreakerLayer {
    /// A breaker named `circuit_breaker` with `config`, reading a [`TokioClock`]. `Ok` is a
    /// success, an error a failure; use [`http`](Self::http) for HTTP status classification.
    pub fn new(config: BreakerConfig) -> Self {
        Self::named("circuit_breaker", config)
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
    pub fn from_breaker(breaker: impl Into<BreakerHandle>) -> Self {
        Self {
            breaker: breaker.into(),
            classifier: OkIsSuccess,
            probe: None,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies `http::Response`s by status: 5xx, 408 and 429 fail, other 4xx are ignored.
    pub fn http(self) -> CircuitBreakerLayer<HttpStatus> {
        self.classifier(HttpStatus)
    }

    /// Classifies results with `classifier` (a [`Classify`](crate::classify::Classify), e.g. a
    /// closure).
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
        CircuitBreaker::with_classifier(inner, self.breaker.clone(), self.classifier.clone())
            .with_probe(self.probe.clone())
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
