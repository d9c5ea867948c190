//! Classification: how a call's result becomes a breaker [`Outcome`] (DESIGN.md section 4).
//!
//! - Generic services ([`OkIsSuccess`]): `Ok` is a success, `Err` a failure.
//! - HTTP ([`HttpStatus`]): 5xx, 408 and 429 are failures; other 4xx are ignored (a client bug
//!   must not trip the breaker); everything else is a success.
//! - Errors, for both: timeouts (tower's `Elapsed`) and connection errors are failures; a
//!   rejection by another breaker further in is ignored (it says nothing about this upstream).
//! - Cancellation (the response future dropped) is ignored: the permit records nothing.
//!
//! A closure `Fn(Result<&T, &BoxError>) -> Outcome` is a classifier too, and with the
//! `tower-http` feature `TowerHttp` adapts tower-http's `ClassifyResponse` classifiers.

use breakerbox::retry::AttemptOutcome;
use breakerbox::{CircuitOpen, Outcome};
use http::StatusCode;
use std::error::Error;
use std::io;
use tower::BoxError;
use tower::timeout::error::Elapsed;

/// Turns a call's result into a breaker outcome.
///
/// Classifiers are cloned into every response future: keep them cheap to clone (a unit struct,
/// a closure capturing little, or an `Arc`).
pub trait Classify<T> {
    /// How the call went.
    fn classify(&self, result: Result<&T, &BoxError>) -> Outcome;
}

impl<T, F> Classify<T> for F
where
    F: Fn(Result<&T, &BoxError>) -> Outcome,
{
    fn classify(&self, result: Result<&T, &BoxError>) -> Outcome {
        self(result)
    }
}

/// For any service: `Ok` is a success, an error a failure (see [`classify_error`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OkIsSuccess;

impl<T> Classify<T> for OkIsSuccess {
    fn classify(&self, result: Result<&T, &BoxError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => classify_error(e),
        }
    }
}

/// For `http::Response<B>`: by status ([`classify_status`]), errors by [`classify_error`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpStatus;

impl<B> Classify<http::Response<B>> for HttpStatus {
    fn classify(&self, result: Result<&http::Response<B>, &BoxError>) -> Outcome {
        match result {
            Ok(response) => classify_status(response.status()),
            Err(e) => classify_error(e),
        }
    }
}

/// 5xx, 408 Request Timeout and 429 Too Many Requests are failures; other 4xx are ignored;
/// the rest (1xx, 2xx, 3xx) are successes.
/// (The engine's [`Outcome::of_status`], shared with the reqwest adapter.)
pub fn classify_status(status: StatusCode) -> Outcome {
    Outcome::of_status(status.as_u16())
}

/// An error is a failure, except a [`CircuitOpen`] rejection from a breaker further in, which is
/// ignored.
pub fn classify_error(error: &BoxError) -> Outcome {
    if error.is::<CircuitOpen>() {
        Outcome::Ignored
    } else {
        Outcome::Failure
    }
}

/// What an error means to the retry policy: a timeout, a connection error (refused, reset,
/// closed before the response: worth retrying), a circuit-open rejection (never retried), or
/// anything else (not retried). The error's source chain is searched for tower's and tokio's
/// `Elapsed`, `std::io::Error`s and (feature `hyper`, on by default) `hyper::Error`.
pub fn attempt_outcome(error: &BoxError) -> AttemptOutcome {
    if error.is::<CircuitOpen>() {
        return AttemptOutcome::CircuitOpen;
    }
    if error.is::<Elapsed>() {
        return AttemptOutcome::Timeout;
    }
    let mut source: Option<&(dyn Error + 'static)> = Some(&**error);
    while let Some(e) = source {
        if e.is::<Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return AttemptOutcome::Timeout;
        }
        #[cfg(feature = "hyper")]
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            // The connection went away before the response (a pooled connection the server had
            // closed, say): the request may be sent again on a fresh one.
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                return AttemptOutcome::Connect;
            }
            if hyper.is_timeout() {
                return AttemptOutcome::Timeout;
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::TimedOut => AttemptOutcome::Timeout,
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable => AttemptOutcome::Connect,
                _ => AttemptOutcome::OtherError,
            };
        }
        source = e.source();
    }
    AttemptOutcome::OtherError
}

/// tower-http's classifiers as breaker classifiers: a response it classifies as a failure is a
/// failure; one it accepts, or wants to classify at end of stream, is a success (the breaker
/// records when the head arrives). Errors as [`classify_error`].
///
/// ```
/// use breakerbox::Outcome;
/// use breakerbox_tower::classify::{Classify, TowerHttp};
/// use tower_http::classify::ServerErrorsAsFailures;
///
/// let classify = TowerHttp(ServerErrorsAsFailures::new());
/// let response = http::Response::builder().status(503).body(()).unwrap();
/// assert_eq!(classify.classify(Ok(&response)), Outcome::Failure);
/// ```
#[cfg(feature = "tower-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-http")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TowerHttp<C>(pub C);

#[cfg(feature = "tower-http")]
impl<C, B> Classify<http::Response<B>> for TowerHttp<C>
where
    C: tower_http::classify::ClassifyResponse + Clone,
{
    fn classify(&self, result: Result<&http::Response<B>, &BoxError>) -> Outcome {
        use tower_http::classify::ClassifiedResponse;
        match result {
            Ok(response) => match self.0.clone().classify_response(response) {
                ClassifiedResponse::Ready(Err(_)) => Outcome::Failure,
                ClassifiedResponse::Ready(Ok(())) | ClassifiedResponse::RequiresEos(_) => {
                    Outcome::Success
                }
            },
            Err(e) => classify_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for (code, outcome) in [
            (200, Outcome::Success),
            (204, Outcome::Success),
            (304, Outcome::Success),
            (400, Outcome::Ignored),
            (404, Outcome::Ignored),
            (408, Outcome::Failure),
            (429, Outcome::Failure),
            (500, Outcome::Failure),
            (503, Outcome::Failure),
        ] {
            assert_eq!(
                classify_status(StatusCode::from_u16(code).unwrap()),
                outcome,
                "{code}"
            );
        }
    }

    #[test]
    fn errors() {
        let refused: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify_error(&refused), Outcome::Failure);
        assert_eq!(attempt_outcome(&refused), AttemptOutcome::Connect);
        let elapsed: BoxError = Box::new(Elapsed::new());
        assert_eq!(attempt_outcome(&elapsed), AttemptOutcome::Timeout);
        let other: BoxError = "bad".into();
        assert_eq!(attempt_outcome(&other), AttemptOutcome::OtherError);
    }
}
