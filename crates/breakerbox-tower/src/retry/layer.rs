use super::RetryWithBackoff;
use super::policy::Http;
use breakerbox::RetryConfig;
use breakerbox::retry::Retrier;
use breakerbox_http::TokioClock;
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// Applies [`RetryWithBackoff`] to services. The services it wraps share one retry budget and
/// one set of retry metrics.
///
/// It retries `http::Request`s by HTTP's rules ([`Http`]) unless given another
/// [`policy`](Self::policy); see the [module docs](super) for the rules and an example.
///
/// ```
/// use breakerbox_tower::{RetryConfig, RetryWithBackoffLayer};
/// use std::time::Duration;
///
/// // The `[retry]` table of a profile, or a builder:
/// let config = RetryConfig::builder().max_retries(2).max_elapsed(Some(Duration::from_secs(5))).build()?;
/// let layer = RetryWithBackoffLayer::named("spotify", config);
/// assert_eq!(layer.config().max_retries(), 2);
/// # Ok::<(), breakerbox_tower::InvalidConfig>(())
/// ```
#[derive(Clone)]
pub struct RetryWithBackoffLayer<P = Http> {
    retrier: Arc<Retrier>,
    policy: P,
}

fn retrier(config: RetryConfig, target: &str) -> Arc<Retrier> {
    Arc::new(Retrier::new(config, Arc::new(TokioClock::new()), target))
}

impl RetryWithBackoffLayer {
    /// Retries HTTP requests per `config` (the engine's rules, budget included); metrics are
    /// labelled `breaker="default"`; [`named`](Self::named) sets the label.
    pub fn new(config: RetryConfig) -> Self {
        Self::named("default", config)
    }

    /// [`new`](Self::new) with the metrics' `target` label (a host or upstream name) set from
    /// the start: only this target's series are registered.
    pub fn named(target: &str, config: RetryConfig) -> Self {
        Self {
            retrier: retrier(config, target),
            policy: Http,
        }
    }
}

impl<P> RetryWithBackoffLayer<P> {
    /// Uses another [`Policy`](super::Policy): [`CloneRequest`](super::CloneRequest) for a
    /// service that is not HTTP, or one of your own.
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
