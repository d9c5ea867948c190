//! The per-request retry calculator: [`RetryState`] turns each attempt's outcome into a
//! [`RetryDecision`].

use super::budget::RetryBudget;
use super::config::RetryConfig;
use crate::backoff::Backoff;
use crate::circuit_breaker::AttemptOutcome;
use crate::status::StatusSet;
use std::fmt;
use std::time::Duration;

/// Why an attempt is retried: the transient failure. [`as_str`](Self::as_str) is the `reason`
/// label of `retry_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The attempt timed out.
    Timeout,
    /// The connection could not be established.
    Connect,
    /// The response had this transient status.
    Status(u16),
}

impl RetryReason {
    /// A low-cardinality label: `"timeout"`, `"connect"`, `"status_408"`, `"status_429"`,
    /// `"status_5xx"`, `"status_4xx"` (other configured 4xx) or `"status_other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Timeout => "timeout",
            RetryReason::Connect => "connect",
            RetryReason::Status(408) => "status_408",
            RetryReason::Status(429) => "status_429",
            RetryReason::Status(500..=599) => "status_5xx",
            RetryReason::Status(400..=499) => "status_4xx",
            RetryReason::Status(_) => "status_other",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The attempt succeeded (or returned a status below 400 that is not configured transient).
    Succeeded,
    /// The failure is not transient (a non-transient status, or an error other than a timeout
    /// or a connect error).
    NotTransient,
    /// A circuit breaker rejected the attempt; retrying would defeat failing fast.
    CircuitOpen,
    /// `max_retries` retries have been made.
    Exhausted,
    /// Sleeping the backoff delay would go past `max_elapsed`.
    Elapsed,
    /// The server's `Retry-After` exceeds `max_delay` or the time left before `max_elapsed`:
    /// the response is returned instead of sleeping.
    RetryAfterTooLong,
    /// The retry budget is spent: the fleet is already retrying as much as it may.
    BudgetExhausted,
}

impl StopReason {
    /// A low-cardinality label: `"succeeded"`, `"not_transient"`, `"circuit_open"`,
    /// `"exhausted"`, `"elapsed"`, `"retry_after_too_long"` or `"budget_exhausted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Succeeded => "succeeded",
            StopReason::NotTransient => "not_transient",
            StopReason::CircuitOpen => "circuit_open",
            StopReason::Exhausted => "exhausted",
            StopReason::Elapsed => "elapsed",
            StopReason::RetryAfterTooLong => "retry_after_too_long",
            StopReason::BudgetExhausted => "budget_exhausted",
        }
    }

    /// Whether retrying gave up on a transient failure because a limit was reached
    /// (`Exhausted`, `Elapsed` or `RetryAfterTooLong`): what `retry_exhausted_total` counts.
    /// `BudgetExhausted` is counted apart, by `retry_budget_rejected_total`.
    pub fn is_exhausted(self) -> bool {
        matches!(
            self,
            StopReason::Exhausted | StopReason::Elapsed | StopReason::RetryAfterTooLong
        )
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Sleep `after`, then send the request again.
    Retry {
        /// How long to wait before the next attempt.
        after: Duration,
        /// The transient failure being retried.
        reason: RetryReason,
    },
    /// Return the last response or error to the caller.
    Stop(StopReason),
}

impl RetryDecision {
    /// Whether this is a [`Retry`](RetryDecision::Retry).
    pub fn is_retry(&self) -> bool {
        matches!(self, RetryDecision::Retry { .. })
    }
}

/// The retry bookkeeping of one request, underneath [`Retrier`](super::Retrier): started at a
/// request's first transient failure, asked after each attempt.
///
/// It owns everything it needs (under 200 bytes, no allocation), so a response future can carry
/// it without holding on to the config.
#[derive(Debug, Clone)]
pub(crate) struct RetryState {
    backoff: Backoff,
    statuses: StatusSet,
    max_retries: u32,
    max_elapsed: Option<Duration>,
    started: Duration,
    attempts: u32,
    previous: Option<Duration>,
    rng: fastrand::Rng,
}

