//! Model checks of the circuit breaker's lock-free paths with loom: every interleaving (up to a
//! preemption bound) of a few threads acquiring and reporting.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p breakerbox --test loom --release
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the preemption bounds set here (2 for the trial-call checks, 3
//! for the cheaper ones).
#![cfg(loom)]

use breakerbox::clock::ManualClock;
use breakerbox::{BreakerConfig, CircuitBreaker, Outcome, State};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::sync::Arc;
use std::time::Duration;

const OPEN: Duration = Duration::from_secs(10);
const MAX_OPEN: Duration = Duration::from_secs(40);

/// Runs `f` under loom with at most `preemptions` thread preemptions per execution (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise), so that three threads finish in seconds.
fn check(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// How one call ends.
#[derive(Debug, Clone, Copy)]
enum End {
    Success,
    Failure,
    Ignored,
    /// Dropped without an outcome: a cancelled call.
    Drop,
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("loom", config)
        .clock(Arc::new(clock.clone()))
        .call_duration_histogram(false)
        .build();
    (breaker, clock)
}

/// Tripped by one failure, with the open duration just passed: the first call moves it to
/// HalfOpen. With `enter`, that first call is made (and dropped) here, before any thread runs.
fn due_for_trials(
    max_calls: u32,
    success_threshold: u32,
    enter: bool,
) -> (CircuitBreaker, ManualClock) {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(OPEN)
        .open_backoff(2.0, MAX_OPEN)
        .half_open_max_calls(max_calls)
        .success_threshold(success_threshold)
        .build()
        .expect("valid config");
    let (breaker, clock) = breaker(config);
    breaker
        .try_acquire()
        .expect("closed")
        .record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(OPEN);
    if enter {
        drop(breaker.try_acquire().expect("half-open: a trial"));
        assert_eq!(breaker.state(), State::HalfOpen);
    }
    (breaker, clock)
}

/// Each thread runs its plan: one call per entry, ended as the entry says. Checks that no more
/// than `max_calls` trial permits are ever held at once, that the breaker holds no trial slot
/// once every permit is gone, and that it admits a call after the longest open duration.
/// `enter`: see [`due_for_trials`]; without it the threads also race the lazy Open -> HalfOpen
/// transition (which multiplies the interleavings).
fn trials(max_calls: u32, success_threshold: u32, enter: bool, plans: &'static [&'static [End]]) {
    check(2, move || {
        let (breaker, clock) = due_for_trials(max_calls, success_threshold, enter);
        // Trial permits held right now. A thread counts its permit out *before* reporting,
        // because reporting frees the slot for another thread at once: the counter is then
        // never above the engine's own count, and exceeds `max_calls` only if the engine
        // admitted too many.
        let held = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = plans
            .iter()
            .map(|plan| {
                let breaker = breaker.clone();
                let held = held.clone();
                thread::spawn(move || {
                    for end in plan.iter() {
                        let Ok(permit) = breaker.try_acquire() else {
                            continue;
                        };
                        if permit.is_trial() {
                            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(
                                now <= max_calls as usize,
                                "{now} trial calls admitted at once, max {max_calls}"
                            );
                            held.fetch_sub(1, Ordering::SeqCst);
                        }
                        match end {
                            End::Success => permit.record(Outcome::Success),
                            End::Failure => permit.record(Outcome::Failure),
                            End::Ignored => permit.record(Outcome::Ignored),
                            End::Drop => drop(permit),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }

        let snapshot = breaker.snapshot();
        assert_eq!(
            snapshot.half_open_in_flight, 0,
            "every permit is gone, yet {} trial slots are held (state {})",
            snapshot.half_open_in_flight, snapshot.state
        );
        clock.advance(MAX_OPEN);
        let state = breaker.state();
        if let Err(e) = breaker.try_acquire() {
            panic!("stuck: {state} breaker rejects after the longest open duration: {e}");
        }
    });
}

#[test]
fn one_trial_slot_is_never_shared() {
    trials(
        1,
        2,
        false,
        &[
            &[End::Drop, End::Success],
            &[End::Success, End::Success],
            &[End::Failure],
        ],
    );
}

#[test]
fn two_trial_slots_admit_two_at_most() {
    trials(
        2,
        2,
        true,
        &[
            &[End::Success, End::Drop],
            &[End::Drop, End::Success],
            &[End::Failure],
        ],
    );
}

#[test]
fn drops_and_ignored_outcomes_never_leave_half_open_stuck() {
    // Three successes are needed and none comes: the breaker stays HalfOpen, and every slot
    // must come back.
    trials(
        2,
        3,
        true,
        &[&[End::Drop, End::Ignored], &[End::Ignored], &[End::Drop]],
    );
}

#[test]
fn a_failure_racing_the_closing_success_never_sticks() {
    // Two slots, one success closes: a success and a failure race to decide.
    trials(
        2,
        1,
        false,
        &[&[End::Success, End::Drop], &[End::Failure], &[End::Drop]],
    );
}

#[test]
fn one_probe_at_a_time_and_a_probe_racing_trials_never_sticks() {
    check(3, || {
        let config = BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .open_duration(OPEN)
            .open_backoff(2.0, MAX_OPEN)
            .probe_interval(Duration::from_secs(1))
            .build()
            .expect("valid config");
        let (breaker, clock) = breaker(config);
        breaker
            .try_acquire()
            .expect("closed")
            .record(Outcome::Failure);
        clock.advance(Duration::from_secs(1));
        // Probe tickets held right now; counted out before reporting, as in `trials`.
        let probing = Arc::new(AtomicUsize::new(0));
        let prober = |healthy: bool| {
            let breaker = breaker.clone();
            let probing = probing.clone();
            thread::spawn(move || {
                if let Some(ticket) = breaker.probe_due() {
                    let now = probing.fetch_add(1, Ordering::SeqCst) + 1;
                    assert_eq!(now, 1, "two probes claimed at once");
                    probing.fetch_sub(1, Ordering::SeqCst);
                    if healthy {
                        ticket.succeeded();
                    } else {
                        ticket.failed();
                    }
                }
            })
        };
        let probes = [prober(true), prober(false)];
        let caller = {
            let breaker = breaker.clone();
            // Rejected while Open; a trial once the probe has moved the breaker to HalfOpen.
            thread::spawn(move || {
                for outcome in [Outcome::Failure, Outcome::Success] {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.record(outcome);
                    }
                }
            })
        };
        for t in probes.into_iter().chain([caller]) {
            t.join().expect("no thread panicked");
        }

        assert_eq!(breaker.snapshot().half_open_in_flight, 0);
        clock.advance(MAX_OPEN);
        let state = breaker.state();
        if let Err(e) = breaker.try_acquire() {
            panic!("stuck: {state} breaker rejects after the longest open duration: {e}");
        }
    });
}

#[test]
fn concurrent_failures_in_closed_trip_exactly_once() {
    check(3, || {
        let config = BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(2)
            .open_duration(OPEN)
            .build()
            .expect("valid config");
        let (breaker, _clock) = breaker(config);
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        breaker.on_transition(move |e| {
            assert_eq!((e.from, e.to), (State::Closed, State::Open));
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || {
                    // Admission may already be refused: the other two tripped the breaker.
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.record(Outcome::Failure);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1, "tripped once");
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.snapshot().trips, 1);
    });
}

/// A run's start is noted by the failure that starts it, before the run counts it: two
/// failures racing at the start of a new run never read the start of the run before it (which
/// would make a run of no time look a second long), and a run that began a second earlier
/// trips exactly once when two failures race to extend it.
#[test]
fn racing_failures_read_their_own_run_s_start() {
    for earlier_run_ended in [true, false] {
        check(3, move || {
            let config = BreakerConfig::builder()
                .consecutive_failures(2)
                .consecutive_failures_span(Duration::from_secs(1))
                .open_duration(OPEN)
                .build()
                .expect("valid config");
            let (breaker, clock) = breaker(config);
            // A failure at 0 s starts a run; a success at 1 s may end it.
            breaker.try_acquire().unwrap().record(Outcome::Failure);
            clock.advance(Duration::from_secs(1));
            if earlier_run_ended {
                breaker.try_acquire().unwrap().record(Outcome::Success);
            }
            clock.advance(Duration::from_secs(1));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let breaker = breaker.clone();
                    thread::spawn(move || {
                        if let Ok(permit) = breaker.try_acquire() {
                            permit.record(Outcome::Failure);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("no thread panicked");
            }
            let expected = if earlier_run_ended {
                State::Closed // a run of two failures at the same instant
            } else {
                State::Open // three failures over 2 s
            };
            assert_eq!(
                breaker.state(),
                expected,
                "earlier run ended: {earlier_run_ended}"
            );
            assert!(breaker.snapshot().trips <= 1);
        });
    }
}

#[test]
fn concurrent_failures_trip_a_rate_rule_exactly_once() {
    // The count window's packed counters are updated by racing fetch_adds; the last record
    // always sees the full window, so the rule must fire, and only once.
    check(3, || {
        let config = BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .no_consecutive_failures()
            .failure_rate(1.0)
            .count_window(2)
            .minimum_calls(2)
            .open_duration(OPEN)
            .build()
            .expect("valid config");
        let (breaker, _clock) = breaker(config);
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        breaker.on_transition(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.record(Outcome::Failure);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread panicked");
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1, "tripped once");
        assert_eq!(breaker.state(), State::Open);
    });
}

/// A failure admitted before a reset and recorded while the reset runs never counts in the new
/// period: the run of failures is tagged with its generation. (The sliding window is only
/// approximately generation-aware; see the window module's docs.)
#[test]
fn a_failure_racing_a_reset_does_not_count_after_it() {
    check(3, || {
        let config = BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(3)
            .build()
            .expect("valid config");
        let (breaker, _clock) = breaker(config);
        let permit = breaker.try_acquire_owned().expect("closed");
        let t = thread::spawn(move || permit.record(Outcome::Failure));
        breaker.reset();
        t.join().expect("no thread panicked");
        // Either the failure came first (and the reset cleared it) or it was stale.
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.consecutive_failures, 0, "{snapshot:?}");
    });
}
