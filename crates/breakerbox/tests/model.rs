//! Model-based test of the circuit breaker: random configs and random sequences of operations
//! run against the real engine and against a small reference model written here (plain fields,
//! a `Vec` for the window, no atomics), and every observable must agree after every step.
//!
//! The model follows the breaker's documented semantics. Where the docs leave a detail open,
//! the model states the rule it picked in a comment (look for "Rule:").
#![cfg(not(loom))] // loom's atomics only work inside `loom::model`

use breakerbox::clock::ManualClock;
use breakerbox::{
    BreakerConfig, CircuitBreaker, Outcome, OwnedPermit, ProbeTicket, State, TransitionEvent,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MS: u64 = 1_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// === config ===

/// A rate threshold as an exact fraction, so the model compares integers.
#[derive(Debug, Clone, Copy)]
struct Rate {
    num: u64,
    den: u64,
}

impl Rate {
    fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `n / calls >= num / den`, exactly.
    fn reached(self, n: u64, calls: u64) -> bool {
        n * self.den >= self.num * calls
    }
}

#[derive(Debug, Clone, Copy)]
enum WindowCfg {
    Count { size: u32 },
    Time { millis: u64, buckets: u32 },
}

/// Everything the test chooses about a breaker; all durations in milliseconds.
#[derive(Debug, Clone)]
struct Cfg {
    consecutive: Option<u32>,
    failure_rate: Option<Rate>,
    slow_rate: Option<Rate>,
    slow_ms: u64,
    minimum_calls: u32,
    window: WindowCfg,
    open_ms: u64,
    multiplier: f64,
    max_open_ms: u64,
    half_open_max: u32,
    success_threshold: u32,
    probe_ms: Option<u64>,
    /// `max_half_open_wait`.
    half_open_wait_ms: u64,
    /// `consecutive_failures_span`.
    span_ms: u64,
    histogram: bool,
    /// Where the clock stands when the breaker is built.
    start_ms: u64,
}

impl Cfg {
    /// A config with only the consecutive-failures rule, for hand-written sequences.
    fn consecutive(n: u32) -> Self {
        Cfg {
            consecutive: Some(n),
            failure_rate: None,
            slow_rate: None,
            slow_ms: 1000,
            minimum_calls: 1,
            window: WindowCfg::Count { size: 4 },
            open_ms: 1000,
            multiplier: 2.0,
            max_open_ms: 4000,
            half_open_max: 1,
            success_threshold: 1,
            probe_ms: None,
            half_open_wait_ms: 120_000,
            span_ms: 0,
            histogram: false,
            start_ms: 0,
        }
    }

    fn breaker_config(&self) -> BreakerConfig {
        let mut b = BreakerConfig::builder();
        b = match self.consecutive {
            Some(n) => b.consecutive_failures(n),
            None => b.no_consecutive_failures(),
        };
        if let Some(r) = self.failure_rate {
            b = b.failure_rate(r.as_f64());
        }
        if let Some(r) = self.slow_rate {
            b = b.slow_call_rate(r.as_f64(), ms(self.slow_ms));
        }
        b = match self.window {
            WindowCfg::Count { size } => b.count_window(size),
            WindowCfg::Time { millis, buckets } => b.time_window(ms(millis), buckets),
        };
        b = b
            .minimum_calls(self.minimum_calls)
            .open_duration(ms(self.open_ms))
            .open_backoff(self.multiplier, ms(self.max_open_ms))
            .half_open_max_calls(self.half_open_max)
            .success_threshold(self.success_threshold)
            .max_half_open_wait(ms(self.half_open_wait_ms))
            .consecutive_failures_span(ms(self.span_ms));
        if let Some(p) = self.probe_ms {
            b = b.probe_interval(ms(p));
        }
        b.build().expect("the generated config is valid")
    }

    fn has_window(&self) -> bool {
        self.failure_rate.is_some() || self.slow_rate.is_some()
    }
}

fn rate() -> impl Strategy<Value = Rate> {
    prop_oneof![
        Just(Rate { num: 1, den: 5 }),
        Just(Rate { num: 1, den: 4 }),
        Just(Rate { num: 1, den: 2 }),
        Just(Rate { num: 3, den: 4 }),
        Just(Rate { num: 1, den: 1 }),
    ]
}

fn window_cfg() -> impl Strategy<Value = WindowCfg> {
    prop_oneof![
        (1u32..=6).prop_map(|size| WindowCfg::Count { size }),
        // Durations divisible by the bucket count: buckets of whole milliseconds.
        (
            prop::sample::select(vec![1000u64, 2000, 4000]),
            prop::sample::select(vec![1u32, 2, 4, 5])
        )
            .prop_map(|(millis, buckets)| WindowCfg::Time { millis, buckets }),
    ]
}

fn cfg() -> impl Strategy<Value = Cfg> {
    let rules = (
        prop::option::of(1u32..=4),
        prop::option::of(rate()),
        prop::option::of(rate()),
        prop::sample::select(vec![100u64, 500, 2000]),
        1u32..=6,
        window_cfg(),
    );
    let open = (
        prop::sample::select(vec![1000u64, 2000, 5000]),
        prop::sample::select(vec![1.0f64, 1.5, 2.0, 3.0]),
        prop::sample::select(vec![1u64, 2, 4, 10]),
        1u32..=4,
        1u32..=4,
        prop::option::of(prop::sample::select(vec![300u64, 1000, 3000])),
        (
            prop::sample::select(vec![500u64, 2000, 120_000]),
            prop::sample::select(vec![0u64, 0, 300, 1000]),
        ),
        any::<bool>(),
        prop::sample::select(vec![0u64, 7, 1000, 123_456]),
    );
    (rules, open).prop_map(
        |(
            (consecutive, failure_rate, slow_rate, slow_ms, minimum_calls, window),
            (
                open_ms,
                multiplier,
                max_factor,
                half_open_max,
                success_threshold,
                probe_ms,
                (half_open_wait_ms, span_ms),
                histogram,
                start_ms,
            ),
        )| {
            let mut c = Cfg {
                consecutive,
                failure_rate,
                slow_rate,
                slow_ms,
                minimum_calls,
                window,
                open_ms,
                multiplier,
                max_open_ms: open_ms * max_factor,
                half_open_max,
                success_threshold,
                probe_ms,
                half_open_wait_ms,
                span_ms,
                histogram,
                start_ms,
            };
            if c.consecutive.is_none() && !c.has_window() {
                c.consecutive = Some(2);
            }
            if let WindowCfg::Count { size } = c.window {
                // Validation: the rate rules must be able to fire.
                c.minimum_calls = c.minimum_calls.min(size);
            }
            c
        },
    )
}

// === operations ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Succeeded,
    Failed,
    Dropped,
}

