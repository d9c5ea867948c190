//! Point-in-time reports of a breaker.

use super::state::{HALF_OPEN, OPEN};
use super::{CircuitBreaker, State};
use crate::sync::{Ordering, lock};
use serde::{Deserialize, Serialize};

/// What one breaker looks like right now: serde-serializable for JSON status endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Its state or mode.
    pub state: State,
    /// Failures in a row so far (Closed / MetricsOnly).
    pub consecutive_failures: u32,
    /// The `consecutive_failures` rule, if set.
    pub consecutive_failures_threshold: Option<u32>,
    /// Calls in the sliding window (0 when no rate rule needs a window).
    pub window_calls: u64,
    /// Failures in the sliding window.
    pub window_failures: u64,
    /// Slow calls in the sliding window.
    pub window_slow_calls: u64,
    /// The `failure_rate` rule, if set.
    pub failure_rate_threshold: Option<f64>,
    /// The `slow_call_rate` rule, if set.
    pub slow_call_rate_threshold: Option<f64>,
    /// Seconds until an Open breaker admits a trial call.
    pub retry_in_seconds: Option<f64>,
    /// The open duration the next trip (or re-trip) starts from, in seconds.
    pub open_duration_seconds: f64,
    /// How many times the breaker has opened since it was built.
    pub trips: u64,
    /// HalfOpen trial calls in flight.
    pub half_open_in_flight: u32,
    /// HalfOpen trial calls that succeeded so far.
    pub half_open_successes: u32,
    /// With throttling on, the chance that a call is rejected locally right now (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_rejecting: Option<f64>,
    /// Whether the fleet guard holds this breaker closed (it would have opened).
    #[serde(default)]
    pub held: bool,
}

impl BreakerSnapshot {
    pub(crate) fn of(breaker: &CircuitBreaker) -> Self {
        let inner = &breaker.inner;
        let (open_duration, trips) = {
            let control = lock(&inner.control);
            (control.open_duration, control.trips)
        };
        let now = inner.now();
        let w = inner.word();
        let counts = inner
            .window
            .as_ref()
            .map(|window| window.counts(now))
            .unwrap_or_default();
        let retry_in = (w.kind() == OPEN).then(|| {
            let until = inner.open_until.load(Ordering::Acquire);
            until.saturating_sub(now) as f64 / 1e9
        });
        let half_open = w.kind() == HALF_OPEN;
        Self {
            name: inner.name.to_string(),
            state: w.state(),
            // The low half is the count (the high half tags its generation).
            consecutive_failures: inner.run.load(Ordering::Relaxed) as u32,
            consecutive_failures_threshold: inner.config.consecutive_failures,
            window_calls: counts.calls,
            window_failures: counts.failures,
            window_slow_calls: counts.slow,
            failure_rate_threshold: inner.config.failure_rate,
            slow_call_rate_threshold: inner.config.slow_call_rate,
            retry_in_seconds: retry_in,
            open_duration_seconds: open_duration.as_secs_f64(),
            trips,
            half_open_in_flight: if half_open { w.in_flight() } else { 0 },
            half_open_successes: if half_open { w.successes() } else { 0 },
            throttle_rejecting: inner
                .throttle
                .as_ref()
                .map(|throttle| throttle.reject_probability(now)),
            held: inner.held.load(Ordering::Acquire),
        }
    }

    /// The failure rate in the window, if it holds any call.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.window_calls > 0).then(|| self.window_failures as f64 / self.window_calls as f64)
    }

    /// The slow-call rate in the window, if it holds any call.
    pub fn slow_call_rate(&self) -> Option<f64> {
        (self.window_calls > 0).then(|| self.window_slow_calls as f64 / self.window_calls as f64)
    }
}
