//! The scraper's one HTTP client: retry → rate limit → circuit breaker → timeout → reqwest.

use crate::ledger::{AttemptTally, Ledger};
use crate::rate_limit::RateLimitMiddleware;
use crate::routes::Host;
use crate::upstreams::Upstreams;
use breakerbox_reqwest::TokioClock;
use breakerbox_reqwest::{BoxConfig, BreakerBox, InvalidConfig, TransitionEvent};
use breakerbox_reqwest::{CircuitBreakerMiddleware, RetryMiddleware};
use reqwest_middleware::ClientWithMiddleware;
use std::sync::Arc;
use std::time::Duration;

/// Each attempt's timeout (reqwest's, innermost): a timed-out attempt is a breaker failure and
/// a transient one for the retry middleware.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// The MusicBrainz limiter's interval: one request per second, plus 50 ms of headroom so that
/// the network's jitter never makes two requests arrive less than a second apart (the server
/// answers those with 503).
pub const MUSICBRAINZ_INTERVAL: Duration = Duration::from_millis(1050);

/// The client and the parts the demo reports on.
#[derive(Debug, Clone)]
pub struct ScraperClient {
    /// The client: retry, rate limit, attempt tally, circuit breakers, then reqwest.
    pub http: ClientWithMiddleware,
    /// The breaker box behind the circuit-breaker middleware.
    pub breakers: BreakerBox,
    /// The rate limit (no hosts when it is off).
    pub rate_limit: RateLimitMiddleware,
    /// What the scraper counted, per route.
    pub ledger: Arc<Ledger>,
}

/// Builds the client over `config`, pointing every real host name at its fake upstream.
///
/// `listener` receives every breaker transition. With `rate_limit`, requests to MusicBrainz
/// wait for [`MUSICBRAINZ_INTERVAL`] slots.
pub fn build(
    config: &BoxConfig,
    upstreams: &Upstreams,
    rate_limit: bool,
    listener: impl Fn(&TransitionEvent) + Send + Sync + 'static,
) -> Result<ScraperClient, BuildError> {
    let plain = || {
        upstreams
            .resolve(reqwest::Client::builder())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
    };
    let breakers = BreakerBox::builder(loopback(config)?)
        .clock(Arc::new(TokioClock::new()))
        .call_duration_histogram(true)
        .listener(listener)
        .build();
    // Each request retried by its breaker's policy, within that breaker's own budget.
    let retry = RetryMiddleware::per_breaker(breakers.clone());
    let limits = if rate_limit {
        RateLimitMiddleware::new().host(Host::Musicbrainz.name(), MUSICBRAINZ_INTERVAL)
    } else {
        RateLimitMiddleware::new()
    };
    let ledger = Arc::new(Ledger::new());
    let http = reqwest_middleware::ClientBuilder::new(plain()?)
        .with(retry)
        .with(limits.clone())
        .with(AttemptTally::new(ledger.clone(), breakers.clone()))
        .with(CircuitBreakerMiddleware::from_box(breakers.clone()).health_checks(plain()?))
        .build();
    Ok(ScraperClient {
        http,
        breakers,
        rate_limit: limits,
        ledger,
    })
}

/// `config` with its `https://` health-check URLs turned into `http://` ones: the fake
/// upstreams speak plain HTTP on loopback, and the scraper calls them by `http://` URLs too.
pub fn loopback(config: &BoxConfig) -> Result<BoxConfig, InvalidConfig> {
    let mut builder = BoxConfig::builder()
        .defaults(config.defaults().clone())
        .max_breakers(config.max_breakers())
        .overflow(config.overflow());
    if let Some(retry) = config.retry() {
        builder = builder.retry(retry.clone());
    }
    if let Some(fraction) = config.max_open_fraction() {
        builder = builder.max_open_fraction(fraction);
    }
    for rule in config.rules() {
        let rule = match rule
            .health_check()
            .and_then(|url| url.strip_prefix("https://"))
        {
            Some(rest) => rule.clone().health_url(format!("http://{rest}")),
            None => rule.clone(),
        };
        builder = builder.rule(rule);
    }
    builder.build()
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// reqwest refused its settings.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The breaker config did not survive the switch to plain-HTTP health checks.
    #[error("the breaker config: {0}")]
    Config(#[from] InvalidConfig),
}
