//! The retry layer's response future.

use super::policy::Policy;
use breakerbox::retry::{Retrier, RetryDecision, RetryRun, StopReason};
use breakerbox_http::deadline_after;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::time::Sleep;
use tower::{BoxError, Service};

pin_project! {
    /// The response future of [`RetryWithBackoff`](super::RetryWithBackoff): sends the request,
    /// and while the engine says so, waits and sends a copy again.
    ///
    /// A call whose first attempt settles it allocates nothing here; the retry bookkeeping and
    /// the timer are boxed at the first transient failure (the slow path).
    pub struct ResponseFuture<S, P, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        policy: P,
        // `None` when the request is sent once (not retryable, or not copyable).
        retry: Option<Box<Retry<S, Req>>>,
    }
}

/// What a retryable request keeps between attempts.
struct Retry<S: Service<Req>, Req> {
    service: S,
    retrier: Arc<Retrier>,
    /// A copy of the request for the next attempt.
    request: Option<Req>,
    run: RetryRun,
    /// Made at the first wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The last attempt's result while the next is prepared: what the caller gets if a breaker
    /// refuses the next attempt (the last real answer, never a later rejection).
    previous: Option<Result<S::Response, BoxError>>,
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called {
            #[pin]
            future: F,
        },
        Waiting,
        Resending,
    }
}

impl<S, P, Req> ResponseFuture<S, P, Req>
where
    S: Service<Req>,
{
    pub(crate) fn once(future: S::Future, policy: P) -> Self {
        Self {
            state: State::Called { future },
            policy,
            retry: None,
        }
    }

    pub(crate) fn retrying(
        future: S::Future,
        policy: P,
        service: S,
        retrier: Arc<Retrier>,
        request: Req,
    ) -> Self {
        Self {
            state: State::Called { future },
            policy,
            retry: Some(Box::new(Retry {
                service,
                retrier,
                request: Some(request),
                run: RetryRun::new(),
                sleep: None,
                previous: None,
            })),
        }
    }
}

impl<S, P, Req> Future for ResponseFuture<S, P, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    P: Policy<Req, S::Response>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    let Some(retry) = this.retry.as_mut() else {
                        return Poll::Ready(result);
                    };
                    let outcome = this.policy.outcome(result.as_ref());
                    let policy = &*this.policy;
                    let decision = retry.retrier.after_attempt(&mut retry.run, outcome, || {
                        result.as_ref().ok().and_then(|r| policy.retry_after(r))
                    });
                    let stop = match decision {
                        RetryDecision::Retry { after, .. } if retry.request.is_some() => {
                            let deadline = deadline_after(after);
                            match &mut retry.sleep {
                                Some(sleep) => sleep.as_mut().reset(deadline),
                                None => {
                                    retry.sleep = Some(Box::pin(tokio::time::sleep_until(deadline)))
                                }
                            }
                            retry.previous = Some(result);
                            this.state.set(State::Waiting);
                            continue;
                        }
                        RetryDecision::Retry { .. } => StopReason::Exhausted,
                        RetryDecision::Stop(stop) => stop,
                    };
                    // A breaker refused the retry: the previous attempt's result stands.
                    let mut result = match retry.previous.take() {
                        Some(previous) if stop == StopReason::CircuitOpen => previous,
                        _ => result,
                    };
                    if let (Ok(response), Some(attempts)) = (&mut result, retry.run.summary(stop)) {
                        this.policy.mark(response, attempts);
                    }
                    return Poll::Ready(result);
                }
                StateProj::Waiting => {
                    let retry = this.retry.as_mut().expect("only retryable requests wait");
                    let sleep = retry.sleep.as_mut().expect("set before waiting");
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Resending);
                }
                StateProj::Resending => {
                    let retry = this.retry.as_mut().expect("only retryable requests resend");
                    ready!(retry.service.poll_ready(cx)).map_err(Into::into)?;
                    let request = retry.request.take().expect("checked before waiting");
                    retry.request = this.policy.clone_request(&request);
                    let future = retry.service.call(request);
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S, P, Req> std::fmt::Debug for ResponseFuture<S, P, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("retrying", &self.retry.is_some())
            .finish_non_exhaustive()
    }
}
