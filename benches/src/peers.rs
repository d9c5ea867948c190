//! The crates users would pick instead, each wrapped (where it is not a tower middleware itself)
//! in the thinnest `tower::Service` its own async API allows, so that the same driver runs it.
//! Each is configured like breakerbox's default case as far as its rules allow, and tripped by
//! real failures for the open path.

use crate::driver::{Failed, Req, drive, upstream};
use failsafe::failure_policy::{
    ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow, consecutive_failures,
    success_rate_over_time_window,
};
use failsafe::futures::CircuitBreaker as _;
use failsafe::{FailurePolicy as _, backoff};
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Long enough that a tripped breaker stays open for the whole run.
const OPEN_FOR: Duration = Duration::from_secs(3600);

type Upstream = Ready<Result<u64, Failed>>;

// === failsafe ===

type FailsafePolicy =
    OrElse<SuccessRateOverTimeWindow<backoff::Constant>, ConsecutiveFailures<backoff::Constant>>;

/// failsafe's futures-aware `StateMachine` around a service: a 50% success rate over 60 s (at
/// least 10 calls), or 5 consecutive failures.
#[derive(Debug, Clone)]
pub struct Failsafe<S> {
    inner: S,
    breaker: failsafe::StateMachine<FailsafePolicy, ()>,
}

impl<S> Failsafe<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        let policy = success_rate_over_time_window(
            0.5,
            10,
            Duration::from_secs(60),
            backoff::constant(OPEN_FOR),
        )
        .or_else(consecutive_failures(5, backoff::constant(OPEN_FOR)));
        let breaker = failsafe::Config::new().failure_policy(policy).build();
        Self { inner, breaker }
    }

    /// Trips the breaker with failing calls.
    pub fn trip(&self) {
        let mut failing = Failsafe {
            inner: upstream(true),
            breaker: self.breaker.clone(),
        };
        while self.breaker.is_call_permitted() {
            drive(&mut failing, 0);
        }
    }
}

impl<S> Service<Req> for Failsafe<S>
where
    S: Service<Req, Response = u64, Error = Failed, Future = Upstream>,
{
    type Response = u64;
    type Error = failsafe::Error<Failed>;
    type Future = failsafe::futures::ResponseFuture<Upstream, FailsafePolicy, (), failsafe::Any>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(failsafe::Error::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.breaker.call(self.inner.call(req))
    }
}

// === recloser ===

/// recloser's `AsyncRecloser` around a service: a 50% error rate over the last 100 calls.
#[derive(Debug, Clone)]
pub struct Recloser<S> {
    inner: S,
    breaker: recloser::AsyncRecloser,
}

impl<S> Recloser<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        let breaker = recloser::Recloser::custom()
            .error_rate(0.5)
            .closed_len(100)
            .half_open_len(1)
            .open_wait(OPEN_FOR)
            .build();
        Self {
            inner,
            breaker: breaker.into(),
        }
    }

    /// Trips the breaker with failing calls.
    pub fn trip(&self) {
        let mut failing = Recloser {
            inner: upstream(true),
            breaker: self.breaker.clone(),
        };
        // Its ring buffer decides after 100 calls; rejected calls never reach the upstream.
        for _ in 0..200 {
            drive(&mut failing, 0);
        }
    }
}

impl<S> Service<Req> for Recloser<S>
where
    S: Service<Req, Response = u64, Error = Failed, Future = Upstream>,
{
    type Response = u64;
    type Error = recloser::Error<Failed>;
    type Future = recloser::RecloserFuture<Upstream, recloser::AnyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(recloser::Error::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.breaker.call(self.inner.call(req))
    }
}

// === tower-resilience-circuitbreaker ===

/// tower-resilience's `CircuitBreakerLayer` around the upstream: a 50% failure rate over the
/// last 100 calls (at least 10). Each `layer` call makes a new circuit, so when `open` the
/// service is tripped through its own upstream, switched to failing and back (a relaxed load
/// per call, which this case alone pays).
pub fn tower_resilience(
    open: bool,
) -> impl Service<Req, Response = u64, Error = impl std::fmt::Debug> + Clone + Send + 'static {
    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .minimum_number_of_calls(10)
        .wait_duration_in_open(OPEN_FOR)
        .build()
        .expect("a valid tower-resilience config");
    let failing = Arc::new(AtomicBool::new(false));
    let fail = failing.clone();
    let upstream = tower::service_fn(move |req: Req| {
        ready(if fail.load(Ordering::Relaxed) {
            Err(Failed)
        } else {
            Ok(req)
        })
    });
    let mut svc = layer.layer(upstream);
    if open {
        failing.store(true, Ordering::Relaxed);
        for _ in 0..200 {
            drive(&mut svc, 0);
        }
        failing.store(false, Ordering::Relaxed);
    }
    svc
}

// === seatbelt ===

/// seatbelt's `Breaker` (its tower `Service`): a 50% failure threshold over 60 s (at least 10
/// calls), on tokio's clock. Tripped like tower-resilience, through its own upstream.
pub fn seatbelt(
    open: bool,
) -> impl Service<Req, Response = u64, Error = Failed> + Clone + Send + 'static {
    use layered::Layer as _;
    use seatbelt::breaker::Breaker;
    use seatbelt::{RecoveryInfo, ResilienceContext};

    let clock = tick::Clock::new_tokio();
    let context = ResilienceContext::new(&clock);
    let failing = Arc::new(AtomicBool::new(false));
    let fail = failing.clone();
    let upstream = tower::service_fn(move |req: Req| {
        ready(if fail.load(Ordering::Relaxed) {
            Err(Failed)
        } else {
            Ok(req)
        })
    });
    let mut svc = Breaker::layer("bench", &context)
        .recovery_with(|out: &Result<u64, Failed>, _| match out {
            Ok(_) => RecoveryInfo::never(),
            Err(_) => RecoveryInfo::retry(),
        })
        .rejected_input_error(|_, _| Failed)
        .failure_threshold(0.5)
        .min_throughput(10)
        .sampling_duration(Duration::from_secs(60))
        .break_duration(OPEN_FOR)
        .layer(upstream);
    if open {
        failing.store(true, Ordering::Relaxed);
        for _ in 0..200 {
            drive(&mut svc, 0);
        }
        failing.store(false, Ordering::Relaxed);
    }
    svc
}
