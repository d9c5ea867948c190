//! breakerbox is the engine behind breakerbox's tower layers and reqwest middleware: circuit
//! breakers, sliding windows, backoff and retry budgets, and a box of breakers keyed by request
//! target. It is runtime-agnostic (no tokio, tower or HTTP types): front ends translate their
//! framework's calls into engine calls (admit, record an outcome, decide a retry) and keep
//! nothing else.
//!
//! # Overview
//!
//! - [`CircuitBreaker`]: one breaker, with consecutive-failure, failure-rate and slow-call-rate
//!   rules over count- or time-based windows, growing open durations, HalfOpen trial limits, a
//!   health-probe hook and administrative modes. See [`circuit_breaker`].
//! - [`BreakerBox`]: many breakers, one per target (scheme + host + port by default), with rules
//!   that give named breakers to hosts, `*.suffix` hosts and path prefixes, a cap on how many
//!   it creates, a snapshot, a health summary and a status table. See [`breaker_box`].
//! - [`BreakerConfig`] and [`BoxConfig`]: builders and serde (TOML with durations like `"60s"`),
//!   validated when built: an invalid value is an [`InvalidConfig`] naming the field.
//! - [`clock`]: the injected monotonic clock; [`ManualClock`](clock::ManualClock) for tests.
//!
//! # Example
//!
//! ```
//! use breakerbox::{BoxConfig, BreakerConfig, BreakerBox, BreakerRule, Match, Outcome, Target};
//! use breakerbox::clock::ManualClock;
//! use std::{sync::Arc, time::Duration};
//!
//! let config = BoxConfig::builder()
//!     .defaults(BreakerConfig::builder().consecutive_failures(5).build()?)
//!     .rule(
//!         BreakerRule::new("google_ai_vision", Match::host("generativelanguage.googleapis.com")
//!             .path_prefix("/v1/models/gemini-pro-vision"))
//!         .config(BreakerConfig::builder().consecutive_failures(3).build()?),
//!     )
//!     .build()?;
//! let clock = ManualClock::new();
//! let panel = BreakerBox::builder(config).clock(Arc::new(clock.clone())).build();
//!
//! let vision = Target::new("https", "generativelanguage.googleapis.com", 443,
//!     "/v1/models/gemini-pro-vision:generateContent");
//! let text = Target::new("https", "generativelanguage.googleapis.com", 443,
//!     "/v1/models/gemini-pro:generateContent");
//! for _ in 0..3 {
//!     let permit = panel.try_acquire(&vision).unwrap();
//!     clock.advance(Duration::from_millis(600)); // the vision call times out after 600 ms
//!     permit.record(Outcome::Failure);
//! }
//! // The vision breaker is open; text generation on the same host is not blocked.
//! assert!(panel.breaker(&vision).try_acquire().is_err());
//! assert!(panel.breaker(&text).try_acquire().is_ok());
//! assert!(!panel.health().is_healthy());
//! # Ok::<(), breakerbox::InvalidConfig>(())
//! ```
//!
//! # Features
//!
//! - `metrics` (default): publish `circuit_breaker_state`, `circuit_breaker_calls_total`,
//!   `circuit_breaker_transitions_total` and, when asked for (it reads the clock twice per
//!   call), `circuit_breaker_call_duration_seconds` through the
//!   [`metrics`](https://docs.rs/metrics) facade.
//! - `toml`: load [`BoxConfig`] and [`BreakerConfig`] from TOML text.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod breaker_box;
pub mod circuit_breaker;
pub mod clock;
pub mod config;
pub mod retry;
pub mod status;
mod sync;

pub use backoff::{Backoff, Jitter};
pub use breaker_box::{BreakerBox, Health, Target};
pub use circuit_breaker::{
    AttemptOutcome, BreakerName, CircuitBreaker, CircuitOpen, Outcome, OwnedPermit, Permit,
    ProbeTicket, State, TransitionEvent, TransitionReason,
};
#[cfg(feature = "toml")]
pub use config::ConfigError;
pub use config::{
    BoxConfig, BreakerConfig, BreakerRule, InvalidConfig, Match, Overflow, WindowConfig,
};
pub use retry::{RetryBudget, RetryConfig};
pub use status::{StatusPattern, Statuses};

// This crate's README, compiled and run with its tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
