//! The circuit breaker's rules, windows, modes, probe and events, driven by a manual clock.

use breakerbox::clock::ManualClock;
use breakerbox::{
    BreakerConfig, CircuitBreaker, Outcome, State, TransitionEvent, TransitionReason,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder("upstream", config)
        .clock(Arc::new(clock.clone()))
        .build();
    (b, clock)
}

fn call(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire().expect("admitted").record(outcome);
}

fn call_taking(b: &CircuitBreaker, clock: &ManualClock, took: Duration, outcome: Outcome) {
    let permit = b.try_acquire().expect("admitted");
    clock.advance(took);
    permit.record(outcome);
}

/// No consecutive-failure rule; the last 10 s in buckets of 1 s.
fn time_window(builder: breakerbox::config::BreakerConfigBuilder) -> BreakerConfig {
    builder
        .no_consecutive_failures()
        .time_window(Duration::from_secs(10), 10)
        .build()
        .unwrap()
}

fn events(b: &CircuitBreaker) -> Arc<Mutex<Vec<TransitionEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    b.on_transition(move |e| sink.lock().unwrap().push(e.clone()));
    seen
}

// === trip rules ===

#[test]
fn consecutive_failures_trip_and_a_success_resets_the_run() {
    let (b, _) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(3)
            .build()
            .unwrap(),
    );
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Success);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed, "the success broke the run");
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.breaker(), "upstream");
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
}

#[test]
fn ignored_outcomes_neither_break_nor_extend_a_run() {
    let (b, _) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(2)
            .build()
            .unwrap(),
    );
    call(&b, Outcome::Failure);
    call(&b, Outcome::Ignored);
    assert_eq!(b.snapshot().consecutive_failures, 1);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn failure_rate_waits_for_minimum_calls_over_a_count_window() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .failure_rate(0.5)
        .minimum_calls(4)
        .count_window(4)
        .build()
        .unwrap();
    let (b, _) = breaker(config);
    for _ in 0..3 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Closed, "3 calls < minimum_calls");
    let seen = events(&b);
    call(&b, Outcome::Success);
    assert_eq!(b.state(), State::Open, "3 of 4 failed");
    let e = seen.lock().unwrap()[0].clone();
    assert_eq!(e.reason, TransitionReason::FailureRate { rate: 0.75 });
}

#[test]
fn count_window_forgets_old_failures() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .failure_rate(0.5)
        .minimum_calls(4)
        .count_window(4)
        .build()
        .unwrap();
    let (b, _) = breaker(config);
    call(&b, Outcome::Failure);
    for _ in 0..4 {
        call(&b, Outcome::Success);
    }
    // Window now S S S S; one failure makes it 1 of 4.
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed);
    let snap = b.snapshot();
    assert_eq!((snap.window_calls, snap.window_failures), (4, 1));
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "2 of the last 4 failed");
}

#[test]
fn time_window_forgets_failures_older_than_the_window() {
    let config = time_window(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5)
            .minimum_calls(4),
    );
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(11));
    // The three failures are out of the window: 1 failure in 4 calls.
    call(&b, Outcome::Success);
    call(&b, Outcome::Success);
    call(&b, Outcome::Success);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().window_calls, 4);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed, "2 of 5 failed");
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "3 of 6 failed");
}

#[test]
fn a_time_window_counts_every_healthy_call_in_its_rate() {
    let config = time_window(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5)
            .minimum_calls(10),
    );
    let (b, clock) = breaker(config);
    // Ten healthy calls over three buckets: the first of each bucket moves the window on, the
    // others only add to their bucket.
    for (calls, gap) in [(3, 0), (3, 1), (4, 1)] {
        clock.advance(Duration::from_secs(gap));
        for _ in 0..calls {
            call(&b, Outcome::Success);
        }
    }
    assert_eq!(b.snapshot().window_calls, 10);
    for _ in 0..9 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Closed, "9 of 19 failed");
    assert_eq!(b.snapshot().window_calls, 19);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "10 of 20 failed");
}

