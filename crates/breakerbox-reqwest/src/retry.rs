//! The retry middleware.

use breakerbox::retry::{AttemptOutcome, Retrier, RetryDecision, RetryRun};
use breakerbox::{CircuitOpen, RetryConfig};
use breakerbox_tower::TokioClock;
use breakerbox_tower::retry::{Attempts, IDEMPOTENCY_KEY, retry_after};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use std::sync::Arc;

/// Retries with backoff by the engine's rules (DESIGN.md section 5), the same rules as the
/// tower layer's:
///
/// - transient failures only: connection errors, timeouts, an error while sending the request or
///   reading the response head, and 408, 429 and 5xx by default; a circuit-open rejection from a
///   breaker further in fails fast, never retried;
/// - backoff with jitter, `max_retries`, `max_elapsed` (counted from the first transient
///   failure), `Retry-After` on 429 / 503 (seconds or HTTP-date) waited for at least, and a
///   `Retry-After` too long for `max_delay` or the time left returns the response at once;
/// - idempotent methods only, unless the config opts in or the request has an
///   `Idempotency-Key`;
/// - a request whose body cannot be copied (`Request::try_clone` is `None`: a stream) is sent
///   exactly once, never refused for it;
/// - a retry budget shared by the clients of this middleware;
/// - a retried response carries [`Attempts`] in its extensions (absent means one attempt), and
///   `retry_attempts_total`, `retry_exhausted_total` and `retry_budget_rejected_total` count.
///
/// Add it before the circuit breaker, so that every attempt goes through the breaker:
///
/// ```
/// use breakerbox::{BoxConfig, RetryConfig};
/// use breakerbox_reqwest::{CircuitBreakerMiddleware, RetryMiddleware};
///
/// let config = BoxConfig::default();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::new(config.retry().cloned().unwrap_or_default()))
///     .with(CircuitBreakerMiddleware::new(config))
///     .build();
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct RetryMiddleware {
    retrier: Arc<Retrier>,
}

impl RetryMiddleware {
    /// Retries per `config`, on a [`TokioClock`]; metrics are labelled `target="default"` until
    /// [`target`](Self::target) says otherwise.
    pub fn new(config: RetryConfig) -> Self {
        Self::named("default", config)
    }

    /// [`new`](Self::new) with the metrics' `target` label (a host or upstream name) set from
    /// the start: only this target's series are registered.
    pub fn named(target: &str, config: RetryConfig) -> Self {
        Self::build(config, target)
    }

    /// The `target` label of the retry metrics. The `default` series that
    /// [`new`](Self::new) registered with the recorder installed then stay registered (at zero);
    /// [`named`](Self::named) avoids them.
    pub fn target(self, target: &str) -> Self {
        Self::build(self.retrier.config().clone(), target)
    }

    fn build(config: RetryConfig, target: &str) -> Self {
        Self {
            retrier: Arc::new(Retrier::new(config, Arc::new(TokioClock::new()), target)),
        }
    }

    /// The retry config.
    pub fn config(&self) -> &RetryConfig {
        self.retrier.config()
    }
}

/// What an attempt's result means to the engine.
fn outcome(result: &Result<Response>) -> AttemptOutcome {
    match result {
        Ok(response) => AttemptOutcome::Status(response.status().as_u16()),
        Err(reqwest_middleware::Error::Middleware(e)) if e.is::<CircuitOpen>() => {
            AttemptOutcome::CircuitOpen
        }
        Err(reqwest_middleware::Error::Middleware(_)) => AttemptOutcome::OtherError,
        Err(reqwest_middleware::Error::Reqwest(e)) if e.is_timeout() => AttemptOutcome::Timeout,
        // Connecting, sending, or reading the response head went wrong: worth another try.
        Err(reqwest_middleware::Error::Reqwest(e)) if e.is_connect() || e.is_request() => {
            AttemptOutcome::Connect
        }
        Err(reqwest_middleware::Error::Reqwest(_)) => AttemptOutcome::OtherError,
    }
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let retrier = &*self.retrier;
        let retryable = retrier
            .config()
            .may_retry_with(req.method().is_idempotent(), || {
                req.headers().contains_key(&IDEMPOTENCY_KEY)
            });
        let mut copy = if retryable { req.try_clone() } else { None };
        if copy.is_none() {
            // Sent once: not retryable, or a body that cannot be copied.
            retrier.sent_once();
            return next.run(req, extensions).await;
        }
        let mut request = req;
        let mut run = RetryRun::new();
        loop {
            let mut result = next.clone().run(request, extensions).await;
            let decision = retrier.after_attempt(&mut run, outcome(&result), || {
                result.as_ref().ok().and_then(|r| retry_after(r.headers()))
            });
            match (decision, copy.take()) {
                (RetryDecision::Retry { after, .. }, Some(next_request)) => {
                    drop(result); // frees the connection while waiting
                    tokio::time::sleep(after).await;
                    copy = next_request.try_clone();
                    request = next_request;
                }
                _ => {
                    if let Ok(response) = &mut result {
                        if run.attempts() > 1 {
                            response.extensions_mut().insert(Attempts(run.attempts()));
                        }
                    }
                    return result;
                }
            }
        }
    }
}
