//! What a circuit-open rejection costs a reqwest-middleware caller, with and without the
//! backtrace that reqwest-middleware's `anyhow` error captures when backtraces are on.
//!
//! `cargo run --release -p breakerbox-benches --bin rejection_cost`, then again with
//! `RUST_BACKTRACE=1`, and with `RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=0` (panics keep their
//! backtraces, errors do not capture one). Each run prints the nanoseconds per rejection of the
//! engine alone (the baseline, measured in the same run) and through the middleware, and their
//! ratio. Nothing leaves the process: the breaker is forced open, so no request is sent.

use breakerbox_reqwest::{BoxConfig, CircuitBreakerMiddleware, is_circuit_open};
use reqwest_middleware::ClientBuilder;
use std::hint::black_box;
use tokio::time::Instant;

const REJECTIONS: u32 = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let config = BoxConfig::from_toml(
            "[[breakers]]\nname = \"spotify\"\nmatch = { host = \"api.spotify.com\" }\n",
        )
        .expect("a valid config");
        let middleware = CircuitBreakerMiddleware::new(config);
        let breaker = middleware.breakers().named("spotify").expect("the rule");
        breaker.force_open();
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(middleware)
            .build();

        // The baseline: the engine's rejection alone.
        let started = Instant::now();
        for _ in 0..REJECTIONS {
            black_box(breaker.try_acquire().is_err());
        }
        let engine = started.elapsed().as_nanos() as f64 / f64::from(REJECTIONS);

        let started = Instant::now();
        for _ in 0..REJECTIONS {
            let err = client
                .get("http://api.spotify.com/v1/search")
                .send()
                .await
                .expect_err("the breaker is forced open");
            assert!(is_circuit_open(&err));
            black_box(err);
        }
        let through = started.elapsed().as_nanos() as f64 / f64::from(REJECTIONS);
        let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "unset".to_owned());
        println!(
            "RUST_BACKTRACE={} RUST_LIB_BACKTRACE={}: engine {engine:.0} ns, through reqwest-middleware {through:.0} ns per rejection ({:.1}x the engine's)",
            env("RUST_BACKTRACE"),
            env("RUST_LIB_BACKTRACE"),
            through / engine
        );
    });
}
