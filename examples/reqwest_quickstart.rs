//! The README's reqwest quick start, runnable: one client, a breaker per upstream with the
//! field's thresholds from `examples/scraper.toml`, retries first. Two loopback servers stand in
//! for Spotify (healthy) and MusicBrainz (down), reached by their real host names.
//!
//! Run with `cargo run -p breakerbox-examples --example reqwest_quickstart`.

use breakerbox_reqwest::{
    Attempts, BoxConfig, CircuitBreakerMiddleware, RetryMiddleware, circuit_open,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest_middleware::ClientBuilder;
use std::error::Error;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A loopback server answering every request with `status`.
async fn upstream(status: u16) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    let mut response = http::Response::new(Full::new(Bytes::from_static(b"{}")));
                    *response.status_mut() = http::StatusCode::from_u16(status).expect("a status");
                    Ok::<_, std::convert::Infallible>(response)
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
async fn main() -> Result<(), Box<dyn Error>> {
    let spotify = upstream(200).await?;
    let musicbrainz = upstream(503).await?;

    // One client, a breaker per upstream, each with the field's own thresholds; retries first.
    let config = BoxConfig::from_toml(include_str!("scraper.toml"))?;
    let retry = RetryMiddleware::named("scraper", config.retry().cloned().unwrap_or_default());
    let breakers = CircuitBreakerMiddleware::new(config);
    let panel = breakers.breakers().clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("api.spotify.com", spotify)
        .resolve("musicbrainz.org", musicbrainz)
        .build()?;
    let client = ClientBuilder::new(http).with(retry).with(breakers).build();

    // MusicBrainz is down: its first request fails 3 times (once, then twice retried), which
    // opens its breaker (3 failures in a row), so the next retry is refused and the caller gets
    // the last 503; every later request is rejected without leaving the client.
    for url in [
        "http://api.spotify.com/v1/search?q=daft&type=track",
        "http://musicbrainz.org/ws/2/recording/d8e3d1b3?fmt=json",
        "http://musicbrainz.org/ws/2/recording/0b6b6f5c?fmt=json",
    ] {
        match client.get(url).send().await {
            Ok(response) => {
                let attempts = response.extensions().get::<Attempts>().copied();
                let told = match attempts {
                    Some(a) if a.stopped_by_open_breaker() => {
                        format!("{} attempt(s), then the breaker opened", a.count())
                    }
                    Some(a) => format!("{} attempts", a.count()),
                    None => "the first attempt".to_owned(),
                };
                println!("{url}\n  -> {} after {told}", response.status());
            }
            Err(err) => match circuit_open(&err) {
                Some(open) => println!(
                    "{url}\n  -> rejected by the open {} breaker (retry in {}s)",
                    open.breaker(),
                    open.retry_after().unwrap_or_default().as_secs()
                ),
                None => println!("{url}\n  -> failed: {err}"),
            },
        }
    }
    // healthy / degraded, and the status table
    println!("\n{}\n{panel}", panel.health());
    Ok(())
}
