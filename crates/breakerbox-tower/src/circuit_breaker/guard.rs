//! The permit of one call, as a classifier receives it.

use super::handle::Lease;
use breakerbox::{AttemptOutcome, BreakerConfig, Outcome, OwnedPermit, Permit};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The breaker permit of one admitted call, handed to the [`Classify`](crate::classify::Classify)
/// implementation that reports its outcome: at once, or (an HTTP response) when the response body
/// ends.
///
/// Dropped without a report, it records nothing and frees its HalfOpen trial slot (a cancelled
/// call), or records a failure if the thread is panicking. Its outcome counts only in the state
/// period it was admitted in: once the breaker has opened, closed or been reset since, a late
/// outcome is ignored.
pub struct Guard(Kind);

enum Kind {
    /// No breaker guards this call (a keyed request without a target).
    Unguarded,
    Leased(OwnedPermit<Arc<Lease>>),
    Static(Permit<'static>),
    Keyed(OwnedPermit),
}

impl Guard {
    #[inline]
    pub(crate) fn leased(permit: OwnedPermit<Arc<Lease>>) -> Self {
        Self(Kind::Leased(permit))
    }

    #[inline]
    pub(crate) fn of_static(permit: Permit<'static>) -> Self {
        Self(Kind::Static(permit))
    }

    #[inline]
    pub(crate) fn keyed(permit: OwnedPermit) -> Self {
        Self(Kind::Keyed(permit))
    }

    #[inline]
    pub(crate) fn unguarded() -> Self {
        Self(Kind::Unguarded)
    }

    /// Records the call's outcome (nothing, for a call no breaker guards).
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        match self.0 {
            Kind::Leased(permit) => permit.record(outcome),
            Kind::Static(permit) => permit.record(outcome),
            Kind::Keyed(permit) => permit.record(outcome),
            Kind::Unguarded => {}
        }
    }

    /// Records what the call came back with, as the breaker's config classifies it (its
    /// `statuses` among others).
    #[inline(always)]
    pub fn report(self, attempt: AttemptOutcome) {
        let outcome = self.outcome_of(attempt);
        self.record(outcome);
    }

    /// The outcome the breaker records for `attempt` (ignored, for a call no breaker guards).
    #[inline]
    pub fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        match &self.0 {
            Kind::Leased(permit) => permit.outcome_of(attempt),
            Kind::Static(permit) => permit.outcome_of(attempt),
            Kind::Keyed(permit) => permit.outcome_of(attempt),
            Kind::Unguarded => Outcome::Ignored,
        }
    }

    /// Whether a breaker guards the call.
    pub fn is_guarded(&self) -> bool {
        !matches!(self.0, Kind::Unguarded)
    }
}

impl breakerbox_http::body::Record for Guard {
    #[inline]
    fn record(self, outcome: Outcome) {
        Guard::record(self, outcome);
    }

    #[inline]
    fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        Guard::outcome_of(self, attempt)
    }

    #[inline]
    fn config(&self) -> Option<&BreakerConfig> {
        match &self.0 {
            Kind::Leased(permit) => Some(permit.config()),
            Kind::Static(permit) => Some(permit.config()),
            Kind::Keyed(permit) => Some(permit.config()),
            Kind::Unguarded => None,
        }
    }

    #[inline]
    fn report_answer(self, attempt: AttemptOutcome, server_wait: Option<Duration>) {
        match self.0 {
            Kind::Leased(permit) => permit.report_answer(attempt, server_wait),
            Kind::Static(permit) => permit.report_answer(attempt, server_wait),
            Kind::Keyed(permit) => permit.report_answer(attempt, server_wait),
            Kind::Unguarded => {}
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Leased(permit) => fmt::Debug::fmt(permit, f),
            Kind::Static(permit) => fmt::Debug::fmt(permit, f),
            Kind::Keyed(permit) => fmt::Debug::fmt(permit, f),
            Kind::Unguarded => f.write_str("Unguarded"),
        }
    }
}
