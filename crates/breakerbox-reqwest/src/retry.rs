//! The retry middleware.

use crate::classify::{attempt_outcome, from_parts, into_parts};
use breakerbox::retry::{Retrier, RetryDecision, RetryRun, StopReason};
use breakerbox::{BreakerBox, CircuitBreaker, RetryConfig, Target};
use breakerbox_http::{TokioClock, may_retry, retry_after};
use http::Extensions;
use http_body_util::BodyExt;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use std::sync::Arc;

/// The largest response body kept in memory while a retry waits (see [`RetryMiddleware`]).
const KEEP_IN_MEMORY: u64 = 64 * 1024;

/// Retries with backoff by the engine's rules, the same rules as the tower layer's:
///
/// - transient failures only: connection errors, timeouts, an error while sending the request or
///   reading the response head, and 408, 429 and 5xx by default; a circuit-open rejection from a
///   breaker further in fails fast, never retried;
/// - backoff with jitter, `max_retries`, `max_elapsed` (counted from the first transient
///   failure), `Retry-After` on 429 / 503 (seconds or HTTP-date) waited for at least, and a
///   `Retry-After` too long for `max_delay` or the time left returns the response at once;
/// - idempotent methods only, unless the config opts in or the request has an
///   `Idempotency-Key`: a `POST` is sent once;
/// - a request whose body cannot be copied (`Request::try_clone` is `None`: a stream) is sent
///   exactly once, never refused for it;
/// - a retry budget: with [`per_breaker`](Self::per_breaker) (or
///   [`CircuitBreakerMiddleware::retry`](crate::CircuitBreakerMiddleware::retry)), one per
///   breaker, so one upstream's outage never spends the retries another needs, and each
///   request retried by its own breaker's policy; with [`new`](Self::new), one policy and one
///   budget shared by every request through this middleware;
/// - the last real answer: once an attempt reached the upstream, the caller gets the last
///   upstream result, never a `CircuitOpen` from a breaker that refused a later attempt, so
///   [`is_circuit_open`](crate::is_circuit_open) means that nothing of the call was sent. While
///   a retry waits, the previous response is kept for that: its body read into memory when it
///   declares at most 64 KiB (the connection goes back to the pool at once), kept unread
///   otherwise;
/// - a response that was retried, or whose retry a breaker refused, carries
///   [`Attempts`](breakerbox::retry::Attempts) in its extensions: how many attempts reached the
///   upstream, and why retrying stopped (`stopped_by_open_breaker()`). An error carries no such
///   count;
/// - per breaker, a retry that would arrive while the breaker is still open (a server's
///   `Retry-After` opened it on this answer, say) is not waited for: the caller gets the answer
///   at once;
/// - `retry_attempts_total`, `retry_exhausted_total` and `retry_budget_rejected_total` count,
///   labelled with the breaker's name (or the name given to [`named`](Self::named)).
///
/// Add it before the circuit breaker, so that every attempt goes through the breaker:
///
/// ```
/// use breakerbox_reqwest::{BoxConfig, CircuitBreakerMiddleware};
///
/// let config = BoxConfig::from_toml(r#"
///     [[breakers]]
///     name = "musicbrainz"
///     match = { host = "musicbrainz.org" }
///     retry = { max_retries = 1 }   # its own policy and budget; `retry = false` for none
///
///     [retry]
///     max_retries = 3
/// "#)?;
/// let breakers = CircuitBreakerMiddleware::new(config);
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(breakers.retry())
///     .with(breakers)
///     .build();
/// # drop(client);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryMiddleware {
    policy: Policy,
}

#[derive(Debug, Clone)]
enum Policy {
    /// One policy and budget for every request.
    One(Arc<Retrier>),
    /// The policy and budget of each request's breaker.
    PerBreaker(BreakerBox),
}

impl RetryMiddleware {
    /// Retries per `config`, on a [`TokioClock`]; metrics are labelled `breaker="default"`
    /// ([`named`](Self::named) sets the label).
    pub fn new(config: RetryConfig) -> Self {
        Self::named("default", config)
    }

    /// [`new`](Self::new) with the metrics' `target` label (a host or upstream name).
    pub fn named(target: &str, config: RetryConfig) -> Self {
        Self {
            policy: Policy::One(Arc::new(Retrier::new(
                config,
                Arc::new(TokioClock::new()),
                target,
            ))),
        }
    }