/// A clock target for [`Op::AdvanceTo`], read from the model.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// The end of the Open period.
    OpenUntil,
    /// When the next probe is due.
    ProbeDue,
    /// When the oldest outstanding permit becomes a slow call.
    Slow,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Record an outcome on outstanding permit `index % len`.
    Record(usize, Outcome),
    /// Drop outstanding permit `index % len` without an outcome.
    Drop(usize),
    /// Advance the clock, in nanoseconds.
    Advance(u64),
    /// Advance the clock to a deadline the model knows, plus -1, 0 or +1 ns (never backwards).
    AdvanceTo(Deadline, i8),
    ForceOpen,
    Disable,
    MetricsOnly,
    Reset,
    ProbeDue,
    /// Report on outstanding probe ticket `index % len`.
    Probe(usize, Report),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        9 => Just(Outcome::Success),
        9 => Just(Outcome::Failure),
        2 => Just(Outcome::Ignored),
    ]
}

fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        4 => 1u64..=1000,                     // below a millisecond
        4 => (1u64..=300).prop_map(|n| n * MS), // short: within a bucket or a slow-call duration
        4 => (300u64..=3000).prop_map(|n| n * MS),
        4 => (1u64..=120).prop_map(|n| n * 1000 * MS), // whole open durations, up to past the cap
        // Idle for long enough that a time window's bucket tags (4096 buckets) wrap around.
        1 => (800u64..=20_000).prop_map(|n| n * 1000 * MS),
    ]
}

/// The operations of one case. Half the cases leave the administrative modes out: a mode
/// holds the breaker until the next mode or reset, and would crowd out the automatic states.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    any::<bool>().prop_flat_map(|admin| prop::collection::vec(op(admin), 1..=60))
}

