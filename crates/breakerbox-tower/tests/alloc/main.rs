//! The closed path through `CircuitBreaker<S>` allocates nothing and boxes nothing: 10,000
//! calls (poll_ready, call, poll the response future to completion), counted by a global
//! allocator that counts this thread's allocations.

use breakerbox::clock::ManualClock;
use breakerbox::{BreakerConfig, State};
use breakerbox_testing::{Counting, allocations_in};
use breakerbox_tower::CircuitBreaker;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tower::Service;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An upstream answering at once: 200 mostly, a 503 now and then, a 404 sometimes.
#[derive(Clone, Copy)]
struct Upstream {
    calls: u32,
}

impl Service<u32> for Upstream {
    type Response = http::StatusCode;
    type Error = Infallible;
    type Future = std::future::Ready<Result<http::StatusCode, Infallible>>;

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
        std::future::ready(Ok(http::StatusCode::from_u16(code).unwrap()))
    }
}

#[test]
fn ten_thousand_closed_calls_allocate_nothing() {
    let breaker = breakerbox::CircuitBreaker::builder(
        "upstream",
        BreakerConfig::builder()
            .consecutive_failures(5)
            .failure_rate(0.5)
            .count_window(100)
            .build()
            .unwrap(),
    )
    .clock(Arc::new(ManualClock::new()))
    .build();
    let classify = |r: Result<&http::StatusCode, &tower::BoxError>| match r {
        Ok(code) => breakerbox_tower::classify::classify_status(*code),
        Err(e) => breakerbox_tower::classify::classify_error(e),
    };
    let mut svc = CircuitBreaker::with_classifier(Upstream { calls: 0 }, breaker.clone(), classify);
    let mut cx = Context::from_waker(Waker::noop());

    let allocations = allocations_in(|| {
        for i in 0..10_000u32 {
            assert!(svc.poll_ready(&mut cx).is_ready());
            let response = std::pin::pin!(svc.call(i));
            match response.poll(&mut cx) {
                Poll::Ready(Ok(_)) => {}
                other => panic!("call {i}: {other:?}"),
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
