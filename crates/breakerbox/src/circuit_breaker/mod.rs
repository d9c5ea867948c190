//! The circuit breaker.
//!
//! A [`CircuitBreaker`] watches the outcomes of calls to one upstream and stops calling it while
//! it is failing. It is a cheap, cloneable handle: clones share one breaker.
//!
//! - **Closed**: calls pass. The breaker trips to Open when any configured rule fires:
//!   `consecutive_failures` in a row that have lasted `consecutive_failures_span` (1 s by
//!   default: a short burst of failures at a high request rate is chance, not an outage), or a
//!   `failure_rate` / `slow_call_rate` over a sliding window once it holds `minimum_calls`.
//! - **Open**: calls are rejected with [`CircuitOpen`] without reaching the upstream, for
//!   `open_duration`; each re-trip from HalfOpen multiplies that by `open_backoff_multiplier`,
//!   up to `max_open_duration`, and a close resets it.
//! - **HalfOpen**: entered by the first call after the open duration (no timer task), or early
//!   when a health probe succeeds. At most `half_open_max_calls` trial calls run at once;
//!   `success_threshold` successes close the breaker, any failure re-opens it.
//!
//! Administrative modes: [`force_open`](CircuitBreaker::force_open),
//! [`disable`](CircuitBreaker::disable) (admit everything, record nothing),
//! [`metrics_only`](CircuitBreaker::metrics_only) (record, never trip) and
//! [`reset`](CircuitBreaker::reset).
//!
//! A call asks for a [`Permit`] and reports its [`Outcome`] through it (or the
//! [`AttemptOutcome`] it came back with, which the config's `statuses` turn into an outcome). A
//! permit dropped without an outcome (a cancelled call) releases its HalfOpen slot and counts as
//! neither success nor failure; dropped while its thread panics (the call panicked), it counts
//! as a failure.
//!
//! # Rules worth knowing
//!
//! - **Late outcomes never count against a newer period.** Every state change starts a new
//!   period; an outcome counts only in the period its permit was admitted in. A call admitted
//!   before the breaker opened, closed or was reset is ignored when it ends, however the two
//!   race.
//! - **A slow trial is a failed trial.** With a slow-call rule, a HalfOpen trial that succeeds
//!   but takes `slow_call_duration` or longer re-opens the breaker: an upstream that is still
//!   too slow is not back.
//! - **In HalfOpen, the snapshot's window fields still show the Closed period's counts.** The
//!   window is cleared when the breaker closes again, not when it opens, so a snapshot of an Open
//!   or HalfOpen breaker shows the calls that tripped it.
//! - **A late outcome counts in the time-window bucket where it is reported**, not where its
//!   call started: a call of 30 s recorded now lands in the current bucket.
//! - **HalfOpen is bounded.** Trials that hold every slot for longer than `max_half_open_wait`
//!   (a leaked permit, a response streamed for an hour) are given up on by the next call:
//!   Closed if a trial has succeeded, Open again otherwise, and the stuck trials' outcomes are
//!   ignored.
//! - **Probes have deadlines.** A health probe that has not reported within `probe_timeout`
//!   stops blocking the next one.
//!
//! ```
//! use breakerbox::{BreakerConfig, CircuitBreaker, Outcome, State};
//! use breakerbox::clock::ManualClock;
//! use std::{sync::Arc, time::Duration};
//!
//! let clock = ManualClock::new();
//! let config = BreakerConfig::builder()
//!     .consecutive_failures(3)
//!     .open_duration(Duration::from_secs(60))
//!     .build()?;
//! let breaker = CircuitBreaker::builder("musicbrainz", config)
//!     .clock(Arc::new(clock.clone()))
//!     .build();
//!
//! // Three failures in a row, half a second apart: a run that lasts the default span of 1 s.
//! for _ in 0..3 {
//!     let permit = breaker.try_acquire().expect("closed: admitted");
//!     clock.advance(Duration::from_millis(500)); // the call takes 500 ms, then fails
//!     permit.record(Outcome::Failure);
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.try_acquire().unwrap_err();
//! assert_eq!(rejected.retry_after(), Some(Duration::from_secs(60)));
//!
//! clock.advance(Duration::from_secs(60));
//! let trial = breaker.try_acquire().expect("half-open: one trial call");
//! assert_eq!(breaker.state(), State::HalfOpen);
//! trial.record(Outcome::Success);
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), breakerbox::InvalidConfig>(())
//! ```
//!
//! # Cost
//!
//! In Closed, admission is one atomic load and recording a handful of atomic operations: no
//! lock, no allocation. The clock is read only when a rule or metric needs time: at admission
//! and at recording when durations are measured (a slow-call rule, or the duration histogram),
//! at recording for a time-based window. Transitions, which are rare, take a lock.

pub mod error;
pub mod event;
mod metrics;
mod name;
mod outcome;
mod permit;
mod probe;
mod snapshot;
mod state;
mod throttle;
pub(crate) mod window;

pub use error::CircuitOpen;
pub use event::{Listener, TransitionEvent, TransitionReason};
pub use name::BreakerName;
pub use outcome::{AttemptOutcome, Outcome};
pub use permit::{BreakerHolder, OwnedPermit, Permit};
pub use probe::ProbeTicket;
pub use snapshot::BreakerSnapshot;

use self::metrics::BreakerMetrics;
use self::permit::{Ticket, TicketKind};
use self::state::{CLOSED, DISABLED, FORCED_OPEN, HALF_OPEN, METRICS_ONLY, OPEN, Word};
use self::throttle::Throttle;
use self::window::{CountWindow, Sample, TimeWindow, Window};
use crate::clock::{MonotonicClock, SharedClock, nanos};
use crate::config::{BreakerConfig, WindowConfig};
use crate::retry::{Retrier, RetryConfig};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, lock};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub(crate) use guard::FleetGuard;

