//! Response bodies that report their call's outcome when they end.
//!
//! An HTTP call is not over when its response head arrives: the body may still fail (a reset, a
//! truncated transfer, a client timeout while reading) or take long. So a response whose status
//! the breaker would count as a success (or ignore) keeps its call's permit in its body, and the
//! outcome is recorded when the body ends:
//!
//! - read to its end: the status's outcome;
//! - an error while reading (a body timeout among them): a failure;
//! - dropped before its end (the caller did not need the rest): the status's outcome;
//! - dropped while the thread panics: a failure.
//!
//! The call's duration, which a slow-call rule judges, runs to that moment. A response whose
//! status is already a failure (a 503) is recorded when its head arrives: reading its body
//! cannot make it a success, and a retry must see the failure counted before it tries again.

use breakerbox::circuit_breaker::BreakerHolder;
use breakerbox::{AttemptOutcome, BreakerConfig, Outcome, OwnedPermit, Permit};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// A breaker permit a response body can report through: the engine's permits, or a front end's
/// own wrapper of them.
pub trait Record {
    /// Records the call's outcome.
    fn record(self, outcome: Outcome);

    /// The outcome the permit's breaker records for `attempt`.
    fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome;

    /// The config of the permit's breaker, if a breaker guards the call.
    fn config(&self) -> Option<&BreakerConfig>;

    /// Records what the attempt came back with, and the server's word on how long to stay
    /// away (see [`Permit::report_answer`]).
    fn report_answer(self, attempt: AttemptOutcome, server_wait: Option<Duration>);
}

impl<H: BreakerHolder> Record for OwnedPermit<H> {
    #[inline]
    fn record(self, outcome: Outcome) {
        OwnedPermit::record(self, outcome);
    }

    #[inline]
    fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        OwnedPermit::outcome_of(self, attempt)
    }

    #[inline]
    fn config(&self) -> Option<&BreakerConfig> {
        Some(OwnedPermit::config(self))
    }

    #[inline]
    fn report_answer(self, attempt: AttemptOutcome, server_wait: Option<Duration>) {
        OwnedPermit::report_answer(self, attempt, server_wait);
    }
}

impl Record for Permit<'static> {
    #[inline]
    fn record(self, outcome: Outcome) {
        Permit::record(self, outcome);
    }

    #[inline]
    fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        Permit::outcome_of(self, attempt)
    }

    #[inline]
    fn config(&self) -> Option<&BreakerConfig> {
        Some(Permit::config(self))
    }

    #[inline]
    fn report_answer(self, attempt: AttemptOutcome, server_wait: Option<Duration>) {
        Permit::report_answer(self, attempt, server_wait);
    }
}

/// Guards `response` with `permit`: a status the breaker counts as a failure is recorded now,
/// and so are a 429 and a 503 (the answers that may carry the server's word: a `Retry-After`
/// that opens the breaker, a refusal that throttling counts); any other response keeps the
/// permit in its body, which records when it ends (see the [module docs](self)).
#[inline]
pub fn guard<B, P: Record>(
    response: http::Response<B>,
    permit: P,
) -> http::Response<ResponseBody<B, P>> {
    let status = response.status().as_u16();
    let attempt = AttemptOutcome::Status(status);
    let outcome = permit.outcome_of(attempt);
    if outcome == Outcome::Failure || matches!(status, 429 | 503) {
        let wait = permit
            .config()
            .and_then(|config| crate::server_wait(config, status, response.headers()));
        permit.report_answer(attempt, wait);
        return response.map(ResponseBody::unguarded);
    }
    response.map(|body| ResponseBody::new(body, permit, outcome))
}

pin_project! {
    /// A response body that reports its call's outcome to the breaker when it ends, fails or is
    /// dropped (see the [module docs](self)). Frames, size hints and end of stream pass through
    /// unchanged.
    pub struct ResponseBody<B, P: Record> {
        #[pin]
        inner: B,
        pending: Option<Pending<P>>,
    }
}

/// A permit and the outcome its response's status gives, until the body ends.
struct Pending<P: Record> {
    permit: Option<P>,
    outcome: Outcome,
}

impl<P: Record> Pending<P> {
    fn finish(mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            permit.record(outcome);
        }
    }
}

impl<P: Record> Drop for Pending<P> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let outcome = if std::thread::panicking() {
                Outcome::Failure
            } else {
                self.outcome
            };
            permit.record(outcome);
        }
    }
}

impl<B, P: Record> ResponseBody<B, P> {
    /// `body`, whose call reports `outcome` through `permit` when the body ends or is dropped
    /// (a failure if reading it fails).
    pub fn new(body: B, permit: P, outcome: Outcome) -> Self {
        Self {
            inner: body,
            pending: Some(Pending {
                permit: Some(permit),
                outcome,
            }),
        }
    }

    /// `body` with nothing left to report (its call's outcome is recorded already, or no breaker
    /// guards it).
    pub fn unguarded(body: B) -> Self {
        Self {
            inner: body,
            pending: None,
        }
    }

    /// Whether the call's outcome is still to be recorded.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The body inside.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: Body, P: Record> Body for ResponseBody<B, P> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if this.pending.is_some() {
            let finished = match &frame {
                None => true,
                Some(Err(_)) => {
                    if let Some(pending) = this.pending.take() {
                        pending.finish(Outcome::Failure);
                    }
                    false
                }
                Some(Ok(_)) => this.inner.is_end_stream(),
            };
            if finished {
                if let Some(pending) = this.pending.take() {
                    let outcome = pending.outcome;
                    pending.finish(outcome);
                }
            }
        }
        Poll::Ready(frame)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, P: Record> fmt::Debug for ResponseBody<B, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}
