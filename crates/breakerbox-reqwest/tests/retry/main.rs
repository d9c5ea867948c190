//! The retry middleware against a real loopback server, in paused tokio time: waits (backoff,
//! Retry-After) take no wall-clock time and are measured exactly.

use breakerbox::backoff::Jitter;
use breakerbox::{BoxConfig, RetryConfig, State};
use breakerbox_reqwest::{
    Attempts, CircuitBreakerMiddleware, RetryMiddleware, StopReason, circuit_open,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A scripted answer: a status and maybe a `Retry-After`.
type Answer = (u16, Option<&'static str>);

/// A loopback upstream answering from a script (the last answer repeats), recording each
/// request's method, body and arrival time.
#[derive(Clone)]
struct Upstream {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<(String, Bytes, Instant)>>>,
}

impl Upstream {
    async fn start(script: &[Answer]) -> (Self, SocketAddr) {
        let upstream = Upstream {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            seen: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = upstream.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let server = server.clone();
                            async move {
                                let method = req.method().to_string();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                server
                                    .seen
                                    .lock()
                                    .unwrap()
                                    .push((method, body, Instant::now()));
                                let (status, retry_after) = {
                                    let mut script = server.script.lock().unwrap();
                                    if script.len() > 1 {
                                        script.pop_front().unwrap()
                                    } else {
                                        script[0]
                                    }
                                };
                                let mut response = http::Response::builder().status(status);
                                if let Some(after) = retry_after {
                                    response = response.header("retry-after", after);
                                }
                                Ok::<_, std::convert::Infallible>(
                                    response.body(Full::new(Bytes::new())).unwrap(),
                                )
                            }
                        },
                    );
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (upstream, addr)
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn gaps(&self) -> Vec<Duration> {
        let seen = self.seen.lock().unwrap();
        seen.windows(2).map(|w| w[1].2 - w[0].2).collect()
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig::builder()
        .max_retries(3)
        .base_delay(Duration::from_millis(200))
        .jitter(Jitter::None)
        .max_delay(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn client(addr: SocketAddr, retry: RetryConfig) -> ClientWithMiddleware {
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("musicbrainz.org", addr)
        .build()
        .unwrap();
    ClientBuilder::new(http)
        .with(RetryMiddleware::new(retry))
        .build()
}

const URL: &str = "http://musicbrainz.org/ws/2/recording?query=daft";

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_retried_after_at_least_that_long() {
    let (upstream, addr) = Upstream::start(&[(503, Some("1")), (200, None)]).await;
    let response = client(addr, retry_config()).get(URL).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.extensions().get::<Attempts>(),
        Some(&Attempts::new(2, StopReason::Succeeded))
    );
    assert_eq!(upstream.gaps(), [Duration::from_secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_of_an_hour_returns_the_503_without_waiting() {
    let (upstream, addr) = Upstream::start(&[(503, Some("3600"))]).await;
    let started = Instant::now();
    let response = client(addr, retry_config()).get(URL).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.extensions().get::<Attempts>(), None, "one attempt");
    assert_eq!(upstream.hits(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_exponentially_until_exhausted() {
    let (upstream, addr) = Upstream::start(&[(502, None)]).await;
    let response = client(addr, retry_config()).get(URL).send().await.unwrap();
    assert_eq!(response.status(), 502, "the last response comes back");
    assert_eq!(
        response.extensions().get::<Attempts>(),
        Some(&Attempts::new(4, StopReason::Exhausted))
    );
    assert_eq!(
        upstream.gaps(),
        [
            Duration::from_millis(200),
            Duration::from_millis(400),
            Duration::from_millis(800)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_post_is_retried_only_with_an_idempotency_key() {
    let post = |client: &ClientWithMiddleware, key: Option<&str>| {
        let mut request = client.post(URL).body("{\"id\":7}");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };

    let (upstream, addr) = Upstream::start(&[(503, None), (201, None)]).await;
    assert_eq!(
        post(&client(addr, retry_config()), None)
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(upstream.hits(), 1, "a POST is sent once");

    let (upstream, addr) = Upstream::start(&[(503, None), (201, None)]).await;
    let keyed = post(&client(addr, retry_config()), Some("order-7"))
        .await
        .unwrap();
    assert_eq!(keyed.status(), 201);
    assert_eq!(upstream.hits(), 2, "retried once thanks to the key");
    assert_eq!(
        upstream.seen.lock().unwrap()[1].1,
        Bytes::from_static(b"{\"id\":7}")
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_sent_exactly_once_and_not_refused() {
    let (upstream, addr) = Upstream::start(&[(503, None), (200, None)]).await;
    let stream = reqwest::Body::wrap(Full::new(Bytes::from_static(b"chunk")));
    let response = client(addr, retry_config())
        .put(URL) // idempotent, so it would be retried if its body could be copied
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(upstream.hits(), 1);
    assert_eq!(
        upstream.seen.lock().unwrap()[0].1,
        Bytes::from_static(b"chunk")
    );
}

#[tokio::test(start_paused = true)]
async fn retries_go_through_the_breaker_and_the_caller_gets_the_last_real_answer() {
    let (upstream, addr) = Upstream::start(&[(503, None)]).await;
    let config = BoxConfig::from_toml(
        "[[breakers]]\nname = \"musicbrainz\"\nmatch = { host = \"musicbrainz.org\" }\nconsecutive_failures = 3\nconsecutive_failures_span = \"0s\"",
    )
    .unwrap();
    let breakers = CircuitBreakerMiddleware::new(config);
    let panel = breakers.breakers().clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("musicbrainz.org", addr)
        .build()
        .unwrap();
    let client = ClientBuilder::new(http)
        .with(RetryMiddleware::new(retry_config()))
        .with(breakers)
        .build();
    // Three attempts fail and open the breaker, which refuses the fourth: the caller gets the
    // third 503, marked, never a rejection for a call that reached the upstream.
    let response = client.get(URL).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.extensions().get::<Attempts>(),
        Some(&Attempts::new(3, StopReason::CircuitOpen))
    );
    assert_eq!(
        upstream.hits(),
        3,
        "the fourth attempt was rejected, and not retried"
    );
    assert_eq!(panel.named("musicbrainz").unwrap().state(), State::Open);
    // The next call sends nothing: now the caller gets the rejection.
    let err = client.get(URL).send().await.unwrap_err();
    assert_eq!(circuit_open(&err).unwrap().breaker(), "musicbrainz");
    assert_eq!(upstream.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_error_reading_the_response_head_is_retried() {
    // The first connection is dropped before any response head; the next gets a 200.
    let (addr, connections) = breakerbox_testing::drop_first_connection().await;
    let response = client(addr, retry_config()).get(URL).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.extensions().get::<Attempts>(),
        Some(&Attempts::new(2, StopReason::Succeeded))
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}
