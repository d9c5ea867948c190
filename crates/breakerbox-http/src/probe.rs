//! Health probes: the engine says when one is due, the front end runs it on tokio.

use breakerbox::CircuitBreaker;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type ProbeFn = dyn Fn(&CircuitBreaker) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// A user's async health check, run while a breaker is open.
///
/// When a call is rejected and the breaker says a probe is due (its config sets
/// `probe_interval`), the front end spawns the probe on the current tokio runtime. `true` means
/// the upstream is healthy: the breaker moves to HalfOpen early and admits trial calls; `false`
/// schedules the next probe one interval later. One probe runs at a time per breaker, and each
/// has a deadline: a check still running after the breaker's `probe_timeout` (by default its
/// `probe_interval`) is dropped and counts as failed, so a health check that hangs (a client
/// without a timeout, an upstream that accepts and never answers) never stops probing.
///
/// ```
/// use breakerbox_http::Probe;
///
/// let probe = Probe::new(|breaker| {
///     let name = breaker.name().to_owned();
///     async move {
///         // e.g. GET the upstream's health URL; here: always healthy.
///         !name.is_empty()
///     }
/// });
/// # drop(probe);
/// ```
#[derive(Clone)]
pub struct Probe {
    check: Arc<ProbeFn>,
}

impl Probe {
    /// A probe from an async check of the breaker's upstream.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn(&CircuitBreaker) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self {
            check: Arc::new(move |breaker| Box::pin(check(breaker))),
        }
    }

    /// Spawns the probe on the current tokio runtime if `breaker` has one due (the layers call
    /// this on rejections, the slow path; other front ends may too).
    pub fn run_if_due(&self, breaker: &CircuitBreaker) {
        let Some(ticket) = breaker.probe_due() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: dropping the ticket reschedules the probe
        };
        let check = (self.check)(breaker);
        let deadline = deadline_after(ticket.timeout());
        runtime.spawn(async move {
            match tokio::time::timeout_at(deadline, check).await {
                Ok(true) => ticket.succeeded(),
                Ok(false) => ticket.failed(),
                Err(_) => {
                    tracing::debug!(breaker = ticket.breaker().name(), "health check timed out");
                    ticket.failed();
                }
            }
        });
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

/// `after` from now on tokio's clock, or tokio's own "far future" (30 years, what
/// `tokio::time::sleep` uses) when that is past what an `Instant` can hold.
pub fn deadline_after(after: std::time::Duration) -> tokio::time::Instant {
    const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);
    let now = tokio::time::Instant::now();
    now.checked_add(after).unwrap_or(now + FAR_FUTURE)
}
