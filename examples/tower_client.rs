//! The tower layers over hyper-util's client, in the order they compose (outermost first):
//! retry → rate limit → circuit breaker → timeout → client. tower's `RateLimit` is not `Clone`, so it
//! sits behind a `Buffer` for the retry layer to clone.
//!
//! A loopback server started here answers 200, then 503 from 0.6 s to 1.6 s, then 200 again.
//! Watch the breaker open after 3 failed attempts, reject calls without reaching the server,
//! and close after 2 successful trials once the server is back.
//!
//! Run with `cargo run -p breakerbox-examples --example tower_client`.

use breakerbox_tower::retry::Attempts;
use breakerbox_tower::{
    BreakerConfig, CircuitBreakerLayer, CircuitOpen, RetryConfig, RetryWithBackoffLayer,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// The upstream: 503 while `start + 0.6 s <= now < start + 1.6 s`, 200 otherwise. Counts the
/// requests it receives.
async fn flaky_upstream(start: Instant, hits: Arc<AtomicUsize>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hits = hits.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let t = start.elapsed();
                    let down = t >= Duration::from_millis(600) && t < Duration::from_millis(1600);
                    let status = if down { 503 } else { 200 };
                    async move {
                        let mut response =
                            http::Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                        *response.status_mut() =
                            http::StatusCode::from_u16(status).expect("a status");
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = flaky_upstream(start, hits.clone()).await?;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let breaker = CircuitBreakerLayer::named(
        "flaky",
        BreakerConfig::builder()
            .consecutive_failures(3)
            .open_duration(Duration::from_secs(1))
            .success_threshold(2)
            .build()?,
    );
    let panel = breaker.breaker().clone();
    let retry = RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::from_millis(50))
        .build()?;
    let mut stack = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::named("flaky", retry))
        .buffer(16)
        .rate_limit(1, Duration::from_millis(100)) // one request (or retry) per 100 ms
        .layer(breaker)
        .timeout(Duration::from_millis(500))
        .service(client);

    let url = format!("http://{addr}/v1/items");
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);
    for i in 1..=30 {
        let req = http::Request::get(&url).body(Full::new(Bytes::new()))?;
        let result = stack.ready().await?.call(req).await;
        let at = start.elapsed().as_secs_f64(); // when the answer came back
        let line = match result {
            Ok(response) => {
                let status = response.status();
                let attempts = response.extensions().get::<Attempts>().copied();
                let _body = response.into_body().collect().await?;
                if status.is_success() {
                    ok += 1;
                } else {
                    failed += 1;
                }
                match attempts {
                    Some(a) if a.stopped_by_open_breaker() => {
                        format!(
                            "{status} after {} attempt(s); the breaker opened",
                            a.count()
                        )
                    }
                    Some(a) => format!("{status} after {} attempts", a.count()),
                    None => format!("{status} at the first attempt"),
                }
            }
            Err(err) => match err.downcast_ref::<CircuitOpen>() {
                Some(open) => {
                    rejected += 1;
                    format!("rejected: {open}")
                }
                None => {
                    failed += 1;
                    format!("failed: {err}")
                }
            },
        };
        println!("#{i:<2} {at:>4.1}s  {:<9}  {line}", panel.state().as_str());
    }
    println!(
        "\n{ok} succeeded, {failed} failed, {rejected} rejected without reaching the server; \
         the server saw {} requests",
        hits.load(Ordering::SeqCst)
    );
    println!("the breaker ends {}", panel.state());
    Ok(())
}
