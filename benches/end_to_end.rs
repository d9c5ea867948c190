//! End to end: requests per second of a reqwest client at concurrency 32 against a hyper server
//! on 127.0.0.1, bare and with breakerbox's whole reqwest stack (retry middleware, then a
//! breaker per host from a `BreakerBox`). The two run in alternation, several rounds, and each
//! round's rate is printed; the summary gives the medians and their ratio.
//!
//! `cargo bench -p breakerbox-benches --bench end_to_end`
//! (`BREAKERBOX_E2E_ROUNDS` and `BREAKERBOX_E2E_SECS` change the rounds and their length.)
//!
//! On a shared machine the rates are noisy; instructions are not. `BREAKERBOX_E2E_ONLY=bare`
//! (or `breakerbox`, or `noop2`: two middlewares that do nothing, what reqwest-middleware itself
//! costs for a stack of two) with `BREAKERBOX_E2E_REQUESTS=N` makes exactly N requests with one
//! client and nothing else, to run under `valgrind --tool=callgrind` and divide by N.

use breakerbox::{BoxConfig, RetryConfig};
use breakerbox_reqwest::{CircuitBreakerMiddleware, RetryMiddleware};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

const CONCURRENCY: usize = 32;

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"end_to_end".contains(a.as_str()))
    {
        return;
    }
    let rounds: usize = env_or("BREAKERBOX_E2E_ROUNDS", 6);
    let secs: f64 = env_or("BREAKERBOX_E2E_SECS", 2.0);
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the server's runtime");
    let addr = server.block_on(serve());
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the client's runtime");

    let url: Arc<str> = format!("http://{addr}/v1/search").into();
    let bare = ClientBuilder::new(reqwest::Client::new()).build();
    let stacked = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(RetryConfig::default()))
        .with(CircuitBreakerMiddleware::new(BoxConfig::default()))
        .build();
    if let Ok(only) = std::env::var("BREAKERBOX_E2E_ONLY") {
        let requests: u64 = env_or("BREAKERBOX_E2E_REQUESTS", 10_000);
        let noop2 = ClientBuilder::new(reqwest::Client::new())
            .with(Noop)
            .with(Noop)
            .build();
        let client = match only.as_str() {
            "bare" => &bare,
            "breakerbox" => &stacked,
            "noop2" => &noop2,
            other => panic!("BREAKERBOX_E2E_ONLY is bare, breakerbox or noop2, not {other}"),
        };
        client_rt.block_on(count(client, &url, requests));
        println!("end_to_end/{only}: {requests} requests");
        return;
    }
    let (mut bare_rates, mut stack_rates) = (Vec::new(), Vec::new());
    client_rt.block_on(async {
        // Warm both clients' connection pools.
        run(&bare, &url, 0.3).await;
        run(&stacked, &url, 0.3).await;
        for round in 0..rounds {
            // Alternate which goes first, so that neither always runs on a warmer machine.
            let (b, s) = if round % 2 == 0 {
                let b = run(&bare, &url, secs).await;
                (b, run(&stacked, &url, secs).await)
            } else {
                let s = run(&stacked, &url, secs).await;
                (run(&bare, &url, secs).await, s)
            };
            println!(
                "end_to_end round {round}: bare {b:.0} req/s, breakerbox {s:.0} req/s ({:.3}x)",
                s / b
            );
            bare_rates.push(b);
            stack_rates.push(s);
        }
    });
    let (b, s) = (median(&mut bare_rates), median(&mut stack_rates));
    println!(
        "end_to_end/concurrency_{CONCURRENCY}: bare {b:.0} req/s, breakerbox {s:.0} req/s, ratio {:.3} (median of {rounds} rounds of {secs} s)",
        s / b
    );
}

/// Requests per second of `client` at concurrency 32 for `secs` seconds; every answer must be a
/// 200.
async fn run(client: &ClientWithMiddleware, url: &Arc<str>, secs: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = tokio::time::Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, done, stop) =
                (client.clone(), url.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let response = client.get(&*url).send().await.expect("a loopback answer");
                    assert_eq!(response.status(), 200);
                    response.bytes().await.expect("a body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a worker");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// A middleware that only passes the request on.
struct Noop;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Noop {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(req, extensions).await
    }
}

/// Exactly `requests` requests of `client` at concurrency 32; every answer must be a 200.
async fn count(client: &ClientWithMiddleware, url: &Arc<str>, requests: u64) {
    let left = Arc::new(AtomicU64::new(requests));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, left) = (client.clone(), url.clone(), left.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let response = client.get(&*url).send().await.expect("a loopback answer");
                    assert_eq!(response.status(), 200);
                    response.bytes().await.expect("a body");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a worker");
    }
}

/// A hyper HTTP/1.1 server on 127.0.0.1 answering every request `200` with a small JSON body.
async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        br#"{"tracks":{"items":[]}}"#,
                    ))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
