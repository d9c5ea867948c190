//! What a caller learns about a retried call.

use super::decision::StopReason;

/// How many attempts of a call reached the upstream, and why retrying stopped: put in the
/// extensions of the response a retry front end hands back, when there is something to tell
/// (the call was retried, or retrying stopped because a breaker refused the next attempt).
/// A response without it was answered by the first attempt and nothing was retried.
///
/// ```
/// use breakerbox::retry::{Attempts, StopReason};
///
/// // As a front end marks a response whose retry a breaker refused after two real attempts:
/// let attempts = Attempts::new(2, StopReason::CircuitOpen);
/// assert_eq!(attempts.count(), 2);
/// assert!(attempts.stopped_by_open_breaker());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempts {
    count: u32,
    stop: StopReason,
}

impl Attempts {
    /// `count` attempts reached the upstream; retrying stopped for `stop`.
    pub fn new(count: u32, stop: StopReason) -> Self {
        Self { count, stop }
    }

    /// How many attempts reached the upstream (at least 1).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Why no further attempt was made.
    pub fn stop(&self) -> StopReason {
        self.stop
    }

    /// Whether retrying stopped because a circuit breaker refused the next attempt: the
    /// response is the last one the upstream gave, and the breaker is now open.
    pub fn stopped_by_open_breaker(&self) -> bool {
        self.stop == StopReason::CircuitOpen
    }
}
