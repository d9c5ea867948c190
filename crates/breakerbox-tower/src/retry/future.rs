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
use tokio::time::Sleep;
use tower::{BoxError, Service};

pin_project! {
    /// The response future of [`RetryWithBackoff`](super::RetryWithBackoff): sends the request,
    /// and while the engine says so, waits and sends a copy again. Its timer is stored inline;
    /// nothing is boxed.
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
    /// Started at the first failure: a request whose first attempt settles it needs none.
    state: Option<RetryState>,
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called {
            #[pin]
            future: F,
        },
        Waiting {
            #[pin]
            sleep: Sleep,
        },
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
                state: None,
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
                    if retry.state.is_none() && shared.config.classify(outcome).is_err() {
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
                    let state = retry.state.get_or_insert_with(|| shared.config.start(now));
                    let decision = state.decide(outcome, retry_after, now, shared.budget.as_ref());
                    shared.metrics.record(&decision);
                    match decision {
                        RetryDecision::Retry { after, reason } if retry.request.is_some() => {
                            tracing::debug!(
                                target = shared.target,
                                attempt = state.attempts(),
                                reason = reason.as_str(),
                                wait_ms = after.as_millis() as u64,
                                "retrying"
                            );
                            this.state.set(State::Waiting {
                                sleep: tokio::time::sleep(after),
                            });
                        }
                        decision => {
                            if let RetryDecision::Stop(stop) = decision {
                                if stop.is_exhausted() {
                                    tracing::debug!(
                                        target = shared.target,
                                        attempts = state.attempts(),
                                        stop = stop.as_str(),
                                        "giving up"
                                    );
                                }
                            }
                            if let Ok(response) = &mut result {
                                if state.attempts() > 1 {
                                    this.policy.mark(response, state.attempts());
                                }
                            }
                            return Poll::Ready(result);
                        }
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
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