fn op(admin: bool) -> BoxedStrategy<Op> {
    let calls = prop_oneof![
        20 => Just(Op::Acquire),
        20 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Record(i, o)),
        3 => any::<usize>().prop_map(Op::Drop),
        10 => advance().prop_map(Op::Advance),
        5 => (
            prop_oneof![
                2 => Just(Deadline::OpenUntil),
                2 => Just(Deadline::ProbeDue),
                1 => Just(Deadline::Slow)
            ],
            -1i8..=1
        )
            .prop_map(|(d, off)| Op::AdvanceTo(d, off)),
        6 => Just(Op::ProbeDue),
        6 => (
            any::<usize>(),
            prop_oneof![
                2 => Just(Report::Succeeded),
                1 => Just(Report::Failed),
                1 => Just(Report::Dropped)
            ]
        )
            .prop_map(|(i, r)| Op::Probe(i, r)),
    ];
    if !admin {
        return calls.boxed();
    }
    prop_oneof![
        70 => calls,
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::MetricsOnly),
        2 => Just(Op::Reset),
    ]
    .boxed()
}

// === the reference model ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Admitted in Closed or MetricsOnly.
    Closed,
    /// Admitted in HalfOpen, holding a trial slot.
    Trial,
    /// Admitted while disabled: records nothing.
    Disabled,
}

#[derive(Debug, Clone, Copy)]
struct MPermit {
    kind: Kind,
    /// The model's generation at admission: any transition since makes the permit stale.
    generation: u64,
    admitted_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Count window: unused. Time window: the index of the bucket it was recorded in.
    bucket: u64,
    failure: bool,
    slow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    calls: u64,
    failures: u64,
    slow: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Event {
    from: State,
    to: State,
    reason: &'static str,
    at: Duration,
}

#[derive(Debug)]
struct Model {
    cfg: Cfg,
    now: u64,
    state: State,
    /// Bumped by every transition (including a reset of a Closed breaker).
    generation: u64,
    /// Failures in a row. Rule: counted in Closed and MetricsOnly whether or not the rule is on,
    /// cleared on entering Closed or MetricsOnly, frozen in every other state.
    run: u32,
    /// Oldest first. Rule: cleared on entering Closed or MetricsOnly like `run`.
    window: Vec<Sample>,
    open_until: u64,
    /// The open duration of the current or last Open period (before jitter; jitter is off).
    open_duration: Duration,
    trips: u64,
    in_flight: u32,
    successes: u32,
    probe_due_at: u64,
    /// The running probe's claim: when it expires (0: none). Rule: a probe that has not
    /// reported within its timeout (the probe interval) no longer blocks the next one, and only
    /// the claim still held frees or reschedules.
    probe_claim: u64,
    /// When the current HalfOpen period began.
    half_open_since: u64,
    /// When the current run of failures began.
    run_started: u64,
    events: Vec<Event>,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        Model {
            now: cfg.start_ms * MS,
            state: State::Closed,
            generation: 0,
            run: 0,
            window: Vec::new(),
            open_until: 0,
            open_duration: ms(cfg.open_ms),
            trips: 0,
            in_flight: 0,
            successes: 0,
            probe_due_at: u64::MAX,
            probe_claim: 0,
            half_open_since: 0,
            run_started: 0,
            events: Vec::new(),
            cfg,
        }
    }

    fn bucket_nanos(&self) -> u64 {
        match self.cfg.window {
            WindowCfg::Count { .. } => 1,
            WindowCfg::Time { millis, buckets } => millis * MS / u64::from(buckets),
        }
    }

    /// The window's counts now: a count window holds its last `size` samples, a time window the
    /// samples of the current bucket and the `buckets - 1` before it.
    fn counts(&self) -> Counts {
        let mut c = Counts::default();
        if !self.cfg.has_window() {
            return c;
        }
        let current = self.now / self.bucket_nanos();
        for s in &self.window {
            let live = match self.cfg.window {
                WindowCfg::Count { .. } => true,
                WindowCfg::Time { buckets, .. } => s.bucket + u64::from(buckets) > current,
            };
            if live {
                c.calls += 1;
                c.failures += u64::from(s.failure);
                c.slow += u64::from(s.slow);
            }
        }
        c
    }

    fn record_sample(&mut self, failure: bool, slow: bool) {
        if !self.cfg.has_window() {
            return;
        }
        let bucket = self.now / self.bucket_nanos();
        self.window.push(Sample {
            bucket,
            failure,
            slow,
        });
        if let WindowCfg::Count { size } = self.cfg.window {
            while self.window.len() > size as usize {
                self.window.remove(0);
            }
        }
    }

    /// Whether a call admitted at `admitted_at` and finishing now is slow. Only a slow-call
    /// rule makes a call slow.
    fn is_slow(&self, admitted_at: u64) -> bool {
        self.cfg.slow_rate.is_some() && self.now - admitted_at >= self.cfg.slow_ms * MS
    }

