//! The `breakers` suite again with a Prometheus recorder (metrics-exporter-prometheus)
//! installed before any breaker is built, so every counter is a real one: the group names end
//! in `_prometheus`.
//!
//! `cargo bench -p breakerbox-benches --bench breakers_prometheus`

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;

fn breakers(c: &mut Criterion) {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");
    breakerbox_benches::suite::run(c, "_prometheus");
    // The counters really were recorded (and rendering them still works).
    assert!(handle.render().contains("circuit_breaker_calls_total"));
}

criterion_group! {
    name = benches;
    config = breakerbox_benches::suite::criterion();
    targets = breakers
}
criterion_main!(benches);
