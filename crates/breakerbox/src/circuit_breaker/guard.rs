//! The fleet guard: a box-wide cap on the share of breakers open at once (Envoy's max
//! ejection percent).

use super::State;
use crate::sync::{AtomicU64, Ordering};

/// Counts of one box's breakers: how many exist (each was made by its first call), and how
/// many are open. Written on transitions and creations only; read when a breaker would trip.
#[derive(Debug)]
pub(crate) struct FleetGuard {
    max_open_fraction: f64,
    breakers: AtomicU64,
    open: AtomicU64,
}

impl FleetGuard {
    pub(crate) fn new(max_open_fraction: f64) -> Self {
        Self {
            max_open_fraction,
            breakers: AtomicU64::new(0),
            open: AtomicU64::new(0),
        }
    }

    pub(crate) fn created(&self) {
        self.breakers.fetch_add(1, Ordering::AcqRel);
    }

    /// A breaker moved from `from` to `to`.
    pub(crate) fn moved(&self, from: State, to: State) {
        let rejecting = |s: State| matches!(s, State::Open | State::HalfOpen);
        match (rejecting(from), rejecting(to)) {
            (false, true) => {
                self.open.fetch_add(1, Ordering::AcqRel);
            }
            (true, false) => {
                // Saturating: never below zero, whatever the order of racing moves.
                let _ = self
                    .open
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
            _ => {}
        }
    }

    /// Whether one more breaker may not open: one is open already, and with another the open
    /// share would pass the cap.
    pub(crate) fn holds_trip(&self) -> bool {
        let open = self.open.load(Ordering::Acquire);
        let breakers = self.breakers.load(Ordering::Acquire).max(1);
        open >= 1 && (open + 1) as f64 > self.max_open_fraction * breakers as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_breaker_may_always_open_and_the_share_is_capped() {
        let guard = FleetGuard::new(0.5);
        for _ in 0..4 {
            guard.created();
        }
        assert!(!guard.holds_trip(), "the first may open");
        guard.moved(State::Closed, State::Open);
        assert!(!guard.holds_trip(), "2 of 4 is half");
        guard.moved(State::Closed, State::Open);
        assert!(guard.holds_trip(), "3 of 4 is past half");
        // Open -> HalfOpen keeps it counted; closing frees a place.
        guard.moved(State::Open, State::HalfOpen);
        assert!(guard.holds_trip());
        guard.moved(State::HalfOpen, State::Closed);
        assert!(!guard.holds_trip());

        let alone = FleetGuard::new(0.5);
        alone.created();
        assert!(!alone.holds_trip(), "a box of one breaker opens as usual");
    }
}
