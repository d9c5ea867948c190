//! Tower middleware over the [breakerbox] engine: circuit breakers and retries with backoff for
//! any `tower::Service`, composing with tower's own timeout, rate-limit and concurrency layers.
//!
//! - [`CircuitBreakerLayer`]: one breaker for a service; [`KeyedCircuitBreakerLayer`]: a breaker
//!   per request target from a [`BreakerBox`](breakerbox::BreakerBox) (per host, or per host +
//!   path rule). See [`circuit_breaker`].
//! - [`classify`]: how results become breaker outcomes (generic, HTTP status, closures,
//!   tower-http's classifiers).
//! - [`RetryWithBackoffLayer`]: retries with the engine's backoff, `Retry-After`, idempotency
//!   rules and retry budget. See [`retry`].
//! - [`FallbackLayer`]: answers a circuit-open rejection with a response of your own (a cached
//!   or conservative answer).
//! - [`Probe`]: an async health check run while a breaker is open.
//! - [`TokioClock`]: the engine reads tokio's clock, so `tokio::time::pause()` drives it.
//!
//! All decisions (trip, admit, back off, budget) are the engine's; these layers translate tower
//! calls into engine calls.
//!
//! # Features
//!
//! - `metrics` (default): the engine's metrics through the `metrics` facade.
//! - `tower-http`: accept tower-http's `ClassifyResponse` classifiers ([`classify::TowerHttp`]).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod circuit_breaker;
pub mod classify;
mod clock;
pub mod fallback;
mod probe;
pub mod retry;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerLayer, KeyedCircuitBreaker, KeyedCircuitBreakerLayer,
};
pub use clock::TokioClock;
pub use fallback::{Fallback, FallbackLayer};
pub use probe::Probe;
pub use retry::{RetryWithBackoff, RetryWithBackoffLayer};

// The README's examples, compiled and run with this crate's tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