    /// Retries each request by the policy of its breaker in `breakers` (see
    /// [`CircuitBreaker::retrier`]): per rule, and with a retry budget and metrics per breaker.
    /// Use the same box as the circuit breaker middleware, which
    /// [`CircuitBreakerMiddleware::retry`](crate::CircuitBreakerMiddleware::retry) does.
    pub fn per_breaker(breakers: BreakerBox) -> Self {
        Self {
            policy: Policy::PerBreaker(breakers),
        }
    }

    /// The retry config, for a middleware with one policy ([`new`](Self::new),
    /// [`named`](Self::named)); `None` per breaker.
    pub fn config(&self) -> Option<&RetryConfig> {
        match &self.policy {
            Policy::One(retrier) => Some(retrier.config()),
            Policy::PerBreaker(_) => None,
        }
    }
}

/// Who decides a request's retries.
enum Decider<'a> {
    One(&'a Retrier),
    Breaker(CircuitBreaker),
}

impl Decider<'_> {
    fn retrier(&self) -> Option<&Retrier> {
        match self {
            Decider::One(retrier) => Some(retrier),
            Decider::Breaker(breaker) => breaker.retrier(),
        }
    }

    fn after_attempt(
        &self,
        run: &mut RetryRun,
        outcome: breakerbox::AttemptOutcome,
        retry_after: impl FnOnce() -> Option<std::time::Duration>,
    ) -> RetryDecision {
        match self {
            Decider::One(retrier) => retrier.after_attempt(run, outcome, retry_after),
            Decider::Breaker(breaker) => breaker.after_attempt(run, outcome, retry_after),
        }
    }
}

/// The result of an attempt, kept while the next one waits: a response with a small body is
/// read into memory, so that its connection is free meanwhile.
async fn keep(result: Result<Response>) -> Result<Response> {
    let response = match result {
        Ok(response)
            if response
                .content_length()
                .is_some_and(|n| n <= KEEP_IN_MEMORY) =>
        {
            response
        }
        other => return other,
    };
    let (parts, body) = into_parts(response);
    match body.collect().await {
        Ok(bytes) => Ok(from_parts(parts, reqwest::Body::from(bytes.to_bytes()))),
        // Reading it failed: that is what the upstream gave.
        Err(err) => Err(reqwest_middleware::Error::Reqwest(err)),
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
        let decider =
            match &self.policy {
                Policy::One(retrier) => Decider::One(retrier),
                Policy::PerBreaker(breakers) => {
                    let url = req.url();
                    match (url.host_str(), url.port_or_known_default()) {
                        (Some(host), Some(port)) => Decider::Breaker(
                            breakers.breaker(&Target::new(url.scheme(), host, port, url.path())),
                        ),
                        _ => return next.run(req, extensions).await, // no host: no breaker
                    }
                }
            };
        let Some(retrier) = decider.retrier() else {
            return next.run(req, extensions).await; // this breaker's rule turns retries off
        };
        let retryable = may_retry(retrier.config(), req.method(), req.headers());
        let mut copy = if retryable { req.try_clone() } else { None };
        if copy.is_none() {
            // Sent once: not retryable, or a body that cannot be copied.
            retrier.sent_once();
            return next.run(req, extensions).await;
        }
        let mut request = req;
        let mut run = RetryRun::new();
        let mut previous = None;
        loop {
            let result = next.clone().run(request, extensions).await;
            let decision = decider.after_attempt(&mut run, attempt_outcome(&result), || {
                result.as_ref().ok().and_then(|r| retry_after(r.headers()))
            });
            let stop = match (decision, copy.take()) {
                (RetryDecision::Retry { after, .. }, Some(next_request)) => {
                    previous = Some(keep(result).await);
                    tokio::time::sleep(after).await;
                    copy = next_request.try_clone();
                    request = next_request;
                    continue;
                }
                (RetryDecision::Retry { .. }, None) => StopReason::Exhausted,
                (RetryDecision::Stop(stop), _) => stop,
            };
            // A breaker refused the retry: the previous attempt's result stands.
            let mut result = match previous {
                Some(previous) if stop == StopReason::CircuitOpen => previous,
                _ => result,
            };
            if let (Ok(response), Some(attempts)) = (&mut result, run.summary(stop)) {
                response.extensions_mut().insert(attempts);
            }
            return result;
        }
    }
}
