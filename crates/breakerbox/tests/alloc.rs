//! The hot paths allocate nothing: 10,000 admissions and recordings in Closed, and 10,000
//! rejections in Open, counted by a global allocator that counts this thread's allocations
//! (`breakerbox_testing::Counting`).

use breakerbox::clock::ManualClock;
use breakerbox::{BreakerConfig, CircuitBreaker, Outcome, State};
use breakerbox_testing::{Counting, allocations_in};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A recorder whose handles are plain atomics, like a real exporter's: it shows what the breaker
/// itself does per call once a recorder is installed.
#[derive(Default)]
struct AtomicRecorder {
    histogram_records: Arc<AtomicHistogram>,
}

#[derive(Default)]
struct AtomicHistogram(AtomicU64);

impl metrics::HistogramFn for AtomicHistogram {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.histogram_records.clone())
    }
}

fn configs() -> Vec<(&'static str, BreakerConfig)> {
    let b = BreakerConfig::builder;
    vec![
        ("consecutive failures", b().build().unwrap()),
        (
            "failure rate, count window",
            b().failure_rate(0.5)
                .minimum_calls(10)
                .count_window(100)
                .build()
                .unwrap(),
        ),
        (
            "slow-call rate, time window",
            b().slow_call_rate(0.5, Duration::from_secs(1))
                .time_window(Duration::from_secs(60), 60)
                .build()
                .unwrap(),
        ),
        (
            "every rule",
            b().consecutive_failures(1000)
                .failure_rate(0.9)
                .slow_call_rate(0.9, Duration::from_secs(5))
                .time_window(Duration::from_secs(10), 10)
                .build()
                .unwrap(),
        ),
    ]
}

fn ten_thousand_calls(breaker: &CircuitBreaker, clock: &ManualClock) {
    for i in 0..10_000u32 {
        let permit = breaker.try_acquire().expect("closed");
        clock.advance(Duration::from_millis(7)); // time-based windows rotate buckets
        permit.record(match i % 10 {
            0 => Outcome::Failure,
            1 => Outcome::Ignored,
            _ => Outcome::Success,
        });
        if i % 100 == 0 {
            drop(breaker.try_acquire_owned().expect("closed")); // a cancelled call
        }
    }
}

#[test]
fn closed_admission_and_recording_allocate_nothing() {
    let recorder = AtomicRecorder::default();
    for (with_recorder, (name, config)) in [false, true]
        .into_iter()
        .flat_map(|r| configs().into_iter().map(move |c| (r, c)))
    {
        let clock = ManualClock::new();
        let build = || {
            CircuitBreaker::builder(name, config.clone())
                .clock(Arc::new(clock.clone()))
                .call_duration_histogram(true) // every metric, the costliest setting
                .build()
        };
        let breaker = if with_recorder {
            metrics::with_local_recorder(&recorder, build)
        } else {
            build()
        };
        let allocations = allocations_in(|| ten_thousand_calls(&breaker, &clock));
        assert_eq!(
            breaker.state(),
            State::Closed,
            "{name}: the traffic was healthy"
        );
        assert_eq!(
            allocations, 0,
            "{name} (recorder installed: {with_recorder}): allocations over 10,000 calls"
        );
    }
    // The histogram saw every recorded call of the runs with the recorder (a cancelled call has
    // no duration): the metrics path really ran while nothing was allocated.
    assert_eq!(
        recorder.histogram_records.0.load(Ordering::Relaxed),
        4 * 10_000
    );
}

#[test]
fn rejections_allocate_nothing() {
    let recorder = AtomicRecorder::default();
    for (with_recorder, name) in [
        (false, "spotify"),
        (true, "spotify"),
        (true, "built at run time"),
    ] {
        let clock = ManualClock::new();
        let build = || {
            let name = if name == "spotify" {
                breakerbox::BreakerName::from("spotify")
            } else {
                breakerbox::BreakerName::from(format!("api.{}.example:443", name.len()))
            };
            CircuitBreaker::builder(
                name,
                BreakerConfig::builder()
                    .consecutive_failures_span(Duration::ZERO)
                    .open_duration(Duration::from_secs(60))
                    .build()
                    .unwrap(),
            )
            .clock(Arc::new(clock.clone()))
            .build()
        };
        let breaker = if with_recorder {
            metrics::with_local_recorder(&recorder, build)
        } else {
            build()
        };
        let mut failures = 0;
        while let Ok(permit) = breaker.try_acquire() {
            permit.record(Outcome::Failure);
            failures += 1;
            assert!(failures <= 5, "{name}: open after 5 failures in a row");
        }
        let mut rejected = 0;
        let allocations = allocations_in(|| {
            for _ in 0..10_000 {
                clock.advance(Duration::from_millis(1));
                let open = breaker.try_acquire().expect_err("open for 60 s");
                rejected += usize::from(open.retry_after().is_some());
            }
        });
        assert_eq!(
            rejected, 10_000,
            "{name}: every call rejected, with a retry-after"
        );
        assert_eq!(
            allocations, 0,
            "{name} (recorder installed: {with_recorder}): allocations over 10,000 rejections"
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The instrument itself must be able to fail.
    let n = allocations_in(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1);
}
