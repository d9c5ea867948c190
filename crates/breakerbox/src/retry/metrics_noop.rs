//! Retry metrics without the `metrics` feature: the same API, recording nothing.

use super::decision::RetryDecision;

/// The retry metrics of one target. Built without the `metrics` feature, it records nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct RetryMetrics;

impl RetryMetrics {
    /// Records nothing for `target`.
    pub(crate) fn new(_target: impl Into<String>) -> Self {
        RetryMetrics
    }

    /// Counts what a decision means: nothing without the `metrics` feature.
    pub(crate) fn record(&self, _decision: &RetryDecision) {}
}
