//! Retry with backoff, as a pure calculator that the tower and reqwest front ends drive.
//!
//! - [`RetryConfig`]: the `[retry]` table: how many retries, backoff, which statuses are
//!   transient, an overall time limit, idempotency rules, the budget.
//! - [`Retrier`] and [`RetryRun`]: the whole retry loop of a front end but sending and sleeping:
//!   one `Retrier` per client or upstream (config, budget, metrics, clock), one `RetryRun` per
//!   request; after each attempt [`Retrier::after_attempt`] says whether to sleep and retry or
//!   to return, and [`RetryRun::summary`] what to tell the caller ([`Attempts`]).
//! - [`RetryBudget`]: caps retries to a fraction of recent requests, lock-free.
//! - [`parse_retry_after`]: the `Retry-After` header.
//!
//! Nothing here sleeps, reads a clock of its own or touches a request: the front end sends the
//! request and sleeps on its own runtime's timer.
//!
//! The rules every front end applies:
//!
//! - a request is retried only if [`RetryConfig::may_retry`] allows its method (idempotent, or
//!   an `Idempotency-Key`, or the config opts in) and the front end can copy it; any other
//!   request is sent exactly once, never refused for it;
//! - only transient failures are retried: timeouts, connection errors and the configured
//!   `statuses`; a circuit-open rejection is never retried;
//! - the last real answer: once an attempt of a call reached the upstream, the caller gets the
//!   last upstream result, never a later attempt's circuit-open rejection (the attempt that
//!   would have been a retry was refused by a breaker: [`StopReason::CircuitOpen`]). A
//!   rejection reaches the caller only when no attempt of the call left the client.
//!
//! ```
//! use breakerbox::AttemptOutcome;
//! use breakerbox::clock::{Clock, ManualClock};
//! use breakerbox::retry::{Retrier, RetryConfig, RetryDecision, StopReason};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let config = RetryConfig::from_toml(r#"
//!     max_retries = 4
//!     jitter = "none"
//!     statuses = [429, "5xx"]
//! "#)?;
//! let clock = ManualClock::new();
//! let retrier = Retrier::new(config, Arc::new(clock.clone()), "musicbrainz");
//!
//! assert!(retrier.config().may_retry("GET", false));
//! let mut run = retrier.run();
//! let mut responses = [503, 429, 200].into_iter();
//! let stop = loop {
//!     let status = responses.next().unwrap(); // send the request
//!     let retry_after = (status == 429).then(|| Duration::from_secs(2));
//!     match retrier.after_attempt(&mut run, AttemptOutcome::Status(status), || retry_after) {
//!         RetryDecision::Retry { after, .. } => clock.advance(after), // sleep
//!         RetryDecision::Stop(stop) => break stop,
//!     }
//! };
//! assert_eq!(stop, StopReason::Succeeded);
//! assert_eq!(run.summary(stop).unwrap().count(), 3);
//! // 100 ms of backoff after the 503, then the 2 s the 429 asked for.
//! assert_eq!(clock.now(), Duration::from_millis(2_100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attempts;
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
pub(crate) mod rule;

pub use attempts::Attempts;
pub use budget::RetryBudget;
pub use config::{BudgetConfig, RetryConfig, RetryConfigBuilder, is_idempotent_method};
pub use decision::{RetryDecision, RetryReason, StopReason};
pub use retrier::{Retrier, RetryRun};
pub use retry_after::parse_retry_after;
