//! Permits: admission tickets that report the call's outcome.

use super::{AttemptOutcome, CircuitBreaker, Inner, Outcome};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketKind {
    /// Admitted in Closed or MetricsOnly: the outcome feeds the counters.
    Closed,
    /// Admitted in HalfOpen: holds one trial slot until it reports or is dropped.
    Trial,
    /// Admitted while disabled: nothing is recorded.
    Disabled,
    /// Admitted in Closed by the throttle: the outcome feeds the counters and the throttle.
    Throttled,
}

/// What a permit needs to report: plain data, no reference to the breaker. Two whole words
/// (kind, armed flag and generation packed in one), so that moving a permit through a front
/// end's futures never stores a field narrower than the word it is read back as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// Bits 0..2 the kind, bit 2 armed (no outcome reported yet), bits 32..64 the state
    /// generation at admission (an outcome from an older generation is stale).
    tag: u64,
    /// The clock at admission (nanoseconds), when durations are measured.
    pub(crate) start: u64,
}

const KIND_MASK: u64 = 0b11;
const ARMED: u64 = 0b100;

impl Ticket {
    #[inline]
    pub(crate) fn new(kind: TicketKind, generation: u32, start: u64) -> Self {
        let kind = match kind {
            TicketKind::Closed => 0,
            TicketKind::Trial => 1,
            TicketKind::Disabled => 2,
            TicketKind::Throttled => 3,
        };
        Self {
            tag: kind | ARMED | u64::from(generation) << 32,
            start,
        }
    }

    #[inline]
    pub(crate) fn kind(&self) -> TicketKind {
        match self.tag & KIND_MASK {
            0 => TicketKind::Closed,
            1 => TicketKind::Trial,
            2 => TicketKind::Disabled,
            _ => TicketKind::Throttled,
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.tag & KIND_MASK == 0
    }

    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        (self.tag >> 32) as u32
    }

    #[inline]
    fn armed(&self) -> bool {
        self.tag & ARMED != 0
    }

    #[inline]
    fn disarm(&mut self) {
        self.tag &= !ARMED;
    }
}

/// Permission to make one call, borrowed from its breaker.
///
/// Report how the call went with [`record`](Self::record) (an [`Outcome`]) or
/// [`report`](Self::report) (an [`AttemptOutcome`], which the breaker's config turns into an
/// outcome). Dropping the permit without an outcome (the call was cancelled) counts as neither
/// success nor failure and frees its HalfOpen trial slot, so no sequence of drops can leave the
/// breaker stuck; dropping it while the thread panics (the call panicked) counts as a failure.
///
/// An outcome counts only in the state period its permit was admitted in: if the breaker has
/// changed state since (it opened, closed, or was reset), the late outcome is ignored and can
/// never count against the newer period.
#[must_use = "a permit reports its call's outcome; dropping it records nothing"]
#[repr(C)]
pub struct Permit<'a> {
    ticket: Ticket,
    inner: &'a Inner,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(inner: &'a Inner, ticket: Ticket) -> Self {
        Self { inner, ticket }
    }

    /// Records the call's outcome; its duration is measured from admission.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        // Reported here, so not again on drop: nothing else in a permit needs dropping.
        let this = std::mem::ManuallyDrop::new(self);
        this.inner.finish(&this.ticket, Some(outcome), false);
    }

    /// Records what the attempt came back with, as the breaker's config classifies it
    /// ([`BreakerConfig::outcome_of`](crate::BreakerConfig::outcome_of)).
    #[inline(always)]
    pub fn report(self, attempt: AttemptOutcome) {
        let outcome = self.outcome_of(attempt);
        let this = std::mem::ManuallyDrop::new(self);
        this.inner
            .finish(&this.ticket, Some(outcome), refused(attempt));
    }

    /// [`report`](Self::report), with the server's word: `server_wait` is how long the answer
    /// asked the client to stay away, as
    /// [`BreakerConfig::server_wait`](crate::BreakerConfig::server_wait) reads it from its
    /// headers. With a wait, the breaker opens until then, whatever its counts say.
    pub fn report_answer(self, attempt: AttemptOutcome, server_wait: Option<Duration>) {
        let inner = self.inner;
        self.report(attempt);
        if let Some(wait) = server_wait {
            inner.open_for(wait);
        }
    }

    /// The outcome this breaker records for `attempt`.
    #[inline]
    pub fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        self.inner.config.outcome_of(attempt)
    }

    /// Whether this permit holds one of HalfOpen's trial slots.
    pub fn is_trial(&self) -> bool {
        self.ticket.kind() == TicketKind::Trial
    }

    /// The config of the breaker that issued this permit.
    pub fn config(&self) -> &crate::BreakerConfig {
        &self.inner.config
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.ticket.armed() {
            self.inner.finish(&self.ticket, unreported(), false);
        }
    }
}

/// Whether the upstream refused the attempt for load: a 429, which throttling counts as a
/// refusal even where the breaker ignores it.
#[inline(always)]
fn refused(attempt: AttemptOutcome) -> bool {
    attempt == AttemptOutcome::Status(429)
}

/// The outcome of a permit dropped without a report: none (a cancelled call), or a failure when
/// the thread is panicking (the call panicked while holding it).
#[inline]
fn unreported() -> Option<Outcome> {
    std::thread::panicking().then_some(Outcome::Failure)
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &&*self.inner.name)
            .field("trial", &self.is_trial())
            .finish()
    }
}

