//! The retry layer's pass-through (the first attempt succeeds) against tower's own `Retry` with a
//! policy that never retries, on the same request and the same immediate upstream.
//!
//! `cargo bench -p breakerbox-benches --bench retry_passthrough`

use breakerbox::RetryConfig;
use breakerbox_tower::RetryWithBackoffLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::retry::{Policy, Retry};
use tower::{Layer, Service};

type Request = http::Request<String>;
type Response = http::Response<()>;

/// An upstream that answers 200 at once.
#[derive(Clone, Copy)]
struct Upstream;

impl Service<Request> for Upstream {
    type Response = Response;
    type Error = Infallible;
    type Future = Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        ready(Ok(http::Response::new(())))
    }
}

/// tower's `Retry` with a policy that never retries, but (like every real retry policy) copies
/// the request so that it could.
#[derive(Clone, Copy)]
struct NeverRetry;

impl<E> Policy<Request, Response, E> for NeverRetry {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut Request, _: &mut Result<Response, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, req: &Request) -> Option<Request> {
        let mut copy = http::Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.headers_mut() = req.headers().clone();
        Some(copy)
    }
}

fn request() -> Request {
    http::Request::get("https://api.spotify.com/v1/search?q=artist")
        .header("accept", "application/json")
        .header("authorization", "Bearer abcdefghijklmnopqrstuvwxyz")
        .body(String::new())
        .unwrap()
}

/// Drives one call to completion: every service here is ready and answers at once.
fn call<S>(svc: &mut S, req: Request) -> Response
where
    S: Service<Request, Response = Response>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    match pin!(svc.call(req)).poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        other => panic!(
            "the upstream answers at once: {:?}",
            other.map(|r| r.map(|_| ()))
        ),
    }
}

fn passthrough(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("retry_passthrough");

    let mut bare = Upstream;
    group.bench_function("upstream_alone", |b| {
        b.iter(|| black_box(call(&mut bare, request())))
    });

    let mut tower_retry = Retry::new(NeverRetry, Upstream);
    group.bench_function("tower_retry_never", |b| {
        b.iter(|| black_box(call(&mut tower_retry, request())))
    });

    let no_budget = RetryConfig::builder().without_budget().build().unwrap();
    let mut ours = RetryWithBackoffLayer::new(no_budget).http().layer(Upstream);
    group.bench_function("breakerbox_retry", |b| {
        b.iter(|| black_box(call(&mut ours, request())))
    });

    let mut budgeted = RetryWithBackoffLayer::new(RetryConfig::default())
        .http()
        .layer(Upstream);
    group.bench_function("breakerbox_retry_with_budget", |b| {
        b.iter(|| black_box(call(&mut budgeted, request())))
    });
    group.finish();
}

criterion_group!(benches, passthrough);
criterion_main!(benches);
