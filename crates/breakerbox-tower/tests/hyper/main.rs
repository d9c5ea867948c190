//! The whole stack over hyper-util's legacy client against a real hyper server on 127.0.0.1
//! that fails on command: the breaker opens, rejects without reaching the server, and closes
//! once the server heals.

use breakerbox::clock::ManualClock;
use breakerbox::retry::StopReason;
use breakerbox::{BreakerConfig, CircuitBreaker, CircuitOpen, RetryConfig, State, backoff::Jitter};
use breakerbox_tower::classify::ResponseBody;
use breakerbox_tower::retry::Attempts;
use breakerbox_tower::{CircuitBreakerLayer, RetryWithBackoffLayer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// A loopback upstream: answers 503 while `failing`, 200 otherwise, and counts every request.
#[derive(Clone, Default)]
struct Upstream {
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        upstream.hits.fetch_add(1, Ordering::SeqCst);
                        let status = if upstream.failing.load(Ordering::SeqCst) {
                            503
                        } else {
                            200
                        };
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn the_breaker_opens_rejects_without_reaching_the_server_and_closes_after_it_heals() {
    let upstream = Upstream::default();
    let addr = upstream.start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    // The breaker's time is driven by hand; retries wait 1 ms.
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder(
        "loopback",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(3)
            .open_duration(Duration::from_secs(30))
            .success_threshold(2)
            .build()
            .unwrap(),
    )
    .clock(Arc::new(clock.clone()))
    .build();
    let retry = RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let mut stack = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry))
        .layer(CircuitBreakerLayer::from_breaker(breaker.clone()))
        .timeout(Duration::from_secs(10))
        .service(client);
    let url = format!("http://{addr}/ws/2/recording");
    let mut get =
        async || -> Result<http::Response<ResponseBody<hyper::body::Incoming>>, BoxError> {
            let req = http::Request::get(&url)
                .body(Full::new(Bytes::new()))
                .unwrap();
            stack.ready().await?.call(req).await
        };

    let ok = get().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.extensions().get::<Attempts>(),
        None,
        "not retried: nothing added"
    );
    assert_eq!(
        &ok.into_body().collect().await.unwrap().to_bytes()[..],
        b"{}"
    );

    upstream.failing.store(true, Ordering::SeqCst);
    // Three attempts of one request fail: the breaker opens on the third.
    let failed = get().await.unwrap();
    assert_eq!(failed.status(), 503);
    assert_eq!(
        failed.extensions().get::<Attempts>(),
        Some(&Attempts::new(3, StopReason::Exhausted))
    );
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(upstream.hits(), 4);

    for _ in 0..10 {
        let err = get().await.unwrap_err();
        let open = err
            .downcast_ref::<CircuitOpen>()
            .expect("rejected by the breaker");
        assert_eq!(open.breaker(), "loopback");
    }
    assert_eq!(
        upstream.hits(),
        4,
        "no request reached the server while open"
    );

    upstream.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(breaker.state(), State::HalfOpen, "2 successes to close");
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(upstream.hits(), 6);
}

#[tokio::test]
async fn a_refused_connection_is_a_failure_and_is_retried() {
    // Bind, learn the port, close: connecting there is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let breaker = CircuitBreakerLayer::named(
        "refused",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(3)
            .build()
            .unwrap(),
    );
    let handle = breaker.breaker().clone();
    let retry = RetryConfig::builder()
        .max_retries(1)
        .base_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry))
        .layer(breaker)
        .service(client);
    let req = http::Request::get(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = stack.oneshot(req).await.unwrap_err();
    assert!(!err.is::<CircuitOpen>(), "{err}");
    assert_eq!(
        handle.snapshot().consecutive_failures,
        2,
        "two attempts, both failures"
    );
}

#[cfg(feature = "hyper")] // hyper's errors are recognised with the `hyper` feature (default)
#[tokio::test]
async fn a_connection_closed_before_the_response_is_retried() {
    // The first connection is dropped before any response head; the next gets a 200.
    let (addr, connections) = breakerbox_testing::drop_first_connection().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let retry = RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry))
        .service(client);
    let req = http::Request::get(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = stack
        .oneshot(req)
        .await
        .expect("the second attempt answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.extensions().get::<Attempts>().map(Attempts::count),
        Some(2)
    );
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

/// The obvious lines, as a newcomer writes them, over hyper-util's client against a loopback
/// upstream answering 503 after 300 ms (the test kit's, in paused time): the breaker opens on
/// the default rule (5 failures in a row, over at least 1 s) with no classifier named, and the
/// retry layer retries a GET but sends a POST once.
#[tokio::test(start_paused = true)]
async fn the_obvious_lines_are_right_for_http() {
    use breakerbox_testing::{Reply, Upstream};

    let upstream = Upstream::builder()
        .script(Reply::status(503).delay(Duration::from_millis(300)))
        .start()
        .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let layer = CircuitBreakerLayer::new(BreakerConfig::default());
    let breaker = layer.breaker().clone();
    let mut svc = ServiceBuilder::new().layer(layer).service(client.clone());
    let url = upstream.url("/v1/scoreboard");
    let mut answered = 0;
    let rejection = loop {
        let req = http::Request::get(&url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        match svc.ready().await.unwrap().call(req).await {
            Ok(response) => {
                assert_eq!(response.status(), 503);
                answered += 1;
            }
            Err(err) => break err,
        }
        assert!(answered <= 5, "the breaker never opened");
    };
    assert!(rejection.is::<CircuitOpen>(), "{rejection}");
    assert_eq!((answered, upstream.hits()), (5, 5));
    assert_eq!(breaker.state(), State::Open);

    let retry = RetryConfig::builder()
        .base_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let mut retrying = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry))
        .service(client);
    let post = http::Request::post(&url)
        .body(Full::new(Bytes::from_static(b"{\"rating\":5}")))
        .unwrap();
    let response = retrying.ready().await.unwrap().call(post).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        upstream.hits(),
        6,
        "a POST without an Idempotency-Key is sent once"
    );
    let get = http::Request::get(&url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = retrying.ready().await.unwrap().call(get).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        upstream.hits(),
        10,
        "a GET is sent once and retried 3 times"
    );
}