/// What an [`OwnedPermit`] keeps to report back to its breaker: the breaker handle itself, a
/// `&'static` breaker, or an `Arc` of a holder.
///
/// A permit that must be `'static` (one kept in a spawned future, say) needs a way back to its
/// breaker that it owns. [`CircuitBreaker::try_acquire_owned`] clones the breaker handle: one
/// reference-count increment per admitted call, and a decrement when the permit goes, on the
/// counter every clone of the handle shares. When many threads call one breaker, that counter's
/// cache line travels between their cores on every call. A front end can spread those counts:
/// give each of its clones its own holder (an `Arc` of a type of its own that holds a clone of
/// the breaker) and admit with [`CircuitBreaker::try_acquire_by`].
///
/// ```
/// use breakerbox::circuit_breaker::BreakerHolder;
/// use breakerbox::{BreakerConfig, CircuitBreaker, Outcome, State};
/// use std::sync::Arc;
///
/// /// One per worker: each worker's permits count references on its own holder.
/// struct Worker(CircuitBreaker);
///
/// impl BreakerHolder for Worker {
///     fn breaker(&self) -> &CircuitBreaker {
///         &self.0
///     }
/// }
///
/// let config = BreakerConfig::builder().consecutive_failures(1).build()?;
/// let breaker = CircuitBreaker::new("discogs", config);
/// let worker = Arc::new(Worker(breaker.clone()));
/// let permit = CircuitBreaker::try_acquire_by(&worker).expect("closed");
/// permit.record(Outcome::Failure);
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Front-end plumbing, hidden from the docs.
#[doc(hidden)]
pub trait BreakerHolder {
    /// The breaker held.
    fn breaker(&self) -> &CircuitBreaker;
}

impl BreakerHolder for CircuitBreaker {
    #[inline]
    fn breaker(&self) -> &CircuitBreaker {
        self
    }
}

impl BreakerHolder for &'static CircuitBreaker {
    #[inline]
    fn breaker(&self) -> &CircuitBreaker {
        self
    }
}

impl<T: BreakerHolder + ?Sized> BreakerHolder for std::sync::Arc<T> {
    #[inline]
    fn breaker(&self) -> &CircuitBreaker {
        (**self).breaker()
    }
}

/// Permission to make one call that owns its way back to its breaker (a [`BreakerHolder`]: by
/// default a handle to the breaker), for `'static` futures. Behaves exactly like [`Permit`]:
/// dropped unreported it records nothing (or a failure while panicking), and its outcome counts
/// only in the state period it was admitted in.
#[must_use = "a permit reports its call's outcome; dropping it records nothing"]
#[repr(C)]
pub struct OwnedPermit<H: BreakerHolder = CircuitBreaker> {
    ticket: Ticket,
    holder: H,
}

impl<H: BreakerHolder> OwnedPermit<H> {
    pub(crate) fn new(holder: H, ticket: Ticket) -> Self {
        Self { holder, ticket }
    }

    /// Records the call's outcome; its duration is measured from admission.
    #[inline(always)]
    pub fn record(mut self, outcome: Outcome) {
        self.ticket.disarm();
        self.holder
            .breaker()
            .inner
            .finish(&self.ticket, Some(outcome), false);
    }

    /// Records what the attempt came back with, as the breaker's config classifies it
    /// ([`BreakerConfig::outcome_of`](crate::BreakerConfig::outcome_of)).
    #[inline(always)]
    pub fn report(mut self, attempt: AttemptOutcome) {
        let outcome = self.outcome_of(attempt);
        self.ticket.disarm();
        self.holder
            .breaker()
            .inner
            .finish(&self.ticket, Some(outcome), refused(attempt));
    }

    /// [`report`](Self::report), with the server's word: `server_wait` is how long the answer
    /// asked the client to stay away, as
    /// [`BreakerConfig::server_wait`](crate::BreakerConfig::server_wait) reads it from its
    /// headers. With a wait, the breaker opens until then, whatever its counts say.
    pub fn report_answer(mut self, attempt: AttemptOutcome, server_wait: Option<Duration>) {
        let outcome = self.outcome_of(attempt);
        self.ticket.disarm();
        let inner = &self.holder.breaker().inner;
        inner.finish(&self.ticket, Some(outcome), refused(attempt));
        if let Some(wait) = server_wait {
            inner.open_for(wait);
        }
    }

    /// The outcome this breaker records for `attempt`.
    #[inline]
    pub fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        self.holder.breaker().inner.config.outcome_of(attempt)
    }

    /// Whether this permit holds one of HalfOpen's trial slots.
    pub fn is_trial(&self) -> bool {
        self.ticket.kind() == TicketKind::Trial
    }

    /// The breaker that issued this permit.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.holder.breaker()
    }

    /// The config of the breaker that issued this permit.
    pub fn config(&self) -> &crate::BreakerConfig {
        &self.holder.breaker().inner.config
    }

    /// What the permit holds to reach its breaker.
    #[doc(hidden)]
    pub fn holder(&self) -> &H {
        &self.holder
    }
}

impl<H: BreakerHolder> Drop for OwnedPermit<H> {
    #[inline]
    fn drop(&mut self) {
        if self.ticket.armed() {
            self.holder
                .breaker()
                .inner
                .finish(&self.ticket, unreported(), false);
        }
    }
}

impl<H: BreakerHolder> fmt::Debug for OwnedPermit<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.breaker().name())
            .field("trial", &self.is_trial())
            .finish()
    }
}
