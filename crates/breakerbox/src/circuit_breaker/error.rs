//! Error types.

use super::{BreakerName, State};
use std::fmt;
use std::time::Duration;

/// A call was rejected because its circuit breaker is not admitting calls.
///
/// Carries the breaker's name and, when known, how long until the breaker admits a trial call.
/// It is `Send + Sync + 'static`, so front ends box it into `tower::BoxError` or
/// `reqwest_middleware::Error` and callers downcast it back:
///
/// ```
/// use breakerbox::{BreakerConfig, CircuitBreaker, CircuitOpen};
///
/// let breaker = CircuitBreaker::new("espn", BreakerConfig::default());
/// breaker.force_open();
/// let err: Box<dyn std::error::Error + Send + Sync> = breaker.try_acquire().unwrap_err().into();
/// let open = err.downcast_ref::<CircuitOpen>().expect("a CircuitOpen");
/// assert_eq!(open.breaker(), "espn");
/// assert_eq!(open.retry_after(), None); // forced open: no trial is scheduled
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug, Clone)]
pub struct CircuitOpen {
    breaker: BreakerName,
    state: State,
    retry_after: Option<Duration>,
    throttled: bool,
}

impl CircuitOpen {
    pub(crate) fn new(breaker: BreakerName, state: State, retry_after: Option<Duration>) -> Self {
        Self {
            breaker,
            state,
            retry_after,
            throttled: false,
        }
    }

    /// A Closed breaker's throttle rejected the call.
    pub(crate) fn throttled(breaker: BreakerName) -> Self {
        Self {
            breaker,
            state: State::Closed,
            retry_after: None,
            throttled: true,
        }
    }

    /// Whether adaptive throttling rejected the call (the breaker is Closed, but the upstream
    /// has been refusing much of its load: see
    /// [`ThrottleConfig`](crate::config::ThrottleConfig)). Like every rejection, nothing was
    /// sent, and retry policies do not retry it.
    pub fn is_throttled(&self) -> bool {
        self.throttled
    }

    /// The name of the breaker that rejected the call.
    pub fn breaker(&self) -> &str {
        &self.breaker
    }

    /// The state that rejected the call: `Open`, `ForcedOpen`, `HalfOpen` with every trial
    /// slot taken, or `Closed` when the throttle rejected it.
    pub fn state(&self) -> State {
        self.state
    }

    /// How long until the breaker admits a trial call, when that is known: `Some` while Open,
    /// `None` when forced open or when HalfOpen's trial slots are all taken (a slot frees when a
    /// trial call finishes).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.throttled {
            return write!(
                f,
                "circuit breaker `{}` throttled the call: its upstream has been refusing much of its load",
                self.breaker
            );
        }
        match (self.state, self.retry_after) {
            (State::HalfOpen, _) => write!(
                f,
                "circuit breaker `{}` is half-open and its trial calls are all in flight",
                self.breaker
            ),
            (State::ForcedOpen, _) => {
                write!(f, "circuit breaker `{}` is forced open", self.breaker)
            }
            (_, Some(after)) => write!(
                f,
                "circuit breaker `{}` is open; a trial call is admitted in {:.3}s",
                self.breaker,
                after.as_secs_f64()
            ),
            (_, None) => write!(f, "circuit breaker `{}` is open", self.breaker),
        }
    }
}

impl std::error::Error for CircuitOpen {}
