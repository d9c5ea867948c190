//! The circuit breakers' response future.

use super::guard::Guard;
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
    /// It carries the call's [`Guard`]: when the inner future completes, the classifier reports
    /// the result through it (at once, or when an HTTP response's body ends); when this future
    /// is dropped first (the caller gave up, a timeout further out fired), the guard records
    /// nothing and frees its HalfOpen slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called {
            #[pin]
            future: F,
            // Taken when the result is classified.
            guard: Option<Guard>,
            classifier: C,
        },
        Rejected {
            error: Option<CircuitOpen>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(future: F, guard: Guard, classifier: C) -> Self {
        Self {
            state: State::Called {
                future,
                guard: Some(guard),
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        Self {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T>,
{
    type Output = Result<C::Response, BoxError>;

    // Always inlined: out of line, the call and the moves of its state cost more than the
    // breaker's own work (measured with `case_instructions`, see BENCHMARKS.md).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                future,
                guard,
                classifier,
            } => {
                let result = ready!(future.poll(cx)).map_err(Into::into);
                let guard = guard.take().unwrap_or_else(Guard::unguarded);
                Poll::Ready(classifier.classify(result, guard))
            }
            StateProj::Rejected { error } => {
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
