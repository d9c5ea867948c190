//! The scripted upstream, through real clients: reqwest over HTTP/1.1 and over HTTP/2 with
//! prior knowledge, hyper-util's client for trailers, and raw TCP for misbehaving clients.
//! Everything runs in tokio's paused time except the concurrency tests; nothing sleeps on the
//! wall clock.

mod concurrency;
mod faults;
mod misbehaving;
mod recording;
mod replies;
mod scripts;

use std::error::Error as _;
use std::io;

/// The protocol a test runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    H1,
    H2,
}

impl Proto {
    /// A plain reqwest client speaking this protocol (HTTP/2 with prior knowledge).
    pub(crate) fn client(self) -> reqwest::Client {
        self.builder().build().expect("a reqwest client")
    }

    pub(crate) fn builder(self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().no_proxy();
        match self {
            Proto::H1 => builder.http1_only(),
            Proto::H2 => builder.http2_prior_knowledge(),
        }
    }

    pub(crate) fn version(self) -> http::Version {
        match self {
            Proto::H1 => http::Version::HTTP_11,
            Proto::H2 => http::Version::HTTP_2,
        }
    }
}

/// Declares `mod NAME { http1, http2 }`: two paused-time tests that run `NAME(Proto)`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(start_paused = true)]
            async fn http1() {
                super::$name(crate::Proto::H1).await;
            }

            #[tokio::test(start_paused = true)]
            async fn http2() {
                super::$name(crate::Proto::H2).await;
            }
        }
    )*};
}
pub(crate) use on_both;

/// Awaits `future`, or fails the test if an hour of paused time passes first: a reply that
/// should have ended the exchange but left it hanging fails at once instead of hanging.
pub(crate) async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(3600), future)
        .await
        .expect("the exchange hung")
}

/// The `io::Error` somewhere in an error's chain of sources, if any.
pub(crate) fn io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = err.source();
    }
    None
}

/// The error and its sources, one line, for assertion messages.
pub(crate) fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}