    /// min(current × multiplier, max).
    fn grown(&self) -> Duration {
        let max = ms(self.cfg.max_open_ms);
        let grown = self.open_duration.as_secs_f64() * self.cfg.multiplier;
        if grown >= max.as_secs_f64() {
            max
        } else {
            Duration::from_secs_f64(grown)
        }
    }

    fn transition(&mut self, to: State, reason: &'static str) {
        let from = self.state;
        self.generation += 1;
        match to {
            State::Open => {
                // Rule: the first trip from Closed opens for the base duration; each re-trip
                // from HalfOpen grows the last one.
                self.open_duration = if from == State::HalfOpen {
                    self.grown()
                } else {
                    ms(self.cfg.open_ms)
                };
                self.open_until = self.now + self.open_duration.as_nanos() as u64;
                if let Some(p) = self.cfg.probe_ms {
                    self.probe_due_at = self.now + p * MS;
                }
                self.trips += 1;
            }
            State::Closed | State::MetricsOnly => {
                self.open_duration = ms(self.cfg.open_ms);
                self.run = 0;
                self.window.clear();
            }
            State::HalfOpen => self.half_open_since = self.now,
            _ => {}
        }
        self.state = to;
        self.in_flight = 0;
        self.successes = 0;
        if from != to {
            self.events.push(Event {
                from,
                to,
                reason,
                at: Duration::from_nanos(self.now),
            });
        }
    }

    /// `Err((state, retry_after))` on rejection.
    fn acquire(&mut self) -> Result<MPermit, (State, Option<Duration>)> {
        let kind = match self.state {
            State::Closed | State::MetricsOnly => Kind::Closed,
            State::Disabled => Kind::Disabled,
            State::ForcedOpen => return Err((State::ForcedOpen, None)),
            State::Open if self.now < self.open_until => {
                let left = Duration::from_nanos(self.open_until - self.now);
                return Err((State::Open, Some(left)));
            }
            State::Open | State::HalfOpen => {
                if self.state == State::Open {
                    // Lazily: the first call at or after the end of the open period.
                    self.transition(State::HalfOpen, "open_duration_elapsed");
                }
                if self.in_flight >= self.cfg.half_open_max {
                    // Rule: trials that hold every slot past `max_half_open_wait` are given up
                    // on: Closed if one had succeeded, Open again (grown) otherwise.
                    if self.now - self.half_open_since >= self.cfg.half_open_wait_ms * MS {
                        let to = if self.successes > 0 {
                            State::Closed
                        } else {
                            State::Open
                        };
                        self.transition(to, "half_open_wait_elapsed");
                        return self.acquire();
                    }
                    return Err((State::HalfOpen, None));
                }
                self.in_flight += 1;
                Kind::Trial
            }
        };
        Ok(MPermit {
            kind,
            generation: self.generation,
            admitted_at: self.now,
        })
    }

    /// A permit ends with an outcome, or `None` when dropped without one.
    fn finish(&mut self, permit: MPermit, outcome: Option<Outcome>) {
        if permit.kind == Kind::Disabled || permit.generation != self.generation {
            return; // disabled records nothing; a permit from before a transition is stale
        }
        let slow = self.is_slow(permit.admitted_at);
        match permit.kind {
            Kind::Closed => {
                let failure = match outcome {
                    Some(Outcome::Success) => false,
                    Some(Outcome::Failure) => true,
                    Some(Outcome::Ignored) | None => return,
                };
                if failure {
                    if self.run == 0 {
                        self.run_started = self.now;
                    }
                    self.run += 1;
                } else {
                    self.run = 0;
                }
                self.record_sample(failure, slow);
                if self.state == State::MetricsOnly {
                    return;
                }
                // Rule: a run trips once it is long enough and has lasted the span.
                // (A rule of 1 has nothing to span.)
                if self.cfg.consecutive.is_some_and(|n| {
                    self.run >= n
                        && (n == 1 || self.now - self.run_started >= self.cfg.span_ms * MS)
                }) {
                    self.transition(State::Open, "consecutive_failures");
                    return;
                }
                let c = self.counts();
                if !self.cfg.has_window() || c.calls < u64::from(self.cfg.minimum_calls) {
                    return;
                }
                if self
                    .cfg
                    .failure_rate
                    .is_some_and(|r| r.reached(c.failures, c.calls))
                {
                    self.transition(State::Open, "failure_rate");
                } else if self
                    .cfg
                    .slow_rate
                    .is_some_and(|r| r.reached(c.slow, c.calls))
                {
                    self.transition(State::Open, "slow_call_rate");
                }
            }
            Kind::Trial => match outcome {
                None | Some(Outcome::Ignored) => self.in_flight -= 1,
                // A slow trial counts as a failure: the upstream is not back while too slow.
                Some(Outcome::Failure) => self.transition(State::Open, "trial_failed"),
                Some(Outcome::Success) if slow => self.transition(State::Open, "trial_failed"),
                Some(Outcome::Success) => {
                    self.successes += 1;
                    if self.successes >= self.cfg.success_threshold {
                        self.transition(State::Closed, "trials_succeeded");
                    } else {
                        self.in_flight -= 1;
                    }
                }
            },
            Kind::Disabled => unreachable!("handled above"),
        }
    }

