//! Prints BENCHMARKS.md's tables from the last `cargo bench -p breakerbox-benches` run: the
//! criterion medians under `target/criterion`, each with its ratios to the bare service and to
//! the proxy model of the same group, and the targets each group is held to.
//!
//! `cargo run --release -p breakerbox-benches --bin report`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"));
    let medians = read_medians(&root);
    if medians.is_empty() {
        eprintln!(
            "no criterion results under {}: run `cargo bench -p breakerbox-benches` first",
            root.display()
        );
        std::process::exit(1);
    }
    for group in medians.keys() {
        print_group(group, &medians[group]);
    }
}

/// group -> case -> median ns
fn read_medians(root: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(root) else {
        return out;
    };
    for group in groups.flatten().filter(|e| e.path().is_dir()) {
        let group_name = group.file_name().to_string_lossy().into_owned();
        for estimates in walk(&group.path()) {
            let Ok(text) = std::fs::read_to_string(&estimates) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(median) = json["median"]["point_estimate"].as_f64() else {
                continue;
            };
            // <group>/<case...>/new/estimates.json
            let case = estimates
                .parent()
                .and_then(Path::parent)
                .and_then(|p| p.strip_prefix(group.path()).ok())
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            out.entry(group_name.clone())
                .or_default()
                .insert(case, median);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let estimates = path.join("estimates.json");
                if estimates.exists() {
                    found.push(estimates);
                }
            } else if path
                .file_name()
                .is_some_and(|n| n != "base" && n != "report")
            {
                found.extend(walk(&path));
            }
        }
    }
    found
}

/// The order cases are listed in.
const ORDER: &[&str] = &[
    "baseline",
    "proxy",
    "engine",
    "tower",
    "tower_static",
    "keyed",
    "failsafe",
    "recloser",
    "tower_resilience",
    "seatbelt",
];

fn rank(case: &str) -> (usize, String) {
    let base = ["_time_window", "_slow_call"]
        .iter()
        .fold(case, |c, s| c.strip_suffix(s).unwrap_or(c));
    let suffix = if case.ends_with("_time_window") {
        1
    } else if case.ends_with("_slow_call") {
        2
    } else {
        0
    };
    let i = ORDER.iter().position(|o| *o == base).unwrap_or(ORDER.len());
    (suffix * 100 + i, case.to_owned())
}

fn print_group(group: &str, cases: &BTreeMap<String, f64>) {
    println!("\n### {group}\n");
    let baseline = cases.get("baseline").copied();
    let proxy = cases.get("proxy").copied();
    let mut names: Vec<&String> = cases.keys().collect();
    names.sort_by_key(|c| rank(c));
    if group.starts_with("open") {
        return print_open(cases, &names);
    }
    if group == "retry_passthrough" {
        return print_relative(cases, &names, "tower_retry_never", "× tower's Retry");
    }
    if group == "keyed_lookup" {
        return print_relative(cases, &names, "hot/1", "× 1 key (hot)");
    }
    match (baseline, proxy) {
        (Some(b), Some(p)) => {
            let proxy_adds = p - b;
            println!("| case | median | × baseline | added | added ÷ proxy's added |");
            println!("| --- | ---: | ---: | ---: | ---: |");
            for name in names {
                let t = cases[name];
                let added = t - b;
                let vs_proxy = if proxy_adds > 0.0 {
                    format!("{:.2}", added / proxy_adds)
                } else {
                    "n/a".to_owned()
                };
                println!(
                    "| {name} | {} | {:.1} | {} | {vs_proxy} |",
                    ns(t),
                    t / b,
                    ns(added)
                );
            }
        }
        _ => {
            println!("| case | median |");
            println!("| --- | ---: |");
            for name in names {
                println!("| {name} | {} |", ns(cases[name]));
            }
        }
    }
}

/// Rejections: compared with the fastest peer's rejection.
fn print_open(cases: &BTreeMap<String, f64>, names: &[&String]) {
    let fastest_peer = ["failsafe", "recloser", "tower_resilience", "seatbelt"]
        .iter()
        .filter_map(|p| cases.get(*p).copied())
        .fold(f64::INFINITY, f64::min);
    println!("| case | median | ÷ fastest peer |");
    println!("| --- | ---: | ---: |");
    for name in names {
        let t = cases[name.as_str()];
        println!("| {name} | {} | {:.2} |", ns(t), t / fastest_peer);
    }
}

/// Every case against one reference case of the group.
fn print_relative(cases: &BTreeMap<String, f64>, names: &[&String], reference: &str, label: &str) {
    let base = cases.get(reference).copied();
    println!("| case | median | {label} |");
    println!("| --- | ---: | ---: |");
    for name in names {
        let t = cases[name.as_str()];
        let ratio = base.map_or("n/a".to_owned(), |b| format!("{:.2}", t / b));
        println!("| {name} | {} | {ratio} |", ns(t));
    }
}

fn ns(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} µs", v / 1000.0)
    } else {
        format!("{v:.1} ns")
    }
}
