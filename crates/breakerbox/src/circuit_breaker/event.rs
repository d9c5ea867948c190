//! Transition events.

use super::{BreakerName, State};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TransitionReason {
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures {
        /// The failures in a row that tripped it.
        count: u32,
    },
    /// The window's failure rate reached `failure_rate`.
    FailureRate {
        /// The rate that tripped it, in [0, 1].
        rate: f64,
    },
    /// The window's slow-call rate reached `slow_call_rate`.
    SlowCallRate {
        /// The rate that tripped it, in [0, 1].
        rate: f64,
    },
    /// The open duration passed and a call arrived: HalfOpen.
    OpenDurationElapsed,
    /// A health probe succeeded while open: HalfOpen early.
    ProbeSucceeded,
    /// A trial call failed in HalfOpen: open again, for longer.
    TrialFailed,
    /// `success_threshold` trial calls succeeded: closed.
    TrialsSucceeded {
        /// Successful trials.
        count: u32,
    },
    /// Trial calls held every HalfOpen slot for longer than `max_half_open_wait`: closed if
    /// some trials had succeeded, open again (for longer) if none had.
    HalfOpenWaitElapsed {
        /// Trials that had succeeded.
        successes: u32,
    },
    /// The upstream answered 429 or 503 with `Retry-After` (or the rule's rate-limit reset
    /// header): open until then.
    RetryAfter {
        /// How long the server asked to wait (capped by `max_open_duration`).
        wait: Duration,
    },
    /// An operator called `force_open`.
    ForcedOpen,
    /// An operator called `disable`.
    Disabled,
    /// An operator called `metrics_only`.
    MetricsOnly,
    /// An operator called `reset`.
    Reset,
}

impl TransitionReason {
    /// A short, stable name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionReason::ConsecutiveFailures { .. } => "consecutive_failures",
            TransitionReason::FailureRate { .. } => "failure_rate",
            TransitionReason::SlowCallRate { .. } => "slow_call_rate",
            TransitionReason::OpenDurationElapsed => "open_duration_elapsed",
            TransitionReason::ProbeSucceeded => "probe_succeeded",
            TransitionReason::TrialFailed => "trial_failed",
            TransitionReason::TrialsSucceeded { .. } => "trials_succeeded",
            TransitionReason::HalfOpenWaitElapsed { .. } => "half_open_wait_elapsed",
            TransitionReason::RetryAfter { .. } => "retry_after",
            TransitionReason::ForcedOpen => "forced_open",
            TransitionReason::Disabled => "disabled",
            TransitionReason::MetricsOnly => "metrics_only",
            TransitionReason::Reset => "reset",
        }
    }
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures { count } => {
                write!(f, "{count} consecutive failures")
            }
            TransitionReason::FailureRate { rate } => {
                write!(f, "failure rate {:.1}%", rate * 100.0)
            }
            TransitionReason::SlowCallRate { rate } => {
                write!(f, "slow-call rate {:.1}%", rate * 100.0)
            }
            TransitionReason::TrialsSucceeded { count } => {
                write!(f, "trial calls succeeded ({count})")
            }
            TransitionReason::HalfOpenWaitElapsed { successes } => {
                write!(
                    f,
                    "trial calls outlasted max_half_open_wait ({successes} succeeded)"
                )
            }
            TransitionReason::RetryAfter { wait } => {
                write!(f, "the server asked to wait {:.3}s", wait.as_secs_f64())
            }
            other => f.write_str(other.as_str()),
        }
    }
}

/// One state change of one breaker, as listeners receive it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransitionEvent {
    /// The breaker's name.
    pub breaker: BreakerName,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// When, as read from the breaker's clock.
    pub at: Duration,
}

/// A transition listener.
///
/// Listeners run synchronously while the transition is published, in the order transitions
/// happen; keep them short, and do not call the breaker's control methods (`force_open`,
/// `reset`, …) from inside one: that would wait on the transition in progress. Hand such work to
/// a task or a channel instead.
pub type Listener = Arc<dyn Fn(&TransitionEvent) + Send + Sync>;
