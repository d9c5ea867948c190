//! The status server: `/metrics`, `/health` and `/breakers` on a local port.
//!
//! - `/metrics`: every metric in Prometheus' text format, rendered by
//!   `metrics-exporter-prometheus` from the recorder the breakers and the retry middleware
//!   publish to.
//! - `/health`: `200` while every breaker is closed, `503` naming the failing ones otherwise;
//!   the body is the box's health summary as JSON.
//! - `/breakers`: the JSON snapshot of every breaker.

use breakerbox_reqwest::BreakerBox;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The histogram buckets of `circuit_breaker_call_duration_seconds`, in seconds.
pub const CALL_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the global `metrics` recorder, once per process, and
/// returns its handle. Call it before building breakers: their metric handles come from the
/// recorder installed when they are built.
///
/// # Errors
///
/// If another global recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    if let Some(handle) = RECORDER.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("circuit_breaker_call_duration_seconds".into()),
            &CALL_DURATION_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(RECORDER.get_or_init(|| handle).clone())
}

/// The HELP lines of the metrics.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 half_open, 2 open"
    );
    describe_counter!(
        "circuit_breaker_calls_total",
        "Calls through a circuit breaker, by result: success, failure, rejected (by an open breaker), ignored"
    );
    describe_counter!(
        "circuit_breaker_transitions_total",
        "Circuit breaker state changes, by the states left (from) and entered (to)"
    );
    describe_histogram!(
        "circuit_breaker_call_duration_seconds",
        Unit::Seconds,
        "Call duration from admission by the breaker to the outcome, by result"
    );
    describe_counter!("retry_attempts_total", "Retries, by reason");
    describe_counter!(
        "retry_exhausted_total",
        "Requests that still failed after their last attempt"
    );
    describe_counter!(
        "retry_budget_rejected_total",
        "Retries the retry budget refused"
    );
}

/// The running status server. Dropping it stops it.
#[derive(Debug)]
pub struct StatusServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StatusServer {
    /// Serves the status pages of `breakers` and the metrics of `metrics` on `listener`.
    pub fn start(listener: TcpListener, breakers: BreakerBox, metrics: PrometheusHandle) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let (breakers, metrics) = (breakers.clone(), metrics.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let response = page(&req, &breakers, &metrics);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1:port`; if that port is taken, any free port (`port` 0 always means that).
/// Returns the listener and whether it got the port asked for.
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, bool)> {
    match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => Ok((listener, true)),
        Err(e) if port != 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
            Ok((TcpListener::bind(("127.0.0.1", 0)).await?, false))
        }
        Err(e) => Err(e),
    }
}

fn page(
    req: &Request<Incoming>,
    breakers: &BreakerBox,
    metrics: &PrometheusHandle,
) -> Response<Full<Bytes>> {
    const JSON: &str = "application/json";
    match req.uri().path() {
        "/metrics" => {
            // Breakers count calls per thread and publish them in batches: publish the rest
            // so that every scrape is exact.
            breakers.flush_metrics();
            respond(StatusCode::OK, "text/plain; version=0.0.4", metrics.render())
        }
        "/health" => {
            let health = breakers.health();
            let status = if health.is_healthy() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(status, JSON, to_json(&health))
        }
        "/breakers" => respond(StatusCode::OK, JSON, to_json(&breakers.snapshot())),
        "/" => respond(
            StatusCode::OK,
            "text/plain",
            "breakerbox scraper demo\n\n/metrics   Prometheus metrics\n/health    200 when every breaker is closed, 503 naming the failing ones\n/breakers  every breaker's state (JSON)\n".to_owned(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("snapshots serialize");
    text.push('\n');
    text
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
