//! The whole retry loop of a front end, minus sending and sleeping.

use super::attempts::Attempts;
use super::budget::RetryBudget;
use super::config::RetryConfig;
use super::decision::{RetryDecision, RetryState, StopReason};
use super::metrics::RetryMetrics;
use crate::circuit_breaker::AttemptOutcome;
use crate::clock::SharedClock;
use std::time::Duration;

/// What the requests of one client share for retries: the config, the retry budget, the retry
/// metrics and the clock. Front ends keep one (in an `Arc`) and, per request, a [`RetryRun`];
/// after each attempt [`after_attempt`](Self::after_attempt) says whether to wait and send
/// again, and does all the bookkeeping: the budget, the metrics, starting the retry state only
/// at the first transient failure (a call that succeeds at once costs no clock read).
///
/// ```
/// use breakerbox::clock::{Clock, ManualClock};
/// use breakerbox::backoff::Jitter;
/// use breakerbox::AttemptOutcome;
/// use breakerbox::retry::{Retrier, RetryConfig, RetryDecision, RetryRun};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let config = RetryConfig::builder().jitter(Jitter::None).build()?;
/// let retrier = Retrier::new(config, Arc::new(clock.clone()), "musicbrainz");
///
/// let mut run = RetryRun::new();
/// let mut answers = [503, 503, 200].into_iter();
/// let decision = loop {
///     let status = answers.next().unwrap(); // send the request (or its copy)
///     match retrier.after_attempt(&mut run, AttemptOutcome::Status(status), || None) {
///         RetryDecision::Retry { after, .. } => clock.advance(after), // sleep
///         stop => break stop,
///     }
/// };
/// assert!(!decision.is_retry());
/// assert_eq!(run.attempts(), 3);
/// assert_eq!(clock.now(), Duration::from_millis(100 + 200));
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug)]
pub struct Retrier {
    config: RetryConfig,
    budget: Option<RetryBudget>,
    metrics: RetryMetrics,
    clock: SharedClock,
    target: String,
}

/// One request's retries so far. Empty (no allocation, no clock read) until the first transient
/// failure.
#[derive(Debug, Default)]
pub struct RetryRun {
    state: Option<Box<RetryState>>,
}

impl Retrier {
    /// Retries per `config` on `clock`, with metrics labelled `target` (a host or upstream
    /// name: keep the set of targets bounded).
    pub fn new(config: RetryConfig, clock: SharedClock, target: &str) -> Self {
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

    /// A request's run, before its first attempt.
    #[inline]
    pub fn run(&self) -> RetryRun {
        RetryRun::new()
    }

    /// The retry config.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The retry budget, if the config has one.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// The metrics' `target` label.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A request that will be sent once (not retryable, or its body cannot be copied): the
    /// budget counts it as a request all the same.
    #[inline]
    pub fn sent_once(&self) {
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
    }

    /// After an attempt of `run`'s request: retry after a wait, or stop and hand the result to
    /// the caller. `retry_after` is asked for the response's `Retry-After` only when it matters
    /// (after a transient failure).
    #[inline]
    pub fn after_attempt(
        &self,
        run: &mut RetryRun,
        outcome: AttemptOutcome,
        retry_after: impl FnOnce() -> Option<Duration>,
    ) -> RetryDecision {
        if run.state.is_none() {
            if let Err(stop) = self.config.classify(outcome) {
                // Settled by the first attempt: the budget still counts the request.
                self.sent_once();
                return RetryDecision::Stop(stop);
            }
        }
        self.retry_or_stop(run, outcome, retry_after())
    }

    /// The slow path: a transient failure, or any attempt after one.
    #[inline(never)]
    fn retry_or_stop(
        &self,
        run: &mut RetryRun,
        outcome: AttemptOutcome,
        retry_after: Option<Duration>,
    ) -> RetryDecision {
        let now = crate::clock::Clock::now(&*self.clock);
        let state = run
            .state
            .get_or_insert_with(|| Box::new(self.config.start(now)));
        let decision = state.decide(outcome, retry_after, now, self.budget.as_ref());
        self.metrics.record(&decision);
        match decision {
            RetryDecision::Retry { after, reason } => tracing::debug!(
                target = self.target,
                attempt = state.attempts(),
                reason = reason.as_str(),
                wait_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            ),
            RetryDecision::Stop(stop) if stop.is_exhausted() => tracing::debug!(
                target = self.target,
                attempts = state.attempts(),
                stop = stop.as_str(),
                "giving up"
            ),
            RetryDecision::Stop(_) => {}
        }
        decision
    }
}

impl RetryRun {
    /// A request about to be sent for the first time.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many attempts have been made, a breaker's rejection included: 1 when the first one
    /// settled the request.
    #[inline]
    pub fn attempts(&self) -> u32 {
        self.state.as_ref().map_or(1, |state| state.attempts())
    }

