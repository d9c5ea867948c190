//! What the scraper saw, per route: requests as the caller saw them, and attempts as the
//! breaker saw them.
//!
//! The breakers publish calls, failures and rejections as metrics, but the demo's table and
//! summary also need them per route next to the scraper's own view (requests made, retries),
//! so a small middleware between the rate limit and the breaker counts every attempt, and the
//! scraper counts every request. Retries are attempts that were not first attempts.

use crate::routes::Route;
use breakerbox_reqwest::is_circuit_open;
use breakerbox_reqwest::{AttemptOutcome, BreakerBox, BreakerConfig, Outcome, Target};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters per route; shared by the scraper and [`AttemptTally`].
#[derive(Debug, Default)]
pub struct Ledger {
    routes: [Counters; Route::ALL.len()],
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    refused_retries: AtomicU64,
    attempts: AtomicU64,
    attempt_failures: AtomicU64,
    attempt_rejections: AtomicU64,
    timeouts: AtomicU64,
    run: AtomicU64,
    longest_run: AtomicU64,
}

/// One route's counts at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests the scraper made (each may take several attempts).
    pub requests: u64,
    /// Requests that ended with a 2xx answer.
    pub succeeded: u64,
    /// Requests that ended with an error status, a timeout or a connection error.
    pub failed: u64,
    /// Requests that ended with a circuit-open rejection: they never left the client.
    pub rejected: u64,
    /// Requests whose retry an open breaker refused: they got the upstream's last answer.
    pub refused_retries: u64,
    /// Attempts that reached the breaker (first attempts and retries).
    pub attempts: u64,
    /// Attempts the breaker counted as failures.
    pub attempt_failures: u64,
    /// Attempts the breaker rejected.
    pub attempt_rejections: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// The longest run of failed attempts in a row.
    pub longest_failure_run: u64,
}

impl Tally {
    /// Attempts beyond the first of each request: the retries.
    pub fn retries(&self) -> u64 {
        self.attempts.saturating_sub(self.requests)
    }

    /// Attempts the breaker let through to the upstream.
    pub fn calls(&self) -> u64 {
        self.attempts.saturating_sub(self.attempt_rejections)
    }
}

/// How one request ended, as the scraper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// A 2xx answer.
    Succeeded,
    /// An error status, a timeout or a connection error.
    Failed,
    /// Rejected by an open breaker.
    Rejected,
}

impl RequestResult {
    /// Whether retrying `result` stopped because a breaker refused the next attempt.
    pub fn retry_refused(result: &reqwest_middleware::Result<Response>) -> bool {
        result.as_ref().is_ok_and(|response| {
            response
                .extensions()
                .get::<breakerbox_reqwest::Attempts>()
                .is_some_and(|a| a.stopped_by_open_breaker())
        })
    }
}

impl RequestResult {
    /// How `result` ended.
    pub fn of(result: &reqwest_middleware::Result<Response>) -> Self {
        match result {
            Ok(response) if response.status().is_success() => Self::Succeeded,
            Err(err) if is_circuit_open(err) => Self::Rejected,
            _ => Self::Failed,
        }
    }
}

impl Ledger {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn counters(&self, route: Route) -> &Counters {
        let i = Route::ALL
            .iter()
            .position(|r| *r == route)
            .expect("every route has counters");
        &self.routes[i]
    }

    /// Counts one request of `route` and how it ended (`refused`: a breaker refused its retry).
    pub fn request(&self, route: Route, result: RequestResult, refused: bool) {
        let c = self.counters(route);
        c.requests.fetch_add(1, Ordering::Relaxed);
        if refused {
            c.refused_retries.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            RequestResult::Succeeded => &c.succeeded,
            RequestResult::Failed => &c.failed,
            RequestResult::Rejected => &c.rejected,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn attempt(
        &self,
        route: Route,
        config: &BreakerConfig,
        result: &reqwest_middleware::Result<Response>,
    ) {
        let c = self.counters(route);
        c.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(response) => config.outcome_of(AttemptOutcome::Status(response.status().as_u16())),
            Err(err) if is_circuit_open(err) => {
                c.attempt_rejections.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(err) => {
                if matches!(err, reqwest_middleware::Error::Reqwest(e) if e.is_timeout()) {
                    c.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Failure
            }
        };
        match outcome {
            Outcome::Failure => {
                c.attempt_failures.fetch_add(1, Ordering::Relaxed);
                let run = c.run.fetch_add(1, Ordering::Relaxed) + 1;
                c.longest_run.fetch_max(run, Ordering::Relaxed);
            }
            Outcome::Success => c.run.store(0, Ordering::Relaxed),
            Outcome::Ignored => {}
        }
    }

    /// `route`'s counts now.
    pub fn tally(&self, route: Route) -> Tally {
        let c = self.counters(route);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            requests: get(&c.requests),
            succeeded: get(&c.succeeded),
            failed: get(&c.failed),
            rejected: get(&c.rejected),
            refused_retries: get(&c.refused_retries),
            attempts: get(&c.attempts),
            attempt_failures: get(&c.attempt_failures),
            attempt_rejections: get(&c.attempt_rejections),
            timeouts: get(&c.timeouts),
            longest_failure_run: get(&c.longest_run),
        }
    }
}

/// Counts every attempt per route, by the breaker each one goes to: place it right before the
/// [`CircuitBreakerMiddleware`](breakerbox_reqwest::CircuitBreakerMiddleware), after the retry
/// and rate-limit middlewares.
#[derive(Debug, Clone)]
pub struct AttemptTally {
    ledger: Arc<Ledger>,
    breakers: BreakerBox,
}

impl AttemptTally {
    /// Counts into `ledger`, naming routes after their breakers in `breakers`.
    pub fn new(ledger: Arc<Ledger>, breakers: BreakerBox) -> Self {
        Self { ledger, breakers }
    }

    fn route(&self, req: &Request) -> Option<(Route, BreakerConfig)> {
        let url = req.url();
        let target = Target::new(
            url.scheme(),
            url.host_str()?,
            url.port_or_known_default()?,
            url.path(),
        );
        self.breakers.with_breaker(&target, |b| {
            Route::from_name(b.name()).map(|route| (route, b.config().clone()))
        })
    }
}

#[async_trait::async_trait]
impl Middleware for AttemptTally {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let route = self.route(&req);
        let result = next.run(req, extensions).await;
        if let Some((route, config)) = route {
            self.ledger.attempt(route, &config, &result);
        }
        result
    }
}
