//! The two front ends under test, each with a layer below its breaker that stamps and counts
//! every attempt that leaves the client:
//!
//! - reqwest: `RetryMiddleware` → `CircuitBreakerMiddleware` → attempt counter → reqwest, whose
//!   DNS sends each real host name to its loopback upstream (`ClientBuilder::resolve`);
//! - tower: `RetryWithBackoffLayer` → `KeyedCircuitBreakerLayer` → `TimeoutLayer` → attempt
//!   counter → hyper-util's legacy `Client`, whose resolver does the same.
//!
//! Both see the real host in the URL, so the breaker box keys its breakers by real host names.

use crate::ledger::{CALL_HEADER, Fate, Ledger};
use crate::script::{ATTEMPT_TIMEOUT, HOSTS, Host, retry_config};
use crate::upstream::ATTEMPT_HEADER;
use breakerbox::{BreakerBox, CircuitOpen};
use breakerbox_reqwest::{CircuitBreakerMiddleware, RetryMiddleware, circuit_open};
use breakerbox_tower::classify::ResponseBody;
use breakerbox_tower::retry::{Attempts, IDEMPOTENCY_KEY};
use breakerbox_tower::{KeyedCircuitBreakerLayer, RetryWithBackoffLayer};
use bytes::Bytes;
use http::{Extensions, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::timeout::TimeoutLayer;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// The HTTP method of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Idempotent: retried.
    Get,
    /// Not idempotent, no `Idempotency-Key`: must be sent at most once.
    Post,
    /// Not idempotent, with an `Idempotency-Key`: retried.
    PostWithKey,
}

/// How a call ended, as its caller saw it.
#[derive(Debug, Clone)]
pub(crate) enum Ended {
    /// A response, whose body was then read to the end or broke off.
    Response {
        status: u16,
        /// The attempts the front end says it made ([`Attempts`]).
        attempts: u32,
        body: BodyEnd,
    },
    /// A typed error before any response.
    Error(ErrorKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    Complete,
    /// The connection dropped (or timed out) mid-body: a typed error from the client.
    Broken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Rejected by an open breaker, which names itself.
    CircuitOpen(String),
    Timeout,
    /// The connection was dropped before the response head.
    Connection,
    /// Anything else: not a typed error the caller could act on (a violation).
    Unexpected(String),
}

type TowerClient =
    BoxCloneService<http::Request<Full<Bytes>>, http::Response<ResponseBody<Incoming>>, BoxError>;

/// A client of one front end; clones share its connections, breakers and retry budget.
#[derive(Clone)]
pub(crate) enum Front {
    Reqwest(ClientWithMiddleware),
    Tower(TowerClient),
}

const POST_BODY: &[u8] = b"{\"query\":\"daft punk\"}";

impl Front {
    /// The reqwest-middleware stack.
    pub(crate) fn reqwest(addrs: &[SocketAddr], ledger: Arc<Ledger>, breakers: BreakerBox) -> Self {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT);
        for (host, addr) in HOSTS.iter().zip(addrs) {
            builder = builder.resolve(host.name, *addr);
        }
        let client = reqwest_middleware::ClientBuilder::new(builder.build().expect("a client"))
            .with(RetryMiddleware::new(retry_config()))
            .with(CircuitBreakerMiddleware::from_box(breakers))
            .with(CountAttempts { ledger })
            .build();
        Front::Reqwest(client)
    }

    /// The tower stack over hyper-util's legacy client.
    pub(crate) fn tower(addrs: &[SocketAddr], ledger: Arc<Ledger>, breakers: BreakerBox) -> Self {
        let table: Arc<HashMap<&'static str, SocketAddr>> = Arc::new(
            HOSTS
                .iter()
                .map(|h| h.name)
                .zip(addrs.iter().copied())
                .collect(),
        );
        let resolver = tower::service_fn(move |name: Name| {
            let addr = table.get(name.as_str()).copied();
            async move {
                addr.map(std::iter::once)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not a soak host"))
            }
        });
        let mut connector = HttpConnector::new_with_resolver(resolver);
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
        let stack = ServiceBuilder::new()
            .layer(RetryWithBackoffLayer::new(retry_config()))
            .layer(KeyedCircuitBreakerLayer::from_box(breakers))
            .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
            .service(CountAttemptsService {
                inner: client,
                ledger,
            });
        Front::Tower(BoxCloneService::new(stack))
    }

    /// Makes call `id` to `host` and reads the response body to its end.
    pub(crate) async fn call(self, id: u64, host: usize, method: Method) -> Ended {
        let host = &HOSTS[host];
        let url = format!("http://{}{}/{id}", host.name, host.path);
        match self {
            Front::Reqwest(client) => call_reqwest(&client, &url, id, method).await,
            Front::Tower(service) => call_tower(service, &url, id, method).await,
        }
    }
}