#[test]
fn in_a_time_window_the_success_that_reaches_minimum_calls_can_trip() {
    let config = time_window(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5)
            .minimum_calls(4),
    );
    let (b, _clock) = breaker(config);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Success);
    assert_eq!(
        b.state(),
        State::Closed,
        "3 calls, fewer than minimum_calls"
    );
    call(&b, Outcome::Success);
    assert_eq!(b.state(), State::Open, "2 of 4 failed");
}

#[test]
fn in_a_time_window_slow_successes_count_as_slow_from_the_threshold_on() {
    // Buckets of 6 s: the first three calls land in the same one.
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .slow_call_rate(0.5, Duration::from_secs(1))
        .minimum_calls(4)
        .time_window(Duration::from_secs(60), 10)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call_taking(&b, &clock, Duration::from_millis(999), Outcome::Success);
    call_taking(&b, &clock, Duration::from_millis(999), Outcome::Success);
    call_taking(&b, &clock, SEC, Outcome::Success);
    assert_eq!(
        b.snapshot().window_slow_calls,
        1,
        "exactly the threshold is slow"
    );
    call_taking(&b, &clock, Duration::from_secs(5), Outcome::Success);
    assert_eq!(b.state(), State::Open, "2 of 4 calls slow");
}

#[test]
fn in_a_time_window_a_success_ends_a_run_of_failures_the_window_has_forgotten() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(5)
        .failure_rate(0.9)
        .time_window(Duration::from_secs(10), 10)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(20));
    // The failure has left the window, but the run it started goes on until a success.
    call(&b, Outcome::Success);
    for _ in 0..4 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(
        b.state(),
        State::Closed,
        "4 failures in a row since the success"
    );
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_full_time_bucket_of_successes_halves_and_shows_no_failure() {
    let config = time_window(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5),
    );
    let (b, _clock) = breaker(config);
    // One more than a bucket counts (2^17 - 1), all in the first bucket.
    for _ in 0..(1 << 17) {
        call(&b, Outcome::Success);
    }
    let snap = b.snapshot();
    assert_eq!((snap.window_failures, snap.window_slow_calls), (0, 0));
    assert_eq!(
        snap.window_calls,
        (1 << 16) - 1 + 1,
        "halved once, then one more"
    );
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_success_admitted_before_a_forced_open_is_not_counted_in_a_time_window() {
    let config = time_window(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5),
    );
    let (b, _clock) = breaker(config);
    call(&b, Outcome::Success);
    let late = b.try_acquire().unwrap();
    b.force_open();
    let before = b.snapshot().window_calls;
    late.record(Outcome::Success);
    assert_eq!(
        b.snapshot().window_calls,
        before,
        "admitted in an earlier period"
    );
}

#[test]
fn slow_call_rate_trips_on_slow_successes() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .slow_call_rate(0.5, Duration::from_secs(2))
        .minimum_calls(2)
        .count_window(10)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call_taking(&b, &clock, Duration::from_millis(100), Outcome::Success);
    call_taking(&b, &clock, Duration::from_millis(1999), Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    let seen = events(&b);
    call_taking(&b, &clock, Duration::from_secs(2), Outcome::Success);
    call_taking(&b, &clock, Duration::from_secs(5), Outcome::Success);
    assert_eq!(b.state(), State::Open, "2 of 4 calls took >= 2s");
    assert_eq!(
        seen.lock().unwrap()[0].reason,
        TransitionReason::SlowCallRate { rate: 0.5 }
    );
}

/// A healthy breaker records fast successes without writing anything; a slow call arriving
/// after a window full of them must still count as slow, from exactly the threshold up.
#[test]
fn slow_calls_after_a_window_full_of_fast_ones_still_count() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .slow_call_rate(0.5, Duration::from_secs(2))
        .minimum_calls(4)
        .count_window(4)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    let fast = |b: &CircuitBreaker, n| {
        for _ in 0..n {
            call_taking(b, &clock, Duration::from_millis(1999), Outcome::Success);
        }
    };
    fast(&b, 8);
    assert_eq!(b.snapshot().window_slow_calls, 0);
    call_taking(&b, &clock, Duration::from_secs(5), Outcome::Success);
    assert_eq!(b.snapshot().window_slow_calls, 1, "far past the threshold");
    fast(&b, 4);
    assert_eq!(b.snapshot().window_slow_calls, 0, "the slow call has left");
    call_taking(&b, &clock, Duration::from_secs(2), Outcome::Success);
    assert_eq!(
        b.snapshot().window_slow_calls,
        1,
        "exactly the threshold is slow"
    );
    assert_eq!(b.state(), State::Closed);
    let seen = events(&b);
    call_taking(&b, &clock, Duration::from_secs(30), Outcome::Success);
    assert_eq!(b.state(), State::Open, "2 of the last 4 calls took >= 2s");
    assert_eq!(
        seen.lock().unwrap()[0].reason,
        TransitionReason::SlowCallRate { rate: 0.5 }
    );
}

