//! Retry storms: what each client stack does to an upstream under stress, in real time on
//! 127.0.0.1. Four scenarios (full outage, a capacity dip answered with 503, 30 % random
//! errors, a capacity dip answered with a queue), each with every stack at once against its own
//! upstream; one markdown table per scenario, the default breakerbox stack's targets, and an SVG
//! of goodput over time per scenario in `target/storm/` (with the tables in `report.md` and the
//! counts per second in `<scenario>.csv`).
//!
//! `cargo bench -p breakerbox-benches --bench storm` (about 3 minutes)
//!
//! - `BREAKERBOX_STORM_SCALE=0.25` shortens every phase (the breakers' own durations stay);
//! - `BREAKERBOX_STORM_ONLY=<scenario>` runs one: `full_outage`, `metastable_trigger`,
//!   `partial_outage` or `queueing`.
//!
//! See `breakerbox_benches::storm` for what is measured and how.

use breakerbox::BoxConfig;
use breakerbox_benches::storm::script::Scenario;
use breakerbox_benches::storm::stacks::SCRAPER_TOML;
use breakerbox_benches::storm::{env_or, plot, report, run};
use std::path::PathBuf;

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"storm".contains(a.as_str()))
    {
        return;
    }
    let scale: f64 = env_or("BREAKERBOX_STORM_SCALE", 1.0);
    assert!(scale > 0.0, "BREAKERBOX_STORM_SCALE must be positive");
    let only = std::env::var("BREAKERBOX_STORM_ONLY").ok();
    let scenarios: Vec<Scenario> = Scenario::all(scale)
        .into_iter()
        .filter(|s| only.as_deref().is_none_or(|name| name == s.name))
        .collect();
    assert!(
        !scenarios.is_empty(),
        "BREAKERBOX_STORM_ONLY is one of full_outage, metastable_trigger, partial_outage, queueing"
    );
    let scraper = BoxConfig::from_toml_file(SCRAPER_TOML).expect("examples/scraper.toml");
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("storm-upstreams")
        .enable_all()
        .build()
        .expect("the upstreams' runtime");
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("storm-clients")
        .enable_all()
        .build()
        .expect("the clients' runtime");
    let out = output_dir();
    std::fs::create_dir_all(&out).expect("target/storm");
    let mut markdown = format!(
        "## Retry storms (`cargo bench -p breakerbox-benches --bench storm`, scale {scale})\n\n"
    );
    for scenario in scenarios {
        let name = scenario.name;
        eprintln!(
            "storm: {name} ({:.0} s of load)",
            scenario.length().as_secs_f64()
        );
        let result = clients
            .block_on(run::run(scenario, &scraper, servers.handle()))
            .expect("the scenario runs");
        let section = report::section(&result);
        println!("{section}");
        markdown.push_str(&section);
        markdown.push('\n');
        let svg = out.join(format!("{name}.svg"));
        std::fs::write(&svg, plot::goodput_svg(&result)).expect("the SVG");
        let csv = out.join(format!("{name}.csv"));
        std::fs::write(&csv, report::per_second_csv(&result)).expect("the CSV");
        eprintln!("storm: wrote {} and {}", svg.display(), csv.display());
    }
    let md = out.join("report.md");
    std::fs::write(&md, markdown).expect("report.md");
    eprintln!("storm: wrote {}", md.display());
}

/// `target/storm/`: beside the `release` (or `debug`) folder this bench's binary is in, or the
/// workspace's `target/` when that cannot be told.
fn output_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("storm")))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/storm")))
}
