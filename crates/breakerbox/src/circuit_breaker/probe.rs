//! Health probes: the engine says when one is due; the front end runs it.

use super::CircuitBreaker;
use std::fmt;
use std::time::Duration;

/// A claimed health probe of an Open breaker (see [`CircuitBreaker::probe_due`]).
///
/// Run the probe (an HTTP health check, say), give up on it after
/// [`timeout`](Self::timeout), and report with [`succeeded`](Self::succeeded) or
/// [`failed`](Self::failed). A success moves the breaker to HalfOpen at once, so trial calls
/// start before the open duration ends; a failure, or dropping the ticket, schedules the next
/// probe one `probe_interval` later. Only one probe runs at a time, and one that never reports
/// stops counting as running once its timeout has passed.
///
/// ```
/// use breakerbox::{BreakerConfig, CircuitBreaker, State};
/// use breakerbox::clock::ManualClock;
/// use std::{sync::Arc, time::Duration};
///
/// let clock = ManualClock::new();
/// let config = BreakerConfig::builder()
///     .consecutive_failures(1)
///     .open_duration(Duration::from_secs(300))
///     .probe_interval(Duration::from_secs(10))
///     .build()?;
/// let breaker = CircuitBreaker::builder("beatport", config)
///     .clock(Arc::new(clock.clone()))
///     .build();
/// breaker.try_acquire().unwrap().record(breakerbox::Outcome::Failure);
/// assert!(breaker.probe_due().is_none());
///
/// clock.advance(Duration::from_secs(10));
/// let probe = breaker.probe_due().expect("due after one interval");
/// probe.succeeded(); // the upstream answered its health check
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[must_use = "report the probe's result, or drop the ticket to count it as failed"]
pub struct ProbeTicket {
    breaker: CircuitBreaker,
    generation: u32,
    claim: u64,
    reported: bool,
}

impl ProbeTicket {
    pub(crate) fn new(breaker: CircuitBreaker, generation: u32, claim: u64) -> Self {
        Self {
            breaker,
            generation,
            claim,
            reported: false,
        }
    }

    /// The upstream is healthy: HalfOpen now, if the breaker is still in the Open period this
    /// probe was claimed in.
    pub fn succeeded(mut self) {
        self.reported = true;
        self.breaker
            .inner
            .finish_probe(self.generation, self.claim, true);
    }

    /// The upstream is still down: the next probe is due one interval from now.
    pub fn failed(mut self) {
        self.reported = true;
        self.breaker
            .inner
            .finish_probe(self.generation, self.claim, false);
    }

    /// The breaker being probed.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// How long the probe may take: the breaker's `probe_timeout`. Past it, treat the probe as
    /// failed (another may already have been claimed).
    pub fn timeout(&self) -> Duration {
        self.breaker
            .config()
            .probe_timeout()
            .unwrap_or(Duration::MAX)
    }
}

impl Drop for ProbeTicket {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker
                .inner
                .finish_probe(self.generation, self.claim, false);
        }
    }
}

impl fmt::Debug for ProbeTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeTicket")
            .field("breaker", &self.breaker.name())
            .finish()
    }
}
