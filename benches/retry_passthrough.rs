//! The retry layer's pass-through (the first attempt succeeds) against tower's own `Retry` with a
//! policy that never retries, on the same request and the same immediate upstream.
//!
//! `cargo bench -p breakerbox-benches --bench retry_passthrough`

use breakerbox::RetryConfig;
use breakerbox_benches::{NeverRetry, Upstream, call, request};
use breakerbox_tower::RetryWithBackoffLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tower::Layer;
use tower::retry::Retry;

fn passthrough(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("retry_passthrough");

    let mut bare = Upstream;
    group.bench_function("upstream_alone", |b| {
        b.iter(|| black_box(call(&mut bare, request())))
    });

    let mut tower_retry = Retry::new(NeverRetry, Upstream);
    group.bench_function("tower_retry_never", |b| {
        b.iter(|| black_box(call(&mut tower_retry, request())))
    });

    let no_budget = RetryConfig::builder().without_budget().build().unwrap();
    let mut ours = RetryWithBackoffLayer::new(no_budget).layer(Upstream);
    group.bench_function("breakerbox_retry", |b| {
        b.iter(|| black_box(call(&mut ours, request())))
    });

    let mut budgeted = RetryWithBackoffLayer::new(RetryConfig::default()).layer(Upstream);
    group.bench_function("breakerbox_retry_with_budget", |b| {
        b.iter(|| black_box(call(&mut budgeted, request())))
    });
    group.finish();
}

criterion_group!(benches, passthrough);
criterion_main!(benches);
