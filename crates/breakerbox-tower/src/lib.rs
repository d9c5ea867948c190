//! Tower middleware over the [breakerbox](https://docs.rs/breakerbox) engine: circuit breakers
//! and retries with backoff for any `tower::Service`, composing with tower's own timeout,
//! rate-limit and concurrency layers. One dependency line: the engine's types a user names
//! (configs, errors, the breaker box) are re-exported here, and the whole engine as
//! [`engine`].
//!
//! - [`CircuitBreakerLayer`]: one breaker for a service; [`KeyedCircuitBreakerLayer`]: a breaker
//!   per request target from a [`BreakerBox`] (per host, or per host + path rule). See
//!   [`circuit_breaker`].
//! - [`classify`]: how results become breaker outcomes. HTTP responses by status, to the end of
//!   their body, by default; [`OkIsSuccess`](classify::OkIsSuccess) for other services.
//! - [`RetryWithBackoffLayer`]: retries with the engine's backoff, `Retry-After`, idempotency
//!   rules and retry budget; HTTP requests by default. See [`retry`].
//! - [`FallbackLayer`]: answers a circuit-open rejection with a response of your own (a cached
//!   or conservative answer).
//! - [`Probe`]: an async health check run while a breaker is open.
//! - [`TokioClock`]: the engine's clock in the front ends: tokio's when its time is paused where
//!   the clock is made (so `tokio::time::pause()` drives every breaker and retry), the OS's cheap
//!   coarse monotonic clock otherwise.
//!
//! All decisions (trip, admit, back off, budget) are the engine's; these layers translate tower
//! calls into engine calls.
//!
//! # Composing with tower's layers
//!
//! Outermost first: retry → rate limit → circuit breaker → timeout → client. Every attempt goes
//! through the breaker and counts there; a timeout is a breaker failure and a transient one for
//! the retry; waiting for a rate-limit slot happens before the breaker admits the call, so it
//! never counts as call time. tower's `RateLimit` is not `Clone`, so it sits behind a `Buffer`
//! for the retry layer to clone.
//!
//! ```
//! use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, RetryConfig, RetryWithBackoffLayer};
//! use std::time::Duration;
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let client = service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, BoxError>(http::Response::new(String::from("{}")))
//! });
//! let musicbrainz = BreakerConfig::builder()
//!     .consecutive_failures(3)
//!     .success_threshold(2)
//!     .build()?;
//! let mut svc = ServiceBuilder::new()
//!     .layer(RetryWithBackoffLayer::named("musicbrainz", RetryConfig::default()))
//!     .buffer(64)
//!     .rate_limit(1, Duration::from_secs(1)) // MusicBrainz asks for 1 request per second
//!     .concurrency_limit(4)
//!     .layer(CircuitBreakerLayer::named("musicbrainz", musicbrainz))
//!     .timeout(Duration::from_secs(10))
//!     .service(client);
//!
//! let req = http::Request::get("https://musicbrainz.org/ws/2/artist?query=daft").body(String::new())?;
//! assert_eq!(svc.ready().await?.call(req).await?.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `metrics` (default): the engine's metrics through the `metrics` facade.
//! - `toml` (default): load configs from TOML ([`BoxConfig::from_toml`]).
//! - `hyper` (default): recognise hyper's connection errors (a connection closed before the
//!   response) as transient for retries, and send hyper's streaming request bodies once.
//! - `tower-http`: accept tower-http's `ClassifyResponse` classifiers (`classify::TowerHttp`).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod circuit_breaker;
pub mod classify;
pub mod fallback;
pub mod retry;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerLayer, KeyedCircuitBreaker, KeyedCircuitBreakerLayer,
};
pub use fallback::{Fallback, FallbackLayer};
pub use retry::{RetryWithBackoff, RetryWithBackoffLayer};

pub use breakerbox_http::{Probe, TokioClock};

/// The whole engine, for what the re-exports below leave out (the engine's own
/// `CircuitBreaker`, clocks, snapshots, transition events).
pub use breakerbox as engine;

#[cfg(feature = "toml")]
pub use breakerbox::ConfigError;
pub use breakerbox::backoff::Jitter;
pub use breakerbox::retry::BudgetConfig;
pub use breakerbox::{
    AttemptOutcome, BoxConfig, BreakerBox, BreakerConfig, BreakerRule, CircuitOpen, Health,
    InvalidConfig, Match, Outcome, Overflow, RetryConfig, State, StatusPattern, Target,
    TransitionEvent, TransitionReason, WindowConfig,
};

// This crate's README, compiled and run with its tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
