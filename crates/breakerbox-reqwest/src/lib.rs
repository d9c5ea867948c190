//! reqwest-middleware over the [breakerbox](https://docs.rs/breakerbox) engine: one client, a
//! circuit breaker per upstream. One dependency line: the engine's types a user names (configs,
//! errors, the breaker box) are re-exported here, and the whole engine as [`engine`].
//!
//! [`CircuitBreakerMiddleware`] picks each request's breaker from a [`BreakerBox`] by its URL: a
//! breaker per scheme + host + port, or the named breaker of a matching rule (exact host,
//! `*.suffix`, optional path prefix), each with its own thresholds, from code or a TOML
//! profile. So `api.spotify.com`, `musicbrainz.org` and `site.api.espn.com` get a breaker
//! each, and Google AI's text, vision and image endpoints on one host get three. Host names are
//! compared as DNS compares them: `API.Spotify.com.` is `api.spotify.com`.
//!
//! ```
//! use breakerbox_reqwest::{BoxConfig, BreakerBox, CircuitBreakerMiddleware, circuit_open};
//! use reqwest_middleware::ClientBuilder;
//!
//! let config = BoxConfig::from_toml(r#"
//!     [defaults]
//!     consecutive_failures = 5
//!     open_duration = "60s"
//!
//!     [[breakers]]
//!     name = "spotify"
//!     match = { host = "api.spotify.com" }
//!     consecutive_failures = 10
//!     open_duration = "120s"
//!     success_threshold = 2
//! "#)?;
//! let middleware = CircuitBreakerMiddleware::new(config);
//! let panel: BreakerBox = middleware.breakers().clone(); // for /health and the status table
//! let client = ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
//!
//! # async fn search(client: reqwest_middleware::ClientWithMiddleware) {
//! match client.get("https://api.spotify.com/v1/search?q=daft").send().await {
//!     Ok(response) => { /* … */ }
//!     Err(err) => match circuit_open(&err) {
//!         Some(open) => eprintln!("{} is down; retry in {:?}", open.breaker(), open.retry_after()),
//!         None => eprintln!("request failed: {err}"),
//!     },
//! }
//! # }
//! # drop(panel);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`RetryMiddleware`] retries transient failures with the engine's backoff, `Retry-After`,
//!   idempotency rules and retry budget (the same rules as the tower layer); add it before the
//!   breaker so that every attempt counts there.
//! - A call ends when its response body does: a body that fails or times out while being read
//!   is a failure of its upstream, and the slow-call clock runs to the end of the body.
//! - [`CircuitBreakerMiddleware::health_checks`] GETs a rule's `health_url` while its breaker is
//!   open, and lets trial requests through as soon as the upstream answers again.
//! - [`circuit_open`] / [`is_circuit_open`] tell a rejection from other errors.
//!
//! All decisions (trip, admit, classify statuses, back off, budget) are the engine's; this crate
//! translates reqwest's requests, responses and errors into engine calls.
//!
//! # Features
//!
//! - `metrics` (default): the engine's metrics through the `metrics` facade.
//! - `toml` (default): load breaker boxes from TOML profiles ([`BoxConfig::from_toml`]).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod circuit_breaker;
mod classify;
mod error;
mod retry;

pub use circuit_breaker::CircuitBreakerMiddleware;
pub use error::{circuit_open, is_circuit_open};
pub use retry::RetryMiddleware;

pub use breakerbox_http::{IDEMPOTENCY_KEY, TokioClock};

/// The whole engine, for what the re-exports below leave out (clocks, snapshots, the engine's
/// own breaker).
pub use breakerbox as engine;

#[cfg(feature = "toml")]
pub use breakerbox::ConfigError;
pub use breakerbox::backoff::Jitter;
pub use breakerbox::retry::{Attempts, BudgetConfig, StopReason};
pub use breakerbox::{
    AttemptOutcome, BoxConfig, BreakerBox, BreakerConfig, BreakerRule, CircuitOpen, Health,
    InvalidConfig, Match, Outcome, Overflow, RetryConfig, State, StatusPattern, Target,
    TransitionEvent, TransitionReason, WindowConfig,
};

// This crate's README, compiled and run with its tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
