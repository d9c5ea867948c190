use super::RetryWithBackoff;
use super::policy::{CloneRequest, Http};
use crate::TokioClock;
use breakerbox::RetryConfig;
use breakerbox::retry::Retrier;
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// Applies [`RetryWithBackoff`] to services. The services it wraps share one retry budget and
/// one set of retry metrics.
#[derive(Clone)]
pub struct RetryWithBackoffLayer<P = CloneRequest> {
    retrier: Arc<Retrier>,
    policy: P,
}

fn retrier(config: RetryConfig, target: &str) -> Arc<Retrier> {
    Arc::new(Retrier::new(config, Arc::new(TokioClock::new()), target))
}

impl RetryWithBackoffLayer {
    /// Retries per `config` (the engine's rules, budget included), for any `Clone` request;
    /// metrics are labelled `target="default"` until [`target`](Self::target) says otherwise.
    /// Use [`http`](Self::http) for HTTP requests.
    pub fn new(config: RetryConfig) -> Self {
        Self::named("default", config)
    }

    /// [`new`](Self::new) with the metrics' `target` label (a host or upstream name) set from
    /// the start: only this target's series are registered.
    pub fn named(target: &str, config: RetryConfig) -> Self {
        Self {
            retrier: retrier(config, target),
            policy: CloneRequest,
        }
    }
}

impl<P> RetryWithBackoffLayer<P> {
    /// The `target` label of the retry metrics (a host or upstream name). The `default`
    /// series that [`new`](RetryWithBackoffLayer::new) registered with the recorder installed
    /// then stay registered (at zero); [`named`](RetryWithBackoffLayer::named) avoids them.
    pub fn target(self, target: &str) -> Self {
        Self {
            retrier: retrier(self.retrier.config().clone(), target),
            policy: self.policy,
        }
    }

    /// Retries `http::Request<B>` (with a `Clone` body) by HTTP's rules: idempotent methods,
    /// statuses, `Retry-After`; responses carry [`Attempts`](super::Attempts).
    pub fn http(self) -> RetryWithBackoffLayer<Http> {
        self.policy(Http)
    }

    /// Uses a custom [`Policy`](super::Policy).
    pub fn policy<P2>(self, policy: P2) -> RetryWithBackoffLayer<P2> {
        RetryWithBackoffLayer {
            retrier: self.retrier,
            policy,
        }
    }

    /// The retry config.
    pub fn config(&self) -> &RetryConfig {
        self.retrier.config()
    }
}

impl<S, P: Clone> Layer<S> for RetryWithBackoffLayer<P> {
    type Service = RetryWithBackoff<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryWithBackoff {
            inner,
            retrier: self.retrier.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<P> fmt::Debug for RetryWithBackoffLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryWithBackoffLayer")
            .field("config", self.retrier.config())
            .finish_non_exhaustive()
    }
}
