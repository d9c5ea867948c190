//! The breaker metrics, under the names dashboards already alert on.

use breakerbox::clock::ManualClock;
use breakerbox::{BoxConfig, BreakerBox, BreakerConfig, CircuitBreaker, Outcome, Target};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything published so far. The debugging recorder drains on each snapshot, so this adds
/// each snapshot's counters and histogram values to what it has.
struct Published {
    snapshotter: Snapshotter,
    counters: HashMap<String, u64>,
    histograms: HashMap<String, Vec<f64>>,
    state: Option<f64>,
}

fn id(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Published {
    fn of(recorder: &DebuggingRecorder) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
            counters: HashMap::new(),
            histograms: HashMap::new(),
            state: None,
        }
    }

    fn refresh(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let labels: Vec<(&str, &str)> =
                key.key().labels().map(|l| (l.key(), l.value())).collect();
            let id = id(key.key().name(), &labels);
            match (key.kind(), value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *self.counters.entry(id).or_default() += n
                }
                (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                    assert_eq!(key.key().name(), "circuit_breaker_state");
                    self.state = Some(v.into_inner());
                }
                (MetricKind::Histogram, DebugValue::Histogram(vs)) => self
                    .histograms
                    .entry(id)
                    .or_default()
                    .extend(vs.iter().map(|v| v.into_inner())),
                other => panic!("unexpected metric {other:?}"),
            }
        }
    }

    fn state(&mut self) -> f64 {
        self.refresh();
        self.state.take().expect("the state gauge is published")
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        self.counters.get(&id(name, labels)).copied().unwrap_or(0)
    }
}

#[test]
fn calls_transitions_state_and_durations_are_published() {
    let recorder = DebuggingRecorder::new();
    let mut published = Published::of(&recorder);
    let clock = ManualClock::new();
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder(
            "lastfm",
            BreakerConfig::builder()
                .consecutive_failures_span(Duration::ZERO)
                .consecutive_failures(2)
                .build()
                .unwrap(),
        )
        .clock(Arc::new(clock.clone()))
        .call_duration_histogram(true)
        .build()
    });
    let timed = |outcome| {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_millis(250));
        permit.record(outcome);
    };
    assert_eq!(published.state(), 0.0);
    timed(Outcome::Success);
    timed(Outcome::Ignored);
    drop(breaker.try_acquire().unwrap());
    timed(Outcome::Failure);
    timed(Outcome::Failure);
    assert!(breaker.try_acquire().is_err());
    assert_eq!(published.state(), 2.0);
    clock.advance(Duration::from_secs(60));
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(published.state(), 1.0);
    trial.record(Outcome::Success);
    assert_eq!(published.state(), 0.0);

    let mut calls = |result| {
        published.counter(
            "circuit_breaker_calls_total",
            &[("breaker", "lastfm"), ("result", result)],
        )
    };
    assert_eq!(calls("success"), 2);
    assert_eq!(calls("failure"), 2);
    assert_eq!(
        calls("ignored"),
        2,
        "an Ignored outcome and a dropped permit"
    );
    assert_eq!(calls("rejected"), 1);
    let mut transitions = |from, to| {
        published.counter(
            "circuit_breaker_transitions_total",
            &[("breaker", "lastfm"), ("from", from), ("to", to)],
        )
    };
    assert_eq!(transitions("closed", "open"), 1);
    assert_eq!(transitions("open", "half_open"), 1);
    assert_eq!(transitions("half_open", "closed"), 1);
    assert_eq!(transitions("closed", "half_open"), 0);

    let failures = id(
        "circuit_breaker_call_duration_seconds",
        &[("breaker", "lastfm"), ("result", "failure")],
    );
    assert_eq!(published.histograms[&failures], [0.25, 0.25]);
}

#[test]
fn a_time_window_publishes_every_healthy_calls_duration() {
    let recorder = DebuggingRecorder::new();
    let mut published = Published::of(&recorder);
    let clock = ManualClock::new();
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder(
            "beatport",
            BreakerConfig::builder()
                .consecutive_failures_span(Duration::ZERO)
                .failure_rate(0.5)
                .time_window(Duration::from_secs(60), 60)
                .build()
                .unwrap(),
        )
        .clock(Arc::new(clock.clone()))
        .call_duration_histogram(true)
        .build()
    });
    for _ in 0..3 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_millis(100));
        permit.record(Outcome::Success);
    }
    published.refresh();
    let successes = id(
        "circuit_breaker_call_duration_seconds",
        &[("breaker", "beatport"), ("result", "success")],
    );
    assert_eq!(published.histograms[&successes], [0.1, 0.1, 0.1]);
}

