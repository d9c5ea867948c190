//! The retry layer's response future.

use super::Shared;
use super::policy::Policy;
use breakerbox::clock::Clock;
use breakerbox::retry::{RetryDecision, RetryState};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Service};

pin_project! {
    /// The response future of [`RetryWithBackoff`](super::RetryWithBackoff): sends the request,
    /// and while the engine says so, waits and sends a copy again.
    ///
    /// A call whose first attempt settles it stays small and allocates nothing here; the retry
    /// bookkeeping and its timer are boxed together once, at the first transient failure (the
    /// slow path).
    pub struct ResponseFuture<S, P, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        policy: P,
        // `None` when the request is sent once (not retryable, or not copyable).
        retry: Option<Retry<S, Req>>,
    }
}

/// What a retryable request keeps between attempts.
struct Retry<S, Req> {
    service: S,
    shared: Arc<Shared>,
    /// A copy of the request for the next attempt.
    request: Option<Req>,
    /// Started at the first transient failure.
    backoff: Option<Pin<Box<Backoff>>>,
}

pin_project! {
    /// The retry bookkeeping of a request that failed at least once, and its timer.
    struct Backoff {
        state: RetryState,
        #[pin]
        sleep: Sleep,
    }
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
        shared: Arc<Shared>,
        request: Req,
    ) -> Self {
        Self {
            state: State::Called { future },
            policy,
            retry: Some(Retry {
                service,
                shared,
                request: Some(request),
                backoff: None,
            }),
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let mut result = ready!(future.poll(cx)).map_err(Into::into);
                    let Some(retry) = this.retry.as_mut() else {
                        return Poll::Ready(result);
                    };
                    let outcome = this.policy.outcome(result.as_ref());
                    let shared = &retry.shared;
                    if retry.backoff.is_none() && shared.config.classify(outcome).is_err() {
                        // The first attempt settles the request (a success, a client error…):
                        // no retry bookkeeping and no clock read; the budget still counts it.
                        if let Some(budget) = &shared.budget {
                            budget.deposit();
                        }
                        return Poll::Ready(result);
                    }
                    let retry_after = result
                        .as_ref()
                        .ok()
                        .and_then(|r| this.policy.retry_after(r));
                    let now = shared.clock.now();
                    let backoff = retry.backoff.get_or_insert_with(|| {
                        Box::pin(Backoff {
                            state: shared.config.start(now),
                            sleep: tokio::time::sleep_until(Instant::now()),
                        })
                    });
                    let backoff = backoff.as_mut().project();
                    let decision =
                        backoff
                            .state
                            .decide(outcome, retry_after, now, shared.budget.as_ref());
                    shared.metrics.record(&decision);
                    match decision {
                        RetryDecision::Retry { after, reason } if retry.request.is_some() => {
                            tracing::debug!(
                                target = shared.target,
                                attempt = backoff.state.attempts(),
                                reason = reason.as_str(),
                                wait_ms = after.as_millis() as u64,
                                "retrying"
                            );
                            backoff.sleep.reset(Instant::now() + after);
                            this.state.set(State::Waiting);
                        }
                        decision => {
                            let attempts = backoff.state.attempts();
                            if let RetryDecision::Stop(stop) = decision {
                                if stop.is_exhausted() {
                                    tracing::debug!(
                                        target = shared.target,
                                        attempts,
                                        stop = stop.as_str(),
                                        "giving up"
                                    );
                                }
                            }
                            if let Ok(response) = &mut result {
                                if attempts > 1 {
                                    this.policy.mark(response, attempts);
                                }
                            }
                            return Poll::Ready(result);
                        }
                    }
                }
                StateProj::Waiting => {
                    let retry = this.retry.as_mut().expect("only retryable requests wait");
                    let backoff = retry.backoff.as_mut().expect("started before waiting");
                    ready!(backoff.as_mut().project().sleep.poll(cx));
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
