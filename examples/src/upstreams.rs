//! Fake upstreams on loopback: one hyper server per real host, following a fault script.
//!
//! Each server answers its host's paths with small JSON bodies after the route's usual latency,
//! unless the [fault script](crate::faults) says otherwise at that moment, and logs every
//! request it receives with its arrival time: the server side of the story, which the summary
//! and the tests hold against what the client says.

use crate::faults::{FaultKind, FaultScript, SLOW_ANSWER};
use crate::routes::{Host, Route};
use crate::timeline::Timeline;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a `ratelimit` upstream wants between two requests.
pub const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(1);

/// One request as a fake server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The route it belongs to.
    pub route: Route,
    /// A GET of the route's health-check URL rather than scraping traffic.
    pub health_check: bool,
    /// When it arrived, since the start of the run.
    pub at: Duration,
    /// The status the server answered.
    pub status: u16,
}

/// The running fake servers. Dropping this stops them.
#[derive(Debug)]
pub struct Upstreams {
    addrs: Vec<(Host, SocketAddr)>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    script: FaultScript,
    timeline: Timeline,
    log: Mutex<Vec<Hit>>,
    /// For `ratelimit` faults: when each route last let a request through.
    last_served: Mutex<HashMap<Route, Duration>>,
    /// For `overloaded` faults: requests seen, one in four of which is served.
    overloaded: AtomicU64,
}

impl Upstreams {
    /// Starts one server per [`Host`] on `127.0.0.1`, each on a free port.
    pub async fn start(script: FaultScript, timeline: Timeline) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            script,
            timeline,
            log: Mutex::new(Vec::new()),
            last_served: Mutex::new(HashMap::new()),
            overloaded: AtomicU64::new(0),
        });
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for host in Host::ALL {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            addrs.push((host, listener.local_addr()?));
            tasks.push(tokio::spawn(serve(listener, host, shared.clone())));
        }
        Ok(Self {
            addrs,
            shared,
            tasks,
        })
    }

    /// The loopback address serving `host`.
    pub fn addr(&self, host: Host) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, addr)| *addr)
            .expect("a server per host")
    }

    /// Points every real host name of `builder` at its fake server.
    pub fn resolve(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        self.addrs
            .iter()
            .fold(builder, |b, (host, addr)| b.resolve(host.name(), *addr))
    }

    /// Every request the servers have received so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.shared.log).clone()
    }

    /// The fault script the servers follow.
    pub fn script(&self) -> &FaultScript {
        &self.shared.script
    }
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, host: Host, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: let connections close before accepting again.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(shared.clone(), host, req));
            // A client that gives up (a timeout) closes its connection: not an error here.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

impl Shared {
    /// Whether a `ratelimit` route must refuse a request arriving `at`; if not, it counts as
    /// served.
    fn too_soon(&self, route: Route, at: Duration) -> bool {
        let mut last = lock(&self.last_served);
        match last.get(&route) {
            Some(&prev) if at < prev + RATE_LIMIT_INTERVAL => true,
            _ => {
                last.insert(route, at);
                false
            }
        }
    }
}

async fn answer(
    shared: Arc<Shared>,
    host: Host,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = shared.timeline.elapsed();
    let Some((route, health_check)) = host.route(req.uri().path()) else {
        return Ok(json(StatusCode::NOT_FOUND, r#"{"error":"no such page"}"#));
    };
    let expected = match route {
        Route::GoogleAiText | Route::GoogleAiVision | Route::GoogleAiImagen if !health_check => {
            Method::POST
        }
        _ => Method::GET,
    };
    if req.method() != expected {
        return Ok(json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method not allowed"}"#,
        ));
    }
    let quick = Duration::from_millis(5);
    let (status, delay, retry_after): (StatusCode, Duration, Option<&'static str>) =
        match shared.script.active(route, at) {
            None => (StatusCode::OK, route.latency(), None),
            Some(FaultKind::Down) => (StatusCode::SERVICE_UNAVAILABLE, quick, None),
            Some(FaultKind::Error) => (StatusCode::INTERNAL_SERVER_ERROR, route.latency(), None),
            Some(FaultKind::Slow) => (StatusCode::OK, SLOW_ANSWER, None),
            Some(FaultKind::RateLimit) if shared.too_soon(route, at) => {
                (StatusCode::SERVICE_UNAVAILABLE, quick, Some("1"))
            }
            Some(FaultKind::RateLimit) => (StatusCode::OK, route.latency(), None),
            Some(FaultKind::RetryAfter) => (StatusCode::TOO_MANY_REQUESTS, quick, Some("2")),
            Some(FaultKind::Overloaded)
                if shared.overloaded.fetch_add(1, Ordering::Relaxed) % 4 != 0 =>
            {
                (StatusCode::TOO_MANY_REQUESTS, quick, None)
            }
            Some(FaultKind::Overloaded) => (StatusCode::OK, route.latency(), None),
        };
    lock(&shared.log).push(Hit {
        route,
        health_check,
        at,
        status: status.as_u16(),
    });
    drop(req);
    tokio::time::sleep(delay).await;
    let mut response = json(
        status,
        body(route, health_check, status, retry_after.is_some()),
    );
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static(after));
    }
    Ok(response)
}

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A small body in the shape of the real API's answer.
fn body(route: Route, health_check: bool, status: StatusCode, rate_limited: bool) -> &'static str {
    if rate_limited {
        return r#"{"error":"Your requests are exceeding the allowable rate limit (1 per second)."}"#;
    }
    match (status, route) {
        (StatusCode::TOO_MANY_REQUESTS, _) => {
            r#"{"error":{"status":429,"message":"API rate limit exceeded"}}"#
        }
        (StatusCode::INTERNAL_SERVER_ERROR, _) => {
            r#"{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}"#
        }
        (StatusCode::SERVICE_UNAVAILABLE, _) => {
            r#"{"error":{"status":503,"message":"Service unavailable"}}"#
        }
        _ if health_check => r#"{"status":"ok"}"#,
        (_, Route::Espn) => {
            r#"{"events":[{"name":"Kansas City Chiefs at Buffalo Bills","status":{"type":{"completed":false}}}]}"#
        }
        (_, Route::Spotify) => {
            r#"{"tracks":{"items":[{"name":"One More Time","artists":[{"name":"Daft Punk"}],"popularity":79}]}}"#
        }
        (_, Route::Musicbrainz) => {
            r#"{"id":"d8e3d1b3-7fd3-4c5a-8a36-8a8a4d1a2c5e","title":"One More Time","length":320357}"#
        }
        (_, Route::Lastfm) => {
            r#"{"track":{"name":"One More Time","listeners":"1234567","playcount":"9876543"}}"#
        }
        (_, Route::GoogleAiText) => {
            r#"{"candidates":[{"content":{"parts":[{"text":"A French house single from 2000."}]}}]}"#
        }
        (_, Route::GoogleAiVision) => {
            r#"{"candidates":[{"content":{"parts":[{"text":"Two robots in helmets."}]}}]}"#
        }
        (_, Route::GoogleAiImagen) => {
            r#"{"predictions":[{"mimeType":"image/png","bytesBase64Encoded":"iVBORw0KGgo="}]}"#
        }
    }
}