    /// What to tell the caller once the run stopped for `stop`: `Some` when there is something
    /// to tell (the request was retried, or a breaker refused a retry after an attempt reached
    /// the upstream), counting only the attempts that reached the upstream. `None` when the
    /// first attempt settled the request.
    ///
    /// When `stop` is [`StopReason::CircuitOpen`] and an earlier attempt reached the upstream,
    /// the front end hands back that attempt's result (the last real answer), not the
    /// rejection.
    #[inline]
    pub fn summary(&self, stop: StopReason) -> Option<Attempts> {
        let attempts = self.attempts();
        let sent = attempts - u32::from(stop == StopReason::CircuitOpen);
        (sent >= 1 && (sent > 1 || stop == StopReason::CircuitOpen))
            .then(|| Attempts::new(sent, stop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use crate::clock::ManualClock;
    use crate::retry::BudgetConfig;
    use std::sync::Arc;

    fn retrier(budget: Option<BudgetConfig>) -> (Retrier, ManualClock) {
        let clock = ManualClock::new();
        let mut config = RetryConfig::builder().jitter(Jitter::None);
        config = match budget {
            Some(budget) => config.budget(budget),
            None => config.without_budget(),
        };
        let retrier = Retrier::new(config.build().unwrap(), Arc::new(clock.clone()), "t");
        (retrier, clock)
    }

    #[test]
    fn a_settled_first_attempt_starts_nothing_and_asks_no_retry_after() {
        let (retrier, _) = retrier(None);
        let mut run = RetryRun::new();
        let decision = retrier.after_attempt(&mut run, AttemptOutcome::Status(200), || {
            panic!("Retry-After is not read for a success")
        });
        assert_eq!(decision, RetryDecision::Stop(StopReason::Succeeded));
        assert!(run.state.is_none());
        assert_eq!(run.attempts(), 1);
    }

    #[test]
    fn retry_after_is_honoured_and_attempts_counted() {
        let (retrier, clock) = retrier(None);
        let mut run = RetryRun::new();
        let d = retrier.after_attempt(&mut run, AttemptOutcome::Status(503), || {
            Some(Duration::from_secs(2))
        });
        let RetryDecision::Retry { after, .. } = d else {
            panic!("a 503 is retried: {d:?}")
        };
        assert_eq!(after, Duration::from_secs(2));
        clock.advance(after);
        let d = retrier.after_attempt(&mut run, AttemptOutcome::Status(200), || None);
        assert_eq!(d, RetryDecision::Stop(StopReason::Succeeded));
        assert_eq!(run.attempts(), 2);
    }

    #[test]
    fn requests_settled_at_once_or_sent_once_still_fund_the_budget() {
        // No floor, 50 % of requests: two settled requests pay for one retry.
        let budget = BudgetConfig::new(Duration::from_secs(10), 0, 0.5).unwrap();
        let (retrier, _) = retrier(Some(budget));
        retrier.sent_once();
        let mut settled = RetryRun::new();
        retrier.after_attempt(&mut settled, AttemptOutcome::Success, || None);
        let mut failing = RetryRun::new();
        let first = retrier.after_attempt(&mut failing, AttemptOutcome::Timeout, || None);
        assert!(first.is_retry(), "3 requests at 50 %: one retry");
        let second = retrier.after_attempt(&mut failing, AttemptOutcome::Timeout, || None);
        assert_eq!(second, RetryDecision::Stop(StopReason::BudgetExhausted));
    }
}