    /// The generation and claim of a probe that is due.
    fn probe_due(&mut self) -> Option<(u64, u64)> {
        let every = self.cfg.probe_ms? * MS;
        let running = self.probe_claim != 0 && self.now < self.probe_claim;
        let due = self.state == State::Open
            && self.now >= self.probe_due_at
            && self.now < self.open_until
            && !running;
        if !due {
            return None;
        }
        // The timeout is the probe interval (the default).
        self.probe_claim = (self.now + every).max(1);
        self.probe_due_at = self.now + every;
        Some((self.generation, self.probe_claim))
    }

    fn finish_probe(&mut self, generation: u64, claim: u64, healthy: bool) {
        // Only moves the breaker if it is still in the Open period the probe was claimed in.
        if healthy && self.state == State::Open && self.generation == generation {
            self.transition(State::HalfOpen, "probe_succeeded");
        }
        if self.probe_claim == claim {
            self.probe_claim = 0;
            if !healthy {
                if let Some(p) = self.cfg.probe_ms {
                    self.probe_due_at = self.now + p * MS;
                }
            }
        }
    }

    fn retry_in(&self) -> Option<Duration> {
        (self.state == State::Open)
            .then(|| Duration::from_nanos(self.open_until.saturating_sub(self.now)))
    }

    fn next_probe_in(&self) -> Option<Duration> {
        self.cfg.probe_ms?;
        if self.state != State::Open || self.probe_due_at >= self.open_until {
            return None;
        }
        Some(Duration::from_nanos(
            self.probe_due_at.saturating_sub(self.now),
        ))
    }
}

// === the runner ===

