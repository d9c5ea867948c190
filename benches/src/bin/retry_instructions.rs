//! The retry pass-through, counted in instructions: `valgrind --tool=callgrind` on
//! `retry_instructions <variant> <calls>` for each variant, then compare the totals (minus the
//! `upstream_alone` total, which is the request building and the upstream).
//!
//! Variants: `upstream_alone`, `tower_retry_never`, `breakerbox_retry`,
//! `breakerbox_retry_with_budget`.

use breakerbox::RetryConfig;
use breakerbox_benches::{NeverRetry, Upstream, call, request};
use breakerbox_tower::RetryWithBackoffLayer;
use std::hint::black_box;
use tower::Layer;
use tower::retry::Retry;

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "breakerbox_retry".into());
    let calls: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    match variant.as_str() {
        "upstream_alone" => {
            let mut svc = Upstream;
            (0..calls).for_each(|_| drop(black_box(call(&mut svc, request()))));
        }
        "tower_retry_never" => {
            let mut svc = Retry::new(NeverRetry, Upstream);
            (0..calls).for_each(|_| drop(black_box(call(&mut svc, request()))));
        }
        "breakerbox_retry" => {
            let config = RetryConfig::builder()
                .without_budget()
                .build()
                .expect("valid");
            let mut svc = RetryWithBackoffLayer::new(config).layer(Upstream);
            (0..calls).for_each(|_| drop(black_box(call(&mut svc, request()))));
        }
        "breakerbox_retry_with_budget" => {
            let mut svc = RetryWithBackoffLayer::new(RetryConfig::default()).layer(Upstream);
            (0..calls).for_each(|_| drop(black_box(call(&mut svc, request()))));
        }
        other => panic!("unknown variant {other}"),
    }
}
