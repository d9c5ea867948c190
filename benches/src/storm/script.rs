//! The scripted upstream timeline, and the four scenarios of the bench.
//!
//! A scenario is a list of phases, each with the upstream's capacity, whether it is down, and
//! the fraction of requests it fails at random. Every upstream instance of a scenario plays the
//! same script from the same start instant with the same seed.

use std::time::Duration;

/// The upstream's capacity when healthy, in requests per second.
pub const CAPACITY: f64 = 150.0;

/// The offered load of every stack, in requests per second (open loop).
pub const OFFERED: f64 = 100.0;

/// What the upstream does with a request beyond its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// Answers 503 at once.
    Reject,
    /// Queues it (first in, first out) and serves the queue at the capacity's rate, whether or
    /// not its caller is still waiting; past `max_queued` waiting requests, answers 503 at once.
    Queue {
        /// The most requests waiting at once.
        max_queued: usize,
    },
}

/// One stretch of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// How long it lasts.
    pub duration: Duration,
    /// Requests per second the upstream serves.
    pub capacity: f64,
    /// The fraction of requests answered 503 at random (seeded), before capacity is looked at.
    pub failure: f64,
    /// Every request answered 503.
    pub outage: bool,
}

impl Phase {
    /// Healthy, at [`CAPACITY`].
    pub fn healthy(duration: Duration) -> Self {
        Self::at_capacity(duration, CAPACITY)
    }

    /// Healthy, at `capacity` requests per second.
    pub fn at_capacity(duration: Duration, capacity: f64) -> Self {
        Self {
            duration,
            capacity,
            failure: 0.0,
            outage: false,
        }
    }

    /// Every request answered 503.
    pub fn outage(duration: Duration) -> Self {
        Self {
            outage: true,
            ..Self::healthy(duration)
        }
    }

    /// A `failure` fraction of requests answered 503 at random, at [`CAPACITY`].
    pub fn failing(duration: Duration, failure: f64) -> Self {
        Self {
            failure,
            ..Self::healthy(duration)
        }
    }
}

/// The figures a scenario is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every request fails: attempts per request.
    FullOutage,
    /// Capacity dips: goodput during and after, recovery time.
    Dip,
    /// A fraction of requests fails at random: success rate and attempts per request.
    Partial,
}

/// A scenario: a script for the upstream and what to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name: `BREAKERBOX_STORM_ONLY`'s value and the SVG's file stem.
    pub name: &'static str,
    /// Its title in the report.
    pub title: &'static str,
    /// What it measures.
    pub kind: Kind,
    /// Beyond capacity: 503 or a queue.
    pub overload: Overload,
    /// The script, in order; after the last phase the last one goes on.
    pub phases: Vec<Phase>,
    /// The index of the fault phase (outage, dip or failures) in `phases`.
    pub fault: usize,
    /// The seed of the upstreams' random failures.
    pub seed: u64,
}

impl Scenario {
    /// The four scenarios, every phase's length multiplied by `scale` (and rounded to a
    /// [`SLOT`](super::SLOT), at least one).
    pub fn all(scale: f64) -> Vec<Scenario> {
        let s = |secs: f64| super::SLOT * ((secs * scale * 10.0).round() as u32).max(1);
        let dip = CAPACITY * 0.3;
        vec![
            Scenario {
                name: "full_outage",
                title: "Full outage: every request 503 for 30 s",
                kind: Kind::FullOutage,
                overload: Overload::Reject,
                phases: vec![
                    Phase::healthy(s(5.0)),
                    Phase::outage(s(30.0)),
                    Phase::healthy(s(25.0)),
                ],
                fault: 1,
                seed: 1,
            },
            Scenario {
                name: "metastable_trigger",
                title: "Metastable trigger: capacity 150/s drops to 45/s for 10 s (503 beyond capacity)",
                kind: Kind::Dip,
                overload: Overload::Reject,
                phases: vec![
                    Phase::healthy(s(5.0)),
                    Phase::at_capacity(s(10.0), dip),
                    Phase::healthy(s(25.0)),
                ],
                fault: 1,
                seed: 2,
            },
            Scenario {
                name: "partial_outage",
                title: "Partial outage: 30 % of requests answered 503 at random for 20 s",
                kind: Kind::Partial,
                overload: Overload::Reject,
                phases: vec![
                    Phase::healthy(s(5.0)),
                    Phase::failing(s(20.0), 0.3),
                    Phase::healthy(s(15.0)),
                ],
                fault: 1,
                seed: 3,
            },
            Scenario {
                name: "queueing",
                title: "Queueing: capacity 150/s drops to 45/s for 10 s, excess requests queue",
                kind: Kind::Dip,
                overload: Overload::Queue { max_queued: 1000 },
                phases: vec![
                    Phase::healthy(s(5.0)),
                    Phase::at_capacity(s(10.0), dip),
                    Phase::healthy(s(25.0)),
                ],
                fault: 1,
                seed: 4,
            },
        ]
    }

    /// The phase in force `elapsed` after the start.
    pub fn phase_at(&self, elapsed: Duration) -> &Phase {
        let mut end = Duration::ZERO;
        for phase in &self.phases {
            end += phase.duration;
            if elapsed < end {
                return phase;
            }
        }
        self.phases.last().expect("a scenario has phases")
    }

    /// The whole script's length: how long the load runs.
    pub fn length(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// When the fault phase starts and ends, from the start.
    pub fn fault_window(&self) -> (Duration, Duration) {
        let start: Duration = self.phases[..self.fault].iter().map(|p| p.duration).sum();
        (start, start + self.phases[self.fault].duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_each_other() {
        let dip = &Scenario::all(1.0)[1];
        assert_eq!(dip.length(), Duration::from_secs(40));
        assert_eq!(
            dip.fault_window(),
            (Duration::from_secs(5), Duration::from_secs(15))
        );
        assert_eq!(
            dip.phase_at(Duration::from_millis(4_999)).capacity,
            CAPACITY
        );
        assert_eq!(dip.phase_at(Duration::from_secs(5)).capacity, 45.0);
        assert_eq!(dip.phase_at(Duration::from_secs(15)).capacity, CAPACITY);
        assert_eq!(dip.phase_at(Duration::from_secs(99)).capacity, CAPACITY);
        // A quarter: 1.25 s, 7.5 s and 6.25 s, each rounded to a slot.
        let quick = &Scenario::all(0.25)[0];
        assert_eq!(quick.length(), Duration::from_millis(1_300 + 7_500 + 6_300));
    }
}
