//! What the box reports: a snapshot, a health summary and the status table.

use crate::circuit_breaker::{BreakerSnapshot, State};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every breaker of a box at one moment, in creation order.
///
/// Its `Display` is the status table:
///
/// ```text
///   ok   espn          closed     failures 0/5
///   warn lastfm        half_open  failures 5/5    trials 1/2
///   FAIL spotify       open       failures 10/10  retry in 87s
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxSnapshot {
    /// One entry per breaker.
    pub breakers: Vec<BreakerSnapshot>,
}

impl BoxSnapshot {
    pub(crate) fn new(breakers: Vec<BreakerSnapshot>) -> Self {
        Self { breakers }
    }

    /// The health summary of this snapshot.
    pub fn health(&self) -> Health {
        let failing: Vec<String> = self
            .breakers
            .iter()
            .filter(|b| b.state.is_degraded())
            .map(|b| b.name.clone())
            .collect();
        Health {
            status: if failing.is_empty() {
                HealthStatus::Healthy
            } else {
                HealthStatus::Degraded
            },
            breakers: self.breakers.len(),
            failing,
            held: self
                .breakers
                .iter()
                .filter(|b| b.held)
                .map(|b| b.name.clone())
                .collect(),
        }
    }
}

/// Healthy or degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No breaker is rejecting calls.
    Healthy,
    /// At least one breaker is open, half-open or forced open.
    Degraded,
}

/// A box's health summary, for a health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Healthy or degraded.
    pub status: HealthStatus,
    /// How many breakers the box holds.
    pub breakers: usize,
    /// The names of the breakers rejecting calls (open, half-open or forced open).
    pub failing: Vec<String>,
    /// The breakers the fleet guard holds closed (they would have opened): see
    /// [`BoxConfig::max_open_fraction`](crate::BoxConfig::max_open_fraction).
    #[serde(default)]
    pub held: Vec<String>,
}

impl Health {
    /// Whether no breaker is rejecting calls.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }

    /// Whether a fault on the client's side (its network, DNS, a proxy) is likely: so many of
    /// the box's upstreams fail at once that the fleet guard holds breakers closed.
    pub fn local_fault_likely(&self) -> bool {
        !self.held.is_empty()
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            HealthStatus::Healthy => write!(f, "healthy ({} breakers)", self.breakers)?,
            HealthStatus::Degraded => write!(
                f,
                "degraded: {} of {} breakers failing ({})",
                self.failing.len(),
                self.breakers,
                self.failing.join(", ")
            )?,
        }
        if self.local_fault_likely() {
            write!(
                f,
                "; a local fault is likely: the fleet guard holds {} closed",
                self.held.join(", ")
            )?;
        }
        Ok(())
    }
}

fn flag(state: State) -> &'static str {
    match state {
        State::Closed | State::Disabled | State::MetricsOnly => "ok",
        State::HalfOpen => "warn",
        State::Open | State::ForcedOpen => "FAIL",
    }
}

fn failures(b: &BreakerSnapshot) -> String {
    if let Some(threshold) = b.consecutive_failures_threshold {
        return format!("failures {}/{threshold}", b.consecutive_failures);
    }
    let (rate, limit) = match (b.failure_rate_threshold, b.slow_call_rate_threshold) {
        (Some(limit), _) => (b.failure_rate(), limit),
        (None, Some(limit)) => (b.slow_call_rate(), limit),
        (None, None) => return String::new(),
    };
    let what = if b.failure_rate_threshold.is_some() {
        "failure rate"
    } else {
        "slow rate"
    };
    format!(
        "{what} {:.0}%/{:.0}%",
        rate.unwrap_or(0.0) * 100.0,
        limit * 100.0
    )
}

impl fmt::Display for BoxSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<(&BreakerSnapshot, String)> =
            self.breakers.iter().map(|b| (b, failures(b))).collect();
        let name_width = rows.iter().map(|(b, _)| b.name.len()).max().unwrap_or(0);
        let fail_width = rows.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
        for (b, fails) in &rows {
            let mut line = format!(
                "  {:<4} {:<name_width$}  {:<10} {:<fail_width$}",
                flag(b.state),
                b.name,
                b.state.as_str(),
                fails,
            );
            if let Some(secs) = b.retry_in_seconds {
                line.push_str(&format!("  retry in {}s", secs.ceil()));
            }
            if let Some(p) = b.throttle_rejecting.filter(|p| *p > 0.0) {
                line.push_str(&format!("  throttling {:.0}%", p * 100.0));
            }
            if b.held {
                line.push_str("  held closed by the fleet guard");
            }
            if b.state == State::HalfOpen {
                line.push_str(&format!(
                    "  trials {} ok, {} in flight",
                    b.half_open_successes, b.half_open_in_flight
                ));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