#[test]
fn rules_combine_and_the_first_to_fire_trips() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(3)
        .failure_rate(0.6)
        .minimum_calls(5)
        .count_window(5)
        .build()
        .unwrap();
    let (b, _) = breaker(config);
    let seen = events(&b);
    for o in [
        Outcome::Failure,
        Outcome::Success,
        Outcome::Failure,
        Outcome::Success,
        Outcome::Failure,
    ] {
        call(&b, o);
    }
    assert_eq!(
        b.state(),
        State::Open,
        "3 of 5 failed though never 3 in a row"
    );
    assert_eq!(
        seen.lock().unwrap()[0].reason,
        TransitionReason::FailureRate { rate: 0.6 }
    );
}

// === open and half-open ===

#[test]
fn open_duration_grows_on_each_retrip_is_capped_and_resets_on_close() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(10))
        .open_backoff(3.0, Duration::from_secs(50))
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    let mut expected = [10, 30, 50, 50].into_iter();
    let mut open_for = expected.next().unwrap();
    loop {
        assert_eq!(b.retry_in(), Some(Duration::from_secs(open_for)));
        clock.advance(Duration::from_secs(open_for) - Duration::from_nanos(1));
        assert!(b.try_acquire().is_err(), "still open 1ns before the end");
        clock.advance(Duration::from_nanos(1));
        let trial = b.try_acquire().expect("a trial call");
        assert_eq!(b.state(), State::HalfOpen);
        match expected.next() {
            Some(next) => {
                trial.record(Outcome::Failure);
                open_for = next;
            }
            None => {
                trial.record(Outcome::Success);
                break;
            }
        }
    }
    assert_eq!(b.state(), State::Closed);
    call(&b, Outcome::Failure);
    assert_eq!(
        b.retry_in(),
        Some(Duration::from_secs(10)),
        "a close resets the growth"
    );
}

#[test]
fn open_jitter_only_shortens_within_its_fraction() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(100))
        .open_jitter(0.2)
        .build()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let (b, _) = breaker(config.clone());
        call(&b, Outcome::Failure);
        let open_for = b.retry_in().unwrap();
        assert!(open_for <= Duration::from_secs(100) && open_for > Duration::from_secs(80));
        seen.insert(open_for);
    }
    assert!(seen.len() > 1, "jitter varies the open duration");
}

/// Regression (found by tests/hostile.rs): an open duration within 2048 s of 2^64 s (valid, and
/// reached by growth when `max_open_duration` is that long) with a tiny `open_jitter` panicked on
/// the trip: its float seconds round up to 2^64, which `Duration::mul_f64` cannot convert back.
#[test]
fn open_jitter_on_the_longest_open_duration_trips_without_panicking() {
    let longest = Duration::from_secs(u64::MAX);
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(longest)
        .open_backoff(2.0, Duration::MAX)
        .open_jitter(1e-300)
        .build()
        .unwrap();
    let (b, _) = breaker(config);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    let rejected = b
        .try_acquire()
        .expect_err("open for the longest time the clock can count");
    assert_eq!(rejected.retry_after(), Some(Duration::from_nanos(u64::MAX)));
}