mod guard;

/// A breaker's state, including the administrative modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls pass; outcomes are recorded and may trip the breaker.
    Closed,
    /// Calls are rejected until the open duration passes.
    Open,
    /// A few trial calls pass to test the upstream.
    HalfOpen,
    /// Rejects every call until an operator changes the mode.
    ForcedOpen,
    /// Admits every call and records nothing.
    Disabled,
    /// Admits every call and records outcomes, but never trips.
    MetricsOnly,
}

impl State {
    /// The state's name in logs, metrics labels and snapshots: `closed`, `open`, `half_open`,
    /// `forced_open`, `disabled`, `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// The value of the `circuit_breaker_state` gauge: 0 closed, 1 half-open, 2 open. The
    /// modes report what they do to traffic: forced open 2, disabled and metrics-only 0.
    pub fn gauge_value(self) -> f64 {
        match self {
            State::Closed | State::Disabled | State::MetricsOnly => 0.0,
            State::HalfOpen => 1.0,
            State::Open | State::ForcedOpen => 2.0,
        }
    }

    /// Whether calls are being rejected (fully or partly) in this state.
    pub fn is_degraded(self) -> bool {
        matches!(self, State::Open | State::HalfOpen | State::ForcedOpen)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl CircuitBreaker ===

/// A circuit breaker: a cheap handle, clones share the breaker. See the
/// [module docs](self) for the semantics.
///
/// ```
/// use breakerbox::{AttemptOutcome, BreakerConfig, CircuitBreaker, State};
///
/// let config = BreakerConfig::builder().consecutive_failures(2).build()?;
/// let clock = breakerbox::clock::ManualClock::new();
/// let breaker = CircuitBreaker::builder("discogs", config)
///     .clock(std::sync::Arc::new(clock.clone()))
///     .build();
/// for status in [503, 502] {
///     let permit = breaker.try_acquire()?;
///     clock.advance(std::time::Duration::from_secs(1)); // each call takes a second
///     // ... make the call, then report what came back; the config says what it counts as.
///     permit.report(AttemptOutcome::Status(status));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let open = breaker.try_acquire().unwrap_err();
/// println!("{open}"); // circuit breaker `discogs` is open; a trial call is admitted in 5.000s
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    name: BreakerName,
    /// Shared by the breakers a `BreakerBox` makes from one config.
    config: Arc<BreakerConfig>,
    clock: SharedClock,
    /// `consecutive_failures`, or `u32::MAX` when the rule is off.
    run_threshold: u32,
    /// `consecutive_failures_span` in nanoseconds: how long a run must last to trip (0: any).
    span_nanos: u64,
    /// When the current run of failures began (clock nanoseconds), written by the failure that
    /// starts it, before the run counts it. Only read and written on failures.
    run_started: AtomicU64,
    /// `slow_call_duration` in nanoseconds, or `u64::MAX` when no slow-call rule is set.
    slow_nanos: u64,
    /// Whether admission reads the clock so that recording knows the call's duration.
    measure: bool,
    /// Whether a call admitted in Closed takes the out-of-line admission: `measure`, or a
    /// throttle to consult.
    closed_slow: bool,
    /// Adaptive throttling, when the config turns it on.
    throttle: Option<Throttle>,
    /// The retry policy of the requests this breaker guards (from its box), and its retrier
    /// (budget, metrics), made on first use.
    retry: Option<Arc<RetryConfig>>,
    retrier: OnceLock<Retrier>,
    /// The box's fleet guard, for breakers of a box that sets `max_open_fraction`.
    guard: Option<Arc<FleetGuard>>,
    /// Set while the fleet guard holds a trip back; cleared when a success ends the run or the
    /// state changes.
    held: AtomicBool,
    /// Whether durations go to the `circuit_breaker_call_duration_seconds` histogram.
    histogram: bool,
    state: AtomicU64,
    /// Failures in a row, tagged with the generation they belong to:
    /// `generation << 32 | count`. The tag makes an outcome admitted before a reset (or any
    /// move to Closed) unable to count in the new period, however the two race.
    run: AtomicU64,
    window: Option<Window>,
    /// When the current Open period ends (clock nanoseconds); written before Open is published.
    open_until: AtomicU64,
    probe_due_at: AtomicU64,
    /// The running probe's claim: the clock time at which it expires, 0 when none runs. A
    /// probe that never reports (a hung health check) stops blocking others once it expires.
    probe_claim: AtomicU64,
    /// When the current HalfOpen period began (clock nanoseconds), for `max_half_open_wait`.
    half_open_since: AtomicU64,
    control: Mutex<Control>,
    metrics: BreakerMetrics,
}

/// What only transitions touch, under the transition lock.
struct Control {
    /// The open duration before jitter; grows on each re-trip.
    open_duration: Duration,
    trips: u64,
    listeners: Vec<Listener>,
}

impl CircuitBreaker {
    /// A breaker named `name` (the name shows in errors, logs, metrics and the status table)
    /// with the OS monotonic clock and no listeners.
    pub fn new(name: impl Into<BreakerName>, config: BreakerConfig) -> Self {
        Self::builder(name, config).build()
    }

    /// A builder, to set the clock, listeners and duration measurement.
    pub fn builder(name: impl Into<BreakerName>, config: BreakerConfig) -> Builder {
        Self::builder_shared(name, Arc::new(config))
    }

