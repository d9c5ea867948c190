//! The cases every breaker benchmark compares, each built as a clonable closure that makes one
//! call through the shared [`driver`](crate::driver): clones share one breaker, so two threads
//! running clones contend on it exactly as two tasks of one client would.

use crate::driver::{Req, drive, upstream};
use crate::peers;
use crate::proxy::Proxy;
use breakerbox::{BoxConfig, BreakerBox, BreakerConfig, CircuitBreaker, Outcome, Target};
use breakerbox_tower::circuit_breaker::TargetOf;
use breakerbox_tower::classify::OkIsSuccess;
use breakerbox_tower::{CircuitBreakerLayer, KeyedCircuitBreakerLayer, TokioClock};
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;

/// One call of a case; `true` when it reached the upstream and succeeded.
pub trait Case: FnMut(Req) -> bool + Clone + Send + 'static {}
impl<F: FnMut(Req) -> bool + Clone + Send + 'static> Case for F {}

/// Long enough that a tripped breaker stays open for the whole run.
const OPEN_FOR: Duration = Duration::from_secs(3600);

/// Which of breakerbox's configurations a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// The targets' configuration: 5 consecutive failures, or a 50% failure rate over the last
    /// 100 calls (at least 10): no rule needs time.
    Default,
    /// A 50% failure rate over a time-based window of 60 s in 60 buckets: every call reads the
    /// clock once.
    TimeWindow,
    /// A 50% slow-call rate (slower than 1 s) over the last 100 calls: every call reads the clock
    /// twice (admission and outcome).
    SlowCall,
}

impl Rules {
    /// The config.
    pub fn config(self) -> BreakerConfig {
        let builder = BreakerConfig::builder()
            .minimum_calls(10)
            .open_duration(OPEN_FOR)
            .open_backoff(2.0, OPEN_FOR);
        match self {
            Rules::Default => builder.consecutive_failures(5).failure_rate(0.5),
            Rules::TimeWindow => builder
                .consecutive_failures(5)
                .failure_rate(0.5)
                .time_window(Duration::from_secs(60), 60),
            Rules::SlowCall => builder
                .consecutive_failures(5)
                .slow_call_rate(0.5, Duration::from_secs(1)),
        }
        .build()
        .expect("a valid bench config")
    }

    /// The label the benchmark ids carry (empty for the default).
    pub fn suffix(self) -> &'static str {
        match self {
            Rules::Default => "",
            Rules::TimeWindow => "_time_window",
            Rules::SlowCall => "_slow_call",
        }
    }
}

/// Whether the case runs closed (every call admitted) or tripped open (every call rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Healthy traffic.
    Closed,
    /// Tripped by failures and open for an hour.
    Open,
}

/// The bare service.
pub fn baseline() -> impl Case {
    let mut svc = upstream(false);
    move |req| drive(&mut svc, req)
}

/// The physical-limit model.
pub fn proxy(path: Path) -> impl Case {
    let mut svc = Proxy::new(upstream(false));
    if path == Path::Open {
        svc.open();
    }
    move |req| drive(&mut svc, req)
}

fn engine_breaker(rules: Rules, path: Path) -> CircuitBreaker {
    let breaker = CircuitBreaker::builder("bench", rules.config())
        .clock(Arc::new(TokioClock::new()))
        .build();
    if path == Path::Open {
        trip(&breaker);
    }
    breaker
}

fn trip(breaker: &CircuitBreaker) {
    while let Ok(permit) = breaker.try_acquire() {
        permit.record(Outcome::Failure);
    }
}

/// The engine alone: `try_acquire` and `record` around the bare service's call.
pub fn engine(rules: Rules, path: Path) -> impl Case {
    let breaker = engine_breaker(rules, path);
    let mut svc = upstream(false);
    move |req| match breaker.try_acquire() {
        Ok(permit) => {
            let ok = drive(&mut svc, req);
            permit.record(if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            });
            ok
        }
        Err(_) => false,
    }
}

