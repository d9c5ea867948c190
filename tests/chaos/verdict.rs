//! The invariants, checked once every call has ended, and the figures of the run.
//!
//! Counting rule for the upstreams' hit counters: every attempt carries a unique id, stamped
//! below the breaker. An attempt the client saw answered (a response head) or failed (the
//! connection dropped before the head) must have reached its upstream, exactly once. An attempt
//! that timed out or was dropped by its caller is unsettled: it may or may not have reached the
//! upstream (the known ambiguity), and the upstream's ids say which. So, per host: the
//! upstream's ids are unique, every one of them is an attempt this client sent to this host,
//! and hits = answered + failed + (unsettled that arrived).

use crate::driver::{Cancel, Driven, Outcome};
use crate::fronts::{BodyEnd, Ended, ErrorKind, Method};
use crate::ledger::{AttemptRecord, Fate, Ledger, Transition};
use crate::script::{Burst, GRACE, HOSTS, Script, TripRule};
use crate::upstream::{NO_ID, Upstream};
use breakerbox::{BreakerBox, State, Target, TransitionReason};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(crate) struct Soaked<'a> {
    pub(crate) front: &'static str,
    pub(crate) script: Script,
    pub(crate) seed: u64,
    pub(crate) driven: &'a Driven,
    pub(crate) ledger: &'a Ledger,
    pub(crate) upstreams: &'a [Arc<Upstream>],
    pub(crate) breakers: &'a BreakerBox,
    /// Panics on the soak's own threads (the panic hook's count).
    pub(crate) panics: usize,
    /// The client runtime's worker threads.
    pub(crate) workers: u32,
}

#[derive(Debug, Default)]
struct HostStats {
    calls: u64,
    ok: u64,
    error_status: u64,
    body_broken: u64,
    circuit_open: u64,
    timeout: u64,
    connection: u64,
    cancelled: u64,
    deadline: u64,
    unexpected: u64,
    /// Calls started during a tripping burst, and how many of them the breaker rejected.
    burst_calls: u64,
    burst_rejected: u64,
}

