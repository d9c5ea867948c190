//! The circuit breaker middleware.

use crate::RetryMiddleware;
use crate::classify::{error_outcome, from_parts, into_parts};
use breakerbox::{AttemptOutcome, BoxConfig, BreakerBox, Outcome, OwnedPermit, Target};
use breakerbox_http::body::ResponseBody;
use breakerbox_http::{Probe, TokioClock, server_wait};
use http::Extensions;
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next, Result};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

/// A circuit breaker per request target, from a [`BreakerBox`]; see the [crate docs](crate).
///
/// - A rejected request never leaves the client: it fails at once with
///   `reqwest_middleware::Error::Middleware` wrapping [`CircuitOpen`](breakerbox::CircuitOpen)
///   (see [`circuit_open`](crate::circuit_open)).
/// - Responses are classified by status, as the breaker's `statuses` say (by default 5xx, 408
///   and 429 fail, other 4xx are ignored). Connection errors, timeouts and other errors are
///   failures; a rejection by another breaker further in is ignored.
/// - A call ends when its response body does: a failing status is recorded when the head
///   arrives; any other response keeps its permit in its body, and an error or timeout while
///   reading the body is a failure, a body read to its end or dropped early gives the status's
///   outcome. The slow-call clock runs to the end of the body, and a HalfOpen trial holds its
///   slot until then.
/// - A request dropped before its response (the caller gave up) records nothing and frees its
///   HalfOpen trial slot.
/// - Redirects, which reqwest follows inside the call, are charged to the host that answered:
///   when the final URL belongs to another breaker, the origin's breaker records a success (it
///   answered, with a redirect) and the final URL's breaker records the response, if it admits
///   it (an open one is not charged: the request was already sent). The hops in between are not
///   seen; for a breaker on every hop, turn reqwest's redirects off
///   (`redirect::Policy::none()`) and follow them yourself.
///
/// Put it after a retry middleware (outermost first: retry, then breaker) so that every attempt
/// counts.
///
/// ```
/// use breakerbox_reqwest::{BoxConfig, CircuitBreakerMiddleware, circuit_open};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = BoxConfig::from_toml(r#"
///     [[breakers]]
///     name = "lastfm"
///     match = { host = "ws.audioscrobbler.com" }
///     consecutive_failures = 5
/// "#)?;
/// let breakers = CircuitBreakerMiddleware::new(config);
/// let lastfm = breakers.breakers().named("lastfm").unwrap();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(breakers).build();
///
/// lastfm.force_open(); // an operator takes Last.fm out of rotation
/// let err = client.get("https://ws.audioscrobbler.com/2.0/?method=artist.getinfo").send().await.unwrap_err();
/// assert_eq!(circuit_open(&err).unwrap().breaker(), "lastfm"); // nothing was sent
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerMiddleware {
    breakers: BreakerBox,
    probe: Option<Probe>,
}

impl CircuitBreakerMiddleware {
    /// A breaker box built from `config`, reading a [`TokioClock`].
    pub fn new(config: BoxConfig) -> Self {
        Self::from_box(
            BreakerBox::builder(config)
                .clock(Arc::new(TokioClock::new()))
                .build(),
        )
    }

    /// Uses an existing breaker box (built with its own clock and listeners).
    pub fn from_box(breakers: BreakerBox) -> Self {
        Self {
            breakers,
            probe: None,
        }
    }

    /// Runs the rules' health checks: while a rule's breaker is open and its `probe_interval`
    /// says a check is due, a rejected request spawns a GET of the rule's `health_url` with
    /// `client` (a plain client: the check must not go through this middleware). A 2xx answer
    /// moves the breaker to HalfOpen at once, so trial requests start before the open duration
    /// ends; anything else waits for the next interval. A check that has not answered within
    /// the rule's `probe_timeout` (by default its `probe_interval`) is dropped and counts as
    /// failed, so a plain `reqwest::Client::new()` without a timeout is safe here.
    pub fn health_checks(mut self, client: reqwest::Client) -> Self {
        let urls: HashMap<String, String> = self
            .breakers
            .config()
            .rules()
            .iter()
            .filter_map(|rule| Some((rule.name().to_owned(), rule.health_check()?.to_owned())))
            .collect();
        let urls = Arc::new(urls);
        self.probe = Some(Probe::new(move |breaker| {
            let request = urls.get(breaker.name()).map(|url| client.get(url.as_str()));
            async move {
                let Some(request) = request else { return false };
                match request.send().await {
                    Ok(response) => response.status().is_success(),
                    Err(err) => {
                        tracing::debug!(%err, "health check failed");
                        false
                    }
                }
            }
        }));
        self
    }

