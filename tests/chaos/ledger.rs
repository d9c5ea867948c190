//! The clients' side of the books: every attempt that left a client (counted by a layer below
//! the breaker, so rejected calls are not attempts), every breaker transition, and the HalfOpen
//! trial attempts in flight.
//!
//! Trial counting: a transition listener keeps each breaker's state and an epoch (bumped by
//! every transition). The attempt layer sits right below the breaker and runs in the same poll
//! as the admission, so an attempt that starts while its breaker is HalfOpen in epoch `e` was
//! admitted as a trial of epoch `e` (the breaker cannot leave Open and come back to HalfOpen in
//! between: that takes an open duration). The attempt holds its slot in the count until it ends,
//! which is before the breaker records its permit, so the count never exceeds the permits the
//! engine really handed out: more than `half_open_max_calls` in one epoch is an engine bug.
//!
//! The limit holds per HalfOpen period, as the engine promises. A trial of an earlier period can
//! still be running (stalled) after another trial failed and the breaker opened again; it no
//! longer counts, so the next period admits its own trials beside it. The figures show that
//! too: the most trial attempts in flight at once across periods.

use crate::script::HOSTS;
use crate::upstream::lock;
use breakerbox::{State, TransitionEvent, TransitionReason};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The header carrying the caller's call id, so that attempts can be tied to their call.
pub(crate) const CALL_HEADER: &str = "x-soak-call";

/// How an attempt ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// A response head arrived: the upstream accepted the request.
    Answered,
    /// A transport error other than a timeout (the connection was dropped before the head):
    /// the upstream accepted the request and then dropped it.
    Failed,
    /// Timed out or dropped (the caller gave up) before an answer: the request may or may not
    /// have reached the upstream. This is the known ambiguity; it is resolved by the attempt ids
    /// the upstream records (see `verdict`).
    Unsettled,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptRecord {
    pub(crate) host: usize,
    pub(crate) call: u64,
    pub(crate) fate: Fate,
}

#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub(crate) host: usize,
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: TransitionReason,
    pub(crate) at: Duration,
}

/// What the listener knows of one breaker, and its trial attempts in flight.
#[derive(Debug)]
struct BreakerView {
    state: State,
    epoch: u64,
    /// Trial attempts in flight per HalfOpen epoch.
    trials: HashMap<u64, u32>,
    /// The most trial attempts in flight at once within one HalfOpen epoch.
    max_trials_in_epoch: u32,
    /// The most trial attempts in flight at once, whatever their epoch (a trial of an earlier
    /// HalfOpen period can still be running when a later one admits its own).
    max_trials_any_epoch: u32,
    trial_attempts: u64,
    /// Trial attempts that ended unsettled: timed out, or dropped by their caller.
    trials_unsettled: u64,
}

#[derive(Debug)]
pub(crate) struct TrialFigures {
    pub(crate) max_in_epoch: u32,
    pub(crate) max_any_epoch: u32,
    pub(crate) attempts: u64,
    pub(crate) unsettled: u64,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    start: Instant,
    next_attempt: AtomicU64,
    attempts: Mutex<HashMap<u64, AttemptRecord>>,
    views: Vec<Mutex<BreakerView>>,
    transitions: Mutex<Vec<Transition>>,
    /// Transitions of breakers that belong to no host (there must be none).
    strays: AtomicU64,
}

impl Ledger {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            next_attempt: AtomicU64::new(0),
            attempts: Mutex::new(HashMap::new()),
            views: HOSTS
                .iter()
                .map(|_| {
                    Mutex::new(BreakerView {
                        state: State::Closed,
                        epoch: 0,
                        trials: HashMap::new(),
                        max_trials_in_epoch: 0,
                        max_trials_any_epoch: 0,
                        trial_attempts: 0,
                        trials_unsettled: 0,
                    })
                })
                .collect(),
            transitions: Mutex::new(Vec::new()),
            strays: AtomicU64::new(0),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The transition listener's body: runs synchronously inside the transition.
    pub(crate) fn on_transition(&self, event: &TransitionEvent) {
        let Some(host) = crate::script::Host::index_of_breaker(&event.breaker) else {
            self.strays.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let at = self.elapsed();
        let mut view = lock(&self.views[host]);
        view.state = event.to;
        view.epoch += 1;
        lock(&self.transitions).push(Transition {
            host,
            from: event.from,
            to: event.to,
            reason: event.reason,
            at,
        });
    }

    /// An attempt to `host` for call `call` is about to be sent.
    pub(crate) fn begin(self: &Arc<Self>, host: usize, call: u64) -> AttemptGuard {
        let id = self.next_attempt.fetch_add(1, Ordering::Relaxed);
        let trial_epoch = {
            let mut view = lock(&self.views[host]);
            (view.state == State::HalfOpen).then(|| {
                let epoch = view.epoch;
                let now = {
                    let n = view.trials.entry(epoch).or_insert(0);
                    *n += 1;
                    *n
                };
                let all: u32 = view.trials.values().sum();
                view.max_trials_in_epoch = view.max_trials_in_epoch.max(now);
                view.max_trials_any_epoch = view.max_trials_any_epoch.max(all);
                view.trial_attempts += 1;
                epoch
            })
        };
        AttemptGuard {
            ledger: self.clone(),
            id,
            host,
            call,
            trial_epoch,
            fate: None,
        }
    }

    pub(crate) fn attempts(&self) -> HashMap<u64, AttemptRecord> {
        lock(&self.attempts).clone()
    }

    pub(crate) fn transitions(&self) -> Vec<Transition> {
        lock(&self.transitions).clone()
    }

    pub(crate) fn strays(&self) -> u64 {
        self.strays.load(Ordering::SeqCst)
    }

    pub(crate) fn trials(&self, host: usize) -> TrialFigures {
        let view = lock(&self.views[host]);
        TrialFigures {
            max_in_epoch: view.max_trials_in_epoch,
            max_any_epoch: view.max_trials_any_epoch,
            attempts: view.trial_attempts,
            unsettled: view.trials_unsettled,
        }
    }

    /// Trial attempts still counted as in flight (must be none once every call has ended).
    pub(crate) fn trials_in_flight(&self, host: usize) -> u32 {
        lock(&self.views[host]).trials.values().sum()
    }
}

/// One attempt in flight. Dropped without a fate (the caller or a timeout dropped the
/// attempt's future), it is recorded as unsettled.
#[derive(Debug)]
pub(crate) struct AttemptGuard {
    ledger: Arc<Ledger>,
    id: u64,
    host: usize,
    call: u64,
    trial_epoch: Option<u64>,
    fate: Option<Fate>,
}

impl AttemptGuard {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn settle(mut self, fate: Fate) {
        self.fate = Some(fate);
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(epoch) = self.trial_epoch {
            let mut view = lock(&self.ledger.views[self.host]);
            view.trials_unsettled += u64::from(self.fate.is_none_or(|f| f == Fate::Unsettled));
            if let Some(n) = view.trials.get_mut(&epoch) {
                *n -= 1;
                if *n == 0 {
                    view.trials.remove(&epoch);
                }
            }
        }
        lock(&self.ledger.attempts).insert(
            self.id,
            AttemptRecord {
                host: self.host,
                call: self.call,
                fate: self.fate.unwrap_or(Fate::Unsettled),
            },
        );
    }
}
