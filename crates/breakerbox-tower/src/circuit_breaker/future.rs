//! The circuit breakers' response futures.

use super::handle::HandlePermit;
use crate::classify::Classify;
use breakerbox::{CircuitOpen, Outcome, OwnedPermit};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::BoxError;

pin_project! {
    /// The response future of [`CircuitBreaker`](super::CircuitBreaker).
    ///
    /// It carries the call's permit: when the inner future completes, the result is classified
    /// and recorded; when this future is dropped first (the caller gave up, a timeout further
    /// out fired), the permit records nothing and frees its HalfOpen slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        guarded: Guarded<F, C, HandlePermit>,
    }
}

pin_project! {
    /// The response future of [`KeyedCircuitBreaker`](super::KeyedCircuitBreaker): like
    /// [`ResponseFuture`], with the permit of the request's breaker in the box (or none, for a
    /// request without a target).
    pub struct KeyedResponseFuture<F, C> {
        #[pin]
        guarded: Guarded<F, C, OwnedPermit>,
    }
}

/// A permit a response future can report through. Each future has its own permit type, so that
/// the one on the hot path is matched against no kind it cannot hold.
pub(crate) trait Record {
    fn record(self, outcome: Outcome);
}

impl Record for OwnedPermit {
    #[inline(always)]
    fn record(self, outcome: Outcome) {
        OwnedPermit::record(self, outcome);
    }
}

pin_project! {
    #[project = GuardedProj]
    enum Guarded<F, C, P> {
        /// The inner service was called; `permit` is `None` for a call no breaker guards (a
        /// request without a target) and once the outcome is recorded.
        Called {
            #[pin]
            future: F,
            permit: Option<P>,
            classifier: C,
        },
        Rejected {
            error: Option<CircuitOpen>,
        },
    }
}

impl<F, C, P: Record> Guarded<F, C, P> {
    // Always inlined: out of line, the call and the moves of its state cost more than the
    // breaker's own work (measured with `case_instructions`, see BENCHMARKS.md).
    #[inline(always)]
    fn poll<T, E>(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, BoxError>>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        C: Classify<T>,
    {
        match self.project() {
            GuardedProj::Called {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx)).map_err(Into::into);
                if let Some(permit) = permit.take() {
                    permit.record(classifier.classify(result.as_ref()));
                }
                Poll::Ready(result)
            }
            GuardedProj::Rejected { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion").into()))
            }
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(future: F, permit: HandlePermit, classifier: C) -> Self {
        Self {
            guarded: Guarded::Called {
                future,
                permit: Some(permit),
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        Self {
            guarded: Guarded::Rejected { error: Some(error) },
        }
    }
}

impl<F, C> KeyedResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(future: F, permit: Option<OwnedPermit>, classifier: C) -> Self {
        Self {
            guarded: Guarded::Called {
                future,
                permit,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        Self {
            guarded: Guarded::Rejected { error: Some(error) },
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T>,
{
    type Output = Result<T, BoxError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().guarded.poll(cx)
    }
}

impl<F, C, T, E> Future for KeyedResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T>,
{
    type Output = Result<T, BoxError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().guarded.poll(cx)
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C> std::fmt::Debug for KeyedResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedResponseFuture")
            .finish_non_exhaustive()
    }
}