    /// A builder for breakers that share one config (a box's per-host breakers).
    pub(crate) fn builder_shared(
        name: impl Into<BreakerName>,
        config: Arc<BreakerConfig>,
    ) -> Builder {
        Builder {
            name: name.into(),
            config,
            clock: None,
            listeners: Vec::new(),
            duration_histogram: false,
            retry: None,
            guard: None,
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The breaker's config.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// The current state. An Open breaker whose open duration has passed still reports Open
    /// until a call (or a probe) moves it to HalfOpen.
    pub fn state(&self) -> State {
        self.inner.word().state()
    }

    /// Asks to make a call. `Ok` carries the permit through which the call reports its outcome;
    /// `Err` means the call must not be made.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        self.inner
            .acquire()
            .map(|ticket| Permit::new(&self.inner, ticket))
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a handle to the breaker,
    /// for futures that must be `'static`.
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, CircuitOpen> {
        self.inner
            .acquire()
            .map(|ticket| OwnedPermit::new(self.clone(), ticket))
    }

    /// Like [`try_acquire_owned`](Self::try_acquire_owned), with a permit that keeps a clone of
    /// `holder` (cloned only when the call is admitted) instead of a new handle to the breaker:
    /// see [`BreakerHolder`] for why a front end would spread its permits over holders of its
    /// own. Front-end plumbing, hidden from the docs.
    #[doc(hidden)]
    #[inline]
    pub fn try_acquire_by<H: BreakerHolder + Clone>(
        holder: &H,
    ) -> Result<OwnedPermit<H>, CircuitOpen> {
        holder
            .breaker()
            .inner
            .acquire()
            .map(|ticket| OwnedPermit::new(holder.clone(), ticket))
    }

    /// Registers a listener for every later transition. See [`Listener`] for what listeners
    /// may do.
    pub fn on_transition(&self, listener: impl Fn(&TransitionEvent) + Send + Sync + 'static) {
        lock(&self.inner.control).listeners.push(Arc::new(listener));
    }

    /// Rejects every call until another mode is chosen.
    pub fn force_open(&self) {
        self.inner.transition(
            |w| w.kind() != FORCED_OPEN,
            FORCED_OPEN,
            TransitionReason::ForcedOpen,
        );
    }

    /// Admits every call and records nothing until another mode is chosen.
    pub fn disable(&self) {
        self.inner.transition(
            |w| w.kind() != DISABLED,
            DISABLED,
            TransitionReason::Disabled,
        );
    }

    /// Admits every call and records outcomes (metrics, snapshot) but never trips, until another
    /// mode is chosen. Counters start empty.
    pub fn metrics_only(&self) {
        self.inner.transition(
            |w| w.kind() != METRICS_ONLY,
            METRICS_ONLY,
            TransitionReason::MetricsOnly,
        );
    }

    /// Back to Closed, from any state or mode, with counters cleared and the open duration back
    /// to its base. Outcomes of calls admitted before the reset are ignored.
    pub fn reset(&self) {
        self.inner
            .transition(|_| true, CLOSED, TransitionReason::Reset);
    }

    /// A health probe, if one is due now: the breaker is Open, `probe_interval` is set, the
    /// interval has passed since it opened (or since the last probe), and no other probe is
    /// running. The caller runs its probe, gives up on it after
    /// [`probe_timeout`](BreakerConfig::probe_timeout), and reports through the ticket; a
    /// success moves the breaker to HalfOpen early.
    ///
    /// A probe that never reports does not block probing for good: once its `probe_timeout`
    /// has passed, the next probe may be claimed, and the late report of the expired one only
    /// counts if it is a success while the breaker is still in the same Open period.
    pub fn probe_due(&self) -> Option<ProbeTicket> {
        self.inner
            .claim_probe()
            .map(|(generation, claim)| ProbeTicket::new(self.clone(), generation, claim))
    }

    /// How long until a probe is due, for front ends that schedule probes with a timer: `None`
    /// when no probe is expected (not Open, probing off, or the open duration ends first).
    pub fn next_probe_in(&self) -> Option<Duration> {
        let inner = &self.inner;
        inner.config.probe_interval?;
        if inner.word().kind() != OPEN {
            return None;
        }
        let now = inner.now();
        let due = inner.probe_due_at.load(Ordering::Acquire);
        (due < inner.open_until.load(Ordering::Acquire))
            .then(|| Duration::from_nanos(due.saturating_sub(now)))
    }

    /// How long until an Open breaker admits a trial call; `None` in any other state.
    pub fn retry_in(&self) -> Option<Duration> {
        let inner = &self.inner;
        (inner.word().kind() == OPEN).then(|| {
            let until = inner.open_until.load(Ordering::Acquire);
            Duration::from_nanos(until.saturating_sub(inner.now()))
        })
    }

    /// The retry policy, budget and metrics of the requests this breaker guards, when it
    /// belongs to a [`BreakerBox`](crate::BreakerBox) that retries them: the box's `[retry]`
    /// table with the breaker's rule's `retry` keys merged over it. `None` for a breaker built
    /// on its own, and for a rule with `retry = false`.
    ///
    /// Each breaker has a retrier of its own, made on first use: one upstream's outage spends
    /// its own retry budget, never another's, and the retry metrics carry the breaker's name.
    /// [`after_attempt`](Self::after_attempt) runs it.
    pub fn retrier(&self) -> Option<&Retrier> {
        let retry = self.inner.retry.as_ref()?;
        Some(self.inner.retrier.get_or_init(|| {
            Retrier::new(
                (**retry).clone(),
                self.inner.clock.clone(),
                &self.inner.name,
            )
        }))
    }

    /// After an attempt through this breaker, by its [`retrier`](Self::retrier): retry after a
    /// wait, or stop (see [`Retrier::after_attempt`]). When the answer said how long to wait
    /// (`Retry-After`) and that opened this breaker, the wait is the breaker's: the retry
    /// arrives when the breaker admits a trial again, not into its refusal, and when that is
    /// further off than `max_delay` or the time left allows, the caller gets this answer now
    /// ([`StopReason::RetryAfterTooLong`](crate::retry::StopReason::RetryAfterTooLong)).
    ///
    /// A breaker without a retrier stops after the first attempt.
    pub fn after_attempt(
        &self,
        run: &mut crate::retry::RetryRun,
        outcome: AttemptOutcome,
        retry_after: impl FnOnce() -> Option<Duration>,
    ) -> crate::retry::RetryDecision {
        use crate::retry::{RetryDecision, StopReason};
        let Some(retrier) = self.retrier() else {
            return RetryDecision::Stop(StopReason::NotTransient);
        };
        retrier.after_attempt(run, outcome, || {
            retry_after().map(|wait| wait.max(self.retry_in().unwrap_or_default()))
        })
    }

    /// Whether the fleet guard of this breaker's box is holding it closed: it would have
    /// opened, but too many of the box's breakers are open already.
    pub fn is_held(&self) -> bool {
        self.inner.held.load(Ordering::Acquire)
    }

    /// A point-in-time report of the breaker, serde-serializable.
    ///
    /// It also publishes the calls counted since the last publication to
    /// `circuit_breaker_calls_total` (see [`flush_metrics`](Self::flush_metrics)).
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.inner.metrics.flush();
        BreakerSnapshot::of(self)
    }

    /// Publishes every call counted so far to `circuit_breaker_calls_total`.
    ///
    /// Calls are counted per thread and reach the recorder in batches of up to 32 per thread
    /// and result, so that the threads calling one breaker never contend on one counter; every
    /// state change, every [`snapshot`](Self::snapshot) and dropping the breaker publish the
    /// rest. Call this before rendering a scrape when exact counts matter (a test, a
    /// low-traffic breaker); a Prometheus `rate()` over minutes does not need it.
    pub fn flush_metrics(&self) {
        self.inner.metrics.flush();
    }

    /// Whether two handles share one breaker.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

// === impl Builder ===

/// Builds a [`CircuitBreaker`].
#[must_use]
pub struct Builder {
    name: BreakerName,
    config: Arc<BreakerConfig>,
    clock: Option<SharedClock>,
    listeners: Vec<Listener>,
    duration_histogram: bool,
    retry: Option<Arc<RetryConfig>>,
    guard: Option<Arc<FleetGuard>>,
}

impl Builder {
    /// The clock to read (default: [`MonotonicClock`]). Front ends pass tokio's clock so that
    /// `tokio::time::pause()` drives the breaker; tests pass a
    /// [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a transition listener.
    pub fn listener(mut self, listener: impl Fn(&TransitionEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    pub(crate) fn listeners(mut self, listeners: &[Listener]) -> Self {
        self.listeners.extend(listeners.iter().cloned());
        self
    }

    /// The retry policy of the requests the breaker guards (a box's per-breaker retries).
    pub(crate) fn retry(mut self, retry: Option<Arc<RetryConfig>>) -> Self {
        self.retry = retry;
        self
    }

    /// The box's fleet guard.
    pub(crate) fn guard(mut self, guard: Option<Arc<FleetGuard>>) -> Self {
        self.guard = guard;
        self
    }

    /// Whether to record `circuit_breaker_call_duration_seconds` (default: off; needs the
    /// `metrics` feature). On, every call reads the clock twice (at admission and at recording),
    /// which costs more than the rest of a healthy call; off, a breaker without a slow-call rule
    /// or a time-based window never reads the clock in Closed.
    pub fn call_duration_histogram(mut self, on: bool) -> Self {
        self.duration_histogram = on;
        self
    }

    /// Builds the breaker.
    pub fn build(self) -> CircuitBreaker {
        let config = self.config;
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        let now = clock.now_nanos();
        let window = config.needs_window().then(|| match config.window {
            WindowConfig::Count { size } => Window::Count(CountWindow::new(size)),
            WindowConfig::Time { duration, buckets } => {
                Window::Time(Box::new(TimeWindow::new(nanos(duration), buckets, now)))
            }
        });
        let slow_nanos = match config.slow_call_rate {
            Some(_) => nanos(config.slow_call_duration),
            None => u64::MAX,
        };
        let histogram = self.duration_histogram && cfg!(feature = "metrics");
        let throttle = config
            .throttle
            .as_ref()
            .map(|throttle| Throttle::new(throttle, now));
        let measure = slow_nanos != u64::MAX || histogram;
        if let Some(guard) = &self.guard {
            guard.created();
        }
        let inner = Inner {
            closed_slow: measure || throttle.is_some(),
            throttle,
            retry: self.retry,
            retrier: OnceLock::new(),
            guard: self.guard,
            held: AtomicBool::new(false),
            metrics: BreakerMetrics::new(self.name.clone(), State::Closed, histogram),
            name: self.name,
            run_threshold: config.consecutive_failures.unwrap_or(u32::MAX),
            // One failure has nothing to span: a rule of 1 trips at once.
            span_nanos: if config.consecutive_failures.is_some_and(|n| n > 1) {
                nanos(config.consecutive_failures_span)
            } else {
                0
            },
            run_started: AtomicU64::new(0),
            measure,
            histogram,
            slow_nanos,
            clock,
            state: AtomicU64::new(Word::new(CLOSED, 0, 0, 0).0),
            run: AtomicU64::new(0),
            window,
            open_until: AtomicU64::new(0),
            probe_due_at: AtomicU64::new(u64::MAX),
            probe_claim: AtomicU64::new(0),
            half_open_since: AtomicU64::new(0),
            control: Mutex::new(Control {
                open_duration: config.open_duration,
                trips: 0,
                listeners: self.listeners,
            }),
            config,
        };
        CircuitBreaker {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

// === impl Inner ===

impl Drop for Inner {
    fn drop(&mut self) {
        self.metrics.flush();
    }
}

impl Inner {
    #[inline]
    fn word(&self) -> Word {
        Word(self.state.load(Ordering::Acquire))
    }

    #[inline]
    fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    #[inline]
    fn start(&self) -> u64 {
        if self.measure { self.now() } else { 0 }
    }

    /// Admission. A healthy call (Closed, no duration measured) takes the two-load path inline;
    /// everything else is out of line.
    #[inline]
    fn acquire(&self) -> Result<Ticket, CircuitOpen> {
        let w = self.word();
        if w.kind() == CLOSED {
            if self.closed_slow {
                return self.acquire_closed(w);
            }
            return Ok(Ticket::new(TicketKind::Closed, w.generation(), 0));
        }
        if w.kind() == OPEN {
            return self.acquire_open(w);
        }
        self.acquire_slow(w)
    }

    /// Closed, with the clock to read: for the call's duration, or for the throttle, which may
    /// reject the call.
    #[inline(never)]
    fn acquire_closed(&self, w: Word) -> Result<Ticket, CircuitOpen> {
        let now = self.now();
        match &self.throttle {
            Some(throttle) if w.kind() == CLOSED => {
                if !throttle.admit(now) {
                    self.metrics.throttled();
                    return Err(CircuitOpen::throttled(self.name.clone()));
                }
                Ok(Ticket::new(TicketKind::Throttled, w.generation(), now))
            }
            _ => Ok(Ticket::new(TicketKind::Closed, w.generation(), now)),
        }
    }

    /// An Open breaker: within its open duration (the one path a failing upstream's callers
    /// take again and again) one clock read and no write; past it, the move to HalfOpen.
    #[inline(never)]
    fn acquire_open(&self, w: Word) -> Result<Ticket, CircuitOpen> {
        if let Some(left) = self.open_left() {
            return Err(self.reject(State::Open, Some(left)));
        }
        self.acquire_slow(w)
    }

    /// While the open duration lasts, what is left of it.
    #[inline]
    fn open_left(&self) -> Option<Duration> {
        let until = self.open_until.load(Ordering::Acquire);
        let now = self.now();
        (now < until).then(|| Duration::from_nanos(until - now))
    }

    #[inline(never)]
    fn acquire_slow(&self, mut w: Word) -> Result<Ticket, CircuitOpen> {
        loop {
            match w.kind() {
                CLOSED | METRICS_ONLY => {
                    if self.closed_slow {
                        return self.acquire_closed(w);
                    }
                    return Ok(Ticket::new(TicketKind::Closed, w.generation(), 0));
                }
                DISABLED => return Ok(Ticket::new(TicketKind::Disabled, w.generation(), 0)),
                FORCED_OPEN => return Err(self.reject(State::ForcedOpen, None)),
                OPEN => {
                    // Checked again: another thread may have re-opened the breaker meanwhile.
                    if let Some(left) = self.open_left() {
                        return Err(self.reject(State::Open, Some(left)));
                    }
                    let generation = w.generation();
                    self.transition(
                        |w| w.kind() == OPEN && w.generation() == generation,
                        HALF_OPEN,
                        TransitionReason::OpenDurationElapsed,
                    );
                    w = self.word();
                }
                _ => {
                    if w.in_flight() >= self.config.half_open_max_calls {
                        if self.half_open_outwaited(w) {
                            w = self.word();
                            continue;
                        }
                        return Err(self.reject(State::HalfOpen, None));
                    }
                    let next = w.with_trials(w.in_flight() + 1, w.successes());
                    match self.state.compare_exchange_weak(
                        w.0,
                        next.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            return Ok(Ticket::new(
                                TicketKind::Trial,
                                w.generation(),
                                self.start(),
                            ));
                        }
                        Err(actual) => w = Word(actual),
                    }
                }
            }
        }
    }

    /// A HalfOpen whose trial slots are all taken, for longer than `max_half_open_wait`: the
    /// breaker decides without the trials in flight (their late outcomes are then stale):
    /// Closed if a trial has succeeded, Open again otherwise. Returns whether it moved.
    #[cold]
    fn half_open_outwaited(&self, w: Word) -> bool {
        let since = self.half_open_since.load(Ordering::Acquire);
        if self.now().saturating_sub(since) < nanos(self.config.max_half_open_wait) {
            return false;
        }
        let generation = w.generation();
        let (to, reason) = if w.successes() > 0 {
            (
                CLOSED,
                TransitionReason::HalfOpenWaitElapsed {
                    successes: w.successes(),
                },
            )
        } else {
            (OPEN, TransitionReason::HalfOpenWaitElapsed { successes: 0 })
        };
        self.transition(
            |w| w.kind() == HALF_OPEN && w.generation() == generation,
            to,
            reason,
        );
        true
    }

    fn reject(&self, state: State, retry_after: Option<Duration>) -> CircuitOpen {
        self.metrics.rejected();
        CircuitOpen::new(self.name.clone(), state, retry_after)
    }

    /// Reports a permit's end: `None` when it was dropped without an outcome. `refused`: the
    /// upstream refused the call for load (a 429), which throttling counts against it.
    #[inline(always)]
    fn finish(&self, ticket: &Ticket, outcome: Option<Outcome>, refused: bool) {
        if outcome == Some(Outcome::Success) && ticket.is_closed() && self.quiet_success(ticket) {
            self.metrics.success();
            return;
        }
        self.finish_slow(ticket, outcome, refused);
    }

    /// The server's word: an answer asked the client to stay away for `wait` (capped by
    /// `max_open_duration` already). A Closed or HalfOpen breaker opens for that long (plus up
    /// to a tenth more, at random, so that a fleet does not come back at once); an Open one
    /// stays open at least that long.
    #[cold]
    fn open_for(&self, wait: Duration) {
        let opened = self.transition(
            |w| matches!(w.kind(), CLOSED | HALF_OPEN),
            OPEN,
            TransitionReason::RetryAfter { wait },
        );
        if opened {
            return;
        }
        let _control = lock(&self.control);
        if self.word().kind() == OPEN {
            let until = self
                .now()
                .saturating_add(nanos(server_jitter(wait, &self.config)));
            if self.open_until.fetch_max(until, Ordering::AcqRel) < until {
                tracing::debug!(
                    breaker = &*self.name,
                    wait_secs = wait.as_secs_f64(),
                    "open for longer: the server asked to wait"
                );
            }
        }
    }

    /// Whether a success admitted in Closed would change nothing: the breaker is still in that
    /// Closed period, no run of failures is in progress, the call was not slow (and no
    /// histogram wants its duration), and the window (if any) is full of plain successes,
    /// which one more leaves as it is. Healthy traffic takes this path: three loads (and one
    /// clock read under a slow-call rule), no write, nothing out of line. A time window takes
    /// its own quiet path.
    #[inline(always)]
    fn quiet_success(&self, ticket: &Ticket) -> bool {
        let quiet = || {
            (!self.measure
                || (!self.histogram && self.now().saturating_sub(ticket.start) < self.slow_nanos))
                && self.state.load(Ordering::Acquire)
                    == Word::new(CLOSED, ticket.generation(), 0, 0).0
                && self.run.load(Ordering::Relaxed) as u32 == 0
        };
        match &self.window {
            Some(Window::Count(window)) => quiet() && window.is_clean(),
            Some(Window::Time(window)) => self.quiet_timed_success(ticket, window),
            None => quiet(),
        }
    }

    /// [`quiet_success`](Self::quiet_success) over a time window: the same conditions, and the
    /// window counts the call in its current bucket with one compare-and-swap when that is all
    /// recording it would do (see [`TimeWindow::record_quiet`]). One clock read, for both the
    /// bucket and a slow-call rule.
    #[inline]
    fn quiet_timed_success(&self, ticket: &Ticket, window: &TimeWindow) -> bool {
        let now = self.now();
        (!self.measure
            || (!self.histogram && now.saturating_sub(ticket.start) < self.slow_nanos))
            && self.state.load(Ordering::Acquire) == Word::new(CLOSED, ticket.generation(), 0, 0).0
            && self.run.load(Ordering::Relaxed) as u32 == 0
            // Last: it records.
            && window.record_quiet(now)
    }

    #[inline(never)]
    fn finish_slow(&self, ticket: &Ticket, outcome: Option<Outcome>, refused: bool) {
        if ticket.kind() == TicketKind::Disabled {
            return;
        }
        if let (TicketKind::Throttled, Some(throttle), Some(outcome)) =
            (ticket.kind(), &self.throttle, outcome)
        {
            throttle.record(self.now(), outcome != Outcome::Failure && !refused);
        }
        let Some(outcome) = outcome else {
            self.metrics.call(Outcome::Ignored, None);
            if ticket.kind() == TicketKind::Trial {
                self.release_trial(ticket.generation());
            }
            return;
        };
        let needs_now = self.measure
            || self.window.as_ref().is_some_and(Window::needs_time)
            || (self.span_nanos != 0 && outcome == Outcome::Failure);
        let now = if needs_now { self.now() } else { 0 };
        let duration = self.measure.then(|| now.saturating_sub(ticket.start));
        self.metrics
            .call(outcome, duration.map(Duration::from_nanos));
        let slow = duration.is_some_and(|d| d >= self.slow_nanos);
        match ticket.kind() {
            TicketKind::Closed | TicketKind::Throttled => {
                self.record_closed(ticket.generation(), outcome, slow, now)
            }
            _ => self.record_trial(ticket.generation(), outcome, slow),
        }
    }

    #[inline]
    fn record_closed(&self, generation: u32, outcome: Outcome, slow: bool, now: u64) {
        let w = self.word();
        if w.generation() != generation || !matches!(w.kind(), CLOSED | METRICS_ONLY) {
            return; // admitted before a transition: stale
        }
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => return,
        };
        let run = if failure {
            match self.count_failure(generation, now) {
                Some(run) => run,
                None => return, // a transition won the race: stale
            }
        } else {
            self.end_run(generation);
            0
        };
        let counts = self
            .window
            .as_ref()
            .and_then(|window| window.record(now, Sample { failure, slow }));
        if w.kind() == METRICS_ONLY {
            return;
        }
        let reason = if run >= self.run_threshold && self.run_lasted(now) {
            Some(TransitionReason::ConsecutiveFailures { count: run })
        } else {
            // Rates are in (0, 1]: a window without failures or slow calls cannot trip.
            counts
                .filter(|c| c.failures > 0 || c.slow > 0)
                .and_then(|c| self.rate_rule(c.calls, c.failures, c.slow))
        };
        if let Some(reason) = reason {
            if let Some(guard) = &self.guard {
                if guard.holds_trip() {
                    self.hold(reason);
                    return;
                }
            }
            self.transition(
                |w| w.kind() == CLOSED && w.generation() == generation,
                OPEN,
                reason,
            );
        }
    }

    /// The fleet guard holds a trip back: the breaker stays Closed, admitting and counting.
    #[cold]
    fn hold(&self, reason: TransitionReason) {
        self.metrics.held();
        if !self.held.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                breaker = &*self.name,
                %reason,
                "circuit breaker would open, but the fleet guard holds it closed: too many of the box's breakers are open already (a local fault, the client's own network, DNS or proxy, is likely)"
            );
        }
    }

    /// Whether the current run of failures has lasted `consecutive_failures_span` by `now`.
    #[inline]
    fn run_lasted(&self, now: u64) -> bool {
        self.span_nanos == 0
            || now.saturating_sub(self.run_started.load(Ordering::Acquire)) >= self.span_nanos
    }

    /// Adds a failure to the run of `generation`; `None` if the run belongs to a later one. The
    /// failure that starts a run notes when (before the run counts it, so that every failure
    /// counted after it reads a start of this run, or a later one: never too early).
    #[inline]
    fn count_failure(&self, generation: u32, now: u64) -> Option<u32> {
        let mut run = self.run.load(Ordering::Relaxed);
        loop {
            if (run >> 32) as u32 != generation {
                return None;
            }
            if run as u32 == 0 && self.span_nanos != 0 {
                self.run_started.store(now, Ordering::Release);
            }
            let count = (run as u32).saturating_add(1);
            let next = u64::from(generation) << 32 | u64::from(count);
            match self
                .run
                .compare_exchange_weak(run, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(count),
                Err(actual) => run = actual,
            }
        }
    }

    /// A success ends the run of `generation`. Healthy traffic only reads: the word is written
    /// only when a run is in progress. Losing the race to a concurrent failure is the history
    /// in which that failure came second.
    #[inline]
    fn end_run(&self, generation: u32) {
        let run = self.run.load(Ordering::Relaxed);
        if run as u32 != 0 && (run >> 32) as u32 == generation {
            if self.guard.is_some() {
                self.held.store(false, Ordering::Release);
            }
            let fresh = u64::from(generation) << 32;
            let _ = self
                .run
                .compare_exchange(run, fresh, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn rate_rule(&self, calls: u64, failures: u64, slow: u64) -> Option<TransitionReason> {
        if calls < u64::from(self.config.minimum_calls()) {
            return None;
        }
        let rate = |n: u64| n as f64 / calls as f64;
        if let Some(limit) = self.config.failure_rate {
            if rate(failures) >= limit {
                return Some(TransitionReason::FailureRate {
                    rate: rate(failures),
                });
            }
        }
        if let Some(limit) = self.config.slow_call_rate {
            if rate(slow) >= limit {
                return Some(TransitionReason::SlowCallRate { rate: rate(slow) });
            }
        }
        None
    }

    /// A trial call's outcome. With a slow-call rule, a slow trial counts as a failure: the
    /// upstream is not back while it is still too slow.
    fn record_trial(&self, generation: u32, outcome: Outcome, slow: bool) {
        let failed = match outcome {
            Outcome::Failure => true,
            Outcome::Success => slow,
            Outcome::Ignored => return self.release_trial(generation),
        };
        if failed {
            self.transition(
                |w| w.kind() == HALF_OPEN && w.generation() == generation,
                OPEN,
                TransitionReason::TrialFailed,
            );
            return;
        }
        let mut w = self.word();
        loop {
            if w.kind() != HALF_OPEN || w.generation() != generation {
                return;
            }
            let successes = w.successes() + 1;
            if successes >= self.config.success_threshold {
                self.transition(
                    |w| w.kind() == HALF_OPEN && w.generation() == generation,
                    CLOSED,
                    TransitionReason::TrialsSucceeded { count: successes },
                );
                return;
            }
            let next = w.with_trials(w.in_flight().saturating_sub(1), successes);
            match self
                .state
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => w = Word(actual),
            }
        }
    }

    fn release_trial(&self, generation: u32) {
        let mut w = self.word();
        while w.kind() == HALF_OPEN && w.generation() == generation {
            let next = w.with_trials(w.in_flight().saturating_sub(1), w.successes());
            match self
                .state
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => w = Word(actual),
            }
        }
    }

    /// Claims the probe that is due, if any: the Open period's generation and the claim (its
    /// expiry time, never 0).
    fn claim_probe(&self) -> Option<(u32, u64)> {
        let every = self.config.probe_interval?;
        let w = self.word();
        if w.kind() != OPEN {
            return None;
        }
        let now = self.now();
        if now < self.probe_due_at.load(Ordering::Acquire)
            || now >= self.open_until.load(Ordering::Acquire)
        {
            return None;
        }
        let running = self.probe_claim.load(Ordering::Acquire);
        if running != 0 && now < running {
            return None; // another probe runs and has time left
        }
        let claim = now
            .saturating_add(nanos(self.config.probe_timeout().unwrap_or(every)))
            .max(1);
        self.probe_claim
            .compare_exchange(running, claim, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        // Until this probe reports, the next one is not due.
        self.probe_due_at
            .store(now.saturating_add(nanos(every)), Ordering::Release);
        Some((w.generation(), claim))
    }

    fn finish_probe(&self, generation: u32, claim: u64, healthy: bool) {
        if healthy {
            self.transition(
                |w| w.kind() == OPEN && w.generation() == generation,
                HALF_OPEN,
                TransitionReason::ProbeSucceeded,
            );
        }
        // Only the claim still held reschedules and frees: an expired probe's late report
        // must not release a newer probe's claim.
        if self
            .probe_claim
            .compare_exchange(claim, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && !healthy
        {
            if let Some(every) = self.config.probe_interval {
                self.probe_due_at
                    .store(self.now().saturating_add(nanos(every)), Ordering::Release);
            }
        }
    }

    /// Moves to `to` if the current word passes `expect`; returns whether it did. Transitions
    /// are serialized by the control lock so that side data (the open deadline, cleared
    /// counters) is in place before the new state is published, and events reach listeners,
    /// logs and metrics in the order the transitions happened.
    fn transition(&self, expect: impl Fn(Word) -> bool, to: u64, reason: TransitionReason) -> bool {
        let mut control = lock(&self.control);
        let now = self.now();
        let mut w = self.word();
        let mut open_duration = control.open_duration;
        loop {
            if !expect(w) {
                return false;
            }
            match to {
                OPEN => {
                    let jittered = if let TransitionReason::RetryAfter { wait } = reason {
                        // The server's time, not the backoff's: the backoff stays as it was.
                        server_jitter(wait, &self.config)
                    } else {
                        open_duration = if w.kind() == HALF_OPEN {
                            grow(control.open_duration, &self.config)
                        } else {
                            self.config.open_duration
                        };
                        jitter(open_duration, self.config.open_jitter)
                    };
                    self.open_until
                        .store(now.saturating_add(nanos(jittered)), Ordering::Release);
                    if let Some(every) = self.config.probe_interval {
                        self.probe_due_at
                            .store(now.saturating_add(nanos(every)), Ordering::Release);
                    }
                }
                HALF_OPEN => self.half_open_since.store(now, Ordering::Release),
                CLOSED | METRICS_ONLY => {
                    open_duration = self.config.open_duration;
                    // A swap, not a store: a read-modify-write, so that it is ordered with a
                    // racing failure's compare-and-swap and one of the two sees the other.
                    self.run
                        .swap(u64::from(w.next_generation()) << 32, Ordering::AcqRel);
                    if let Some(window) = &self.window {
                        window.clear(now);
                    }
                }
                _ => {}
            }
            let next = Word::new(to, w.next_generation(), 0, 0);
            match self
                .state
                .compare_exchange(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => w = Word(actual),
            }
        }
        control.open_duration = open_duration;
        let (from, to) = (w.state(), Word::new(to, 0, 0, 0).state());
        self.held.store(false, Ordering::Release);
        if let Some(guard) = &self.guard {
            guard.moved(from, to);
        }
        if from == to {
            return true; // a reset of a closed breaker: counters cleared, nothing to announce
        }
        if to == State::Open {
            control.trips += 1;
        }
        self.announce(&control, from, to, reason, now);
        true
    }

    fn announce(
        &self,
        control: &Control,
        from: State,
        to: State,
        reason: TransitionReason,
        now: u64,
    ) {
        let name = &*self.name;
        match to {
            State::Open | State::ForcedOpen => {
                let open_for = Duration::from_nanos(
                    self.open_until.load(Ordering::Acquire).saturating_sub(now),
                );
                tracing::warn!(
                    breaker = name,
                    from = from.as_str(),
                    to = to.as_str(),
                    %reason,
                    open_for_secs = (to == State::Open).then_some(open_for.as_secs_f64()),
                    "circuit breaker opened"
                );
            }
            State::Closed => tracing::info!(
                breaker = name,
                from = from.as_str(),
                to = to.as_str(),
                %reason,
                "circuit breaker closed"
            ),
            _ => tracing::info!(
                breaker = name,
                from = from.as_str(),
                to = to.as_str(),
                %reason,
                "circuit breaker changed state"
            ),
        }
        self.metrics.transition(from, to);
        if !control.listeners.is_empty() {
            let event = TransitionEvent {
                breaker: self.name.clone(),
                from,
                to,
                reason,
                at: Duration::from_nanos(now),
            };
            for listener in &control.listeners {
                listener(&event);
            }
        }
    }
}

/// The open duration after a re-trip: multiplied, capped, and never shorter than `current`
/// (the multiplier is at least 1, but a duration of more than 2^53 ns does not survive the
/// round trip through `f64` to the nanosecond).
fn grow(current: Duration, config: &BreakerConfig) -> Duration {
    let grown = current.as_secs_f64() * config.open_backoff_multiplier;
    let max = config.max_open_duration();
    if grown >= max.as_secs_f64() {
        max
    } else {
        Duration::from_secs_f64(grown).max(current).min(max)
    }
}

/// The server's wait, lengthened by up to a tenth (or `open_jitter`, if larger) at random, and
/// capped at `max_open_duration`: never shorter than the server asked.
fn server_jitter(wait: Duration, config: &BreakerConfig) -> Duration {
    let spread = config.open_jitter.max(0.1) * fastrand::f64();
    Duration::try_from_secs_f64(wait.as_secs_f64() * (1.0 + spread))
        .map_or(wait, |longer| longer.max(wait))
        .min(config.max_open_duration().max(wait))
}

/// Shortens `d` by a random fraction of at most `fraction`.
fn jitter(d: Duration, fraction: f64) -> Duration {
    if fraction == 0.0 {
        return d;
    }
    // Not `Duration::mul_f64`: within 2048 s of 2^64 s, `as_secs_f64` rounds up to 2^64 and a
    // factor of 1.0 (a tiny `fraction`) would panic converting back. Never longer than `d`.
    let factor = 1.0 - fraction * fastrand::f64();
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).map_or(d, |shorter| shorter.min(d))
}
