//! The load: open-loop arrivals at a fixed offered rate, each request spawned on schedule as
//! its own task whatever the others are doing, each given up after an overall deadline.

use super::stacks::Stack;
use super::{Series, slot_of};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long a caller waits for a request, retries included, before giving up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What became of one request, as its caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx response, its body read.
    Ok,
    /// Anything else: a non-2xx status, an error, or the deadline.
    Failed,
    /// Rejected by a circuit breaker before leaving the client (`CircuitOpen`).
    Rejected,
}

/// What the callers of one stack saw, per slot of the run.
#[derive(Debug)]
pub struct Tally {
    /// Requests issued, by issue slot.
    pub offered: Series,
    /// Requests that succeeded, by the slot they completed in (goodput).
    pub ok: Series,
    /// Requests that failed, by completion slot.
    pub failed: Series,
    /// Requests rejected locally, by completion slot.
    pub rejected: Series,
    /// Requests that succeeded, by issue slot.
    pub ok_by_issue: Series,
    /// Requests rejected locally, by issue slot.
    pub rejected_by_issue: Series,
}

impl Tally {
    /// Zero counts over `slots` slots.
    pub fn new(slots: usize) -> Self {
        Self {
            offered: Series::new(slots),
            ok: Series::new(slots),
            failed: Series::new(slots),
            rejected: Series::new(slots),
            ok_by_issue: Series::new(slots),
            rejected_by_issue: Series::new(slots),
        }
    }

    fn record(&self, issued: usize, done: usize, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {
                self.ok.add(done);
                self.ok_by_issue.add(issued);
            }
            Outcome::Failed => self.failed.add(done),
            Outcome::Rejected => {
                self.rejected.add(done);
                self.rejected_by_issue.add(issued);
            }
        }
    }
}

/// Issues `rate` requests per second through `stack` from `start` for `length`, each at its
/// scheduled instant (late ticks catch up), and waits for the last one to end.
pub async fn drive(
    stack: Arc<Stack>,
    rate: f64,
    start: Instant,
    length: Duration,
    tally: Arc<Tally>,
) {
    let requests = (length.as_secs_f64() * rate).round() as u64;
    let mut running = JoinSet::new();
    for i in 0..requests {
        let due = Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(start + due).await;
        let issued = slot_of(due);
        tally.offered.add(issued);
        let (stack, tally) = (stack.clone(), tally.clone());
        running.spawn(async move {
            let outcome = tokio::time::timeout(DEADLINE, stack.get(issued))
                .await
                .unwrap_or(Outcome::Failed);
            let done = slot_of(Instant::now().saturating_duration_since(start));
            tally.record(issued, done, outcome);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}