/// Runs `ops` against a fresh engine and a fresh model with `cfg`, checking every observable
/// after every step.
fn run(cfg: &Cfg, ops: &[Op]) -> Result<Model, TestCaseError> {
    let clock = ManualClock::new();
    clock.advance(ms(cfg.start_ms));
    let seen: Arc<Mutex<Vec<TransitionEvent>>> = Arc::default();
    let sink = seen.clone();
    let breaker = CircuitBreaker::builder("model", cfg.breaker_config())
        .clock(Arc::new(clock.clone()))
        .call_duration_histogram(cfg.histogram)
        .listener(move |e| sink.lock().unwrap().push(e.clone()))
        .build();
    let mut model = Model::new(cfg.clone());
    let mut permits: Vec<(OwnedPermit, MPermit)> = Vec::new();
    let mut probes: Vec<(ProbeTicket, (u64, u64))> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire => {
                let real = breaker.try_acquire_owned();
                let expected = model.acquire();
                match (real, expected) {
                    (Ok(permit), Ok(m)) => {
                        prop_assert_eq!(permit.is_trial(), m.kind == Kind::Trial, "step {}", step);
                        permits.push((permit, m));
                    }
                    (Err(e), Err((state, retry_after))) => {
                        prop_assert_eq!(e.state(), state, "step {}: rejecting state", step);
                        prop_assert_eq!(e.retry_after(), retry_after, "step {}", step);
                        prop_assert_eq!(e.breaker(), "model");
                    }
                    (real, expected) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: admission differs: engine {:?}, model {:?}",
                            real.map(|p| p.is_trial()),
                            expected.map(|m| m.kind)
                        )));
                    }
                }
            }
            Op::Record(i, outcome) => {
                if !permits.is_empty() {
                    let (permit, m) = permits.remove(i % permits.len());
                    permit.record(outcome);
                    model.finish(m, Some(outcome));
                }
            }
            Op::Drop(i) => {
                if !permits.is_empty() {
                    let (permit, m) = permits.remove(i % permits.len());
                    drop(permit);
                    model.finish(m, None);
                }
            }
            Op::Advance(nanos) => {
                clock.advance(Duration::from_nanos(nanos));
                model.now += nanos;
            }
            Op::AdvanceTo(deadline, offset) => {
                let target = match deadline {
                    Deadline::OpenUntil => Some(model.open_until),
                    Deadline::ProbeDue => {
                        (model.probe_due_at != u64::MAX).then_some(model.probe_due_at)
                    }
                    Deadline::Slow => permits
                        .first()
                        .map(|(_, m)| m.admitted_at + cfg.slow_ms * MS),
                };
                if let Some(target) = target {
                    let to = target
                        .saturating_add_signed(i64::from(offset))
                        .max(model.now);
                    clock.advance(Duration::from_nanos(to - model.now));
                    model.now = to;
                }
            }
            Op::ForceOpen => {
                breaker.force_open();
                if model.state != State::ForcedOpen {
                    model.transition(State::ForcedOpen, "forced_open");
                }
            }
            Op::Disable => {
                breaker.disable();
                if model.state != State::Disabled {
                    model.transition(State::Disabled, "disabled");
                }
            }
            Op::MetricsOnly => {
                breaker.metrics_only();
                if model.state != State::MetricsOnly {
                    model.transition(State::MetricsOnly, "metrics_only");
                }
            }
            Op::Reset => {
                breaker.reset();
                model.transition(State::Closed, "reset");
            }
            Op::ProbeDue => {
                let real = breaker.probe_due();
                let expected = model.probe_due();
                prop_assert_eq!(
                    real.is_some(),
                    expected.is_some(),
                    "step {}: probe due",
                    step
                );
                if let (Some(ticket), Some(claim)) = (real, expected) {
                    probes.push((ticket, claim));
                }
            }
            Op::Probe(i, report) => {
                if !probes.is_empty() {
                    let (ticket, (generation, claim)) = probes.remove(i % probes.len());
                    match report {
                        Report::Succeeded => ticket.succeeded(),
                        Report::Failed => ticket.failed(),
                        Report::Dropped => drop(ticket),
                    }
                    model.finish_probe(generation, claim, report == Report::Succeeded);
                }
            }
        }
        check(&breaker, &model, &seen, step)?;
    }
    Ok(model)
}

/// Every observable of the engine against the model.
fn check(
    breaker: &CircuitBreaker,
    model: &Model,
    seen: &Mutex<Vec<TransitionEvent>>,
    step: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(breaker.state(), model.state, "step {}: state", step);
    let s = breaker.snapshot();
    let c = model.counts();
    prop_assert_eq!(s.state, model.state, "step {}: snapshot state", step);
    prop_assert_eq!(
        s.consecutive_failures,
        model.run,
        "step {}: consecutive_failures",
        step
    );
    prop_assert_eq!(s.window_calls, c.calls, "step {}: window_calls", step);
    prop_assert_eq!(
        s.window_failures,
        c.failures,
        "step {}: window_failures",
        step
    );
    prop_assert_eq!(
        s.window_slow_calls,
        c.slow,
        "step {}: window_slow_calls",
        step
    );
    let (in_flight, successes) = if model.state == State::HalfOpen {
        (model.in_flight, model.successes)
    } else {
        (0, 0)
    };
    prop_assert_eq!(s.half_open_in_flight, in_flight, "step {}: in flight", step);
    prop_assert_eq!(s.half_open_successes, successes, "step {}: successes", step);
    prop_assert_eq!(s.trips, model.trips, "step {}: trips", step);
    prop_assert_eq!(
        s.retry_in_seconds,
        model.retry_in().map(|d| d.as_nanos() as f64 / 1e9),
        "step {}: retry_in_seconds",
        step
    );
    prop_assert_eq!(
        s.open_duration_seconds,
        model.open_duration.as_secs_f64(),
        "step {}: open duration",
        step
    );
    prop_assert_eq!(
        breaker.retry_in(),
        model.retry_in(),
        "step {}: retry_in",
        step
    );
    prop_assert_eq!(
        breaker.next_probe_in(),
        model.next_probe_in(),
        "step {}: next_probe_in",
        step
    );
    let events: Vec<Event> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| Event {
            from: e.from,
            to: e.to,
            reason: e.reason.as_str(),
            at: e.at,
        })
        .collect();
    prop_assert_eq!(&events, &model.events, "step {}: transition events", step);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides it (scripts/mutants.sh runs fewer).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        // Failures become hand-written tests below rather than files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_agrees_with_the_model(
        cfg in cfg(),
        ops in ops(),
    ) {
        run(&cfg, &ops)?;
    }
}

