//! Closed and open paths of breakerbox, the proxy model and the peers, with no metrics recorder
//! installed (the `metrics` feature on). See `breakerbox_benches::suite`.
//!
//! `cargo bench -p breakerbox-benches --bench breakers`

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn breakers(c: &mut Criterion) {
    breakerbox_benches::suite::run(c, "");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = breakers
}
criterion_main!(benches);
