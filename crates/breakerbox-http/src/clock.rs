//! The engine's clock in the tokio front ends.

use breakerbox::clock::Clock;
use std::time::Duration;

/// The engine's [`Clock`] for the tower and reqwest front ends: tokio's clock when tokio's time
/// is paused, so that `tokio::time::pause()` and `tokio::time::advance` drive every breaker and
/// retry timer of the layers; otherwise the operating system's coarse monotonic clock.
///
/// Which one is decided when the clock is created: if it is created inside a tokio runtime whose
/// time is paused (under `#[tokio::test(start_paused = true)]`, or after
/// `tokio::time::pause()`), it follows tokio's clock for good. Create layers inside the runtime
/// whose paused clock should drive them, after pausing it.
///
/// Why not tokio's clock always: unpaused, it is `std::time::Instant::now()`, which can cost
/// more than a whole healthy call through a breaker on virtual machines. The coarse clock
/// (`CLOCK_MONOTONIC_COARSE` on Linux, through [`coarsetime`](https://docs.rs/coarsetime),
/// without its shared cache, which every read would write) is a few times cheaper, and its
/// resolution (1 to 4 ms on Linux, the kernel's tick) is far finer than any open duration,
/// time-window bucket or slow-call threshold. [`TokioClock::tokio`] always reads tokio's clock.
///
/// Its origin is fixed when it is created.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    source: Source,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Tokio(tokio::time::Instant),
    Coarse(coarsetime::Instant),
}

impl TokioClock {
    /// A clock whose origin is now: tokio's clock if tokio's time is paused here, the coarse
    /// clock otherwise.
    pub fn new() -> Self {
        if tokio_time_is_paused() {
            Self::tokio()
        } else {
            Self {
                source: Source::Coarse(coarsetime::Instant::now_without_cache_update()),
            }
        }
    }

    /// A clock that always reads tokio's clock (`tokio::time::Instant::now()`), paused or not.
    pub fn tokio() -> Self {
        Self {
            source: Source::Tokio(tokio::time::Instant::now()),
        }
    }

    /// Whether this clock follows tokio's clock.
    pub fn is_tokio(&self) -> bool {
        matches!(self.source, Source::Tokio(_))
    }
}

/// Whether the current thread is in a tokio runtime whose clock is paused: a paused clock
/// reads the same instant twice in a row, a running one does not (the OS clock has nanosecond
/// resolution; where it has not, both reads may match and tokio's clock is used, which is
/// slower but still right).
fn tokio_time_is_paused() -> bool {
    if tokio::runtime::Handle::try_current().is_err() {
        return false;
    }
    let first = tokio::time::Instant::now();
    first == tokio::time::Instant::now()
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        match self.source {
            Source::Tokio(origin) => u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Source::Coarse(origin) => {
                // coarsetime counts 2^32 ticks a second.
                let ticks = coarsetime::Instant::now_without_cache_update()
                    .as_ticks()
                    .saturating_sub(origin.as_ticks());
                u64::try_from((u128::from(ticks) * 1_000_000_000) >> 32).unwrap_or(u64::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let clock = TokioClock::new();
        assert!(clock.is_tokio());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), Duration::from_secs(90));
    }

    #[tokio::test]
    async fn reads_the_coarse_clock_when_time_runs() {
        let clock = TokioClock::new();
        assert!(!clock.is_tokio());
        let (a, b) = (clock.now(), clock.now());
        assert!(b >= a, "monotonic");
    }

    #[test]
    fn outside_a_runtime_it_reads_the_coarse_clock() {
        assert!(!TokioClock::new().is_tokio());
        assert!(TokioClock::tokio().is_tokio());
    }
}
