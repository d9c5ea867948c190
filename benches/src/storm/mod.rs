//! The retry-storm scenario bench (`cargo bench -p breakerbox-benches --bench storm`): what each
//! client stack does to an upstream under stress, in real time on loopback.
//!
//! Every stack of a scenario runs at the same time, each against its own [`upstream`] instance
//! playing the same [`script`] with the same seed, each driven by its own open-loop [`load`]
//! generator at the same offered rate. Afterwards [`report`] turns the per-slot counts into one
//! markdown table per scenario (and checks the default breakerbox stack's targets), and
//! [`plot`] draws goodput over time as an SVG.
//!
//! - [`script`]: the scripted upstream timeline (capacity, outage, random failures) and the
//!   four scenarios;
//! - [`upstream`]: the hyper server with a fixed capacity, answering 503 or queueing beyond it;
//! - [`load`]: open-loop arrivals and what callers saw;
//! - [`stacks`]: the client stacks, as users would build them; [`tower_stack`]: tower's own
//!   `Retry` over hyper-util's client;
//! - [`run`]: one scenario, every stack at once;
//! - [`figures`]: what is computed from the counts;
//! - [`report`] and [`plot`]: the tables, the targets, the SVGs.

pub mod figures;
pub mod load;
pub mod plot;
pub mod report;
pub mod run;
pub mod script;
pub mod stacks;
pub mod tower_stack;
pub mod upstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The time resolution of every count: 100 ms.
pub const SLOT: Duration = Duration::from_millis(100);

/// Slots per second.
pub const SLOTS_PER_SEC: usize = 10;

/// The slot `elapsed` falls in.
pub fn slot_of(elapsed: Duration) -> usize {
    (elapsed.as_nanos() / SLOT.as_nanos()) as usize
}

/// A counter per [`SLOT`] of a run; counts past the last slot go to the last one.
#[derive(Debug)]
pub struct Series {
    slots: Box<[AtomicU64]>,
}

impl Series {
    /// `slots` counters at zero.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one in `slot`.
    pub fn add(&self, slot: usize) {
        let last = self.slots.len() - 1;
        self.slots[slot.min(last)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        Counts(
            self.slots
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        )
    }
}

/// A [`Series`] read out: one count per slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts(pub Vec<u64>);

impl Counts {
    /// The sum over slots `from..to` (clamped to the series).
    pub fn sum(&self, from: usize, to: usize) -> u64 {
        let to = to.min(self.0.len());
        self.0.get(from.min(to)..to).map_or(0, |s| s.iter().sum())
    }

    /// The sum over every slot.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A number from the environment, or `default` when it is unset or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_sums() {
        assert_eq!(slot_of(Duration::from_millis(99)), 0);
        assert_eq!(slot_of(Duration::from_millis(100)), 1);
        let s = Series::new(3);
        s.add(0);
        s.add(2);
        s.add(7); // past the end: the last slot
        let c = s.snapshot();
        assert_eq!(c.0, vec![1, 0, 2]);
        assert_eq!(c.sum(1, 3), 2);
        assert_eq!(c.sum(2, 99), 2);
        assert_eq!(c.sum(5, 9), 0);
        assert_eq!(c.total(), 3);
    }
}
