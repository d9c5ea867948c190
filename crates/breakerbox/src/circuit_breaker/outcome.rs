//! The classification vocabulary: what an attempt came back with, and what a breaker records.

/// What one attempt of a call came back with, as the front end saw it: the one vocabulary that
/// every front end translates its framework's results into.
///
/// From it the engine derives both what the breaker records ([`BreakerConfig::outcome_of`],
/// with the breaker's `statuses`) and what retry decides (with the retry policy's `statuses`):
///
/// | attempt | breaker records | retry |
/// | --- | --- | --- |
/// | `Success` | success | stops: succeeded |
/// | `Status(s)`, `s` in the breaker's `statuses` (default 408, 429, 5xx) | failure | retries if `s` is in the retry policy's `statuses` |
/// | `Status(s)`, another status from 400 | ignored (a client's own error must not trip the breaker) | as above |
/// | `Status(s)` below 400 | success | stops: succeeded |
/// | `Timeout`, `Connect` | failure | retries |
/// | `OtherError` | failure | stops: not transient |
/// | `CircuitOpen` (a rejection by a breaker further in) | ignored (it says nothing about this upstream) | stops at once: never retried |
///
/// [`BreakerConfig::outcome_of`]: crate::BreakerConfig::outcome_of
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The call succeeded (a service whose answers carry no status).
    Success,
    /// An HTTP response with this status.
    Status(u16),
    /// The attempt timed out.
    Timeout,
    /// The connection could not be established, or it broke before the response began.
    Connect,
    /// A circuit breaker further in rejected the attempt: nothing was sent.
    CircuitOpen,
    /// Any other error.
    OtherError,
}

/// How a call went, as a breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The upstream did its job.
    Success,
    /// The upstream failed (a 5xx, a timeout, a refused connection…).
    Failure,
    /// Says nothing about the upstream's health (a 404 caused by the client, a cancelled call).
    Ignored,
}
