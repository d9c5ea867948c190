//! Monotonic time, injected.
//!
//! Every time-dependent decision in breakerbox (open durations, time-based windows, slow calls,
//! retry budgets) reads an injected [`Clock`], so tests drive time by hand with a [`ManualClock`]
//! and the tower and reqwest front ends plug in tokio's clock so that `tokio::time::pause()`
//! controls everything.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time.
///
/// `now` returns the time elapsed since an origin the clock chooses once; it never goes
/// backwards. Implementations must be cheap: a breaker reads its clock at most twice per call,
/// and only when a configured rule needs time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time elapsed since this clock's origin.
    fn now(&self) -> Duration;

    /// [`now`](Self::now) in whole nanoseconds, saturating at `u64::MAX` (584 years): what the
    /// engine computes with. Override it when the clock can say it without building a
    /// `Duration` first; it must agree with `now`.
    #[inline]
    fn now_nanos(&self) -> u64 {
        nanos(self.now())
    }
}

/// A clock shared by many breakers.
pub type SharedClock = Arc<dyn Clock>;

/// Converts a clock reading to the whole nanoseconds the engine computes with (saturating after
/// about 584 years of uptime).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl MonotonicClock ===

/// The operating system's monotonic clock ([`std::time::Instant`]), with its origin at
/// construction. The default clock of every breaker.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the OS clock
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

// === impl ManualClock ===

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share the same time, so a test keeps one handle and gives another to the breaker.
///
/// ```
/// use breakerbox::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(shared.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Moves the clock to `to`, if that is not in its past (a monotonic clock never goes back;
    /// an earlier `to` is ignored).
    pub fn set(&self, to: Duration) {
        self.nanos.fetch_max(nanos(to), Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_millis(1500));
        clock.set(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_millis(1500));
        clock.set(Duration::from_secs(3));
        assert_eq!(clock.now(), Duration::from_secs(3));
    }

    #[test]
    fn monotonic_clock_never_goes_back() {
        let clock = MonotonicClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }
}