/// `CircuitBreaker<S>` from breakerbox-tower, as `CircuitBreakerLayer::from_breaker` builds it
/// (owned breaker handle), classifying `Ok` as a success.
pub fn tower(rules: Rules, path: Path) -> impl Case {
    let layer =
        CircuitBreakerLayer::from_breaker(engine_breaker(rules, path)).classifier(OkIsSuccess);
    let mut svc = layer.layer(upstream(false));
    move |req| drive(&mut svc, req)
}

/// `CircuitBreaker<S>` over a `&'static` engine breaker (no reference count touched per call).
pub fn tower_static(rules: Rules, path: Path) -> impl Case {
    let breaker: &'static CircuitBreaker = Box::leak(Box::new(engine_breaker(rules, path)));
    let mut svc = CircuitBreakerLayer::from_static(breaker)
        .classifier(OkIsSuccess)
        .layer(upstream(false));
    move |req| drive(&mut svc, req)
}

/// The host every keyed case calls.
pub const HOST: &str = "api.spotify.com";

/// A breaker box holding `keys` breakers (hosts `h0.example` …), every rule the default.
pub fn breaker_box(keys: usize, rules: Rules) -> BreakerBox {
    let config = BoxConfig::builder()
        .defaults(rules.config())
        .max_breakers(keys.max(1))
        .build()
        .expect("a valid box config");
    let panel = BreakerBox::builder(config)
        .clock(Arc::new(TokioClock::new()))
        .build();
    for i in 0..keys {
        let host = format!("h{i}.example");
        drop(panel.breaker(&Target::new("https", &host, 443, "/")));
    }
    panel
}

/// The keyed tower breaker over a `BreakerBox`: every call looks its breaker up by host.
pub fn keyed(rules: Rules, path: Path) -> impl Case {
    let panel = breaker_box(0, rules);
    let target = Target::new("https", HOST, 443, "/v1/search");
    if path == Path::Open {
        trip(&panel.breaker(&target));
    }
    let mut svc = KeyedCircuitBreakerLayer::from_box(panel)
        .key(SingleHost)
        .classifier(breakerbox_tower::classify::OkIsSuccess)
        .layer(upstream(false));
    move |req| drive(&mut svc, req)
}

/// Keys every bench request to [`HOST`].
#[derive(Debug, Clone, Copy)]
pub struct SingleHost;

impl TargetOf<Req> for SingleHost {
    fn target<'a>(&self, _: &'a Req) -> Option<Target<'a>> {
        Some(Target::new("https", HOST, 443, "/v1/search"))
    }
}

/// failsafe 1.3 (its default policy: a success rate over a time window, or consecutive
/// failures), through its futures API.
pub fn failsafe(path: Path) -> impl Case {
    let mut svc = peers::Failsafe::new(upstream(false));
    if path == Path::Open {
        svc.trip();
    }
    move |req| drive(&mut svc, req)
}

/// recloser 1.4 (a 50% error rate over the last 100 calls), through `AsyncRecloser`.
pub fn recloser(path: Path) -> impl Case {
    let mut svc = peers::Recloser::new(upstream(false));
    if path == Path::Open {
        svc.trip();
    }
    move |req| drive(&mut svc, req)
}

/// tower-resilience-circuitbreaker 0.14 (a 50% failure rate over the last 100 calls, at least
/// 10), its own tower layer.
pub fn tower_resilience(path: Path) -> impl Case {
    let mut svc = peers::tower_resilience(path == Path::Open);
    move |req| drive(&mut svc, req)
}

/// seatbelt 0.11 (a 50% failure threshold over 60 s, at least 10 calls), its tower `Service`.
pub fn seatbelt(path: Path) -> impl Case {
    let mut svc = peers::seatbelt(path == Path::Open);
    move |req| drive(&mut svc, req)
}
