use super::policy::{CloneRequest, Http};
use super::{RetryWithBackoff, Shared};
use crate::TokioClock;
use breakerbox::retry::RetryMetrics;
use breakerbox::{RetryBudget, RetryConfig};
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// Applies [`RetryWithBackoff`] to services. The services it wraps share one retry budget and
/// one set of retry metrics.
#[derive(Clone)]
pub struct RetryWithBackoffLayer<P = CloneRequest> {
    shared: Arc<Shared>,
    policy: P,
}

impl RetryWithBackoffLayer {
    /// Retries per `config` (the engine's rules, budget included), for any `Clone` request;
    /// metrics are labelled `target="default"` until [`target`](Self::target) says otherwise.
    /// Use [`http`](Self::http) for HTTP requests.
    pub fn new(config: RetryConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(config, "default")),
            policy: CloneRequest,
        }
    }
}

impl<P> RetryWithBackoffLayer<P> {
    /// The `target` label of the retry metrics (a host or upstream name).
    pub fn target(self, target: &str) -> Self {
        Self {
            shared: Arc::new(Shared::new(self.shared.config.clone(), target)),
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
            shared: self.shared,
            policy,
        }
    }

    /// The retry config.
    pub fn config(&self) -> &RetryConfig {
        &self.shared.config
    }
}

impl Shared {
    fn new(config: RetryConfig, target: &str) -> Self {
        let clock = Arc::new(TokioClock::new());
        Self {
            budget: config
                .budget()
                .map(|budget| RetryBudget::new(budget, clock.clone())),
            metrics: RetryMetrics::new(target.to_owned()),
            target: target.to_owned(),
            clock,
            config,
        }
    }
}

impl<S, P: Clone> Layer<S> for RetryWithBackoffLayer<P> {
    type Service = RetryWithBackoff<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryWithBackoff {
            inner,
            shared: self.shared.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<P> fmt::Debug for RetryWithBackoffLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryWithBackoffLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}
