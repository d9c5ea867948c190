//! The figures of one stack in one scenario, from its per-slot counts.
//!
//! Windows are in slots (100 ms) from the start. Per-request figures (success, attempts per
//! request, local rejections) count the requests *issued* in a window, wherever their attempts
//! and answers fell; goodput counts the successes *completed* in a window.

use super::run::StackResult;
use super::script::Scenario;
use super::{Counts, SLOTS_PER_SEC, slot_of};
use std::time::Duration;

/// Goodput counts as recovered at this fraction of the offered load.
pub const RECOVERED: f64 = 0.95;

/// One stack's counts with its scenario's windows.
#[derive(Debug, Clone, Copy)]
pub struct Figures<'a> {
    /// The counts.
    pub result: &'a StackResult,
    /// The fault phase, in slots.
    pub fault: (usize, usize),
    /// The end of the load, in slots.
    pub end: usize,
}

impl<'a> Figures<'a> {
    /// `result`'s figures in `scenario`.
    pub fn new(result: &'a StackResult, scenario: &Scenario) -> Self {
        let (from, to) = scenario.fault_window();
        Self {
            result,
            fault: (slot_of(from), slot_of(to)),
            end: slot_of(scenario.length()),
        }
    }

    /// Requests issued in slots `from..to`.
    pub fn offered(&self, from: usize, to: usize) -> u64 {
        self.result.offered.sum(from, to)
    }

    /// Upstream attempts of the requests issued in `from..to`, retries included.
    pub fn attempts(&self, from: usize, to: usize) -> u64 {
        self.result.attempts_by_issue.sum(from, to)
    }

    /// Upstream attempts per request issued in `from..to`.
    pub fn attempts_per_request(&self, from: usize, to: usize) -> f64 {
        ratio(self.attempts(from, to), self.offered(from, to))
    }

    /// The fraction of the requests issued in `from..to` that succeeded.
    pub fn success(&self, from: usize, to: usize) -> f64 {
        ratio(
            self.result.ok_by_issue.sum(from, to),
            self.offered(from, to),
        )
    }

    /// The fraction of the requests issued in `from..to` that a breaker rejected locally.
    pub fn rejected(&self, from: usize, to: usize) -> f64 {
        ratio(
            self.result.rejected_by_issue.sum(from, to),
            self.offered(from, to),
        )
    }

    /// Successes completed in `from..to`, per second.
    pub fn goodput(&self, from: usize, to: usize) -> f64 {
        per_sec(self.result.ok.sum(from, to), from, to)
    }

    /// Attempts the upstream received in `from..to`, per second (health checks included).
    pub fn attempt_rate(&self, from: usize, to: usize) -> f64 {
        per_sec(self.result.received.sum(from, to), from, to)
    }

    /// The fraction of the upstream's work spent on queued requests whose caller had gone.
    pub fn wasted(&self) -> f64 {
        let abandoned = self.result.abandoned.total();
        ratio(abandoned, abandoned + self.result.served.total())
    }

    /// How long after slot `from` goodput is back: see [`recovery`].
    pub fn recovery(&self, from: usize) -> Option<Duration> {
        recovery(&self.result.ok, &self.result.offered, from, self.end)
    }

    /// Successes completed per second, one value per second of the run up to `seconds`.
    pub fn goodput_per_second(&self, seconds: usize) -> Vec<f64> {
        (0..seconds)
            .map(|s| {
                self.result
                    .ok
                    .sum(s * SLOTS_PER_SEC, (s + 1) * SLOTS_PER_SEC) as f64
            })
            .collect()
    }
}

/// The time from slot `from` to the first slot `t` (before `end`, the end of the load) where
/// goodput is back and stays back: the successes completed in the second from `t` are at least
/// [`RECOVERED`] of the requests issued in it, and so are those completed from `t` to `end`.
/// `None` ("never") if there is no such slot.
pub fn recovery(ok: &Counts, offered: &Counts, from: usize, end: usize) -> Option<Duration> {
    let second = SLOTS_PER_SEC;
    let back = |a: usize, b: usize| ok.sum(a, b) as f64 >= RECOVERED * offered.sum(a, b) as f64;
    (from..=end.saturating_sub(second))
        .find(|&t| back(t, t + second) && back(t, end))
        .map(|t| super::SLOT * (t - from) as u32)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn per_sec(n: u64, from: usize, to: usize) -> f64 {
    let secs = to.saturating_sub(from) as f64 / SLOTS_PER_SEC as f64;
    if secs == 0.0 { 0.0 } else { n as f64 / secs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_back_and_staying_back() {
        let offered = Counts(vec![10; 60]);
        // Nothing for 2 s after slot 10, back at once after.
        let mut ok = Counts(vec![10; 60]);
        ok.0[10..30].fill(0);
        assert_eq!(
            recovery(&ok, &offered, 10, 60),
            Some(Duration::from_secs(2))
        );
        // Back for a second, then down again for 2 s: recovered after the relapse.
        ok.0[40..42].fill(0);
        assert_eq!(
            recovery(&ok, &offered, 10, 60),
            Some(Duration::from_millis(3_200))
        );
        // Never back.
        let none = Counts(vec![5; 60]);
        assert_eq!(recovery(&none, &offered, 10, 60), None);
        // Already fine.
        assert_eq!(recovery(&offered, &offered, 10, 60), Some(Duration::ZERO));
    }
}
