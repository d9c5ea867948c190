//! The closed path through `CircuitBreaker<S>` allocates nothing and boxes nothing, its
//! end-of-body recording included: 10,000 HTTP calls (poll_ready, call, poll the response
//! future to completion, read the body to its end), counted by a global allocator that counts
//! this thread's allocations.

use breakerbox::clock::ManualClock;
use breakerbox::{BreakerConfig, State};
use breakerbox_testing::{Counting, allocations_in};
use breakerbox_tower::CircuitBreakerLayer;
use bytes::Bytes;
use http_body::Body;
use http_body_util::Full;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tower::{Layer, Service};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An upstream answering at once: 200 mostly, a 503 now and then, a 404 sometimes.
#[derive(Clone, Copy)]
struct Upstream {
    calls: u32,
}

type Response = http::Response<Full<Bytes>>;

impl Service<u32> for Upstream {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, i: u32) -> Self::Future {
        self.calls += 1;
        let code = match i % 20 {
            0 => 503,
            1 => 404,
            _ => 200,
        };
        let mut response = http::Response::new(Full::new(Bytes::from_static(b"{}")));
        *response.status_mut() = http::StatusCode::from_u16(code).unwrap();
        std::future::ready(Ok(response))
    }
}

#[test]
fn ten_thousand_closed_calls_allocate_nothing() {
    let breaker = breakerbox::CircuitBreaker::builder(
        "upstream",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(5)
            .failure_rate(0.5)
            .count_window(100)
            .build()
            .unwrap(),
    )
    .clock(Arc::new(ManualClock::new()))
    .build();
    let mut svc = CircuitBreakerLayer::from_breaker(breaker.clone()).layer(Upstream { calls: 0 });
    let mut cx = Context::from_waker(Waker::noop());

    let allocations = allocations_in(|| {
        for i in 0..10_000u32 {
            assert!(svc.poll_ready(&mut cx).is_ready());
            let response = std::pin::pin!(svc.call(i));
            let Poll::Ready(Ok(response)) = response.poll(&mut cx) else {
                panic!("call {i} did not complete");
            };
            let mut body = std::pin::pin!(response.into_body());
            while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
                frame.unwrap();
            }
        }
    });
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        svc.get_ref().calls,
        10_000,
        "every call reached the upstream"
    );
    assert_eq!(allocations, 0, "allocations over 10,000 calls");
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}