    /// The breaker box: its snapshot, health summary and status table.
    pub fn breakers(&self) -> &BreakerBox {
        &self.breakers
    }

    /// A retry middleware that retries each request by the policy of the breaker guarding it:
    /// the box's `[retry]` table with the request's rule's `retry` keys merged over it (or no
    /// retries, for a rule with `retry = false`), each breaker with a retry budget and retry
    /// metrics of its own. See [`RetryMiddleware::per_breaker`].
    pub fn retry(&self) -> RetryMiddleware {
        RetryMiddleware::per_breaker(self.breakers.clone())
    }

    /// Records `response` through `permit`, or through the breaker of the URL it came from
    /// when reqwest followed a redirect to another breaker's target.
    fn finish(&self, response: Response, permit: OwnedPermit, sent: u64) -> Response {
        if fingerprint(response.url()) == sent {
            return guard(response, permit);
        }
        let Some(target) = target(response.url()) else {
            return guard(response, permit);
        };
        let moved = self
            .breakers
            .with_breaker(&target, |breaker| !breaker.ptr_eq(permit.breaker()));
        if !moved {
            return guard(response, permit);
        }
        // The origin answered with a redirect; the host that gave this answer is charged.
        permit.record(Outcome::Success);
        match self.breakers.try_acquire(&target) {
            Ok(permit) => guard(response, permit),
            Err(open) => {
                tracing::debug!(breaker = open.breaker(), url = %response.url(), "redirected to an open breaker's target");
                response
            }
        }
    }
}

/// The target of a URL.
fn target(url: &Url) -> Option<Target<'_>> {
    Some(Target::new(
        url.scheme(),
        url.host_str()?,
        url.port_or_known_default()?,
        url.path(),
    ))
}

/// A cheap fingerprint of a URL, to tell whether reqwest followed a redirect (a fixed-seed fast
/// hash: nothing adversarial can come of a collision but the origin being charged, as without
/// redirect handling).
fn fingerprint(url: &Url) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6272_6b72_626f_7821).hash_one(url.as_str())
}

/// Guards `response` with `permit`: a status the breaker counts as a failure, a 429 or 503
/// (which may carry the server's word: a `Retry-After` opens the breaker until then), or a
/// response without a body to read, is recorded now; any other keeps the permit in its body.
fn guard(response: Response, permit: OwnedPermit) -> Response {
    let status = response.status().as_u16();
    let attempt = AttemptOutcome::Status(status);
    let outcome = permit.outcome_of(attempt);
    if outcome == Outcome::Failure
        || matches!(status, 429 | 503)
        || response.content_length() == Some(0)
    {
        let wait = server_wait(permit.config(), status, response.headers());
        permit.report_answer(attempt, wait);
        return response;
    }
    let (parts, body) = into_parts(response);
    from_parts(
        parts,
        reqwest::Body::wrap(ResponseBody::new(body, permit, outcome)),
    )
}

#[async_trait::async_trait]
impl Middleware for CircuitBreakerMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let Some(origin) = target(req.url()) else {
            return next.run(req, extensions).await; // no host: nothing to guard
        };
        let permit = match self.breakers.try_acquire(&origin) {
            Ok(permit) => permit,
            Err(open) => {
                if let Some(probe) = &self.probe {
                    self.breakers
                        .with_breaker(&origin, |breaker| probe.run_if_due(breaker));
                }
                tracing::debug!(breaker = open.breaker(), url = %req.url(), "rejected: circuit open");
                return Err(reqwest_middleware::Error::middleware(open));
            }
        };
        let sent = fingerprint(req.url());
        match next.run(req, extensions).await {
            Ok(response) => Ok(self.finish(response, permit, sent)),
            Err(err) => {
                permit.report(error_outcome(&err));
                Err(err)
            }
        }
    }
}
