//! Retry with backoff, as pure calculators that the tower and reqwest front ends drive.
//!
//! - [`RetryConfig`]: the `[retry]` table: how many retries, backoff, which statuses are
//!   transient, an overall time limit, idempotency rules, the budget.
//! - [`Retrier`] and [`RetryRun`]: the whole loop of a front end but sending and sleeping: one
//!   `Retrier` per client (config, budget, metrics, clock), one `RetryRun` per request; after
//!   each attempt [`Retrier::after_attempt`] says whether to sleep and retry or to return.
//! - [`RetryState`]: the per-request calculator underneath; [`RetryState::decide`] applies the
//!   limits.
//! - [`RetryBudget`]: caps retries to a fraction of recent requests, lock-free.
//! - [`parse_retry_after`]: the `Retry-After` header.
//! - [`RetryMetrics`]: `retry_attempts_total`, `retry_exhausted_total` and
//!   `retry_budget_rejected_total` (through the `metrics` facade with the `metrics` feature; a
//!   no-op without it, so front ends need no feature switches).
//!
//! Nothing here sleeps, reads a clock or touches a request: the front end passes time in, sends
//! the request, and sleeps on its own runtime's timer.
//!
//! A request is retried only if [`RetryConfig::may_retry`] allows its method (and only if the
//! front end can clone its body); a circuit-open rejection is never retried.
//!
//! ```
//! use breakerbox::clock::{Clock, ManualClock};
//! use breakerbox::retry::{AttemptOutcome, RetryBudget, RetryConfig, RetryDecision, StopReason};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let config: RetryConfig = toml::from_str(r#"
//!     max_retries = 4
//!     jitter = "none"
//!     statuses = [429, "5xx"]
//! "#)?;
//! config.validate()?;
//!
//! let clock = ManualClock::new();
//! let budget = RetryBudget::new(config.budget().unwrap(), Arc::new(clock.clone()));
//!
//! assert!(config.may_retry("GET", false));
//! let mut state = config.start(clock.now());
//! let mut responses = [503, 429, 200].into_iter();
//! let decision = loop {
//!     let status = responses.next().unwrap(); // send the request
//!     let outcome = AttemptOutcome::Status(status);
//!     let retry_after = (status == 429).then(|| Duration::from_secs(2));
//!     match state.decide(outcome, retry_after, clock.now(), Some(&budget)) {
//!         RetryDecision::Retry { after, .. } => clock.advance(after), // sleep
//!         stop @ RetryDecision::Stop(_) => break stop,
//!     }
//! };
//! assert_eq!(decision, RetryDecision::Stop(StopReason::Succeeded));
//! assert_eq!(state.attempts(), 3);
//! // 100 ms of backoff after the 503, then the 2 s the 429 asked for.
//! assert_eq!(clock.now(), Duration::from_millis(2_100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod budget;
mod config;
mod decision;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_noop.rs"]
mod metrics;
mod retrier;
mod retry_after;

pub use self::metrics::RetryMetrics;
pub use budget::RetryBudget;
pub use config::{
    BudgetConfig, InvalidStatusPattern, RetryConfig, RetryConfigBuilder, StatusPattern,
    is_idempotent_method,
};
pub use decision::{AttemptOutcome, RetryDecision, RetryReason, RetryState, StopReason};
pub use retrier::{Retrier, RetryRun};
pub use retry_after::parse_retry_after;
