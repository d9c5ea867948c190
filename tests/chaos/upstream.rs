//! The upstreams: one hyper server per host on 127.0.0.1, injecting the script's faults and
//! recording every request it accepts (by the attempt id the client stamped on it).

use crate::script::{Fault, STALL, Script};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The header carrying the client's attempt id.
pub(crate) const ATTEMPT_HEADER: &str = "x-soak-attempt";
/// The id recorded for a request that arrived without one (a violation).
pub(crate) const NO_ID: u64 = u64::MAX;

/// What one upstream saw and did.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    /// Every request accepted: the attempt id and when, in ms since the soak started.
    pub(crate) hits: Mutex<Vec<(u64, u32)>>,
    pub(crate) served: Served,
    /// Connection tasks that ended in a panic.
    pub(crate) panics: AtomicU64,
}

/// Answers by kind.
#[derive(Debug, Default)]
pub(crate) struct Served {
    pub(crate) ok: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) slow_bodies: AtomicU64,
    pub(crate) reset_before_head: AtomicU64,
    pub(crate) reset_mid_body: AtomicU64,
    pub(crate) too_many: AtomicU64,
}

type Body = BoxBody<Bytes, io::Error>;

const PAYLOAD: &[u8] = &[b'x'; 256];

fn full(bytes: &'static [u8]) -> Body {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn respond(status: u16, body: Body) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .body(body)
        .expect("a valid response")
}

impl Upstream {
    /// Binds a port on 127.0.0.1 and serves `host`'s part of the script on `runtime`.
    pub(crate) fn start(
        runtime: &Runtime,
        host: usize,
        script: Script,
        start: Instant,
    ) -> (Arc<Upstream>, SocketAddr) {
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let upstream = Arc::new(Upstream::default());
        let state = upstream.clone();
        runtime.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let state = state.clone();
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                serve(state.clone(), host, script, start, req)
                            });
                            // A connection dropped on purpose ends in an error: expected.
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(joined) = connections.join_next(), if !connections.is_empty() => {
                        if joined.is_err_and(|e| e.is_panic()) {
                            state.panics.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        });
        (upstream, addr)
    }

    /// The ids of every request accepted.
    pub(crate) fn ids(&self) -> Vec<u64> {
        lock(&self.hits).iter().map(|&(id, _)| id).collect()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve(
    state: Arc<Upstream>,
    host: usize,
    script: Script,
    start: Instant,
    req: http::Request<Incoming>,
) -> Result<http::Response<Body>, io::Error> {
    let id = req
        .headers()
        .get(ATTEMPT_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(NO_ID);
    let elapsed = start.elapsed();
    lock(&state.hits).push((id, elapsed.as_millis() as u32));
    // Read the whole request, so that the connection stays usable for the next one.
    req.into_body().collect().await.map_err(io::Error::other)?;
    let served = &state.served;
    let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    match script.fault_at(host, elapsed) {
        None => {
            count(&served.ok);
            Ok(respond(200, full(PAYLOAD)))
        }
        Some(Fault::ServerErrors) => {
            count(&served.server_errors);
            let status = if fastrand::bool() { 503 } else { 500 };
            Ok(respond(status, full(b"{\"error\":\"unavailable\"}")))
        }
        Some(Fault::Stall) if fastrand::u8(0..4) == 0 => {
            count(&served.server_errors);
            Ok(respond(503, full(b"{\"error\":\"unavailable\"}")))
        }
        Some(Fault::Stall) => {
            count(&served.stalled);
            tokio::time::sleep(STALL).await;
            Ok(respond(200, full(PAYLOAD)))
        }
        Some(Fault::SlowBody) => {
            count(&served.slow_bodies);
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, io::Error>::new(1);
            tokio::spawn(async move {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if tx
                        .send_data(Bytes::from_static(&PAYLOAD[..64]))
                        .await
                        .is_err()
                    {
                        return; // the client went away
                    }
                }
            });
            Ok(respond(200, body.boxed()))
        }
        Some(Fault::Resets) => match fastrand::u8(0..10) {
            0..4 => {
                count(&served.reset_before_head);
                // hyper drops the connection without writing a response.
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "injected: dropped before the response head",
                ))
            }
            4..7 => {
                count(&served.reset_mid_body);
                let (mut tx, body) = http_body_util::channel::Channel::<Bytes, io::Error>::new(1);
                tokio::spawn(async move {
                    let _ = tx.send_data(Bytes::from_static(PAYLOAD)).await;
                    // Let the head and the first piece reach the socket, then drop it.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tx.abort(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "injected: dropped mid-body",
                    ));
                });
                let mut response = respond(200, body.boxed());
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(1_024));
                Ok(response)
            }
            _ => {
                count(&served.ok);
                Ok(respond(200, full(PAYLOAD)))
            }
        },
        Some(Fault::TooManyRequests) => {
            count(&served.too_many);
            let mut response = respond(429, full(b"{\"error\":\"rate limited\"}"));
            let after = if fastrand::bool() { "0" } else { "1" };
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static(after),
            );
            Ok(response)
        }
    }
}
