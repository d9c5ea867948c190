//! A test kit for HTTP clients: a scripted upstream on loopback that answers each request with
//! the status, headers, delay or fault a test asks for, and records every request it gets.
//!
//! Test a client's retries, circuit breaker, timeouts and error handling against the failures a
//! real upstream produces only on a bad day, with a real client over real sockets:
//!
//! - [`Upstream`] (feature `net`): an HTTP server on `127.0.0.1`, HTTP/1.1 and HTTP/2 with prior
//!   knowledge (h2c) on the same port, spawned on the test's tokio runtime. Its [`Script`] picks a
//!   [`Reply`] for each request: a fixed [`sequence`](Script::sequence) or a
//!   [function](Script::from_fn) of the request. A reply is a status with headers and a body,
//!   possibly [late](Reply::delay) (on tokio's clock, so `tokio::time::pause()` makes it
//!   instant), a [redirect](Reply::redirect), a body that is [slow](Reply::slow_body),
//!   [stalls](Reply::stall_after) or [ends early](Reply::truncate_after), or a connection
//!   fault: [reset](Reply::reset), [closed](Reply::close), [garbage](Reply::garbage).
//!   Every request is a [`Recorded`]: method, path, headers, body, version, arrival time.
//! - [`client_for`] and [`url_for`] (feature `reqwest`): a reqwest client builder that sends
//!   real host names (`api.spotify.com`) to upstreams, with no proxy and no pool timer, so the
//!   code under test keeps its URLs and behaves under paused time.
//! - [`http_date`]: an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Retry-After` and
//!   other date headers.
//! - [`Counting`] and [`Peak`]: global allocators that count allocations and live heap bytes,
//!   for tests that prove a hot path allocates nothing or that memory stays bounded.
//!
//! # Example: a circuit breaker opens after five failures
//!
//! ```
//! use breakerbox::BoxConfig;
//! use breakerbox_reqwest::{CircuitBreakerMiddleware, is_circuit_open};
//! use breakerbox_testing::{Reply, Upstream, client_for};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // In a test: #[tokio::test(start_paused = true)], so the 300 ms take no time.
//! let upstream = Upstream::builder()
//!     .script(Reply::status(503).delay(Duration::from_millis(300))) // down, and slow to say so
//!     .start()
//!     .await;
//! let client = client_for([("api.example.com", &upstream)]).build().unwrap();
//! let client = reqwest_middleware::ClientBuilder::new(client)
//!     .with(CircuitBreakerMiddleware::new(BoxConfig::default()))
//!     .build();
//!
//! for _ in 0..5 {
//!     let response = client.get("http://api.example.com/v1/items").send().await.unwrap();
//!     assert_eq!(response.status(), 503);
//! }
//! // Five failures in a row over 1.5 s opened the breaker: the sixth call fails fast…
//! let err = client.get("http://api.example.com/v1/items").send().await.unwrap_err();
//! assert!(is_circuit_open(&err));
//! // …and never reached the upstream.
//! assert_eq!(upstream.hits(), 5);
//! # }
//! ```
//!
//! # Features
//!
//! - `net`: [`Upstream`] and its [`Script`], [`Reply`] and [`Recorded`], and
//!   [`drop_first_connection`]; on tokio (the current runtime, any flavour) and hyper.
//! - `reqwest` (implies `net`): [`client_for`] and [`url_for`], for reqwest 0.13.
//!
//! With no feature the crate is std only (the allocators and [`http_date`]), so it builds
//! where tokio cannot, such as a `--cfg loom` build.
//!
//! # Paused time
//!
//! Delays, slow bodies and the pause before an HTTP/2 reset are on tokio's clock: under
//! `#[tokio::test(start_paused = true)]` a 30 s [delay](Reply::delay) takes no real time, and
//! a client timeout fires exactly when paused time reaches it. [`Recorded::arrived`] is on the
//! same clock. [`client_for`] turns off reqwest's pool idle timer, the one timer a default
//! reqwest client runs by itself, which would fire at arbitrary points of a paused test.
//!
//! Paused time jumps to the next timer whenever no task is ready, and that includes a task
//! waiting for a socket while the kernel moves bytes. On loopback that wait is nil for small
//! messages, but a transfer of hundreds of KiB can outrun the socket buffers, and a timer set
//! meanwhile (a client timeout) then fires early. Keep bodies small in paused tests, or run
//! those tests in real time.
//!
//! # HTTP/1.1 and HTTP/2
//!
//! Every [`Reply`] works on both protocols; HTTP/1.1 is written by hand, byte by byte, so its
//! faults are exactly the ones named, while a few faults on HTTP/2 take their nearest HTTP/2
//! form (a connection fault takes down the whole connection, a truncated body resets its
//! stream). The table is at [`Reply`].
#![cfg_attr(docsrs, feature(doc_cfg))]
// The overview above links the items of every feature; with a feature off its items do not
// exist and their links cannot resolve (docs.rs and CI document with every feature).
#![cfg_attr(
    not(all(feature = "net", feature = "reqwest")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod alloc;
mod date;

#[cfg(feature = "reqwest")]
mod client;
#[cfg(feature = "net")]
mod drop_first;
#[cfg(feature = "net")]
mod upstream;

pub use alloc::{
    Counting, Peak, allocations_in, heap_bytes, peak_heap_bytes, peak_rss_bytes, reset_peak_heap,
};
pub use date::http_date;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use client::{client_for, url_for};
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub use drop_first::drop_first_connection;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub use upstream::script::{Reply, Script};
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub use upstream::{Recorded, Upstream, UpstreamBuilder};

// The README's example, compiled with this crate's doctests (its test is run by
// tests/client, as `the_readme_example`).
#[cfg(all(doctest, feature = "reqwest"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