// === impl RetryConfig ===

impl RetryConfig {
    /// Starts the retry bookkeeping of one request whose first attempt starts at `now` (a
    /// reading of the front end's clock). Jitter draws from a generator seeded from the
    /// thread-local [`fastrand`] generator.
    pub(crate) fn start(&self, now: Duration) -> RetryState {
        self.start_seeded(now, fastrand::u64(..))
    }

    /// [`start`](Self::start) with a seeded jitter generator, for reproducible delays.
    pub(crate) fn start_seeded(&self, now: Duration, seed: u64) -> RetryState {
        RetryState {
            backoff: self.backoff(),
            statuses: self.statuses_compiled(),
            max_retries: self.max_retries(),
            max_elapsed: self.max_elapsed(),
            started: now,
            attempts: 0,
            previous: None,
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

// === impl RetryState ===

impl RetryState {
    /// Records an attempt that ended at `now` and decides what to do next.
    ///
    /// Call it after every attempt, successful or not. `retry_after` is the response's parsed
    /// `Retry-After` (see [`parse_retry_after`](super::parse_retry_after)); it is honoured only
    /// with a 429 or 503 status. `budget` is the target's retry budget, if any: the first call
    /// deposits the request in it, and every retry must withdraw from it.
    ///
    /// The rules, in order:
    /// 1. success, a non-transient status or error: stop ([`Succeeded`](StopReason::Succeeded),
    ///    [`NotTransient`](StopReason::NotTransient)); a circuit-open rejection:
    ///    [`CircuitOpen`](StopReason::CircuitOpen);
    /// 2. `max_retries` retries made: [`Exhausted`](StopReason::Exhausted);
    /// 3. the delay is the jittered backoff; with an honoured `Retry-After`, the larger of the
    ///    two (so at least `Retry-After`), the backoff part trimmed to the time left before
    ///    `max_elapsed`. A `Retry-After` above `max_delay` or above that time left stops with
    ///    [`RetryAfterTooLong`](StopReason::RetryAfterTooLong);
    /// 4. a backoff delay that would end past `max_elapsed`: [`Elapsed`](StopReason::Elapsed);
    /// 5. no budget left: [`BudgetExhausted`](StopReason::BudgetExhausted) (withdrawn last, so
    ///    only retries that will happen spend it).
    ///
    /// `max_elapsed` bounds the time spent before the last retry starts; the retry itself may
    /// then take up to the front end's per-attempt timeout.
    pub(crate) fn decide(
        &mut self,
        outcome: AttemptOutcome,
        retry_after: Option<Duration>,
        now: Duration,
        budget: Option<&RetryBudget>,
    ) -> RetryDecision {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts == 1 {
            if let Some(budget) = budget {
                budget.deposit();
            }
        }

        let reason = match super::config::classify(outcome, |s| self.statuses.contains(s)) {
            Ok(reason) => reason,
            Err(stop) => return RetryDecision::Stop(stop),
        };

        let retries_made = self.attempts - 1;
        if retries_made >= self.max_retries {
            return RetryDecision::Stop(StopReason::Exhausted);
        }

        let remaining = self
            .max_elapsed
            .map(|max| max.saturating_sub(now.saturating_sub(self.started)));
        let backoff = self
            .backoff
            .delay(retries_made, self.previous, self.rng.f64());
        let retry_after = match outcome {
            AttemptOutcome::Status(429 | 503) => retry_after,
            _ => None,
        };
        let after = match retry_after {
            Some(wish) => {
                if wish > self.backoff.max() || remaining.is_some_and(|left| wish > left) {
                    return RetryDecision::Stop(StopReason::RetryAfterTooLong);
                }
                wish.max(remaining.map_or(backoff, |left| backoff.min(left)))
            }
            None => {
                if remaining.is_some_and(|left| backoff > left) {
                    return RetryDecision::Stop(StopReason::Elapsed);
                }
                backoff
            }
        };

        if budget.is_some_and(|budget| !budget.try_withdraw()) {
            return RetryDecision::Stop(StopReason::BudgetExhausted);
        }
        self.previous = Some(after);
        RetryDecision::Retry { after, reason }
    }

    /// How many attempts have been made (recorded by [`decide`](Self::decide)) so far: after the
    /// final decision, the total the caller can report.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many of those attempts were retries.
    #[cfg(test)]
    fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use crate::clock::ManualClock;
    use crate::retry::BudgetConfig;
    use std::sync::Arc;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    fn config() -> RetryConfig {
        RetryConfig::builder()
            .jitter(Jitter::None)
            .without_budget()
            .build()
            .unwrap()
    }

    fn retry(after: Duration, reason: RetryReason) -> RetryDecision {
        RetryDecision::Retry { after, reason }
    }

    fn stop(reason: StopReason) -> RetryDecision {
        RetryDecision::Stop(reason)
    }

    #[test]
    fn final_outcomes_stop_at_once() {
        let cases = [
            (AttemptOutcome::Success, StopReason::Succeeded),
            (AttemptOutcome::Status(200), StopReason::Succeeded),
            (AttemptOutcome::Status(304), StopReason::Succeeded),
            (AttemptOutcome::Status(404), StopReason::NotTransient),
            (AttemptOutcome::Status(600), StopReason::NotTransient),
            (AttemptOutcome::OtherError, StopReason::NotTransient),
            (AttemptOutcome::CircuitOpen, StopReason::CircuitOpen),
        ];
        for (outcome, reason) in cases {
            let mut state = config().start(Duration::ZERO);
            assert_eq!(
                state.decide(outcome, None, Duration::ZERO, None),
                stop(reason)
            );
            assert_eq!(state.attempts(), 1);
        }
    }

    #[test]
    fn transient_failures_back_off_exponentially() {
        let config = config();
        let mut state = config.start(Duration::ZERO);
        let outcomes = [
            AttemptOutcome::Timeout,
            AttemptOutcome::Connect,
            AttemptOutcome::Status(502),
        ];
        let reasons = [
            RetryReason::Timeout,
            RetryReason::Connect,
            RetryReason::Status(502),
        ];
        let mut now = Duration::ZERO;
        for (n, (outcome, reason)) in outcomes.into_iter().zip(reasons).enumerate() {
            let expected = 100 * MS * 2u32.pow(n as u32);
            assert_eq!(
                state.decide(outcome, None, now, None),
                retry(expected, reason)
            );
            now += expected;
        }
        assert_eq!(
            state.decide(AttemptOutcome::Timeout, None, now, None),
            stop(StopReason::Exhausted)
        );
        assert_eq!(state.attempts(), 4);
        assert_eq!(state.retries(), 3);
    }

    #[test]
    fn zero_retries_never_retries() {
        let config = RetryConfig::builder().max_retries(0).build().unwrap();
        let mut state = config.start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Timeout, None, Duration::ZERO, None),
            stop(StopReason::Exhausted)
        );
    }

    #[test]
    fn circuit_open_is_never_retried_even_mid_request() {
        let mut state = config().start(Duration::ZERO);
        assert!(
            state
                .decide(AttemptOutcome::Timeout, None, MS, None)
                .is_retry()
        );
        assert_eq!(
            state.decide(AttemptOutcome::CircuitOpen, None, SEC, None),
            stop(StopReason::CircuitOpen)
        );
    }

    #[test]
    fn configured_statuses_only() {
        let config = RetryConfig::builder()
            .statuses([crate::status::StatusPattern::Code(409)])
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let mut state = config.start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Status(409), None, Duration::ZERO, None),
            retry(100 * MS, RetryReason::Status(409))
        );
        assert_eq!(
            state.decide(AttemptOutcome::Status(503), None, Duration::ZERO, None),
            stop(StopReason::NotTransient)
        );
    }

    #[test]
    fn retry_after_is_a_minimum_on_429_and_503() {
        for status in [429, 503] {
            let mut state = config().start(Duration::ZERO);
            assert_eq!(
                state.decide(
                    AttemptOutcome::Status(status),
                    Some(3 * SEC),
                    Duration::ZERO,
                    None
                ),
                retry(3 * SEC, RetryReason::Status(status))
            );
            // A Retry-After shorter than the backoff: the backoff wins.
            assert_eq!(
                state.decide(
                    AttemptOutcome::Status(status),
                    Some(MS),
                    Duration::ZERO,
                    None
                ),
                retry(200 * MS, RetryReason::Status(status))
            );
        }
    }

    #[test]
    fn retry_after_is_ignored_on_other_outcomes() {
        let mut state = config().start(Duration::ZERO);
        assert_eq!(
            state.decide(
                AttemptOutcome::Status(500),
                Some(5 * SEC),
                Duration::ZERO,
                None
            ),
            retry(100 * MS, RetryReason::Status(500))
        );
        assert_eq!(
            state.decide(
                AttemptOutcome::Timeout,
                Some(60 * SEC),
                Duration::ZERO,
                None
            ),
            retry(200 * MS, RetryReason::Timeout)
        );
    }

    #[test]
    fn retry_after_beyond_max_delay_returns_the_response() {
        let mut state = config().start(Duration::ZERO);
        assert_eq!(
            state.decide(
                AttemptOutcome::Status(429),
                Some(11 * SEC),
                Duration::ZERO,
                None
            ),
            stop(StopReason::RetryAfterTooLong)
        );
        let mut state = config().start(Duration::ZERO);
        assert!(
            state
                .decide(
                    AttemptOutcome::Status(429),
                    Some(10 * SEC),
                    Duration::ZERO,
                    None
                )
                .is_retry()
        );
    }

    #[test]
    fn retry_after_beyond_max_elapsed_returns_the_response() {
        // 30 s overall; 25 s gone; 6 s asked.
        let mut state = config().start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Status(503), Some(6 * SEC), 25 * SEC, None),
            stop(StopReason::RetryAfterTooLong)
        );
        // 5 s asked: fits exactly.
        let mut state = config().start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Status(503), Some(5 * SEC), 25 * SEC, None),
            retry(5 * SEC, RetryReason::Status(503))
        );
    }

    #[test]
    fn retry_after_trims_the_backoff_to_the_time_left() {
        let config = RetryConfig::builder()
            .jitter(Jitter::None)
            .base_delay(8 * SEC)
            .max_elapsed(Some(10 * SEC))
            .build()
            .unwrap();
        let mut state = config.start(Duration::ZERO);
        // Backoff 8 s would overshoot (5 s left), Retry-After 2 s fits: wait the 5 s left.
        assert_eq!(
            state.decide(AttemptOutcome::Status(429), Some(2 * SEC), 5 * SEC, None),
            retry(5 * SEC, RetryReason::Status(429))
        );
    }

    #[test]
    fn backoff_past_max_elapsed_stops() {
        let config = RetryConfig::builder()
            .jitter(Jitter::None)
            .max_elapsed(Some(SEC))
            .max_retries(10)
            .build()
            .unwrap();
        let mut state = config.start(10 * SEC);
        let mut now = 10 * SEC;
        // 100 + 200 + 400 = 700 ms; the next 800 ms would end at 1.5 s.
        for _ in 0..3 {
            let RetryDecision::Retry { after, .. } =
                state.decide(AttemptOutcome::Connect, None, now, None)
            else {
                panic!("expected a retry");
            };
            now += after;
        }
        assert_eq!(
            state.decide(AttemptOutcome::Connect, None, now, None),
            stop(StopReason::Elapsed)
        );
        // The first attempt's own time counts too.
        let mut state = config.start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Connect, None, 950 * MS, None),
            stop(StopReason::Elapsed)
        );
    }

    #[test]
    fn no_max_elapsed_means_no_time_limit() {
        let config = RetryConfig::builder()
            .jitter(Jitter::None)
            .max_elapsed(None)
            .build()
            .unwrap();
        let mut state = config.start(Duration::ZERO);
        assert!(
            state
                .decide(
                    AttemptOutcome::Status(429),
                    Some(10 * SEC),
                    1_000_000 * SEC,
                    None
                )
                .is_retry()
        );
    }

    #[test]
    fn decorrelated_chains_previous_delays() {
        let config = RetryConfig::builder()
            .jitter(Jitter::Decorrelated)
            .max_retries(50)
            .max_elapsed(None)
            .build()
            .unwrap();
        let backoff = config.backoff();
        let seed = 7;
        let mut state = config.start_seeded(Duration::ZERO, seed);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut previous = None;
        for _ in 0..50 {
            let expected = backoff.delay(0, previous, rng.f64());
            assert_eq!(
                state.decide(AttemptOutcome::Timeout, None, Duration::ZERO, None),
                retry(expected, RetryReason::Timeout)
            );
            previous = Some(expected);
        }
    }

    #[test]
    fn seeded_states_repeat() {
        let config = RetryConfig::default();
        let run = |seed| {
            let mut state = config.start_seeded(Duration::ZERO, seed);
            (0..3)
                .map(|_| state.decide(AttemptOutcome::Timeout, None, Duration::ZERO, None))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn budget_deposits_once_and_withdraws_per_retry() {
        let clock = ManualClock::new();
        // No floor, one retry per two requests.
        let budget_config = BudgetConfig::new(10 * SEC, 0, 0.5).unwrap();
        let budget = RetryBudget::new(&budget_config, Arc::new(clock));
        let config = config();

        // A successful request deposits without withdrawing.
        let mut ok = config.start(Duration::ZERO);
        assert_eq!(
            ok.decide(AttemptOutcome::Success, None, Duration::ZERO, Some(&budget)),
            stop(StopReason::Succeeded)
        );
        // The second request's deposit makes one retry affordable, not two.
        let mut failing = config.start(Duration::ZERO);
        assert!(
            failing
                .decide(AttemptOutcome::Timeout, None, Duration::ZERO, Some(&budget))
                .is_retry()
        );
        assert_eq!(
            failing.decide(AttemptOutcome::Timeout, None, Duration::ZERO, Some(&budget)),
            stop(StopReason::BudgetExhausted)
        );
        assert_eq!(failing.attempts(), 2);
    }

    #[test]
    fn budget_is_not_spent_on_retries_that_do_not_happen() {
        let clock = ManualClock::new();
        let budget_config = BudgetConfig::new(10 * SEC, 0, 1.0).unwrap();
        let budget = RetryBudget::new(&budget_config, Arc::new(clock));
        let config = RetryConfig::builder().max_retries(0).build().unwrap();
        let mut state = config.start(Duration::ZERO);
        assert_eq!(
            state.decide(AttemptOutcome::Timeout, None, Duration::ZERO, Some(&budget)),
            stop(StopReason::Exhausted)
        );
        assert!(budget.try_withdraw());
    }

    #[test]
    fn state_is_small() {
        assert!(std::mem::size_of::<RetryState>() < 200);
    }

    #[test]
    fn labels() {
        let reasons = [
            (RetryReason::Timeout, "timeout"),
            (RetryReason::Connect, "connect"),
            (RetryReason::Status(408), "status_408"),
            (RetryReason::Status(429), "status_429"),
            (RetryReason::Status(500), "status_5xx"),
            (RetryReason::Status(599), "status_5xx"),
            (RetryReason::Status(409), "status_4xx"),
            (RetryReason::Status(302), "status_other"),
        ];
        for (reason, label) in reasons {
            assert_eq!(reason.as_str(), label);
            assert_eq!(reason.to_string(), label);
        }
        assert_eq!(
            StopReason::RetryAfterTooLong.as_str(),
            "retry_after_too_long"
        );
        assert_eq!(StopReason::BudgetExhausted.to_string(), "budget_exhausted");
        assert!(StopReason::Elapsed.is_exhausted());
        assert!(!StopReason::BudgetExhausted.is_exhausted());
        assert!(!StopReason::CircuitOpen.is_exhausted());
    }
}
