//! Bytes per breaker, counted by a global allocator that tracks live heap bytes: 10,000
//! breakers built alone and 10,000 in a `BreakerBox` (one per host, the map's share included),
//! for a count-based window of 100 and a time-based window of 60 buckets. Prints a table.
//!
//! `cargo bench -p breakerbox-benches --bench memory`

use breakerbox::{BoxConfig, BreakerBox, BreakerConfig, CircuitBreaker, Target};
use breakerbox_testing::{Peak, heap_bytes};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Peak = Peak;

const N: usize = 10_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter naming another bench skips this one.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"memory".contains(a.as_str()))
    {
        return;
    }
    let windows = [
        (
            "count window of 100",
            BreakerConfig::builder()
                .consecutive_failures(5)
                .failure_rate(0.5)
                .count_window(100),
        ),
        (
            "time window of 60 buckets",
            BreakerConfig::builder()
                .consecutive_failures(5)
                .failure_rate(0.5)
                .time_window(Duration::from_secs(60), 60),
        ),
    ];
    println!("memory/bytes_per_breaker");
    println!("| window | alone | in a BreakerBox (per host) |");
    println!("| --- | ---: | ---: |");
    for (label, builder) in windows {
        let config = builder.build().expect("a valid config");
        let before = heap_bytes();
        let alone: Vec<CircuitBreaker> = (0..N)
            .map(|i| CircuitBreaker::new(format!("b{i}"), config.clone()))
            .collect();
        let per_alone = (heap_bytes() - before) as f64 / N as f64;
        drop(alone);

        let box_config = BoxConfig::builder()
            .defaults(config)
            .max_breakers(N)
            .build()
            .expect("a valid box config");
        let before = heap_bytes();
        let panel = BreakerBox::new(box_config);
        for i in 0..N {
            let host = format!("h{i}.example");
            drop(panel.breaker(&Target::new("https", &host, 443, "/")));
        }
        let per_host = (heap_bytes() - before) as f64 / N as f64;
        assert_eq!(panel.breakers().len(), N);
        println!("| {label} | {per_alone:.0} B | {per_host:.0} B |");
    }
}
