//! The breaker's metrics (DESIGN.md section 6), through the `metrics` facade.
//!
//! Handles are resolved once, when the breaker is built, from whatever recorder is installed at
//! that moment: install the recorder (a Prometheus exporter, say) before building breakers. Per
//! call the breaker only bumps a resolved handle; it never formats a label.

use super::{Outcome, State};

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::BreakerMetrics;
#[cfg(feature = "metrics")]
pub(crate) use enabled::BreakerMetrics;

#[cfg(feature = "metrics")]
mod enabled {
    use super::*;
    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
    use std::time::Duration;

    #[derive(Debug)]
    pub(crate) struct BreakerMetrics {
        name: String,
        state: Gauge,
        success: Counter,
        failure: Counter,
        rejected: Counter,
        ignored: Counter,
        success_seconds: Histogram,
        failure_seconds: Histogram,
        ignored_seconds: Histogram,
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
        pub(crate) fn new(name: &str, state: State, durations: bool) -> Self {
            let calls = |result: &'static str| counter!("circuit_breaker_calls_total", "breaker" => name.to_owned(), "result" => result);
            let seconds = |result: &'static str| match durations {
                true => {
                    histogram!("circuit_breaker_call_duration_seconds", "breaker" => name.to_owned(), "result" => result)
                }
                false => Histogram::noop(),
            };
            let transitions = |from: State, to: State| {
                counter!(
                    "circuit_breaker_transitions_total",
                    "breaker" => name.to_owned(),
                    "from" => from.as_str(),
                    "to" => to.as_str()
                )
            };
            let m = Self {
                tripped: transitions(State::Closed, State::Open),
                half_opened: transitions(State::Open, State::HalfOpen),
                reopened: transitions(State::HalfOpen, State::Open),
                closed: transitions(State::HalfOpen, State::Closed),
                name: name.to_owned(),
                state: gauge!("circuit_breaker_state", "breaker" => name.to_owned()),
                success: calls("success"),
                failure: calls("failure"),
                rejected: calls("rejected"),
                ignored: calls("ignored"),
                success_seconds: seconds("success"),
                failure_seconds: seconds("failure"),
                ignored_seconds: seconds("ignored"),
            };
            m.state.set(state.gauge_value());
            m
        }

        #[inline]
        pub(crate) fn call(&self, outcome: Outcome, duration: Option<Duration>) {
            let (count, seconds) = match outcome {
                Outcome::Success => (&self.success, &self.success_seconds),
                Outcome::Failure => (&self.failure, &self.failure_seconds),
                Outcome::Ignored => (&self.ignored, &self.ignored_seconds),
            };
            count.increment(1);
            if let Some(d) = duration {
                seconds.record(d.as_secs_f64());
            }
        }

        #[inline]
        pub(crate) fn success(&self) {
            self.success.increment(1);
        }

        #[inline]
        pub(crate) fn rejected(&self) {
            self.rejected.increment(1);
        }

        /// Slow path. Operator transitions (forced open, reset, …) resolve their counter on the
        /// spot, from the global recorder.
        pub(crate) fn transition(&self, from: State, to: State) {
            match (from, to) {
                (State::Closed, State::Open) => self.tripped.increment(1),
                (State::Open, State::HalfOpen) => self.half_opened.increment(1),
                (State::HalfOpen, State::Open) => self.reopened.increment(1),
                (State::HalfOpen, State::Closed) => self.closed.increment(1),
                _ => counter!(
                    "circuit_breaker_transitions_total",
                    "breaker" => self.name.clone(),
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
        pub(crate) fn new(_name: &str, _state: State, _durations: bool) -> Self {
            BreakerMetrics
        }
        #[inline]
        pub(crate) fn call(&self, _outcome: Outcome, _duration: Option<Duration>) {}
        #[inline]
        pub(crate) fn success(&self) {}
        #[inline]
        pub(crate) fn rejected(&self) {}
        pub(crate) fn transition(&self, _from: State, _to: State) {}
    }
}