#[test]
fn half_open_admits_at_most_max_calls_and_needs_success_threshold() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .half_open_max_calls(2)
        .success_threshold(3)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(60));
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert!(first.is_trial() && second.is_trial());
    let full = b.try_acquire().unwrap_err();
    assert_eq!((full.state(), full.retry_after()), (State::HalfOpen, None));
    first.record(Outcome::Success);
    second.record(Outcome::Success);
    assert_eq!(b.state(), State::HalfOpen, "2 of 3 successes");
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn any_trial_failure_reopens_and_outstanding_trials_go_stale() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .half_open_max_calls(2)
        .success_threshold(2)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(60));
    let slow = b.try_acquire().unwrap();
    b.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    // The other trial ends after the re-trip: it must not count toward the new period.
    slow.record(Outcome::Success);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_in(), Some(Duration::from_secs(10)), "5 s, doubled");
}

#[test]
fn a_dropped_trial_permit_frees_its_slot_and_counts_as_nothing() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .success_threshold(1)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(60));
    for _ in 0..100 {
        drop(b.try_acquire().expect("the dropped trial freed the slot"));
    }
    assert_eq!(b.state(), State::HalfOpen);
    let snap = b.snapshot();
    assert_eq!((snap.half_open_in_flight, snap.half_open_successes), (0, 0));
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

/// A holder of one's own, as a front end spreading its permits' reference counts would use.
struct Holder(CircuitBreaker);

impl breakerbox::circuit_breaker::BreakerHolder for Holder {
    fn breaker(&self) -> &CircuitBreaker {
        &self.0
    }
}

#[test]
fn permits_held_by_a_holder_of_ones_own_behave_like_owned_ones() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .success_threshold(1)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    let holder = Arc::new(Holder(b.clone()));

    // A failure reported through the holder trips the breaker; the holder is cloned only for
    // admitted calls, so a rejection leaves its count as it was.
    CircuitBreaker::try_acquire_by(&holder)
        .unwrap()
        .record(Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    assert!(CircuitBreaker::try_acquire_by(&holder).is_err());
    assert_eq!(Arc::strong_count(&holder), 1);

    // A dropped trial frees its slot and lets go of the holder; a held trial keeps it.
    clock.advance(Duration::from_secs(60));
    drop(CircuitBreaker::try_acquire_by(&holder).expect("the trial"));
    let trial = CircuitBreaker::try_acquire_by(&holder).expect("the slot was freed");
    assert!(trial.is_trial());
    assert_eq!(trial.breaker().name(), "upstream");
    assert_eq!(Arc::strong_count(&holder), 2);
    assert!(b.try_acquire().is_err(), "one trial at a time");
    trial.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(Arc::strong_count(&holder), 1);
}

#[test]
fn a_slow_trial_counts_as_a_failure_when_a_slow_rule_is_set() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .slow_call_rate(1.0, Duration::from_secs(1))
        .minimum_calls(1)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(60));
    call_taking(&b, &clock, Duration::from_secs(3), Outcome::Success);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn outcomes_of_calls_admitted_before_a_trip_are_ignored() {
    let (b, clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(2)
            .build()
            .unwrap(),
    );
    let late = b.try_acquire_owned().unwrap();
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    // A failure from the old Closed period lands in the new one: it must not count.
    late.record(Outcome::Failure);
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

// === probe ===

#[test]
fn probe_is_due_every_interval_while_open_one_at_a_time() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(60))
        .probe_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    assert!(b.probe_due().is_none(), "closed: no probe");
    call(&b, Outcome::Failure);
    assert_eq!(b.next_probe_in(), Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(10));
    let probe = b.probe_due().expect("due");
    assert!(b.probe_due().is_none(), "one probe at a time");
    probe.failed();
    assert_eq!(b.next_probe_in(), Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(10));
    drop(b.probe_due().expect("due again"));
    assert_eq!(b.state(), State::Open, "a dropped probe is a failed one");
    clock.advance(Duration::from_secs(10));
    let seen = events(&b);
    b.probe_due().expect("due a third time").succeeded();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        seen.lock().unwrap()[0].reason,
        TransitionReason::ProbeSucceeded
    );
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn no_probe_once_the_open_duration_is_over() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(15))
        .probe_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(15));
    assert!(b.probe_due().is_none(), "the next call is a trial anyway");
    assert!(b.try_acquire().unwrap().is_trial());
}

// === modes ===