// === hand-written sequences ===
//
// Each runs through the same engine-versus-model check, then asserts the end result by hand so
// that the model itself is held to the design.

/// Runs `ops`, panicking at the first disagreement; returns the model's final state.
fn check_sequence(cfg: Cfg, ops: &[Op]) -> Model {
    run(&cfg, ops).unwrap_or_else(|e| panic!("{e}"))
}

fn reasons(m: &Model) -> Vec<&'static str> {
    m.events.iter().map(|e| e.reason).collect()
}

#[test]
fn trips_and_recovers_through_half_open() {
    use Op::*;
    let m = check_sequence(
        Cfg::consecutive(2),
        &[
            Acquire,
            Record(0, Outcome::Failure),
            Acquire,
            Record(0, Outcome::Failure),
            Acquire, // rejected: Open
            AdvanceTo(Deadline::OpenUntil, -1),
            Acquire, // still rejected, 1 ns left
            Advance(1),
            Acquire, // the trial
            Acquire, // rejected: the one slot is taken
            Record(0, Outcome::Success),
        ],
    );
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        reasons(&m),
        [
            "consecutive_failures",
            "open_duration_elapsed",
            "trials_succeeded"
        ]
    );
    assert_eq!(m.events[1].at - m.events[0].at, ms(1000));
}

#[test]
fn re_trips_grow_the_open_duration_to_the_cap_and_reset_restores_it() {
    use Op::*;
    let mut ops = vec![Acquire, Record(0, Outcome::Failure)];
    for _ in 0..3 {
        ops.extend([
            AdvanceTo(Deadline::OpenUntil, 0),
            Acquire,
            Record(0, Outcome::Failure),
        ]);
    }
    // Open for 1 s, then 2 s, 4 s, and 4 s again (the cap).
    let m = check_sequence(Cfg::consecutive(1), &ops);
    assert_eq!(
        (m.state, m.trips, m.open_duration),
        (State::Open, 4, ms(4000))
    );
    ops.extend([Reset, Acquire, Record(0, Outcome::Failure)]);
    let m = check_sequence(Cfg::consecutive(1), &ops);
    assert_eq!(
        (m.state, m.trips, m.open_duration),
        (State::Open, 5, ms(1000))
    );
}

#[test]
fn dropped_and_stale_trial_permits_free_or_keep_nothing() {
    use Op::*;
    let cfg = Cfg {
        half_open_max: 2,
        success_threshold: 2,
        ..Cfg::consecutive(1)
    };
    let mut ops = vec![
        Acquire,
        Record(0, Outcome::Failure),
        AdvanceTo(Deadline::OpenUntil, 0),
        Acquire,
        Acquire,
        Acquire, // rejected: both slots taken
        Drop(0), // frees a slot, counts as nothing
        Acquire,
        Record(0, Outcome::Success),
    ];
    let m = check_sequence(cfg.clone(), &ops);
    assert_eq!((m.state, m.in_flight, m.successes), (State::HalfOpen, 1, 1));
    ops.extend([
        Record(0, Outcome::Failure), // re-opens
        AdvanceTo(Deadline::OpenUntil, 0),
        Acquire,
        Record(0, Outcome::Ignored), // frees the slot
        Acquire,
        Record(0, Outcome::Success),
        Acquire,
        Acquire,
        Record(1, Outcome::Success), // closes
        Record(0, Outcome::Failure), // stale: admitted in HalfOpen
    ]);
    let m = check_sequence(cfg, &ops);
    assert_eq!((m.state, m.run, m.trips), (State::Closed, 0, 2));
}

