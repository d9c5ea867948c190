//! The closed/open suite's cases counted in instructions: `valgrind --tool=callgrind
//! target/release/case_instructions <case> <closed|open> <calls>`, then compare with the
//! `baseline` case (instruction counts do not depend on how busy the machine is).
//!
//! Cases: `baseline`, `proxy`, `engine`, `tower`, `tower_static`, `keyed`, each of the last four
//! also with `_time_window` or `_slow_call`, `failsafe`, `recloser`, `tower_resilience`, `seatbelt`.

use breakerbox_benches::cases::{self, Case, Path, Rules};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "tower".into());
    let path = match args.next().as_deref() {
        Some("open") => Path::Open,
        _ => Path::Closed,
    };
    let calls: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    let (base, rules) = [
        ("_time_window", Rules::TimeWindow),
        ("_slow_call", Rules::SlowCall),
    ]
    .into_iter()
    .find_map(|(suffix, rules)| name.strip_prefix_suffix(suffix).map(|b| (b, rules)))
    .unwrap_or((name.as_str(), Rules::Default));
    match base {
        "baseline" => run(cases::baseline(), calls),
        "proxy" => run(cases::proxy(path), calls),
        "engine" => run(cases::engine(rules, path), calls),
        "tower" => run(cases::tower(rules, path), calls),
        "tower_static" => run(cases::tower_static(rules, path), calls),
        "keyed" => run(cases::keyed(rules, path), calls),
        "failsafe" => run(cases::failsafe(path), calls),
        "recloser" => run(cases::recloser(path), calls),
        "tower_resilience" => run(cases::tower_resilience(path), calls),
        "seatbelt" => run(cases::seatbelt(path), calls),
        other => panic!("unknown case {other}"),
    }
}

fn run(mut case: impl Case, calls: u64) {
    for req in 0..calls {
        black_box(case(black_box(req)));
    }
}

trait StripSuffix {
    fn strip_prefix_suffix(&self, suffix: &str) -> Option<&str>;
}

impl StripSuffix for String {
    fn strip_prefix_suffix(&self, suffix: &str) -> Option<&str> {
        self.strip_suffix(suffix)
    }
}