async fn call_reqwest(client: &ClientWithMiddleware, url: &str, id: u64, method: Method) -> Ended {
    let mut request = match method {
        Method::Get => client.get(url),
        Method::Post => client.post(url).body(POST_BODY),
        Method::PostWithKey => client.post(url).body(POST_BODY).header(IDEMPOTENCY_KEY, id),
    };
    request = request.header(CALL_HEADER, id);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let attempts = response
                .extensions()
                .get::<Attempts>()
                .map_or(1, Attempts::count);
            let body = match response.bytes().await {
                Ok(_) => BodyEnd::Complete,
                Err(_) => BodyEnd::Broken, // a reqwest::Error: typed
            };
            Ended::Response {
                status,
                attempts,
                body,
            }
        }
        Err(err) => Ended::Error(reqwest_error(&err)),
    }
}

fn reqwest_error(err: &reqwest_middleware::Error) -> ErrorKind {
    if let Some(open) = circuit_open(err) {
        return ErrorKind::CircuitOpen(open.breaker().to_owned());
    }
    match err {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => ErrorKind::Timeout,
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() || e.is_request() => {
            ErrorKind::Connection
        }
        other => ErrorKind::Unexpected(format!("{other:?}")),
    }
}

async fn call_tower(service: TowerClient, url: &str, id: u64, method: Method) -> Ended {
    let (verb, body) = match method {
        Method::Get => (http::Method::GET, Bytes::new()),
        Method::Post | Method::PostWithKey => (http::Method::POST, Bytes::from_static(POST_BODY)),
    };
    let mut request = http::Request::builder()
        .method(verb)
        .uri(url)
        .header(CALL_HEADER, id);
    if method == Method::PostWithKey {
        request = request.header(IDEMPOTENCY_KEY, id);
    }
    let request = request.body(Full::new(body)).expect("a valid request");
    match service.oneshot(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let attempts = response
                .extensions()
                .get::<Attempts>()
                .map_or(1, Attempts::count);
            let body = match response.into_body().collect().await {
                Ok(_) => BodyEnd::Complete,
                Err(_) => BodyEnd::Broken, // a hyper::Error: typed
            };
            Ended::Response {
                status,
                attempts,
                body,
            }
        }
        Err(err) => Ended::Error(tower_error(&err)),
    }
}

fn tower_error(err: &BoxError) -> ErrorKind {
    if let Some(open) = err.downcast_ref::<CircuitOpen>() {
        ErrorKind::CircuitOpen(open.breaker().to_owned())
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ErrorKind::Timeout
    } else if err.is::<hyper_util::client::legacy::Error>() {
        ErrorKind::Connection
    } else {
        ErrorKind::Unexpected(format!("{err:?}"))
    }
}

/// The host and call id of an outgoing request.
fn whose(host: Option<&str>, headers: &http::HeaderMap) -> (usize, u64) {
    let host = host
        .and_then(Host::index_of)
        .expect("every call goes to a soak host");
    let call = headers
        .get(CALL_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("every call carries its id");
    (host, call)
}

// === the attempt counters ===

/// reqwest-middleware's attempt counter, innermost: it sees only attempts the breaker admitted.
struct CountAttempts {
    ledger: Arc<Ledger>,
}

#[async_trait::async_trait]
impl Middleware for CountAttempts {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let (host, call) = whose(req.url().host_str(), req.headers());
        let attempt = self.ledger.begin(host, call);
        req.headers_mut()
            .insert(ATTEMPT_HEADER, HeaderValue::from(attempt.id()));
        let result = next.run(req, extensions).await;
        attempt.settle(match &result {
            Ok(_) => Fate::Answered,
            Err(reqwest_middleware::Error::Reqwest(e)) if e.is_timeout() => Fate::Unsettled,
            Err(_) => Fate::Failed,
        });
        result
    }
}

/// The tower attempt counter, between the timeout and the client: a timeout drops its future,
/// which leaves the attempt unsettled.
#[derive(Clone)]
struct CountAttemptsService<S> {
    inner: S,
    ledger: Arc<Ledger>,
}

type AttemptFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Full<Bytes>>> for CountAttemptsService<S>
where
    S: Service<http::Request<Full<Bytes>>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AttemptFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Full<Bytes>>) -> Self::Future {
        let (host, call) = whose(req.uri().host(), req.headers());
        let attempt = self.ledger.begin(host, call);
        req.headers_mut()
            .insert(ATTEMPT_HEADER, HeaderValue::from(attempt.id()));
        let future = self.inner.call(req);
        Box::pin(async move {
            let result = future.await;
            attempt.settle(if result.is_ok() {
                Fate::Answered
            } else {
                Fate::Failed
            });
            result
        })
    }
}
