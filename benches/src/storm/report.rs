//! The report: per scenario, one markdown table with every stack side by side, and the default
//! breakerbox stack's targets checked against the bare client of the same run; and the counts
//! per second as CSV.

use super::SLOTS_PER_SEC;
use super::figures::{Figures, RECOVERED};
use super::load::DEADLINE;
use super::run::ScenarioResult;
use super::script::{CAPACITY, Kind as ScenarioKind, OFFERED, Overload};
use super::stacks::{ATTEMPT_TIMEOUT, Kind};
use std::fmt::Write;
use std::time::Duration;

/// One target of the default stack: what it says, the figure, whether it is met.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The target, plainly.
    pub what: String,
    /// The figures it was judged on.
    pub figure: String,
    /// Met or not.
    pub met: bool,
}

/// The markdown section of one scenario: a heading, its setup, the table, the targets.
pub fn section(result: &ScenarioResult) -> String {
    let scenario = &result.scenario;
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", scenario.title);
    let phases: Vec<String> = scenario
        .phases
        .iter()
        .map(|p| format!("{:.1} s", p.duration.as_secs_f64()))
        .collect();
    let overload = match scenario.overload {
        Overload::Reject => "503 at once".to_owned(),
        Overload::Queue { max_queued } => {
            format!("a FIFO queue (at most {max_queued} waiting, then 503)")
        }
    };
    let _ = writeln!(
        out,
        "Offered {OFFERED:.0} requests/s per stack (open loop), upstream capacity {CAPACITY:.0}/s, \
         beyond it {overload}; attempt timeout {} s, deadline {} s; phases {} (healthy, fault, \
         after); run took {:.1} s.\n",
        ATTEMPT_TIMEOUT.as_secs(),
        DEADLINE.as_secs(),
        phases.join(" / "),
        result.wall.as_secs_f64(),
    );
    let figures: Vec<Figures<'_>> = result
        .stacks
        .iter()
        .map(|r| Figures::new(r, scenario))
        .collect();
    let (table, targets) = match scenario.kind {
        ScenarioKind::FullOutage => full_outage(&figures),
        ScenarioKind::Dip => dip(&figures, scenario.overload != Overload::Reject),
        ScenarioKind::Partial => partial(&figures),
    };
    out.push_str(&table);
    out.push('\n');
    if targets.is_empty() {
        let _ = writeln!(out, "No target for this scenario.");
    } else {
        let _ = writeln!(
            out,
            "| target (breakerbox retry + breaker, defaults) | figure | met? |"
        );
        let _ = writeln!(out, "| --- | --- | --- |");
        for t in &targets {
            let met = if t.met { "met" } else { "**NOT met**" };
            let _ = writeln!(out, "| {} | {} | {met} |", t.what, t.figure);
        }
    }
    out
}

fn by_kind<'a>(figures: &'a [Figures<'a>], kind: Kind) -> &'a Figures<'a> {
    figures
        .iter()
        .find(|f| f.result.kind == kind)
        .expect("every stack runs")
}