#[test]
fn call_durations_are_published_only_when_asked_for() {
    let recorder = DebuggingRecorder::new();
    let mut published = Published::of(&recorder);
    let config = |name: &str| {
        BoxConfig::from_toml(&format!(
            "[[breakers]]\nname = \"{name}\"\nmatch = {{ host = \"api.spotify.com\" }}\n"
        ))
        .unwrap()
    };
    let spotify = Target::new("https", "api.spotify.com", 443, "/v1/search");
    let (plain, timed) = metrics::with_local_recorder(&recorder, || {
        let plain = BreakerBox::new(config("plain"));
        let timed = BreakerBox::builder(config("timed"))
            .call_duration_histogram(true)
            .build();
        // A box makes its breakers (and resolves their metric handles) on first use.
        (plain.breaker(&spotify), timed.breaker(&spotify))
    });
    for breaker in [&plain, &timed] {
        breaker.try_acquire().unwrap().record(Outcome::Success);
        breaker.flush_metrics();
    }
    let calls = |published: &mut Published, breaker| {
        published.counter(
            "circuit_breaker_calls_total",
            &[("breaker", breaker), ("result", "success")],
        )
    };
    assert_eq!(calls(&mut published, "plain"), 1);
    assert_eq!(calls(&mut published, "timed"), 1);
    let series = |breaker: &str| {
        let prefix = format!("circuit_breaker_call_duration_seconds{{breaker={breaker},");
        let mut recorded: Vec<(String, usize)> = (published.histograms.iter())
            .filter(|(id, _)| id.starts_with(&prefix))
            .map(|(id, values)| (id.replace(&prefix, ""), values.len()))
            .collect();
        recorded.sort();
        recorded
    };
    assert_eq!(
        series("plain"),
        [],
        "by default no histogram series (and no clock read for one)"
    );
    assert_eq!(
        series("timed"),
        [
            ("result=failure}".to_owned(), 0),
            ("result=ignored}".to_owned(), 0),
            ("result=success}".to_owned(), 1)
        ]
    );
}

/// Calls reach `circuit_breaker_calls_total` in batches counted per thread (so that threads
/// calling one breaker never contend on one counter); a flush, a snapshot or a state change
/// publishes the rest, and nothing is lost or counted twice.
#[test]
fn calls_are_published_in_batches_and_flushed_exactly() {
    let recorder = DebuggingRecorder::new();
    let mut published = Published::of(&recorder);
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::new(
            "discogs",
            BreakerConfig::builder()
                .consecutive_failures_span(Duration::ZERO)
                .build()
                .unwrap(),
        )
    });
    let successes = |published: &mut Published| {
        published.counter(
            "circuit_breaker_calls_total",
            &[("breaker", "discogs"), ("result", "success")],
        )
    };
    breaker.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(successes(&mut published), 0, "one call waits for its batch");
    breaker.flush_metrics();
    assert_eq!(successes(&mut published), 1);

    // Four threads, 1,000 calls each, with snapshots racing them.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for i in 0..1_000 {
                    breaker.try_acquire().unwrap().record(Outcome::Success);
                    if i % 300 == 0 {
                        let _ = breaker.snapshot();
                    }
                }
            });
        }
    });
    // At most 31 calls wait in each of at most 9 stripes (8 threads' own and the shared one).
    let batched = successes(&mut published);
    assert!(
        (4_001 - 31 * 9..=4_001).contains(&batched),
        "batches are published as they fill: {batched}"
    );
    let _ = breaker.snapshot();
    assert_eq!(
        successes(&mut published),
        4_001,
        "a snapshot publishes the rest"
    );
    breaker.flush_metrics();
    assert_eq!(
        successes(&mut published),
        4_001,
        "nothing is published twice"
    );
}

/// `BreakerBox::flush_metrics` publishes the calls every one of its breakers still holds in a
/// batch, so a `/metrics` page scraped right after it shows every call made so far.
#[test]
fn a_box_flush_publishes_every_breakers_waiting_calls() {
    let recorder = DebuggingRecorder::new();
    let mut published = Published::of(&recorder);
    let panel = BreakerBox::new(BoxConfig::default());
    let hosts = ["api.spotify.com", "musicbrainz.org"];
    // A box makes a host's breaker, and registers its metrics, on the host's first call.
    metrics::with_local_recorder(&recorder, || {
        for (calls, host) in [3, 5].into_iter().zip(hosts) {
            let target = Target::new("https", host, 443, "/");
            for _ in 0..calls {
                panel.try_acquire(&target).unwrap().record(Outcome::Success);
            }
        }
    });
    let successes = |published: &mut Published, host: &str| {
        published.counter(
            "circuit_breaker_calls_total",
            &[("breaker", host), ("result", "success")],
        )
    };
    assert_eq!(
        successes(&mut published, hosts[0]),
        0,
        "calls wait in a batch"
    );
    panel.flush_metrics();
    assert_eq!(successes(&mut published, hosts[0]), 3);
    assert_eq!(successes(&mut published, hosts[1]), 5);
}
