//! The run's clock: time since the scraping started, on tokio's clock.

use std::time::Duration;
use tokio::time::Instant;

/// The moment the run started. Everything the demo reports (fault windows, breaker transitions,
/// server-side arrival times) is a [`Duration`] since then, read from tokio's clock, so a test
/// under `tokio::time::pause()` drives the whole scenario.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    start: Instant,
}

impl Timeline {
    /// A timeline starting now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The instant `offset` after the start.
    pub fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }
}