/// Checks every invariant; returns the report and the violations found.
pub(crate) fn judge(s: &Soaked<'_>) -> (String, Vec<String>) {
    let mut violations = Vec::new();
    let mut report = String::new();
    let records = &s.driven.records;
    let attempts = s.ledger.attempts();
    let transitions = s.ledger.transitions();

    // --- every call resolved, nothing lost, nothing hung, no panic ---
    if records.len() != s.driven.spawned {
        violations.push(format!(
            "{} calls spawned, {} came back: {} lost",
            s.driven.spawned,
            records.len(),
            s.driven.spawned - records.len()
        ));
    }
    if s.driven.failed_tasks > 0 {
        violations.push(format!("{} call tasks panicked", s.driven.failed_tasks));
    }
    if s.panics > 0 {
        violations.push(format!("{} panics on the soak's threads", s.panics));
    }
    for (host, up) in s.upstreams.iter().enumerate() {
        let panics = up.panics.load(Ordering::SeqCst);
        if panics > 0 {
            violations.push(format!(
                "{}: {panics} server connections panicked",
                HOSTS[host].name
            ));
        }
    }
    if s.ledger.strays() > 0 {
        violations.push(format!(
            "{} transitions of unknown breakers",
            s.ledger.strays()
        ));
    }

    let bursts: Vec<Vec<Burst>> = (0..HOSTS.len())
        .map(|h| {
            s.script
                .bursts(h)
                .into_iter()
                .filter(|b| b.fault.trips())
                .collect()
        })
        .collect();
    let mut stats: Vec<HostStats> = HOSTS.iter().map(|_| HostStats::default()).collect();
    let mut per_call: HashMap<u64, u32> = HashMap::new();
    for a in attempts.values() {
        *per_call.entry(a.call).or_default() += 1;
    }
    let mut unexpected_examples = Vec::new();
    for r in records {
        let st = &mut stats[r.plan.host];
        st.calls += 1;
        let in_burst = bursts[r.plan.host]
            .iter()
            .any(|b| b.from <= r.started && r.started < b.until);
        st.burst_calls += u64::from(in_burst);
        let sent = per_call.get(&r.plan.id).copied().unwrap_or(0);
        if r.plan.method == Method::Post && sent > 1 {
            violations.push(format!(
                "call {} (POST without Idempotency-Key) was sent {sent} times",
                r.plan.id
            ));
        }
        if sent > 3 {
            violations.push(format!("call {} made {sent} attempts (max 3)", r.plan.id));
        }
        match &r.outcome {
            Outcome::Cancelled => st.cancelled += 1,
            Outcome::DeadlineExceeded => st.deadline += 1,
            Outcome::Ended(Ended::Response {
                status,
                attempts,
                body,
            }) => {
                if *attempts != sent {
                    violations.push(format!(
                        "call {} to {}: the response says {attempts} attempts, {sent} were sent",
                        r.plan.id, HOSTS[r.plan.host].name
                    ));
                }
                match (status, body) {
                    (_, BodyEnd::Broken) => st.body_broken += 1,
                    (200..=299, BodyEnd::Complete) => st.ok += 1,
                    _ => st.error_status += 1,
                }
            }
            Outcome::Ended(Ended::Error(kind)) => match kind {
                ErrorKind::CircuitOpen(breaker) => {
                    if sent > 0 {
                        violations.push(format!(
                            "call {} to {} reached the upstream {sent} times but was answered \
                             with a circuit-open rejection instead of its last real answer",
                            r.plan.id, HOSTS[r.plan.host].name
                        ));
                    }
                    if breaker != HOSTS[r.plan.host].breaker {
                        violations.push(format!(
                            "call {} to {} was rejected by the {breaker} breaker",
                            r.plan.id, HOSTS[r.plan.host].name
                        ));
                    }
                    st.circuit_open += 1;
                    st.burst_rejected += u64::from(in_burst);
                }
                ErrorKind::Timeout => st.timeout += 1,
                ErrorKind::Connection => st.connection += 1,
                ErrorKind::Unexpected(what) => {
                    st.unexpected += 1;
                    if unexpected_examples.len() < 5 {
                        unexpected_examples.push(what.clone());
                    }
                }
            },
        }
    }
    let deadline: u64 = stats.iter().map(|st| st.deadline).sum();
    if deadline > 0 {
        violations.push(format!("{deadline} calls still running at their deadline"));
    }
    let unexpected: u64 = stats.iter().map(|st| st.unexpected).sum();
    if unexpected > 0 {
        violations.push(format!(
            "{unexpected} calls ended in an untyped error, e.g. {unexpected_examples:?}"
        ));
    }

    // --- the upstreams' hit counters against the clients' attempts ---
    let mut counts = Vec::new();
    for (host, up) in s.upstreams.iter().enumerate() {
        counts.push(check_hits(host, up, &attempts, &mut violations));
    }

    // --- breakers: transitions, trials, final states ---
    let mut breaker_lines = Vec::new();
    for (host, spec) in HOSTS.iter().enumerate() {
        let ts: Vec<&Transition> = transitions.iter().filter(|t| t.host == host).collect();
        for pair in ts.windows(2) {
            if pair[0].to != pair[1].from {
                violations.push(format!(
                    "{}: transitions out of order: ->{:?} then {:?}->",
                    spec.breaker, pair[0].to, pair[1].from
                ));
            }
        }
        let opens = ts.iter().filter(|t| t.to == State::Open).count();
        let closes = ts.iter().filter(|t| t.to == State::Closed).count();
        if spec.is_healthy() {
            if !ts.is_empty() {
                violations.push(format!(
                    "{} (healthy) changed state {} times, first {:?}",
                    spec.breaker,
                    ts.len(),
                    ts[0]
                ));
            }
        } else {
            check_bursts(s, host, &bursts[host], &ts, &mut violations);
        }
        let trials = s.ledger.trials(host);
        if trials.max_in_epoch > spec.half_open_max_calls {
            violations.push(format!(
                "{}: {} trial calls in flight at once in one HalfOpen period (limit {})",
                spec.breaker, trials.max_in_epoch, spec.half_open_max_calls
            ));
        }
        if !bursts[host].is_empty() && trials.attempts == 0 {
            violations.push(format!("{}: no trial call was ever made", spec.breaker));
        }
        if s.ledger.trials_in_flight(host) != 0 {
            violations.push(format!(
                "{}: trial attempts still counted in flight",
                spec.breaker
            ));
        }
        let breaker = s
            .breakers
            .breaker(&Target::new("http", spec.name, 80, spec.path));
        let snapshot = breaker.snapshot();
        if breaker.name() != spec.breaker {
            violations.push(format!("{} is guarded by {}", spec.name, breaker.name()));
        }
        if snapshot.trips != opens as u64 {
            violations.push(format!(
                "{}: the breaker counts {} trips, its listener saw {opens} openings",
                spec.breaker, snapshot.trips
            ));
        }
        if snapshot.state != State::Closed || snapshot.half_open_in_flight != 0 {
            violations.push(format!(
                "{} ends {:?} with {} trials in flight",
                spec.breaker, snapshot.state, snapshot.half_open_in_flight
            ));
        }
        breaker_lines.push(format!(
            "{:<12} opens {:>3}  closes {:>3}  trials {:>4} ({:>3} timed out or dropped)  max trials in flight {} (limit {}; {} across periods)",
            spec.breaker,
            opens,
            closes,
            trials.attempts,
            trials.unsettled,
            trials.max_in_epoch,
            spec.half_open_max_calls,
            trials.max_any_epoch,
        ));
    }

    // --- the figures ---
    let total = |f: fn(&HostStats) -> u64| stats.iter().map(f).sum::<u64>();
    let planned = records
        .iter()
        .filter(|r| r.plan.cancel != Cancel::Never)
        .count();
    let cancelled_by = |kind: fn(Cancel) -> bool| {
        let of_kind = records.iter().filter(|r| kind(r.plan.cancel));
        let effective = of_kind
            .clone()
            .filter(|r| matches!(r.outcome, Outcome::Cancelled))
            .count();
        format!("{effective}/{}", of_kind.count())
    };
    let _ = writeln!(
        report,
        "cancellations that fell inside their call: after 1-32 polls {}, after 1-600 ms {}",
        cancelled_by(|c| matches!(c, Cancel::AfterPolls(_))),
        cancelled_by(|c| matches!(c, Cancel::AfterDelay(_))),
    );
    let cancelled = total(|st| st.cancelled);
    if (cancelled as f64) < 0.06 * records.len() as f64 {
        violations.push(format!(
            "only {cancelled} of {} calls were cancelled in flight: the soak does not test cancellation",
            records.len()
        ));
    }
    let slowest = records
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Cancelled))
        .map(|r| r.took)
        .max()
        .unwrap_or_default();
    let _ = writeln!(
        report,
        "chaos soak, {} front end: {} calls in {:.1} s ({} cycle(s), seed {:#x}), concurrency {}; \
         {planned} planned cancellations, {} fell inside their call; slowest call {} ms (deadline {} ms)",
        s.front,
        records.len(),
        s.driven.wall.as_secs_f64(),
        s.script.cycles,
        s.seed,
        crate::script::CONCURRENCY,
        cancelled,
        slowest.as_millis(),
        crate::script::DEADLINE.as_millis(),
    );
    let _ = writeln!(
        report,
        "calls: made, then how they ended: 2xx with the whole body, a 4xx/5xx status, a body \
         broken off, rejected by an open breaker, timed out, connection dropped before the head, \
         cancelled by the caller, past the deadline | attempts: sent below the breaker, \
         answered, transport errors, unsettled that reached the upstream / all unsettled, \
         upstream hits | calls started during a burst: rejected / all"
    );
    let _ = writeln!(
        report,
        "{:<22} {:>6} {:>6} {:>6} {:>5} {:>6} {:>6} {:>5} {:>6} {:>4} | {:>6} {:>6} {:>5} {:>11} {:>6} | {:>11}",
        "host",
        "calls",
        "2xx",
        "4xx5xx",
        "body",
        "open",
        "tmout",
        "conn",
        "cancel",
        "hung",
        "sent",
        "answer",
        "error",
        "unsettled",
        "hits",
        "burst shed"
    );
    for (host, spec) in HOSTS.iter().enumerate() {
        let st = &stats[host];
        let c = &counts[host];
        let _ = writeln!(
            report,
            "{:<22} {:>6} {:>6} {:>6} {:>5} {:>6} {:>6} {:>5} {:>6} {:>4} | {:>6} {:>6} {:>5} {:>5}/{:<5} {:>6} | {:>5}/{:<5}",
            spec.name,
            st.calls,
            st.ok,
            st.error_status,
            st.body_broken,
            st.circuit_open,
            st.timeout,
            st.connection,
            st.cancelled,
            st.deadline,
            c.sent,
            c.answered,
            c.failed,
            c.unsettled_arrived,
            c.unsettled,
            c.hits,
            st.burst_rejected,
            st.burst_calls,
        );
    }
    for line in breaker_lines {
        let _ = writeln!(report, "{line}");
    }
    let served: Vec<String> = s
        .upstreams
        .iter()
        .enumerate()
        .map(|(h, up)| {
            let sv = &up.served;
            let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            format!(
                "{}: ok {} 5xx {} stalled {} slow {} reset-before-head {} reset-mid-body {} 429 {}",
                HOSTS[h].breaker,
                n(&sv.ok),
                n(&sv.server_errors),
                n(&sv.stalled),
                n(&sv.slow_bodies),
                n(&sv.reset_before_head),
                n(&sv.reset_mid_body),
                n(&sv.too_many)
            )
        })
        .collect();
    let _ = writeln!(report, "served: {}", served.join("; "));
    (report, violations)
}

