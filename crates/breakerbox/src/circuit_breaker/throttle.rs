//! Adaptive client-side throttling: requests and accepts over a time window, and the chance of
//! rejecting the next request locally (Google SRE, "Handling Overload").

use super::window::{Sample, TimeWindow};
use crate::config::ThrottleConfig;

/// The throttle of one breaker: a time window in which a request is a call and a refusal is a
/// "failure" (so accepts = calls - failures), and `k`. Lock-free and allocation-free per call:
/// the window is the engine's time window.
#[derive(Debug)]
pub(crate) struct Throttle {
    window: TimeWindow,
    k: f64,
}

impl Throttle {
    pub(crate) fn new(config: &ThrottleConfig, now: u64) -> Self {
        Self {
            window: TimeWindow::new(
                crate::clock::nanos(config.window),
                crate::config::edge::THROTTLE_BUCKETS,
                now,
            ),
            k: config.k,
        }
    }

    /// The chance that a request arriving at `now` is rejected locally:
    /// `max(0, (requests - k * accepts) / (requests + 1))`.
    pub(crate) fn reject_probability(&self, now: u64) -> f64 {
        let counts = self.window.counts(now);
        let requests = counts.calls as f64;
        let accepts = counts.calls.saturating_sub(counts.failures) as f64;
        ((requests - self.k * accepts) / (requests + 1.0)).max(0.0)
    }

    /// Decides a request at `now`: `true` to send it. A rejected request counts as a request
    /// the upstream did not accept.
    #[inline]
    pub(crate) fn admit(&self, now: u64) -> bool {
        if !self.window.has_failures(now) {
            return true; // everything in the window was accepted: nothing to reject
        }
        let p = self.reject_probability(now);
        if p > 0.0 && fastrand::f64() < p {
            self.record(now, false);
            return false;
        }
        true
    }

    /// Counts a request that was sent, `accepted` or not.
    #[inline]
    pub(crate) fn record(&self, now: u64, accepted: bool) {
        if accepted && self.window.record_quiet(now) {
            return;
        }
        self.window.record(
            now,
            Sample {
                failure: !accepted,
                slow: false,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    fn throttle() -> Throttle {
        Throttle::new(
            &ThrottleConfig::new(2.0, Duration::from_secs(10)).unwrap(),
            0,
        )
    }

    #[test]
    fn healthy_traffic_is_never_rejected() {
        let t = throttle();
        for i in 0..10_000 {
            assert!(t.admit(i * 1_000_000));
            t.record(i * 1_000_000, true);
        }
        assert_eq!(t.reject_probability(10 * SEC), 0.0);
    }

    #[test]
    fn the_probability_follows_the_formula() {
        let t = throttle();
        // 100 requests, 10 accepted: (100 - 20) / 101.
        for i in 0..100 {
            t.record(i, i < 10);
        }
        let p = t.reject_probability(100);
        assert!((p - 80.0 / 101.0).abs() < 1e-9, "{p}");
    }

    #[test]
    fn rejections_fade_once_the_window_has_passed() {
        let t = throttle();
        for i in 0..100 {
            t.record(i, false);
        }
        assert!(t.reject_probability(200) > 0.9);
        // A window (10 s) later, the refusals are gone.
        assert_eq!(t.reject_probability(11 * SEC), 0.0);
        assert!(t.admit(11 * SEC));
    }
}
