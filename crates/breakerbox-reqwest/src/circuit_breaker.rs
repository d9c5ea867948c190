//! The circuit breaker middleware.

use breakerbox::{BoxConfig, BreakerBox, Outcome, Target};
use breakerbox_tower::{Probe, TokioClock};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// A circuit breaker per request target, from a [`BreakerBox`]; see the [crate docs](crate).
///
/// - A rejected request never leaves the client: it fails at once with
///   `reqwest_middleware::Error::Middleware` wrapping [`CircuitOpen`](breakerbox::CircuitOpen)
///   (see [`circuit_open`](crate::circuit_open)).
/// - Responses are classified by status ([`Outcome::of_status`]): 5xx, 408 and 429 fail, other
///   4xx are ignored. Connection errors, timeouts and errors reading the response head are
///   failures; a rejection by another breaker further in is ignored.
/// - A request dropped before its response (the caller gave up) records nothing and frees its
///   HalfOpen trial slot.
///
/// Put it after a retry middleware (outermost first: retry, then breaker) so that every attempt
/// counts.
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
    /// ends; anything else waits for the next interval.
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
}

/// The target of a request, from its URL.
fn target(req: &Request) -> Option<Target<'_>> {
    let url = req.url();
    Some(Target::new(
        url.scheme(),
        url.host_str()?,
        url.port_or_known_default()?,
        url.path(),
    ))
}

fn classify(result: &Result<Response>) -> Outcome {
    match result {
        Ok(response) => Outcome::of_status(response.status().as_u16()),
        Err(err) if crate::is_circuit_open(err) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

#[async_trait::async_trait]
impl Middleware for CircuitBreakerMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let permit = match target(&req) {
            Some(target) => match self.breakers.try_acquire(&target) {
                Ok(permit) => Some(permit),
                Err(open) => {
                    if let Some(probe) = &self.probe {
                        self.breakers
                            .with_breaker(&target, |breaker| probe.run_if_due(breaker));
                    }
                    tracing::debug!(breaker = open.breaker(), url = %req.url(), "rejected: circuit open");
                    return Err(reqwest_middleware::Error::middleware(open));
                }
            },
            None => None, // no host: nothing to guard
        };
        let result = next.run(req, extensions).await;
        if let Some(permit) = permit {
            permit.record(classify(&result));
        }
        result
    }
}
