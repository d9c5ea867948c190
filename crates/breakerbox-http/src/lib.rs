//! What breakerbox's tower and reqwest front ends share, so that neither depends on the other:
//! the engine's clock on tokio, health probes with deadlines, HTTP's retry rules, and response
//! bodies that report their call's outcome when they end.
//!
//! Most users never name this crate: `breakerbox-tower` and `breakerbox-reqwest` re-export what
//! they need from it. It is for writing another HTTP front end over the
//! [breakerbox](https://docs.rs/breakerbox) engine.
//!
//! - [`TokioClock`]: the engine's clock, following `tokio::time::pause()` in tests.
//! - [`Probe`]: an async health check run while a breaker is open, with a deadline.
//! - [`may_retry`], [`retry_after`], [`IDEMPOTENCY_KEY`]: which requests may be sent twice and
//!   what a response's `Retry-After` asks for.
//! - [`body`]: response bodies that keep their call's breaker permit and record its outcome
//!   when the body ends ([`body::guard`]).
//!
//! ```
//! use breakerbox::{BreakerConfig, CircuitBreaker, State};
//! use breakerbox_http::TokioClock;
//! use http_body_util::BodyExt;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = BreakerConfig::builder().consecutive_failures(1).build()?;
//! let breaker = CircuitBreaker::builder("espn", config).clock(Arc::new(TokioClock::new())).build();
//!
//! // A 200 whose body breaks off half-way: the call fails when its body does.
//! let permit = breaker.try_acquire_owned()?;
//! let response = breakerbox_http::body::guard(http::Response::new(BreaksOff), permit);
//! assert_eq!(breaker.state(), State::Closed); // the head alone is not the whole call
//! assert!(response.into_body().collect().await.is_err());
//! assert_eq!(breaker.state(), State::Open);
//! # Ok(())
//! # }
//! # struct BreaksOff;
//! # impl http_body::Body for BreaksOff {
//! #     type Data = bytes::Bytes;
//! #     type Error = std::io::Error;
//! #     fn poll_frame(
//! #         self: std::pin::Pin<&mut Self>,
//! #         _: &mut std::task::Context<'_>,
//! #     ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
//! #         std::task::Poll::Ready(Some(Err(std::io::ErrorKind::ConnectionReset.into())))
//! #     }
//! # }
//! ```
//!
//! # Features
//!
//! None of its own: the engine's `metrics` feature is switched by the front end that depends
//! on this crate.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod body;
mod clock;
mod headers;
mod probe;

pub use clock::TokioClock;
pub use headers::{IDEMPOTENCY_KEY, may_retry, retry_after, server_wait};
pub use probe::Probe;

#[doc(hidden)]
pub use probe::deadline_after;
