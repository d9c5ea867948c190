//! The live status table (flag, breaker, state, failures, when it admits a trial) with each
//! breaker's calls, failures, rejections and retries.
//!
//! ```text
//!        breaker           state   failures  calls  failed  rejected  retries  next
//!   ok   espn              closed  0/5          44       0         0        0
//!   FAIL spotify           open    10/10        30      10        18        8  retry in 116s, probe in 1s
//!   FAIL google_ai_vision  open    3/3           3       3        34        0  retry in 50s, probe in 1s
//! ```

use crate::ledger::Ledger;
use crate::routes::Route;
use breakerbox_reqwest::State;
use breakerbox_reqwest::engine::circuit_breaker::BreakerSnapshot;
use std::fmt::Write;
use std::time::Duration;

/// One breaker's line: its snapshot, and what the scraper counted for it.
#[derive(Debug, Clone)]
pub struct Line {
    /// The breaker's snapshot.
    pub snapshot: BreakerSnapshot,
    /// When it will take a health probe, if one is scheduled.
    pub next_probe: Option<Duration>,
}

const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The flag of a state: `ok`, `warn` or `FAIL`, as in the engine's table.
pub fn flag(state: State) -> &'static str {
    match state {
        State::Closed | State::Disabled | State::MetricsOnly => "ok",
        State::HalfOpen => "warn",
        State::Open | State::ForcedOpen => "FAIL",
    }
}

fn colour_of(state: State) -> &'static str {
    match flag(state) {
        "ok" => GREEN,
        "warn" => YELLOW,
        _ => BOLD_RED,
    }
}

/// Renders the table, one line per breaker, in route order; with ANSI colours if `colour`.
pub fn render(lines: &[Line], ledger: &Ledger, colour: bool) -> String {
    let rows: Vec<[String; 8]> = lines
        .iter()
        .map(|line| {
            let b = &line.snapshot;
            let tally = Route::from_name(&b.name)
                .map(|r| ledger.tally(r))
                .unwrap_or_default();
            let failures = match b.consecutive_failures_threshold {
                Some(threshold) => format!("{}/{threshold}", b.consecutive_failures),
                None => String::new(),
            };
            let next = match b.state {
                State::Open => {
                    let mut s =
                        format!("retry in {:.0}s", b.retry_in_seconds.unwrap_or(0.0).ceil());
                    if let Some(probe) = line.next_probe {
                        let _ = write!(s, ", probe in {:.0}s", probe.as_secs_f64().ceil());
                    }
                    s
                }
                State::HalfOpen => format!(
                    "trials: {} ok, {} in flight",
                    b.half_open_successes, b.half_open_in_flight
                ),
                _ => String::new(),
            };
            [
                b.name.clone(),
                b.state.as_str().to_owned(),
                failures,
                tally.calls().to_string(),
                tally.attempt_failures.to_string(),
                tally.attempt_rejections.to_string(),
                tally.retries().to_string(),
                next,
            ]
        })
        .collect();
    let header = [
        "breaker", "state", "failures", "calls", "failed", "rejected", "retries", "next",
    ];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w: [usize; 8] = std::array::from_fn(width);
    let mut out = String::new();
    let head = format!(
        "       {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {:>w6$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        header[4],
        header[5],
        header[6],
        header[7],
        w0 = w[0],
        w1 = w[1],
        w2 = w[2],
        w3 = w[3],
        w4 = w[4],
        w5 = w[5],
        w6 = w[6],
    );
    if colour {
        let _ = writeln!(out, "{DIM}{head}{RESET}");
    } else {
        let _ = writeln!(out, "{head}");
    }
    for (line, row) in lines.iter().zip(&rows) {
        let state = line.snapshot.state;
        let flag = format!("{:<4}", flag(state));
        let state_text = format!("{:<w1$}", row[1], w1 = w[1]);
        let (flag, state_text) = if colour {
            let c = colour_of(state);
            (
                format!("{c}{flag}{RESET}"),
                format!("{c}{state_text}{RESET}"),
            )
        } else {
            (flag, state_text)
        };
        let rejected = format!("{:>w5$}", row[5], w5 = w[5]);
        let rejected = if colour && row[5] != "0" {
            format!("{RED}{rejected}{RESET}")
        } else {
            rejected
        };
        let text = format!(
            "  {flag} {:<w0$}  {state_text}  {:<w2$}  {:>w3$}  {:>w4$}  {rejected}  {:>w6$}  {}",
            row[0],
            row[2],
            row[3],
            row[4],
            row[6],
            row[7],
            w0 = w[0],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w6 = w[6],
        );
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox_reqwest::{BoxConfig, BreakerBox, Outcome, Target};

    #[test]
    fn an_open_breaker_shows_its_flag_failures_and_rejections_aligned() {
        let panel = BreakerBox::new(
            BoxConfig::from_toml(
                r#"
                [[breakers]]
                name = "spotify"
                match = { host = "api.spotify.com" }
                consecutive_failures = 2
                consecutive_failures_span = "0s"
                open_duration = "120s"

                [[breakers]]
                name = "espn"
                match = { host = "*.espn.com" }
                "#,
            )
            .unwrap(),
        );
        let spotify = Target::new("http", "api.spotify.com", 80, "/v1/search");
        let espn = Target::new("http", "site.api.espn.com", 80, "/");
        panel.try_acquire(&espn).unwrap().record(Outcome::Success);
        for _ in 0..2 {
            panel
                .try_acquire(&spotify)
                .unwrap()
                .record(Outcome::Failure);
        }
        let lines: Vec<Line> = panel
            .snapshot()
            .breakers
            .into_iter()
            .map(|snapshot| Line {
                snapshot,
                next_probe: None,
            })
            .collect();
        let table = render(&lines, &Ledger::new(), false);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert_eq!(
            rows[1], "  ok   espn     closed  0/5           0       0         0        0",
            "{table}"
        );
        assert_eq!(
            rows[2],
            "  FAIL spotify  open    2/2           0       0         0        0  retry in 120s",
            "{table}"
        );
        let coloured = render(&lines, &Ledger::new(), true);
        assert!(coloured.contains("\x1b[1;31mFAIL"), "{coloured}");
        assert!(!table.contains('\x1b'));
    }
}
