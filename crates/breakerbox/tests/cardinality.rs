//! Hostile cardinality: a scraper sends requests to a million distinct hosts through one
//! `BreakerBox`. The number of breakers, the `breaker` label values of the metrics and the
//! heap must stay at the cap, for both `Overflow` modes, with the default `max_breakers` and a
//! small one; nothing is lost (every call is counted), and the overflow breaker behaves as
//! documented.
//!
//! CI runs 100,000 hosts per configuration. The full run, which prints the figures quoted in
//! RELIABILITY.md:
//!
//! ```text
//! cargo test -p breakerbox --test cardinality -- --ignored --nocapture
//! ```
#![cfg(not(loom))] // loom's atomics only work inside `loom::model`

use breakerbox::clock::ManualClock;
use breakerbox::{BoxConfig, BreakerBox, Outcome, Overflow, Target};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[global_allocator]
static HEAP: breakerbox_testing::Peak = breakerbox_testing::Peak;

/// The heap is the whole process's: one run at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A recorder that keeps what cardinality is about: every series registered (name and labels),
/// and a real counter behind `circuit_breaker_calls_total` so that no call goes uncounted.
/// Histograms and gauges are no-ops: unlike a debugging recorder, it keeps nothing per call, so
/// the heap it uses grows with series, not with traffic.
#[derive(Default)]
struct Series {
    registered: Mutex<HashSet<String>>,
    breakers: Mutex<HashSet<String>>,
    calls: Mutex<HashMap<(String, String), Arc<AtomicU64>>>,
}

impl Series {
    fn note(&self, key: &Key) {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let id = format!("{}{{{}}}", key.name(), labels.join(","));
        lock(&self.registered).insert(id);
        if let Some(breaker) = key.labels().find(|l| l.key() == "breaker") {
            lock(&self.breakers).insert(breaker.value().to_owned());
        }
    }

    fn calls(&self, breaker: Option<&str>) -> u64 {
        lock(&self.calls)
            .iter()
            .filter(|((b, _), _)| breaker.is_none_or(|name| name == b))
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }
}

impl Recorder for Series {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        if key.name() != "circuit_breaker_calls_total" {
            return Counter::noop();
        }
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map_or_else(String::new, |l| l.value().to_owned())
        };
        let count = lock(&self.calls)
            .entry((label("breaker"), label("result")))
            .or_default()
            .clone();
        Counter::from_arc(count)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::noop()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one run measured.
#[derive(Debug)]
struct Figures {
    hosts: usize,
    cap: usize,
    overflow: Overflow,
    breakers: usize,
    breaker_labels: usize,
    series: usize,
    calls_counted: u64,
    overflow_calls: u64,
    rejected: usize,
    /// Live heap once the box was full (after `2 * cap` hosts) and at the end.
    heap_when_full: usize,
    heap_at_end: usize,
    /// The most heap the run had at once, above what was live when it started.
    peak_heap: usize,
    elapsed: Duration,
}

/// Sends one call to each of `hosts` distinct hosts (every seventh one failing) through one box
/// with `cap` (or the default) `max_breakers`; then five failures to new hosts past the cap.
fn run(hosts: usize, cap: Option<usize>, overflow: Overflow) -> Figures {
    let _serial = lock(&SERIAL);
    let mut config = BoxConfig::builder().overflow(overflow);
    if let Some(cap) = cap {
        config = config.max_breakers(cap);
    }
    let config = config.build().expect("a valid config");
    let cap = config.max_breakers();
    assert!(hosts >= 2 * cap, "the run must go well past the cap");

    let series = Series::default();
    let base = breakerbox_testing::heap_bytes();
    breakerbox_testing::reset_peak_heap();
    #[allow(
        clippy::disallowed_methods,
        reason = "the wall-clock time of the run is a reported figure"
    )]
    let started = std::time::Instant::now();
    let (breakers, rejected, heap_when_full, heap_at_end) =
        metrics::with_local_recorder(&series, || {
            let panel = BreakerBox::builder(config)
                .clock(Arc::new(ManualClock::new()))
                .build();
            let mut host = String::with_capacity(32);
            let mut rejected = 0;
            let mut heap_when_full = 0;
            for i in 0..hosts {
                host.clear();
                write!(host, "h{i}.example").unwrap();
                match panel.try_acquire(&Target::new("https", &host, 443, "/")) {
                    Ok(permit) => permit.record(if i % 7 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    }),
                    Err(_) => rejected += 1,
                }
                if i + 1 == 2 * cap {
                    heap_when_full = breakerbox_testing::heap_bytes();
                }
            }
            let heap_at_end = breakerbox_testing::heap_bytes();
            (
                panel.breakers().len(),
                rejected,
                heap_when_full,
                heap_at_end,
            )
        });
    let elapsed = started.elapsed();
    let figures = Figures {
        hosts,
        cap,
        overflow,
        breakers,
        breaker_labels: lock(&series.breakers).len(),
        series: lock(&series.registered).len(),
        calls_counted: series.calls(None),
        overflow_calls: series.calls(Some("overflow")),
        rejected,
        heap_when_full: heap_when_full - base,
        heap_at_end: heap_at_end - base,
        peak_heap: breakerbox_testing::peak_heap_bytes() - base,
        elapsed,
    };
    check(&figures);
    figures
}

