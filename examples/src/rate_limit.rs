//! A per-host rate limit for reqwest-middleware, on [governor]'s GCRA and tokio's clock.
//!
//! Requests to a limited host wait for a slot before going on; other hosts pass straight
//! through. Put it after the retry middleware and before the circuit breaker (outermost first:
//! retry → rate limit → circuit breaker → timeout → client): every attempt, retries
//! included, waits for its own slot, and the wait happens before the breaker admits the call,
//! so it never counts as call time.
//!
//! ```
//! use breakerbox_examples::rate_limit::RateLimitMiddleware;
//! use std::time::Duration;
//!
//! // MusicBrainz asks for at most 1 request per second.
//! let limit = RateLimitMiddleware::new().host("musicbrainz.org", Duration::from_secs(1));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(limit.clone())
//!     .build();
//! # drop(client);
//! assert_eq!(limit.waited("musicbrainz.org"), Some(Duration::ZERO));
//! ```

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Holds the requests to chosen hosts to one per interval; see the [module docs](self).
/// Clones share the limits.
#[derive(Debug, Clone, Default)]
pub struct RateLimitMiddleware {
    limits: Vec<Arc<HostLimit>>,
}

struct HostLimit {
    host: String,
    interval: Duration,
    clock: TokioClock,
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    waited_nanos: AtomicU64,
    held: AtomicU64,
}

/// governor's clock, read from tokio's, so that `tokio::time::pause()` drives the limiter.
#[derive(Debug, Clone, Copy)]
struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

impl RateLimitMiddleware {
    /// No limits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets at most one request to `host` start per `interval` (no bursts).
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    pub fn host(mut self, host: impl Into<String>, interval: Duration) -> Self {
        let quota = Quota::with_period(interval).expect("a rate limit interval above zero");
        let clock = TokioClock {
            origin: tokio::time::Instant::now(),
        };
        self.limits.push(Arc::new(HostLimit {
            host: host.into(),
            interval,
            clock,
            limiter: RateLimiter::direct_with_clock(quota, clock),
            waited_nanos: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }));
        self
    }

    /// The interval between two requests to `host`, if it is limited.
    pub fn interval(&self, host: &str) -> Option<Duration> {
        self.find(host).map(|l| l.interval)
    }

    /// How long requests to `host` have waited for their slots, in total.
    pub fn waited(&self, host: &str) -> Option<Duration> {
        self.find(host)
            .map(|l| Duration::from_nanos(l.waited_nanos.load(Ordering::Relaxed)))
    }

    /// How many requests to `host` had to wait for a slot.
    pub fn held(&self, host: &str) -> Option<u64> {
        self.find(host).map(|l| l.held.load(Ordering::Relaxed))
    }

    fn find(&self, host: &str) -> Option<&HostLimit> {
        self.limits
            .iter()
            .find(|l| l.host.eq_ignore_ascii_case(host))
            .map(|l| &**l)
    }
}

impl HostLimit {
    async fn until_ready(&self) {
        let started = tokio::time::Instant::now();
        let mut held = false;
        while let Err(not_until) = self.limiter.check() {
            held = true;
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
        if held {
            self.held.fetch_add(1, Ordering::Relaxed);
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.waited_nanos.fetch_add(waited, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for HostLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostLimit")
            .field("host", &self.host)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Middleware for RateLimitMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        if let Some(limit) = req.url().host_str().and_then(|host| self.find(host)) {
            limit.until_ready().await;
        }
        next.run(req, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox_reqwest::CircuitBreakerMiddleware;
    use breakerbox_reqwest::TokioClock;
    use breakerbox_reqwest::{BoxConfig, BreakerBox, Target};
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    /// A loopback server answering 200 at once.
    async fn upstream() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    /// A breaker for musicbrainz.org that counts calls slower than 500 ms.
    fn breakers() -> BreakerBox {
        let config = BoxConfig::from_toml(
            r#"
            [[breakers]]
            name = "musicbrainz"
            match = { host = "musicbrainz.org" }
            consecutive_failures = false
            slow_call_rate = 0.9
            slow_call_duration = "500ms"
            "#,
        )
        .unwrap();
        BreakerBox::builder(config)
            .clock(Arc::new(TokioClock::new()))
            .build()
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_and_the_wait_is_not_call_time() {
        let addr = upstream().await;
        let http = || {
            reqwest::Client::builder()
                .no_proxy()
                .resolve("musicbrainz.org", addr)
                .build()
                .unwrap()
        };
        let target = Target::new("http", "musicbrainz.org", 80, "/ws/2/");
        let (before, after) = (breakers(), breakers());
        let limit = || RateLimitMiddleware::new().host("musicbrainz.org", Duration::from_secs(1));
        let (limit_first, limit_second) = (limit(), limit());
        // The order that composes: the limit before the breaker.
        let right = reqwest_middleware::ClientBuilder::new(http())
            .with(limit_first.clone())
            .with(CircuitBreakerMiddleware::from_box(before.clone()))
            .build();
        // The other way round, waiting inside the breaker counts as call time.
        let wrong = reqwest_middleware::ClientBuilder::new(http())
            .with(CircuitBreakerMiddleware::from_box(after.clone()))
            .with(limit_second.clone())
            .build();

        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            let response = right
                .get("http://musicbrainz.org/ws/2/")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "three requests, a second apart"
        );
        assert_eq!(limit_first.held("musicbrainz.org"), Some(2));
        assert!(limit_first.waited("MusicBrainz.org").unwrap() >= Duration::from_secs(2));
        let slow = |panel: &BreakerBox| panel.breaker(&target).snapshot().window_slow_calls;
        assert_eq!(slow(&before), 0, "waiting for a slot is not call time");

        for _ in 0..3 {
            wrong
                .get("http://musicbrainz.org/ws/2/")
                .send()
                .await
                .unwrap();
        }
        assert_eq!(slow(&after), 2, "the two calls that waited counted as slow");
        // Other hosts pass straight through.
        assert_eq!(limit_first.waited("api.spotify.com"), None);
    }
}