#[test]
fn forced_open_rejects_until_reset() {
    let (b, clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap(),
    );
    b.force_open();
    clock.advance(Duration::from_secs(3600));
    let e = b.try_acquire().unwrap_err();
    assert_eq!((e.state(), e.retry_after()), (State::ForcedOpen, None));
    assert!(e.to_string().contains("forced open"));
    b.reset();
    assert!(b.try_acquire().is_ok());
}

#[test]
fn disabled_admits_everything_and_records_nothing() {
    let (b, _) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .build()
            .unwrap(),
    );
    b.disable();
    for _ in 0..10 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

#[test]
fn metrics_only_records_but_never_trips() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(2)
        .failure_rate(0.5)
        .minimum_calls(2)
        .count_window(10)
        .build()
        .unwrap();
    let (b, _) = breaker(config);
    b.metrics_only();
    for _ in 0..10 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::MetricsOnly);
    let snap = b.snapshot();
    assert_eq!((snap.consecutive_failures, snap.window_failures), (10, 10));
    b.reset();
    assert_eq!(b.snapshot().window_calls, 0, "reset clears the counters");
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "back to normal: the rules apply");
}

#[test]
fn reset_closes_clears_and_restores_the_base_open_duration() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(SEC)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(SEC);
    b.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(b.retry_in(), Some(2 * SEC));
    let seen = events(&b);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(seen.lock().unwrap()[0].reason, TransitionReason::Reset);
    call(&b, Outcome::Failure);
    assert_eq!(b.retry_in(), Some(SEC));
}

// === events ===

#[test]
fn every_transition_emits_one_event_in_order() {
    let (b, clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .build()
            .unwrap(),
    );
    let seen = events(&b);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().record(Outcome::Success);
    b.force_open();
    b.disable();
    b.metrics_only();
    b.reset();
    let got: Vec<(State, State, &str)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.from, e.to, e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (State::Closed, State::Open, "consecutive_failures"),
            (State::Open, State::HalfOpen, "open_duration_elapsed"),
            (State::HalfOpen, State::Closed, "trials_succeeded"),
            (State::Closed, State::ForcedOpen, "forced_open"),
            (State::ForcedOpen, State::Disabled, "disabled"),
            (State::Disabled, State::MetricsOnly, "metrics_only"),
            (State::MetricsOnly, State::Closed, "reset"),
        ]
    );
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(&*first.breaker, "upstream");
    assert_eq!(first.at, Duration::ZERO);
    assert_eq!(seen.lock().unwrap()[1].at, Duration::from_secs(60));
}

#[test]
fn clones_share_one_breaker() {
    let (b, _) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(2)
            .build()
            .unwrap(),
    );
    let other = b.clone();
    call(&b, Outcome::Failure);
    call(&other, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    assert!(b.ptr_eq(&other));
}

// === HalfOpen cannot be held forever; a panic is a failure; a hung probe expires ===

/// One failure opens for 10 s; two trial slots, three successes to close; trials may hold
/// HalfOpen for 30 s.
fn bounded_half_open() -> BreakerConfig {
    BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(10 * SEC)
        .open_backoff(2.0, 600 * SEC)
        .half_open_max_calls(2)
        .success_threshold(3)
        .max_half_open_wait(30 * SEC)
        .build()
        .unwrap()
}

#[test]
fn trials_that_never_end_cannot_hold_half_open_past_its_wait() {
    let (b, clock) = breaker(bounded_half_open());
    let seen = events(&b);
    call(&b, Outcome::Failure);
    clock.advance(10 * SEC);
    // Two trials that never report (a leaked permit, a body streamed for an hour).
    let stuck = [b.try_acquire().unwrap(), b.try_acquire().unwrap()];
    clock.advance(30 * SEC - Duration::from_nanos(1));
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.state(), State::HalfOpen, "the wait is not over yet");
    clock.advance(Duration::from_nanos(1));
    // Past it, the next call makes the breaker decide without them: none succeeded, so Open
    // again, for twice as long, like a failed trial.
    let open = b.try_acquire().unwrap_err();
    assert_eq!(
        (open.state(), open.retry_after()),
        (State::Open, Some(20 * SEC))
    );
    let reason = seen.lock().unwrap().last().unwrap().reason;
    assert_eq!(
        reason,
        TransitionReason::HalfOpenWaitElapsed { successes: 0 }
    );
    // The stuck trials' late outcomes belong to the old HalfOpen: ignored.
    for permit in stuck {
        permit.record(Outcome::Success);
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().half_open_successes, 0);
}