/// The invariants of every run.
fn check(f: &Figures) {
    assert_eq!(
        f.breakers,
        f.cap + 1,
        "{} per-target breakers and the overflow one: {f:?}",
        f.cap
    );
    assert_eq!(f.breaker_labels, f.cap + 1, "`breaker` label values: {f:?}");
    // Each breaker registers a fixed set of series (12, and one more for the overflow
    // breaker's switch to MetricsOnly): series grow with breakers, never with hosts.
    assert!(f.series <= 13 * f.breaker_labels, "{f:?}");
    assert_eq!(
        f.rejected, 0,
        "one call per host never trips a breaker: {f:?}"
    );
    assert_eq!(f.calls_counted, f.hosts as u64, "every call counted: {f:?}");
    assert_eq!(f.overflow_calls, (f.hosts - f.cap) as u64, "{f:?}");
    // Past the cap the box remembers nothing new: its heap stays where it was when full (a
    // little slack for the allocator's and the hash map's own bookkeeping).
    let growth = f.heap_at_end.saturating_sub(f.heap_when_full);
    assert!(
        growth <= 64 * 1024,
        "heap grew {growth} B past the cap: {f:?}"
    );
}

fn report(f: &Figures) {
    eprintln!(
        "{:>9} hosts, max_breakers {:>4}, {:<12} breakers {:>4}, `breaker` label values {:>4}, \
         series {:>5}, calls counted {:>9} ({} via overflow), heap when full {:>8} B, at end \
         {:>8} B, peak {:>8} B, {:.2?}",
        f.hosts,
        f.cap,
        format!("{:?}:", f.overflow),
        f.breakers,
        f.breaker_labels,
        f.series,
        f.calls_counted,
        f.overflow_calls,
        f.heap_when_full,
        f.heap_at_end,
        f.peak_heap,
        f.elapsed,
    );
}

fn every_configuration(hosts: usize) {
    for overflow in [Overflow::MetricsOnly, Overflow::Shared] {
        for cap in [None, Some(16)] {
            report(&run(hosts, cap, overflow));
        }
    }
}

#[test]
fn a_hundred_thousand_hosts_stay_at_the_cap() {
    every_configuration(100_000);
}

#[test]
#[ignore = "the full run: a million hosts per configuration (see the module docs)"]
fn a_million_hosts_stay_at_the_cap() {
    every_configuration(1_000_000);
    if let Some(rss) = breakerbox_testing::peak_rss_bytes() {
        eprintln!("process peak RSS (VmHWM): {rss} B");
    }
}

/// Past the cap, the two modes differ as documented: failures of hosts sharing a MetricsOnly
/// overflow breaker block nobody; a Shared one trips for all of them.
#[test]
fn the_overflow_breaker_blocks_nobody_or_everybody_as_configured() {
    let _serial = lock(&SERIAL);
    for (overflow, blocks) in [(Overflow::MetricsOnly, false), (Overflow::Shared, true)] {
        let config = BoxConfig::builder()
            .defaults(
                breakerbox::BreakerConfig::builder()
                    .consecutive_failures_span(Duration::ZERO)
                    .build()
                    .unwrap(),
            )
            .max_breakers(2)
            .overflow(overflow)
            .build()
            .unwrap();
        let panel = BreakerBox::builder(config)
            .clock(Arc::new(ManualClock::new()))
            .build();
        let target = |host: &'static str| Target::new("https", host, 443, "/");
        for host in ["a.example", "b.example"] {
            panel
                .try_acquire(&target(host))
                .unwrap()
                .record(Outcome::Success);
        }
        // Five failing hosts past the cap: the default trips at five failures in a row.
        for host in [
            "c.example",
            "d.example",
            "e.example",
            "f.example",
            "g.example",
        ] {
            panel
                .try_acquire(&target(host))
                .unwrap()
                .record(Outcome::Failure);
        }
        let next = panel.try_acquire(&target("h.example"));
        assert_eq!(next.is_err(), blocks, "{overflow:?}");
        if let Err(open) = next {
            assert_eq!(open.breaker(), "overflow");
        }
        assert!(
            panel.try_acquire(&target("a.example")).is_ok(),
            "own breakers unaffected"
        );
    }
}
