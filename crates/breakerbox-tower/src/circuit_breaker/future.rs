//! The circuit breaker's response future.

use super::handle::AnyPermit;
use crate::classify::Classify;
use breakerbox::CircuitOpen;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::BoxError;

pin_project! {
    /// The response future of [`CircuitBreaker`](super::CircuitBreaker) and
    /// [`KeyedCircuitBreaker`](super::KeyedCircuitBreaker).
    ///
    /// It carries the call's permit: when the inner future completes, the result is classified
    /// and recorded; when this future is dropped first (the caller gave up, a timeout further
    /// out fired), the permit records nothing and frees its HalfOpen slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C> {
        /// The inner service was called; `permit` is `None` for a call no breaker guards (a
        /// request without a target) and once the outcome is recorded.
        Called {
            #[pin]
            future: F,
            permit: Option<AnyPermit>,
            classifier: C,
        },
        Rejected {
            error: Option<CircuitOpen>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(future: F, permit: AnyPermit, classifier: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                classifier,
            },
        }
    }

    /// A call no breaker guards (a request without a target).
    pub(crate) fn unguarded(future: F, classifier: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: None,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
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

    // Always inlined: out of line, the call and the moves of its state cost more than the
    // breaker's own work (measured with `case_instructions`, see BENCHMARKS.md).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
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
            KindProj::Rejected { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion").into()))
            }
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