#[test]
fn past_its_wait_half_open_closes_if_a_trial_had_succeeded() {
    let (b, clock) = breaker(bounded_half_open());
    call(&b, Outcome::Failure);
    clock.advance(10 * SEC);
    b.try_acquire().unwrap().record(Outcome::Success);
    let _stuck = [b.try_acquire().unwrap(), b.try_acquire().unwrap()];
    clock.advance(30 * SEC);
    let permit = b.try_acquire().expect("Closed again: admitted");
    assert_eq!(b.state(), State::Closed);
    permit.record(Outcome::Success);
}

#[test]
fn a_panic_while_a_permit_is_held_counts_as_a_failure() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(2)
        .build()
        .unwrap();
    let (b, _clock) = breaker(config);
    for _ in 0..2 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _permit = b.try_acquire().unwrap();
            panic!("the call panicked");
        }));
        assert!(caught.is_err());
    }
    assert_eq!(b.state(), State::Open);
    // A permit dropped without panicking (a cancelled call) still counts as nothing.
    b.reset();
    drop(b.try_acquire().unwrap());
    drop(b.try_acquire().unwrap());
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

#[test]
fn a_probe_that_never_reports_expires_after_its_timeout() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(300 * SEC)
        .probe_interval(5 * SEC)
        .probe_timeout(8 * SEC)
        .build()
        .unwrap();
    let (b, clock) = breaker(config);
    call(&b, Outcome::Failure);
    clock.advance(5 * SEC);
    let hung = b.probe_due().expect("due after one interval");
    assert_eq!(hung.timeout(), 8 * SEC);
    // While it runs and has time left, no other probe is claimed, even once the next is due.
    clock.advance(5 * SEC);
    assert!(
        b.probe_due().is_none(),
        "10 s: the first probe still has time"
    );
    // Past its timeout it no longer blocks: the next probe is claimed (at 13 s).
    clock.advance(3 * SEC);
    let next = b.probe_due().expect("the hung probe expired");
    // The hung probe's late failure must not free the new probe's claim: at 18 s the next
    // probe would be due, but the one claimed at 13 s still runs.
    hung.failed();
    clock.advance(5 * SEC);
    assert!(b.probe_due().is_none(), "the new probe still runs");
    next.succeeded();
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn probe_timeout_defaults_to_the_probe_interval() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .probe_interval(15 * SEC)
        .build()
        .unwrap();
    assert_eq!(config.probe_timeout(), Some(15 * SEC));
    assert_eq!(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap()
            .probe_timeout(),
        None
    );
}

#[test]
fn a_run_of_failures_trips_only_once_it_spans_its_duration() {
    // The default: 5 failures in a row, over at least 1 s.
    let (b, clock) = breaker(BreakerConfig::default());
    assert_eq!(b.config().consecutive_failures_span(), SEC);
    // A burst of 50 failures in the same instant (a busy client's bad luck): still Closed.
    for _ in 0..50 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().consecutive_failures, 50);
    // The run goes on for a second: now it is an outage.
    clock.advance(SEC);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);

    // A success ends the run; the next run's clock starts at its own first failure.
    let (b, clock) = breaker(BreakerConfig::default());
    call(&b, Outcome::Failure);
    clock.advance(2 * SEC);
    call(&b, Outcome::Success);
    for _ in 0..4 {
        call(&b, Outcome::Failure);
    }
    clock.advance(SEC / 2);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed, "5 in a row, but over 0.5 s");
    clock.advance(SEC / 2);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_zero_span_trips_on_any_run() {
    let config = BreakerConfig::builder()
        .consecutive_failures(3)
        .consecutive_failures_span(Duration::ZERO)
        .build()
        .unwrap();
    let (b, _clock) = breaker(config);
    for _ in 0..3 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.state(), State::Open);
}