#[derive(Debug, Default)]
struct HitCounts {
    sent: u64,
    answered: u64,
    failed: u64,
    unsettled: u64,
    unsettled_arrived: u64,
    hits: u64,
}

fn check_hits(
    host: usize,
    up: &Upstream,
    attempts: &HashMap<u64, AttemptRecord>,
    violations: &mut Vec<String>,
) -> HitCounts {
    let name = HOSTS[host].name;
    let ids = up.ids();
    let mut seen = HashSet::with_capacity(ids.len());
    let mut c = HitCounts {
        hits: ids.len() as u64,
        ..HitCounts::default()
    };
    for &id in &ids {
        if id == NO_ID {
            violations.push(format!("{name}: a request arrived without an attempt id"));
            continue;
        }
        if !seen.insert(id) {
            violations.push(format!("{name}: attempt {id} arrived twice"));
        }
        match attempts.get(&id) {
            None => violations.push(format!(
                "{name}: attempt {id} arrived but no client sent it"
            )),
            Some(a) if a.host != host => violations.push(format!(
                "{name}: attempt {id} was sent to {}",
                HOSTS[a.host].name
            )),
            Some(_) => {}
        }
    }
    let mut missing = Vec::new();
    for (&id, a) in attempts.iter().filter(|(_, a)| a.host == host) {
        c.sent += 1;
        let arrived = seen.contains(&id);
        match a.fate {
            Fate::Answered => c.answered += 1,
            Fate::Failed => c.failed += 1,
            Fate::Unsettled => {
                c.unsettled += 1;
                c.unsettled_arrived += u64::from(arrived);
            }
        }
        if a.fate != Fate::Unsettled && !arrived {
            missing.push((id, a.fate));
        }
    }
    if !missing.is_empty() {
        violations.push(format!(
            "{name}: {} attempts the client saw answered or failed never reached the server, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    if c.hits != c.answered + c.failed + c.unsettled_arrived {
        violations.push(format!(
            "{name}: {} hits, but the clients account for {} answered + {} failed + {} unsettled that arrived",
            c.hits, c.answered, c.failed, c.unsettled_arrived
        ));
    }
    c
}

/// A failing host's breaker: changed nothing before its first fault, every opening is explained
/// by a burst, each burst opened it by its rule, and it was closed again before the next burst
/// (or the end of the run).
fn check_bursts(
    s: &Soaked<'_>,
    host: usize,
    bursts: &[Burst],
    ts: &[&Transition],
    violations: &mut Vec<String>,
) {
    let spec = &HOSTS[host];
    let name = spec.breaker;
    let Some(first) = bursts.first() else { return };
    if let Some(early) = ts.iter().find(|t| t.at < first.from) {
        violations.push(format!(
            "{name}: changed state before its first fault: {early:?}"
        ));
    }
    for t in ts.iter().filter(|t| t.to == State::Open) {
        if !bursts
            .iter()
            .any(|b| b.from <= t.at && t.at <= b.until + GRACE)
        {
            violations.push(format!("{name}: opened outside every fault burst: {t:?}"));
        }
    }
    for (i, burst) in bursts.iter().enumerate() {
        let next = bursts.get(i + 1).map_or(Duration::MAX, |n| n.from);
        let opened = ts
            .iter()
            .find(|t| t.to == State::Open && t.at >= burst.from && t.at <= burst.until + GRACE);
        let Some(opened) = opened else {
            violations.push(format!(
                "{name}: did not open during its {:?} burst {:?}..{:?}",
                burst.fault, burst.from, burst.until
            ));
            continue;
        };
        if opened.from != State::Closed {
            violations.push(format!(
                "{name}: first opening of the burst at {:?} came from {:?}, not Closed",
                burst.from, opened.from
            ));
        }
        match (spec.trip, opened.reason) {
            (TripRule::Consecutive(n), TransitionReason::ConsecutiveFailures { count }) => {
                // Each client worker thread can hold at most one failure counted but not yet
                // acted on, so the run that trips is at most n + workers - 1 long.
                if count < n || count > n + s.workers - 1 {
                    violations.push(format!(
                        "{name}: opened after {count} consecutive failures (threshold {n}, {} workers)",
                        s.workers
                    ));
                }
            }
            (TripRule::Rate(limit), TransitionReason::FailureRate { rate }) => {
                if rate < limit {
                    violations.push(format!(
                        "{name}: opened at failure rate {rate} (threshold {limit})"
                    ));
                }
            }
            // The server's word (a 503 with Retry-After) opens a breaker whatever its rule.
            (_, TransitionReason::RetryAfter { .. }) => {}
            (rule, reason) => violations.push(format!(
                "{name}: opened for {reason} at {:?}, its rule is {rule:?}",
                opened.at
            )),
        }
        // Closed again once the burst is over, before the next one.
        let last_before_next = ts.iter().rev().find(|t| t.at < next);
        match last_before_next {
            Some(t) if t.to == State::Closed && t.at >= opened.at => {}
            other => violations.push(format!(
                "{name}: not closed after its burst {:?}..{:?} (last transition before the next burst: {other:?})",
                burst.from, burst.until
            )),
        }
    }
}
