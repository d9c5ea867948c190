//! `BreakerBox` lookups with 1, 1,000 and 100,000 existing keys: an admitted call (lookup,
//! `try_acquire`, `record`) by host.
//!
//! - `keyed_lookup/hot/N`: the same host every call (its entry stays in cache);
//! - `keyed_lookup/spread/N`: 1,024 different existing hosts in turn (or all N when fewer),
//!   spread over the whole map, so cache misses show as the map grows.
//!
//! `cargo bench -p breakerbox-benches --bench keyed`

use breakerbox::{Outcome, Target};
use breakerbox_benches::cases::{Rules, breaker_box};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_lookup");
    for keys in [1usize, 1_000, 100_000] {
        let panel = breaker_box(keys, Rules::Default);
        assert_eq!(panel.breakers().len(), keys, "every key has its breaker");
        let stride = (keys / 1024).max(1);
        let hosts: Vec<String> = (0..keys)
            .step_by(stride)
            .take(1024)
            .map(|i| format!("h{i}.example"))
            .collect();
        let call = |host: &str| {
            let target = Target::new("https", host, 443, "/");
            match panel.try_acquire(&target) {
                Ok(permit) => permit.record(Outcome::Success),
                Err(open) => panic!("a healthy host was rejected: {open}"),
            }
        };
        let hot = hosts[hosts.len() / 2].as_str();
        group.bench_with_input(BenchmarkId::new("hot", keys), &keys, |b, _| {
            b.iter(|| call(black_box(hot)))
        });
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("spread", keys), &keys, |b, _| {
            b.iter(|| {
                next = (next + 1) % hosts.len();
                call(black_box(&hosts[next]))
            })
        });
        assert_eq!(panel.breakers().len(), keys, "lookups created no breaker");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = breakerbox_benches::suite::criterion();
    targets = lookups
}
criterion_main!(benches);
