//! Retry metrics through the `metrics` facade.

use super::decision::{RetryDecision, RetryReason};
use metrics::{Counter, SharedString, counter};

/// The retry metrics of one target, with every handle resolved once at construction: recording
/// is an atomic increment, with no label formatting or registry lookup per call.
///
/// | metric | labels |
/// | --- | --- |
/// | `retry_attempts_total` | `breaker`, `reason` (see [`RetryReason::as_str`]) |
/// | `retry_exhausted_total` | `breaker` |
/// | `retry_budget_rejected_total` | `breaker` |
///
/// Handles come from the recorder installed when `RetryMetrics::new` runs, so create it after
/// installing the exporter.
#[derive(Debug, Clone)]
pub(crate) struct RetryMetrics {
    timeout: Counter,
    connect: Counter,
    status_408: Counter,
    status_429: Counter,
    status_5xx: Counter,
    status_4xx: Counter,
    status_other: Counter,
    exhausted: Counter,
    budget_rejected: Counter,
}

impl RetryMetrics {
    /// Registers the counters of `target` (a host or breaker name: keep the set of targets
    /// bounded, as every one is a label value).
    pub(crate) fn new(target: impl Into<SharedString>) -> Self {
        let target = target.into();
        let attempts = |reason: RetryReason| {
            counter!(
                "retry_attempts_total",
                "breaker" => target.clone(),
                "reason" => reason.as_str()
            )
        };
        Self {
            timeout: attempts(RetryReason::Timeout),
            connect: attempts(RetryReason::Connect),
            status_408: attempts(RetryReason::Status(408)),
            status_429: attempts(RetryReason::Status(429)),
            status_5xx: attempts(RetryReason::Status(500)),
            status_4xx: attempts(RetryReason::Status(400)),
            status_other: attempts(RetryReason::Status(0)),
            exhausted: counter!("retry_exhausted_total", "breaker" => target.clone()),
            budget_rejected: counter!("retry_budget_rejected_total", "breaker" => target),
        }
    }

    /// Counts a retry, under its reason's label.
    fn attempt(&self, reason: RetryReason) {
        // The same classes as `RetryReason::as_str`; the test below keeps them in step.
        let counter = match reason {
            RetryReason::Timeout => &self.timeout,
            RetryReason::Connect => &self.connect,
            RetryReason::Status(408) => &self.status_408,
            RetryReason::Status(429) => &self.status_429,
            RetryReason::Status(500..=599) => &self.status_5xx,
            RetryReason::Status(400..=499) => &self.status_4xx,
            RetryReason::Status(_) => &self.status_other,
        };
        counter.increment(1);
    }

    /// Counts a request that gave up on a transient failure at a limit.
    fn exhausted(&self) {
        self.exhausted.increment(1);
    }

    /// Counts a retry refused by the retry budget.
    fn budget_rejected(&self) {
        self.budget_rejected.increment(1);
    }

    /// Counts what a decision means: a retry, an exhaustion (see
    /// [`StopReason::is_exhausted`](super::StopReason::is_exhausted)), a budget rejection, or
    /// nothing.
    pub(crate) fn record(&self, decision: &RetryDecision) {
        match *decision {
            RetryDecision::Retry { reason, .. } => self.attempt(reason),
            RetryDecision::Stop(super::StopReason::BudgetExhausted) => self.budget_rejected(),
            RetryDecision::Stop(stop) if stop.is_exhausted() => self.exhausted(),
            RetryDecision::Stop(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::StopReason;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::time::Duration;

    /// Name, labels, value.
    type Sample = (String, Vec<(String, String)>, u64);

    fn counters(recorder: &DebuggingRecorder) -> Vec<Sample> {
        let mut counters: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let DebugValue::Counter(n) = value else {
                    return None;
                };
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some((key.name().to_owned(), labels, n))
            })
            .collect();
        counters.sort();
        counters
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn counts_with_fixed_labels() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            let metrics = RetryMetrics::new("espn");
            let retry = |reason| RetryDecision::Retry {
                after: Duration::ZERO,
                reason,
            };
            metrics.record(&retry(RetryReason::Status(503)));
            metrics.record(&retry(RetryReason::Status(502)));
            metrics.record(&retry(RetryReason::Timeout));
            metrics.record(&retry(RetryReason::Status(409)));
            metrics.record(&RetryDecision::Stop(StopReason::Exhausted));
            metrics.record(&RetryDecision::Stop(StopReason::RetryAfterTooLong));
            metrics.record(&RetryDecision::Stop(StopReason::BudgetExhausted));
            metrics.record(&RetryDecision::Stop(StopReason::Succeeded));
            metrics.record(&RetryDecision::Stop(StopReason::CircuitOpen));
            metrics.attempt(RetryReason::Connect);
        });
        let attempts = |reason, n| {
            (
                "retry_attempts_total".to_owned(),
                labels(&[("breaker", "espn"), ("reason", reason)]),
                n,
            )
        };
        let mut expected = vec![
            (
                "retry_budget_rejected_total".to_owned(),
                labels(&[("breaker", "espn")]),
                1,
            ),
            (
                "retry_exhausted_total".to_owned(),
                labels(&[("breaker", "espn")]),
                2,
            ),
            attempts("connect", 1),
            attempts("status_408", 0),
            attempts("status_429", 0),
            attempts("status_4xx", 1),
            attempts("status_5xx", 2),
            attempts("status_other", 0),
            attempts("timeout", 1),
        ];
        expected.sort();
        assert_eq!(counters(&recorder), expected);
    }
}
