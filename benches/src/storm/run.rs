//! One scenario: every stack at once, each against its own upstream instance playing the same
//! script with the same seed, from the same start instant.

use super::load::{self, DEADLINE, Tally};
use super::script::{OFFERED, Scenario};
use super::stacks::{BuildError, Kind, Stack};
use super::upstream::Upstream;
use super::{Counts, SLOTS_PER_SEC, slot_of};
use breakerbox::BoxConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::Instant;

/// What one stack's callers and its upstream counted in a scenario, slot by slot.
#[derive(Debug, Clone)]
pub struct StackResult {
    /// Which stack.
    pub kind: Kind,
    /// Requests issued, by issue slot.
    pub offered: Counts,
    /// Successes, by completion slot (goodput).
    pub ok: Counts,
    /// Failures, by completion slot.
    pub failed: Counts,
    /// Local rejections, by completion slot.
    pub rejected: Counts,
    /// Successes, by issue slot.
    pub ok_by_issue: Counts,
    /// Local rejections, by issue slot.
    pub rejected_by_issue: Counts,
    /// Attempts the upstream received, by arrival slot.
    pub received: Counts,
    /// Attempts it answered 200, by answer slot.
    pub served: Counts,
    /// Attempts it answered 503, by arrival slot.
    pub refused: Counts,
    /// Queued attempts served after their caller had gone, by service slot.
    pub abandoned: Counts,
    /// Attempts, by the issue slot of their request.
    pub attempts_by_issue: Counts,
    /// Health checks, by arrival slot.
    pub health_checks: Counts,
}

/// A scenario's results.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// Every stack's counts, in [`Kind::ALL`]'s order.
    pub stacks: Vec<StackResult>,
    /// How long it took, from the first request to the last answer.
    pub wall: Duration,
}

/// Runs `scenario` with every stack of [`Kind::ALL`]: the upstreams on `servers`, the load on
/// the current runtime. `scraper` is `examples/scraper.toml`.
pub async fn run(
    scenario: Scenario,
    scraper: &BoxConfig,
    servers: &Handle,
) -> Result<ScenarioResult, BuildError> {
    let scenario = Arc::new(scenario);
    let length = scenario.length();
    // Room for the last requests' retries, up to their deadline.
    let slots = slot_of(length + DEADLINE) + 2 * SLOTS_PER_SEC;
    let start = Instant::now() + Duration::from_millis(500);
    let mut upstreams = Vec::new();
    let mut stacks = Vec::new();
    for kind in Kind::ALL {
        let upstream = servers
            .spawn(Upstream::start(scenario.clone(), start, slots))
            .await??;
        stacks.push(Arc::new(Stack::build(kind, upstream.addr(), scraper)?));
        upstreams.push(upstream);
    }
    let tallies: Vec<_> = Kind::ALL
        .iter()
        .map(|_| Arc::new(Tally::new(slots)))
        .collect();
    let drives: Vec<_> = stacks
        .iter()
        .zip(&tallies)
        .map(|(stack, tally)| {
            tokio::spawn(load::drive(
                stack.clone(),
                OFFERED,
                start,
                length,
                tally.clone(),
            ))
        })
        .collect();
    for drive in drives {
        drive.await?;
    }
    let wall = Instant::now().saturating_duration_since(start);
    let results = stacks
        .iter()
        .zip(&tallies)
        .zip(&upstreams)
        .map(|((stack, tally), upstream)| {
            let counts = upstream.counts();
            StackResult {
                kind: stack.kind(),
                offered: tally.offered.snapshot(),
                ok: tally.ok.snapshot(),
                failed: tally.failed.snapshot(),
                rejected: tally.rejected.snapshot(),
                ok_by_issue: tally.ok_by_issue.snapshot(),
                rejected_by_issue: tally.rejected_by_issue.snapshot(),
                received: counts.received.snapshot(),
                served: counts.served.snapshot(),
                refused: counts.refused.snapshot(),
                abandoned: counts.abandoned.snapshot(),
                attempts_by_issue: counts.by_issue.snapshot(),
                health_checks: counts.untagged.snapshot(),
            }
        })
        .collect();
    drop(stacks);
    drop(upstreams);
    Ok(ScenarioResult {
        scenario: Arc::unwrap_or_clone(scenario),
        stacks: results,
        wall,
    })
}
