//! The retry layer's response future.

use super::policy::Policy;
use breakerbox::retry::{Retrier, RetryDecision, RetryRun};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
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
        retry: Option<Retry<S, Req>>,
    }
}

/// What a retryable request keeps between attempts.
struct Retry<S, Req> {
    service: S,
    retrier: Arc<Retrier>,
    /// A copy of the request for the next attempt.
    request: Option<Req>,
    run: RetryRun,
    /// Made at the first wait.
    sleep: Option<Pin<Box<Sleep>>>,
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
            retry: Some(Retry {
                service,
                retrier,
                request: Some(request),
                run: RetryRun::new(),
                sleep: None,
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

    #[inline]
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
                    let policy = &*this.policy;
                    let decision = retry.retrier.after_attempt(&mut retry.run, outcome, || {
                        result.as_ref().ok().and_then(|r| policy.retry_after(r))
                    });
                    match decision {
                        RetryDecision::Retry { after, .. } if retry.request.is_some() => {
                            let deadline = deadline_after(after);
                            match &mut retry.sleep {
                                Some(sleep) => sleep.as_mut().reset(deadline),
                                None => {
                                    retry.sleep = Some(Box::pin(tokio::time::sleep_until(deadline)))
                                }
                            }
                            this.state.set(State::Waiting);
                        }
                        _ => {
                            let attempts = retry.run.attempts();
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

/// `after` from now, or tokio's own "far future" (30 years, what `tokio::time::sleep` uses)
/// when that is past what an `Instant` can hold: a config may allow any wait (`max_delay` up to
/// `Duration::MAX`, no `max_elapsed`), and a server may ask for any `Retry-After`.
fn deadline_after(after: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(after).unwrap_or(now + FAR_FUTURE)
}
