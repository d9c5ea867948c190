//! Permits: admission tickets that report the call's outcome.

use super::{CircuitBreaker, Outcome};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketKind {
    /// Admitted in Closed or MetricsOnly: the outcome feeds the counters.
    Closed,
    /// Admitted in HalfOpen: holds one trial slot until it reports or is dropped.
    Trial,
    /// Admitted while disabled: nothing is recorded.
    Disabled,
}

/// What a permit needs to report: plain data, no reference to the breaker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(crate) kind: TicketKind,
    /// The state generation at admission; an outcome from an older generation is stale.
    pub(crate) generation: u32,
    /// The clock at admission (nanoseconds), when durations are measured.
    pub(crate) start: u64,
}

impl Ticket {
    #[inline]
    pub(crate) fn new(kind: TicketKind, generation: u32, start: u64) -> Self {
        Self {
            kind,
            generation,
            start,
        }
    }
}

/// Permission to make one call, borrowed from its breaker.
///
/// Report how the call went with [`record`](Self::record). Dropping the permit without an
/// outcome (the call was cancelled) counts as neither success nor failure and frees its HalfOpen
/// trial slot, so no sequence of drops can leave the breaker stuck.
#[must_use = "a permit reports its call's outcome; dropping it records nothing"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
    armed: bool,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker, ticket: Ticket) -> Self {
        Self {
            breaker,
            ticket,
            armed: true,
        }
    }

    /// Records the call's outcome; its duration is measured from admission.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.armed = false;
        self.breaker.inner.finish(&self.ticket, Some(outcome));
    }

    /// Whether this permit holds one of HalfOpen's trial slots.
    pub fn is_trial(&self) -> bool {
        self.ticket.kind == TicketKind::Trial
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.armed {
            self.breaker.inner.finish(&self.ticket, None);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("trial", &self.is_trial())
            .finish()
    }
}

/// Permission to make one call that owns a handle to its breaker, for `'static` futures.
/// Behaves exactly like [`Permit`].
#[must_use = "a permit reports its call's outcome; dropping it records nothing"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    ticket: Ticket,
    armed: bool,
}

impl OwnedPermit {
    pub(crate) fn new(breaker: CircuitBreaker, ticket: Ticket) -> Self {
        Self {
            breaker,
            ticket,
            armed: true,
        }
    }

    /// Records the call's outcome; its duration is measured from admission.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.armed = false;
        self.breaker.inner.finish(&self.ticket, Some(outcome));
    }

    /// Whether this permit holds one of HalfOpen's trial slots.
    pub fn is_trial(&self) -> bool {
        self.ticket.kind == TicketKind::Trial
    }

    /// The breaker that issued this permit.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        if self.armed {
            self.breaker.inner.finish(&self.ticket, None);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.breaker.name())
            .field("trial", &self.is_trial())
            .finish()
    }
}
