//! Closed and open paths of breakerbox, the proxy model and the peers, with no metrics recorder
//! installed (the `metrics` feature on). See `breakerbox_benches::suite`.
//!
//! `cargo bench -p breakerbox-benches --bench breakers`

use criterion::{Criterion, criterion_group, criterion_main};

fn breakers(c: &mut Criterion) {
    breakerbox_benches::suite::run(c, "");
}

criterion_group! {
    name = benches;
    config = breakerbox_benches::suite::criterion();
    targets = breakers
}
criterion_main!(benches);