#[test]
fn a_slow_trial_success_re_opens_and_a_slow_closed_call_counts_in_the_window() {
    use Op::*;
    let cfg = Cfg {
        consecutive: Some(1),
        slow_rate: Some(Rate { num: 1, den: 1 }),
        slow_ms: 500,
        minimum_calls: 2,
        window: WindowCfg::Count { size: 2 },
        ..Cfg::consecutive(1)
    };
    let mut ops = vec![
        Acquire,
        AdvanceTo(Deadline::Slow, -1),
        Record(0, Outcome::Success), // 1 ns short of slow
        Acquire,
        AdvanceTo(Deadline::Slow, 0),
        Record(0, Outcome::Success), // slow: 1 of 2
    ];
    let m = check_sequence(cfg.clone(), &ops);
    assert_eq!(
        (m.state, m.counts().calls, m.counts().slow),
        (State::Closed, 2, 1)
    );
    ops.extend([
        Acquire,
        Advance(500 * MS),
        Record(0, Outcome::Success), // slow: 2 of 2, trips
        AdvanceTo(Deadline::OpenUntil, 0),
        Acquire,
        Advance(500 * MS),
        Record(0, Outcome::Success), // a slow trial: open again
    ]);
    let m = check_sequence(cfg, &ops);
    assert_eq!(
        reasons(&m),
        ["slow_call_rate", "open_duration_elapsed", "trial_failed"]
    );
}

#[test]
fn a_time_window_forgets_whole_buckets() {
    use Op::*;
    let cfg = Cfg {
        consecutive: None,
        failure_rate: Some(Rate { num: 1, den: 2 }),
        minimum_calls: 3,
        window: WindowCfg::Time {
            millis: 1000,
            buckets: 4,
        },
        start_ms: 7,
        ..Cfg::consecutive(1)
    };
    let mut ops = vec![
        Acquire,
        Record(0, Outcome::Failure), // at 7 ms, bucket [0, 250)
        Advance(250 * MS),
        Acquire,
        Record(0, Outcome::Success),
        Advance(743 * MS), // 1000 ms: the bucket [0, 250) has left the window
        Acquire,
        Record(0, Outcome::Success),
        Acquire,
        Record(0, Outcome::Failure),
    ];
    let m = check_sequence(cfg.clone(), &ops);
    assert_eq!(
        (m.state, m.counts().calls, m.counts().failures),
        (State::Closed, 3, 1)
    );
    ops.extend([Acquire, Record(0, Outcome::Failure)]); // 2 of 4: trips
    let m = check_sequence(cfg, &ops);
    assert_eq!(reasons(&m), ["failure_rate"]);
}

#[test]
fn probes_open_half_open_early_and_stale_probes_do_nothing() {
    use Op::*;
    let cfg = Cfg {
        probe_ms: Some(300),
        open_ms: 2000,
        max_open_ms: 8000,
        ..Cfg::consecutive(1)
    };
    let m = check_sequence(
        cfg,
        &[
            Acquire,
            Record(0, Outcome::Failure),
            ProbeDue, // not yet
            AdvanceTo(Deadline::ProbeDue, 0),
            ProbeDue,
            ProbeDue, // one at a time
            Probe(0, Report::Failed),
            ProbeDue, // one interval later
            AdvanceTo(Deadline::ProbeDue, 0),
            ProbeDue,
            Probe(0, Report::Succeeded), // HalfOpen early
            Acquire,
            Record(0, Outcome::Failure), // open again
            AdvanceTo(Deadline::ProbeDue, 0),
            ProbeDue,
            Reset,
            Probe(0, Report::Succeeded), // stale: still Closed
        ],
    );
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        reasons(&m),
        [
            "consecutive_failures",
            "probe_succeeded",
            "trial_failed",
            "reset"
        ]
    );
    // The probe moved the breaker 600 ms into a 2 s open period.
    assert_eq!(m.events[1].at - m.events[0].at, ms(600));
}

#[test]
fn modes_admit_record_or_reject_as_documented() {
    use Op::*;
    let m = check_sequence(
        Cfg::consecutive(2),
        &[
            Acquire,
            Record(0, Outcome::Failure),
            Disable,
            Acquire,
            Record(0, Outcome::Failure), // disabled: nothing recorded
            MetricsOnly,                 // counters start empty
            Acquire,
            Record(0, Outcome::Failure),
            Acquire,
            Record(0, Outcome::Failure),
            Acquire,
            Record(0, Outcome::Failure), // never trips
        ],
    );
    assert_eq!((m.state, m.run, m.trips), (State::MetricsOnly, 3, 0));
    let m = check_sequence(
        Cfg::consecutive(2),
        &[
            Acquire,
            ForceOpen,
            Acquire,                     // rejected, no retry_after
            Record(0, Outcome::Failure), // stale
            ForceOpen,
            Reset,
            Reset, // a reset of a Closed breaker: no event
            Acquire,
            Record(0, Outcome::Ignored), // changes nothing
        ],
    );
    assert_eq!((m.state, m.run), (State::Closed, 0));
    assert_eq!(reasons(&m), ["forced_open", "reset"]);
}