fn full_outage(figures: &[Figures<'_>]) -> (String, Vec<Target>) {
    let bare = by_kind(figures, Kind::Bare);
    let (from, to) = bare.fault;
    let mut t = header(&[
        "stack",
        "attempts / request (outage)",
        "× bare",
        "upstream attempts/s (outage)",
        "rejected locally",
        "success (outage)",
        "goodput after (req/s)",
        "back at ≥ 95 % after",
    ]);
    for f in figures {
        row(
            &mut t,
            &[
                f.result.kind.name().to_owned(),
                format!("{:.2}", f.attempts_per_request(from, to)),
                times(
                    f.attempts_per_request(from, to),
                    bare.attempts_per_request(from, to),
                ),
                format!("{:.1}", f.attempt_rate(from, to)),
                percent(f.rejected(from, to)),
                percent(f.success(from, to)),
                format!("{:.1}", f.goodput(to, f.end)),
                recovery(f.recovery(to)),
            ],
        );
    }
    let d = by_kind(figures, Kind::BreakerboxDefault);
    let apr = d.attempts_per_request(from, to);
    let targets = vec![Target {
        what: "full outage: at most 1.1 upstream attempts per request".into(),
        figure: format!("{apr:.2} (bare {:.2})", bare.attempts_per_request(from, to)),
        met: apr <= 1.1,
    }];
    (t, targets)
}

fn dip(figures: &[Figures<'_>], queueing: bool) -> (String, Vec<Target>) {
    let bare = by_kind(figures, Kind::Bare);
    let (from, to) = bare.fault;
    let mut columns = vec![
        "stack",
        "goodput in the dip (req/s)",
        "× bare",
        "goodput after (req/s)",
        "× bare",
        "back at ≥ 95 % after",
        "attempts / request (dip)",
        "upstream attempts/s (dip)",
        "rejected locally (dip)",
        "success (whole run)",
    ];
    if queueing {
        columns.push("upstream work for callers gone");
    }
    let mut t = header(&columns);
    for f in figures {
        let mut cells = vec![
            f.result.kind.name().to_owned(),
            format!("{:.1}", f.goodput(from, to)),
            times(f.goodput(from, to), bare.goodput(from, to)),
            format!("{:.1}", f.goodput(to, f.end)),
            times(f.goodput(to, f.end), bare.goodput(to, bare.end)),
            recovery(f.recovery(to)),
            format!("{:.2}", f.attempts_per_request(from, to)),
            format!("{:.1}", f.attempt_rate(from, to)),
            percent(f.rejected(from, to)),
            percent(f.success(0, f.end)),
        ];
        if queueing {
            cells.push(percent(f.wasted()));
        }
        row(&mut t, &cells);
    }
    if queueing {
        return (t, Vec::new());
    }
    let d = by_kind(figures, Kind::BreakerboxDefault);
    let back = d.recovery(to);
    let targets = vec![
        Target {
            what: "dip: goodput during the dip at least the bare client's".into(),
            figure: format!(
                "{:.1} req/s vs bare {:.1} ({})",
                d.goodput(from, to),
                bare.goodput(from, to),
                times(d.goodput(from, to), bare.goodput(from, to))
            ),
            met: d.goodput(from, to) >= bare.goodput(from, to),
        },
        Target {
            what: format!(
                "dip: back at ≥ {:.0} % of the offered load within 2 s of capacity returning",
                RECOVERED * 100.0
            ),
            figure: format!("{} (bare {})", recovery(back), recovery(bare.recovery(to))),
            met: back.is_some_and(|b| b <= Duration::from_secs(2)),
        },
    ];
    (t, targets)
}

fn partial(figures: &[Figures<'_>]) -> (String, Vec<Target>) {
    let bare = by_kind(figures, Kind::Bare);
    let (from, to) = bare.fault;
    let best = figures
        .iter()
        .filter(|f| f.result.kind.is_peer())
        .max_by(|a, b| a.success(from, to).total_cmp(&b.success(from, to)))
        .expect("peers run");
    let mut t = header(&[
        "stack",
        "success (30 % errors)",
        "× best peer",
        "attempts / request",
        "× bare",
        "upstream attempts/s",
        "rejected locally",
        "back at ≥ 95 % after",
    ]);
    for f in figures {
        row(
            &mut t,
            &[
                f.result.kind.name().to_owned(),
                percent(f.success(from, to)),
                times(f.success(from, to), best.success(from, to)),
                format!("{:.2}", f.attempts_per_request(from, to)),
                times(
                    f.attempts_per_request(from, to),
                    bare.attempts_per_request(from, to),
                ),
                format!("{:.1}", f.attempt_rate(from, to)),
                percent(f.rejected(from, to)),
                recovery(f.recovery(to)),
            ],
        );
    }
    let d = by_kind(figures, Kind::BreakerboxDefault);
    let (success, apr) = (d.success(from, to), d.attempts_per_request(from, to));
    let targets = vec![
        Target {
            what: "30 % errors: success at least 95 % of the best peer's".into(),
            figure: format!(
                "{} vs {} {} ({})",
                percent(success),
                best.result.kind.name(),
                percent(best.success(from, to)),
                times(success, best.success(from, to))
            ),
            met: success >= 0.95 * best.success(from, to),
        },
        Target {
            what: "30 % errors: at most 1.5 upstream attempts per request".into(),
            figure: format!("{apr:.2}"),
            met: apr <= 1.5,
        },
    ];
    (t, targets)
}

fn header(columns: &[&str]) -> String {
    let mut t = format!("| {} |\n|", columns.join(" | "));
    for (i, _) in columns.iter().enumerate() {
        t.push_str(if i == 0 { " --- |" } else { " ---: |" });
    }
    t.push('\n');
    t
}

fn row(t: &mut String, cells: &[String]) {
    let _ = writeln!(t, "| {} |", cells.join(" | "));
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn times(x: f64, reference: f64) -> String {
    if reference == 0.0 {
        if x == 0.0 {
            "1.00×".into()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.2}×", x / reference)
    }
}

fn recovery(r: Option<Duration>) -> String {
    match r {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => "never".into(),
    }
}

/// Every stack's counts per second of the run, as CSV: what callers saw (offered by issue,
/// the rest by completion) and what the upstream counted (by arrival; served by answer).
pub fn per_second_csv(result: &ScenarioResult) -> String {
    let mut out = String::from(
        "stack,second,offered,succeeded,failed,rejected_locally,upstream_attempts,upstream_served,upstream_refused,upstream_abandoned,health_checks\n",
    );
    let seconds =
        result.scenario.length().as_secs_f64().ceil() as usize + DEADLINE.as_secs() as usize;
    for r in &result.stacks {
        for s in 0..seconds {
            let (a, b) = (s * SLOTS_PER_SEC, (s + 1) * SLOTS_PER_SEC);
            let _ = writeln!(
                out,
                "{},{s},{},{},{},{},{},{},{},{},{}",
                r.kind.name(),
                r.offered.sum(a, b),
                r.ok.sum(a, b),
                r.failed.sum(a, b),
                r.rejected.sum(a, b),
                r.received.sum(a, b),
                r.served.sum(a, b),
                r.refused.sum(a, b),
                r.abandoned.sum(a, b),
                r.health_checks.sum(a, b),
            );
        }
    }
    out
}
