//! Retry metrics without the `metrics` feature: the same API, recording nothing.

use super::decision::{RetryDecision, RetryReason};

/// The retry metrics of one target. Built without the `metrics` feature, it records nothing.
#[derive(Debug, Clone, Default)]
pub struct RetryMetrics;

impl RetryMetrics {
    /// Records nothing for `target`.
    pub fn new(_target: impl Into<String>) -> Self {
        RetryMetrics
    }

    /// Counts a retry: nothing without the `metrics` feature.
    pub fn attempt(&self, _reason: RetryReason) {}

    /// Counts a request that gave up at a limit: nothing without the `metrics` feature.
    pub fn exhausted(&self) {}

    /// Counts a retry refused by the budget: nothing without the `metrics` feature.
    pub fn budget_rejected(&self) {}

    /// Counts what a decision means: nothing without the `metrics` feature.
    pub fn record(&self, _decision: &RetryDecision) {}
}
