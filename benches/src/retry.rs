//! The retry pass-through fixtures: a GET, an upstream answering 200 at once, and tower's
//! `Retry` with a policy that never retries.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::Service;
use tower::retry::Policy;

/// The request every variant sends.
pub type Request = http::Request<String>;
/// The response every variant returns.
pub type Response = http::Response<()>;

/// An upstream that answers 200 at once.
#[derive(Debug, Clone, Copy)]
pub struct Upstream;

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
#[derive(Debug, Clone, Copy)]
pub struct NeverRetry;

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

/// A small GET with two headers, built anew for every call (part of every variant's cost).
pub fn request() -> Request {
    http::Request::get("https://api.spotify.com/v1/search?q=artist")
        .header("accept", "application/json")
        .header("authorization", "Bearer abcdefghijklmnopqrstuvwxyz")
        .body(String::new())
        .unwrap()
}

/// Drives one call to completion: every service here is ready and answers at once.
pub fn call<S>(svc: &mut S, req: Request) -> Response
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
