//! The closed- and open-path suite, shared by the `breakers` benchmark (no metrics recorder)
//! and `breakers_prometheus` (a Prometheus recorder installed first).
//!
//! Groups, each with the bare service and the proxy beside breakerbox and the peers:
//! - `closed_1t`: healthy calls on one thread;
//! - `closed_2t`: two threads calling clones that share one breaker; the time reported is per
//!   thread (each thread makes the iteration count of calls, and the two run at once);
//! - `open_1t`: calls to a tripped breaker, rejected;
//! - the same three with the rules that need time (`_time_window`, `_slow_call`), breakerbox
//!   only.

use crate::cases::{self, Case, Path, Rules};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs every group, with `tag` appended to the group names (`""` or `"_prometheus"`).
pub fn run(c: &mut Criterion, tag: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();

    for (group, threads, path) in [
        ("closed_1t", 1, Path::Closed),
        ("closed_2t", 2, Path::Closed),
        ("open_1t", 1, Path::Open),
    ] {
        let mut g = c.benchmark_group(format!("{group}{tag}"));
        let expect = path == Path::Closed;
        bench(&mut g, "baseline", threads, true, cases::baseline());
        bench(&mut g, "proxy", threads, expect, cases::proxy(path));
        for rules in [Rules::Default, Rules::TimeWindow, Rules::SlowCall] {
            let s = rules.suffix();
            bench(
                &mut g,
                &format!("engine{s}"),
                threads,
                expect,
                cases::engine(rules, path),
            );
            bench(
                &mut g,
                &format!("tower{s}"),
                threads,
                expect,
                cases::tower(rules, path),
            );
            bench(
                &mut g,
                &format!("tower_static{s}"),
                threads,
                expect,
                cases::tower_static(rules, path),
            );
            bench(
                &mut g,
                &format!("keyed{s}"),
                threads,
                expect,
                cases::keyed(rules, path),
            );
        }
        bench(&mut g, "failsafe", threads, expect, cases::failsafe(path));
        bench(&mut g, "recloser", threads, expect, cases::recloser(path));
        bench(
            &mut g,
            "tower_resilience",
            threads,
            expect,
            cases::tower_resilience(path),
        );
        bench(&mut g, "seatbelt", threads, expect, cases::seatbelt(path));
        g.finish();
    }
}

/// Benchmarks one case on `threads` threads, after checking that it does what the group says
/// (every call succeeds when closed, every call is rejected when open).
fn bench<C: Case>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    threads: usize,
    expect_ok: bool,
    mut case: C,
) {
    for req in 0..1000 {
        assert_eq!(
            case(req),
            expect_ok,
            "{name}: call {req} went the wrong way"
        );
    }
    g.bench_function(name, |b| match threads {
        1 => b.iter(|| black_box(case(black_box(1)))),
        n => b.iter_custom(|iters| per_thread(&case, n, iters)),
    });
}

/// Runs `iters` calls on each of `threads` threads at once (clones of `case`, started together)
/// and returns the mean time a thread took.
#[allow(clippy::disallowed_methods)] // a benchmark measures the wall clock
fn per_thread<C: Case>(case: &C, threads: usize, iters: u64) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut case = case.clone();
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    for req in 0..iters {
                        black_box(case(black_box(req)));
                    }
                    t0.elapsed()
                })
            })
            .collect();
        let total: Duration = handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread"))
            .sum();
        total / threads as u32
    })
}

/// The criterion settings of the per-call benches (`breakers`, `breakers_prometheus`,
/// `keyed`): calls take nanoseconds, so half a second of warm-up and two seconds of samples per
/// case keep the whole suite within minutes.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
