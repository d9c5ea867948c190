//! The load: `script.calls()` calls spread evenly over the script's length, at most
//! [`CONCURRENCY`] in flight, each one a task of its own under the caller's deadline; 10 % of
//! them abandoned by their caller at a random point (after a random delay, or after a random
//! number of polls).

use crate::fronts::{Ended, Front, Method};
use crate::ledger::Ledger;
use crate::script::{CANCELLED, CONCURRENCY, DEADLINE, HOSTS, Script};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// When the caller gives up on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    Never,
    AfterDelay(Duration),
    AfterPolls(u32),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CallPlan {
    pub(crate) id: u64,
    pub(crate) host: usize,
    pub(crate) method: Method,
    pub(crate) cancel: Cancel,
}

impl CallPlan {
    fn random(rng: &mut fastrand::Rng, id: u64) -> Self {
        let method = match rng.u8(0..20) {
            0 => Method::Post,
            1 => Method::PostWithKey,
            _ => Method::Get,
        };
        // Most calls take about a millisecond and two polls, so a poll count alone would
        // rarely land inside a call: the caller re-polls at once after each pending poll (see
        // `PollLimit`), and gives up after a random number of polls, while the connection and
        // the server make progress on other threads. The delays reach the calls that wait for
        // a timeout, a retry or a slow body.
        let cancel = if rng.f64() < CANCELLED {
            if rng.u8(0..20) < 17 {
                Cancel::AfterPolls(rng.u32(1..=32))
            } else {
                Cancel::AfterDelay(Duration::from_millis(rng.u64(1..600)))
            }
        } else {
            Cancel::Never
        };
        Self {
            id,
            host: rng.usize(0..HOSTS.len()),
            method,
            cancel,
        }
    }
}

/// How a call ended for its caller.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Ended(Ended),
    /// The caller dropped it, as planned.
    Cancelled,
    /// Still running at the caller's deadline: a violation.
    DeadlineExceeded,
}

#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    pub(crate) plan: CallPlan,
    pub(crate) outcome: Outcome,
    /// When the call started, since the soak started.
    pub(crate) started: Duration,
    /// How long it took its caller (to the response body's end, the error, or the drop).
    pub(crate) took: Duration,
}

#[derive(Debug)]
pub(crate) struct Driven {
    pub(crate) records: Vec<CallRecord>,
    /// Call tasks whose `JoinHandle` returned an error (a panic).
    pub(crate) failed_tasks: usize,
    pub(crate) spawned: usize,
    pub(crate) wall: Duration,
}

pub(crate) async fn drive(front: Front, script: Script, ledger: Arc<Ledger>, seed: u64) -> Driven {
    let mut rng = fastrand::Rng::with_seed(seed);
    let calls = script.calls();
    let length = script.length();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut records = Vec::with_capacity(calls);
    let mut failed_tasks = 0;
    let mut collect = |joined: Result<CallRecord, tokio::task::JoinError>| match joined {
        Ok(record) => records.push(record),
        Err(_) => failed_tasks += 1,
    };
    for id in 0..calls {
        let due = length.mul_f64(id as f64 / calls as f64);
        let now = ledger.elapsed();
        if due > now + Duration::from_millis(2) {
            tokio::time::sleep(due - now).await;
        }
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let plan = CallPlan::random(&mut rng, id as u64);
        let front = front.clone();
        let ledger = ledger.clone();
        tasks.spawn(async move {
            let record = run(front, plan, &ledger).await;
            drop(slot);
            record
        });
        while let Some(joined) = tasks.try_join_next() {
            collect(joined);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined);
    }
    Driven {
        records,
        failed_tasks,
        spawned: calls,
        wall: ledger.elapsed(),
    }
}

async fn run(front: Front, plan: CallPlan, ledger: &Ledger) -> CallRecord {
    let started = ledger.elapsed();
    let call: Pin<Box<dyn Future<Output = Ended> + Send>> =
        Box::pin(front.call(plan.id, plan.host, plan.method));
    let outcome = match tokio::time::timeout(DEADLINE, cancellable(call, plan.cancel)).await {
        Err(_) => Outcome::DeadlineExceeded,
        Ok(None) => Outcome::Cancelled,
        Ok(Some(ended)) => Outcome::Ended(ended),
    };
    CallRecord {
        plan,
        outcome,
        started,
        took: ledger.elapsed() - started,
    }
}

/// The call, or `None` when the caller gives up first (the call's future is dropped there).
async fn cancellable(
    call: Pin<Box<dyn Future<Output = Ended> + Send>>,
    cancel: Cancel,
) -> Option<Ended> {
    match cancel {
        Cancel::Never => Some(call.await),
        Cancel::AfterDelay(delay) => tokio::select! {
            biased;
            ended = call => Some(ended),
            () = tokio::time::sleep(delay) => None,
        },
        Cancel::AfterPolls(polls) => PollLimit { call, left: polls }.await,
    }
}

/// Polls the call `left` times, asking to be polled again at once after each pending poll;
/// still pending then, it is dropped.
struct PollLimit {
    call: Pin<Box<dyn Future<Output = Ended> + Send>>,
    left: u32,
}

impl Future for PollLimit {
    type Output = Option<Ended>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Ended>> {
        match self.call.as_mut().poll(cx) {
            Poll::Ready(ended) => Poll::Ready(Some(ended)),
            Poll::Pending => {
                self.left -= 1;
                if self.left == 0 {
                    Poll::Ready(None)
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }
}
