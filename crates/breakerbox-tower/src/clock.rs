//! tokio's clock for the engine.

use breakerbox::clock::Clock;
use std::time::Duration;
use tokio::time::Instant;

/// The engine's [`Clock`] read from tokio's clock, so that `tokio::time::pause()` and
/// `tokio::time::advance` drive every breaker and retry timer of the layers.
///
/// Its origin is fixed when it is created; create layers inside the runtime whose clock should
/// drive them (under `#[tokio::test(start_paused = true)]`, inside the test).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose origin is tokio's now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let clock = TokioClock::new();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), Duration::from_secs(90));
    }
}
