//! The chaos soak: six upstreams on 127.0.0.1, reached by their real host names, inject faults on
//! a script (bursts of 5xx, stalls past the client's timeout, slow bodies, connections dropped
//! before the response head and in the middle of the body, 429 with `Retry-After`; two stay
//! healthy), while each front end (the reqwest middleware, and the tower stack over hyper-util)
//! makes calls at concurrency 256, a tenth of them abandoned by their callers at random points.
//!
//! Then it checks, and prints the figures of the run:
//!
//! - every call resolved: a response or a typed error, or the caller's own cancellation; none
//!   lost, none still running at the caller's deadline, no panic (call tasks' `JoinHandle`s,
//!   server connections' tasks, and a panic hook on the soak's threads);
//! - no HalfOpen period ever had more than `half_open_max_calls` trial attempts in flight
//!   (counted below the breaker; see `ledger`);
//! - the healthy hosts' breakers never changed state; each failing host's breaker opened in
//!   each of its bursts by its own rule (a run of exactly its threshold, give or take one per
//!   client worker thread; or its failure rate) and was closed again before the next burst;
//! - each upstream's accepted requests match, id for id, the attempts its clients sent (see
//!   `verdict` for how attempts abandoned in flight are counted);
//! - a POST without an `Idempotency-Key` is never sent twice, and a response's `Attempts` is
//!   the number of attempts that left the client.
//!
//! Time is real: the servers are real sockets and the client's timeouts must really fire.
//! Nothing asserts on timing beyond generous bounds. The short version (one 6 s cycle of the
//! script plus a 2.5 s healthy tail, 10,000 calls per front end) runs in CI;
//! `BREAKERBOX_SOAK=long` runs ten cycles (100,000 calls per front end). `BREAKERBOX_SOAK_SEED`
//! replays a seed (the calls' hosts, methods and cancellations; the timing is the machine's).
//! Run with `--nocapture` to see the figures.

mod driver;
mod fronts;
mod ledger;
mod script;
mod upstream;
mod verdict;

use breakerbox::{BreakerBox, TransitionEvent};
use breakerbox_tower::TokioClock;
use fronts::Front;
use ledger::Ledger;
use script::{HOSTS, Script};
use std::sync::{Arc, Mutex, Once};
use tokio::runtime::{Builder, Runtime};
use upstream::Upstream;

/// Worker threads of the clients' runtime.
const CLIENT_WORKERS: usize = 2;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Reqwest,
    Tower,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Reqwest => "reqwest",
            Kind::Tower => "tower",
        }
    }
}

#[test]
fn the_reqwest_front_end_survives_the_chaos_script() {
    soak(Kind::Reqwest);
}

#[test]
fn the_tower_front_end_survives_the_chaos_script() {
    soak(Kind::Tower);
}

fn soak(kind: Kind) {
    install_panic_counter();
    let script = Script {
        cycles: match std::env::var("BREAKERBOX_SOAK").as_deref() {
            Ok("long") => 10,
            _ => 1,
        },
    };
    let seed = std::env::var("BREAKERBOX_SOAK_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let label = kind.label();
    let servers = runtime(1, format!("chaos-{label}-upstreams"));
    let clients = runtime(CLIENT_WORKERS, format!("chaos-{label}-clients"));

    let start = clients.block_on(async { tokio::time::Instant::now() });
    let ledger = Arc::new(Ledger::new(start));
    let (upstreams, addrs): (Vec<_>, Vec<_>) = (0..HOSTS.len())
        .map(|host| Upstream::start(&servers, host, script, start))
        .unzip();
    let (driven, breakers) = clients.block_on(async {
        let listener = ledger.clone();
        let breakers = BreakerBox::builder(script::box_config())
            .clock(Arc::new(TokioClock::new()))
            .listener(move |event: &TransitionEvent| listener.on_transition(event))
            .build();
        let front = match kind {
            Kind::Reqwest => Front::reqwest(&addrs, ledger.clone(), breakers.clone()),
            Kind::Tower => Front::tower(&addrs, ledger.clone(), breakers.clone()),
        };
        let driven = driver::drive(front, script, ledger.clone(), seed).await;
        (driven, breakers)
    });

    let (report, violations) = verdict::judge(&verdict::Soaked {
        front: label,
        script,
        seed,
        driven: &driven,
        ledger: &ledger,
        upstreams: &upstreams,
        breakers: &breakers,
        panics: panics_on(&format!("chaos-{label}-")),
        workers: CLIENT_WORKERS as u32,
    });
    println!(
        "{report}peak RSS of the test process so far (VmHWM): {}",
        peak_rss()
    );
    clients.shutdown_background();
    servers.shutdown_background();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}\n{report}",
        violations.len(),
        violations.join("\n")
    );
}

fn runtime(workers: usize, name: String) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Names of the threads that panicked, for the threads of this soak.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counts every panic on a thread named `chaos-*` (both runtimes of each soak), then lets the
/// default hook report it.
fn install_panic_counter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                if name.starts_with("chaos-") {
                    upstream::lock(&PANICKED).push(name.to_owned());
                }
            }
            previous(info);
        }));
    });
}

fn panics_on(prefix: &str) -> usize {
    upstream::lock(&PANICKED)
        .iter()
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// The process's peak resident set (`VmHWM` in /proc/self/status), where there is one.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
