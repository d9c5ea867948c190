//! The breaker's metrics, through the `metrics` facade.
//!
//! Handles are resolved once, when the breaker is built, from whatever recorder is installed at
//! that moment: install the recorder (a Prometheus exporter, say) before building breakers. Per
//! call the breaker never formats a label.
//!
//! `circuit_breaker_calls_total` is counted per thread and published in batches ([`stripes`]),
//! so that the calls of many threads through one breaker never meet on one atomic counter. A
//! state change, a snapshot and [`flush`](BreakerMetrics::flush) publish what is pending.

#[cfg(feature = "metrics")]
mod stripes;

use super::{BreakerName, Outcome, State};

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::BreakerMetrics;
#[cfg(feature = "metrics")]
pub(crate) use enabled::BreakerMetrics;

#[cfg(feature = "metrics")]
mod enabled {
    use super::stripes;
    use super::*;
    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
    use std::time::Duration;

    #[derive(Debug)]
    pub(crate) struct BreakerMetrics {
        name: BreakerName,
        calls: stripes::CallCounts,
        state: Gauge,
        success: Counter,
        failure: Counter,
        rejected: Counter,
        ignored: Counter,
        /// Rejections by the throttle, and trips held by the fleet guard: rare enough to count
        /// on the spot.
        throttled: Counter,
        held: Counter,
        /// Success, failure and ignored call durations, when measured.
        seconds: Option<Box<[Histogram; 3]>>,
        /// The four automatic transitions, resolved up front so that their series exist (at 0)
        /// from the start and come from the same recorder as the rest.
        tripped: Counter,
        half_opened: Counter,
        reopened: Counter,
        closed: Counter,
    }

    impl BreakerMetrics {
        /// Resolves the handles; the duration histograms only when `durations` are measured, so
        /// that a breaker without them exports no empty series.
        pub(crate) fn new(name: BreakerName, state: State, durations: bool) -> Self {
            let label = || name.to_string();
            let calls = |result: &'static str| counter!("circuit_breaker_calls_total", "breaker" => label(), "result" => result);
            let seconds = |result: &'static str| histogram!("circuit_breaker_call_duration_seconds", "breaker" => label(), "result" => result);
            let transitions = |from: State, to: State| {
                counter!(
                    "circuit_breaker_transitions_total",
                    "breaker" => label(),
                    "from" => from.as_str(),
                    "to" => to.as_str()
                )
            };
            let m = Self {
                calls: stripes::CallCounts::new(),
                tripped: transitions(State::Closed, State::Open),
                half_opened: transitions(State::Open, State::HalfOpen),
                reopened: transitions(State::HalfOpen, State::Open),
                closed: transitions(State::HalfOpen, State::Closed),
                state: gauge!("circuit_breaker_state", "breaker" => label()),
                success: calls("success"),
                failure: calls("failure"),
                rejected: calls("rejected"),
                ignored: calls("ignored"),
                throttled: calls("throttled"),
                held: counter!("circuit_breaker_trips_held_total", "breaker" => label()),
                seconds: durations.then(|| {
                    Box::new([seconds("success"), seconds("failure"), seconds("ignored")])
                }),
                name,
            };
            m.state.set(state.gauge_value());
            m
        }

        fn counter(&self, result: usize) -> &Counter {
            match result {
                stripes::SUCCESS => &self.success,
                stripes::FAILURE => &self.failure,
                stripes::IGNORED => &self.ignored,
                _ => &self.rejected,
            }
        }

        #[inline]
        pub(crate) fn call(&self, outcome: Outcome, duration: Option<Duration>) {
            let result = match outcome {
                Outcome::Success => stripes::SUCCESS,
                Outcome::Failure => stripes::FAILURE,
                Outcome::Ignored => stripes::IGNORED,
            };
            self.calls.add(result, |r, n| self.counter(r).increment(n));
            if let (Some(d), Some(seconds)) = (duration, &self.seconds) {
                seconds[result].record(d.as_secs_f64());
            }
        }

        #[inline]
        pub(crate) fn success(&self) {
            self.calls
                .add(stripes::SUCCESS, |r, n| self.counter(r).increment(n));
        }

        #[inline]
        pub(crate) fn rejected(&self) {
            self.calls
                .add(stripes::REJECTED, |r, n| self.counter(r).increment(n));
        }

        /// A call the throttle rejected.
        pub(crate) fn throttled(&self) {
            self.throttled.increment(1);
        }

        /// A trip the fleet guard held back.
        pub(crate) fn held(&self) {
            self.held.increment(1);
        }

        /// Publishes every call counted so far.
        pub(crate) fn flush(&self) {
            self.calls.flush(|r, n| self.counter(r).increment(n));
        }

        /// Slow path. Operator transitions (forced open, reset, …) resolve their counter on the
        /// spot, from the global recorder. The calls counted so far are published first.
        pub(crate) fn transition(&self, from: State, to: State) {
            self.flush();
            match (from, to) {
                (State::Closed, State::Open) => self.tripped.increment(1),
                (State::Open, State::HalfOpen) => self.half_opened.increment(1),
                (State::HalfOpen, State::Open) => self.reopened.increment(1),
                (State::HalfOpen, State::Closed) => self.closed.increment(1),
                _ => counter!(
                    "circuit_breaker_transitions_total",
                    "breaker" => self.name.to_string(),
                    "from" => from.as_str(),
                    "to" => to.as_str()
                )
                .increment(1),
            }
            self.state.set(to.gauge_value());
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    pub(crate) struct BreakerMetrics;

    impl BreakerMetrics {
        pub(crate) fn new(_name: BreakerName, _state: State, _durations: bool) -> Self {
            BreakerMetrics
        }
        #[inline]
        pub(crate) fn call(&self, _outcome: Outcome, _duration: Option<Duration>) {}
        #[inline]
        pub(crate) fn success(&self) {}
        #[inline]
        pub(crate) fn rejected(&self) {}
        pub(crate) fn throttled(&self) {}
        pub(crate) fn held(&self) {}
        pub(crate) fn flush(&self) {}
        pub(crate) fn transition(&self, _from: State, _to: State) {}
    }
}
