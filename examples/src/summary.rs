//! The summary printed at the end: per upstream, what the scraper asked for and what it got;
//! what the breakers spared the failing upstreams; proof that one failing route on a host did
//! not block the others; and what the MusicBrainz server saw of the rate limit.

use crate::ledger::Tally;
use crate::routes::{Host, Route};
use crate::upstreams::Hit;
use breakerbox_reqwest::State;
use std::fmt;
use std::time::Duration;

/// One breaker state change, timed from the start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The breaker.
    pub breaker: String,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why (the engine's wording).
    pub reason: String,
    /// When, since the start of the run.
    pub at: Duration,
}

/// A stretch during which a breaker was not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPeriod {
    /// When it opened.
    pub opened: Duration,
    /// When it first let a trial call through (HalfOpen), if it did: until then it rejected
    /// every call.
    pub trial: Option<Duration>,
    /// When it closed again, if it did before the end.
    pub closed: Option<Duration>,
}

impl OpenPeriod {
    /// The end of the stretch in which every call was rejected: the first trial, or `end`.
    pub fn rejecting_until(&self, end: Duration) -> Duration {
        self.trial.unwrap_or(end)
    }
}

/// One upstream route at the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSummary {
    /// The route (and breaker).
    pub route: Route,
    /// What the scraper counted.
    pub tally: Tally,
    /// The breaker's state at the end.
    pub state: State,
    /// The breaker's `consecutive_failures` threshold, if it has one.
    pub threshold: Option<u32>,
    /// When it was open.
    pub open_periods: Vec<OpenPeriod>,
    /// Scraping requests the fake server received.
    pub server_requests: usize,
    /// Scraping requests the fake server received while the breaker was rejecting everything.
    pub server_requests_while_open: usize,
    /// Health checks the fake server received (sent while the breaker was open).
    pub health_checks: usize,
}

/// A route that kept working on a host where another route's breaker was open.
#[derive(Debug, Clone, PartialEq)]
pub struct Isolation {
    /// The route whose breaker was open.
    pub failing: Route,
    /// When it was open, from its first opening to its last closing (or the end).
    pub from: Duration,
    /// See `from`.
    pub until: Duration,
    /// The neighbour on the same host.
    pub neighbour: Route,
    /// Calls of the neighbour that its server answered with 2xx in that time.
    pub succeeded: usize,
    /// Calls of the neighbour its server received in that time.
    pub calls: usize,
    /// Requests of the neighbour rejected by a breaker, over the whole run.
    pub rejected: u64,
}

/// The rate limit as the limited server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSummary {
    /// The limited route.
    pub route: Route,
    /// The limiter's interval between two requests; `None` when the limiter was off.
    pub interval: Option<Duration>,
    /// Requests the server received.
    pub requests: usize,
    /// The shortest time between two of them, server-side.
    pub closest: Option<Duration>,
    /// Requests the server refused for coming too fast.
    pub refused: usize,
    /// Time requests spent waiting for the limiter, in total.
    pub waited: Duration,
    /// Requests that waited.
    pub held: u64,
}

/// Everything the summary says; its `Display` is what the demo prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How long the scraper ran.
    pub elapsed: Duration,
    /// One entry per route, in [`Route::ALL`] order.
    pub upstreams: Vec<UpstreamSummary>,
    /// Every breaker transition, in order.
    pub transitions: Vec<Transition>,
    /// Neighbours that kept working while a route on their host was open.
    pub isolation: Vec<Isolation>,
    /// The rate-limited route, if the limiter was on.
    pub rate_limit: Option<RateLimitSummary>,
}

/// The open periods of `breaker`, from the transitions.
pub fn open_periods(transitions: &[Transition], breaker: &str) -> Vec<OpenPeriod> {
    let mut periods: Vec<OpenPeriod> = Vec::new();
    for t in transitions.iter().filter(|t| t.breaker == breaker) {
        match (t.from, t.to) {
            (State::Closed, State::Open | State::ForcedOpen) => periods.push(OpenPeriod {
                opened: t.at,
                trial: None,
                closed: None,
            }),
            (_, State::HalfOpen) => {
                if let Some(p) = periods.last_mut() {
                    p.trial.get_or_insert(t.at);
                }
            }
            (_, State::Closed) => {
                if let Some(p) = periods.last_mut() {
                    p.closed = Some(t.at);
                }
            }
            _ => {}
        }
    }
    periods
}

impl UpstreamSummary {
    /// Builds a route's entry from the run's records.
    pub fn new(
        route: Route,
        tally: Tally,
        state: State,
        threshold: Option<u32>,
        transitions: &[Transition],
        hits: &[Hit],
        end: Duration,
    ) -> Self {
        let open_periods = open_periods(transitions, route.name());
        let traffic = || {
            hits.iter()
                .filter(move |h| h.route == route && !h.health_check)
        };
        let while_open = traffic()
            .filter(|h| {
                open_periods
                    .iter()
                    .any(|p| h.at > p.opened && h.at < p.rejecting_until(end))
            })
            .count();
        Self {
            route,
            tally,
            state,
            threshold,
            server_requests: traffic().count(),
            server_requests_while_open: while_open,
            health_checks: hits
                .iter()
                .filter(|h| h.route == route && h.health_check)
                .count(),
            open_periods,
        }
    }
}

/// The isolation entries: for each route that opened, its neighbours on the same host.
pub fn isolation(upstreams: &[UpstreamSummary], hits: &[Hit], end: Duration) -> Vec<Isolation> {
    let mut out = Vec::new();
    for failing in upstreams.iter().filter(|u| !u.open_periods.is_empty()) {
        let from = failing.open_periods[0].opened;
        let until = failing
            .open_periods
            .last()
            .and_then(|p| p.closed)
            .unwrap_or(end);
        let host: Host = failing.route.host();
        for neighbour in upstreams
            .iter()
            .filter(|u| u.route != failing.route && u.route.host() == host)
        {
            let during = || {
                hits.iter().filter(|h| {
                    h.route == neighbour.route && !h.health_check && h.at >= from && h.at < until
                })
            };
            out.push(Isolation {
                failing: failing.route,
                from,
                until,
                neighbour: neighbour.route,
                succeeded: during().filter(|h| (200..300).contains(&h.status)).count(),
                calls: during().count(),
                rejected: neighbour.tally.rejected,
            });
        }
    }
    out
}

/// What the limited route's server saw.
pub fn rate_limit(
    route: Route,
    interval: Option<Duration>,
    waited: Duration,
    held: u64,
    hits: &[Hit],
) -> RateLimitSummary {
    let arrivals: Vec<&Hit> = hits.iter().filter(|h| h.route == route).collect();
    RateLimitSummary {
        route,
        interval,
        requests: arrivals.len(),
        closest: arrivals.windows(2).map(|w| w[1].at - w[0].at).min(),
        refused: arrivals.iter().filter(|h| h.status == 503).count(),
        waited,
        held,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "summary after {}", secs(self.elapsed))?;
        writeln!(f)?;
        let name_width = self
            .upstreams
            .iter()
            .map(|u| u.route.name().len())
            .max()
            .unwrap_or(8);
        writeln!(
            f,
            "  {:<name_width$}  requests  succeeded  failed  rejected  retried  breaker open",
            "upstream"
        )?;
        for u in &self.upstreams {
            let t = &u.tally;
            writeln!(
                f,
                "  {:<name_width$}  {:>8}  {:>9}  {:>6}  {:>8}  {:>7}  {}",
                u.route.name(),
                t.requests,
                t.succeeded,
                t.failed,
                t.rejected,
                t.retries(),
                open_column(u),
            )?;
        }
        writeln!(
            f,
            "  (rejected: at once, by an open breaker, without a call)"
        )?;
        writeln!(f)?;

        let spared: Vec<&UpstreamSummary> = self
            .upstreams
            .iter()
            .filter(|u| u.tally.attempt_rejections > 0)
            .collect();
        if spared.is_empty() {
            note(f, "spared", "no breaker opened, so no call was turned away")?;
        } else {
            let total: u64 = spared.iter().map(|u| u.tally.attempt_rejections).sum();
            let each: Vec<String> = spared
                .iter()
                .map(|u| format!("{} {}", u.route, u.tally.attempt_rejections))
                .collect();
            let reached: usize = spared.iter().map(|u| u.server_requests_while_open).sum();
            note(
                f,
                "spared",
                &format!(
                    "the breakers turned away {total} calls to failing upstreams at once ({}); \
                     their servers received {reached} scraping requests while the breakers were open",
                    each.join(", ")
                ),
            )?;
        }
        for i in &self.isolation {
            let rejected = match i.rejected {
                0 => "was never rejected".to_owned(),
                n => format!("was rejected {n} times"),
            };
            note(
                f,
                "isolation",
                &format!(
                    "while {} was open ({}-{}), {} on the same host answered {} of {} calls and {rejected}",
                    i.failing,
                    secs(i.from),
                    secs(i.until),
                    i.neighbour,
                    i.succeeded,
                    i.calls,
                ),
            )?;
        }
        if let Some(r) = &self.rate_limit {
            let closest = r
                .closest
                .map_or_else(|| "-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
            let limiter = match r.interval {
                Some(interval) => format!(
                    "the limiter (one request per {:.2}s) held {} requests back, {} in all, not counted as call time",
                    interval.as_secs_f64(),
                    r.held,
                    secs(r.waited),
                ),
                None => "no limiter (--no-rate-limit)".to_owned(),
            };
            note(
                f,
                "rate limit",
                &format!(
                    "{} received {} requests, the closest two {closest} apart, and refused {} as too fast; {limiter}",
                    r.route, r.requests, r.refused,
                ),
            )?;
        }
        let probed: Vec<String> = self
            .upstreams
            .iter()
            .filter(|u| u.health_checks > 0)
            .map(|u| format!("{} {}", u.route, u.health_checks))
            .collect();
        if !probed.is_empty() {
            note(
                f,
                "probes",
                &format!(
                    "health checks while open: {}; the first to pass let trial calls through \
                     long before the open duration ended",
                    probed.join(", ")
                ),
            )?;
        }
        for u in self.upstreams.iter().filter(|u| u.tally.timeouts > 0) {
            let failed = match u.tally.failed {
                0 => "none of its requests failed".to_owned(),
                n => format!("{n} of its requests failed"),
            };
            let breaker = match (u.open_periods.is_empty(), u.threshold) {
                (true, Some(threshold)) => format!(
                    "; its breaker saw at most {} failures in a row of the {threshold} that open it",
                    u.tally.longest_failure_run
                ),
                _ => String::new(),
            };
            note(
                f,
                "timeouts",
                &format!(
                    "{} attempts to {} timed out; with retries, {failed}{breaker}",
                    u.tally.timeouts, u.route,
                ),
            )?;
        }
        Ok(())
    }
}

/// Writes `label: text`, wrapped to 80 columns under a hanging indent.
fn note(f: &mut fmt::Formatter<'_>, label: &str, text: &str) -> fmt::Result {
    f.write_str(&wrap(&format!("{label}:"), 12, text, 80))
}

/// `label` padded to `indent`, then `text` wrapped at word boundaries to `width` columns, later
/// lines indented by `indent`.
pub fn wrap(label: &str, indent: usize, text: &str, width: usize) -> String {
    let mut out = format!("{label:<indent$}");
    let mut column = out.chars().count();
    let mut first = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !first && column + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            first = true;
        }
        if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        first = false;
    }
    out.push('\n');
    out
}

/// When the breaker was open: `-`, `6.4s-17.2s`, or `0.8s-` when still open at the end.
fn open_column(u: &UpstreamSummary) -> String {
    if u.open_periods.is_empty() {
        return "-".to_owned();
    }
    let periods: Vec<String> = u
        .open_periods
        .iter()
        .map(|p| match p.closed {
            Some(closed) => format!("{}-{}", secs(p.opened), secs(closed)),
            None => format!("{}-", secs(p.opened)),
        })
        .collect();
    periods.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(breaker: &str, from: State, to: State, at: u64) -> Transition {
        Transition {
            breaker: breaker.to_owned(),
            from,
            to,
            reason: String::new(),
            at: Duration::from_secs(at),
        }
    }

    #[test]
    fn open_periods_follow_the_transitions_and_traffic_while_open_is_counted() {
        let transitions = [
            t("spotify", State::Closed, State::Open, 7),
            t("google_ai_vision", State::Closed, State::Open, 1),
            t("spotify", State::Open, State::HalfOpen, 17),
            t("spotify", State::HalfOpen, State::Closed, 18),
        ];
        let periods = open_periods(&transitions, "spotify");
        let s = Duration::from_secs;
        assert_eq!(
            periods,
            [OpenPeriod {
                opened: s(7),
                trial: Some(s(17)),
                closed: Some(s(18))
            }]
        );
        let hit = |at: u64, health_check: bool| Hit {
            route: Route::Spotify,
            health_check,
            at: s(at),
            status: 200,
        };
        let hits = [hit(6, false), hit(12, true), hit(13, false), hit(17, false)];
        let u = UpstreamSummary::new(
            Route::Spotify,
            Tally::default(),
            State::Closed,
            Some(10),
            &transitions,
            &hits,
            s(30),
        );
        assert_eq!(u.server_requests, 3);
        assert_eq!(u.server_requests_while_open, 1, "the one at 13 s");
        assert_eq!(u.health_checks, 1);
        assert_eq!(open_column(&u), "7.0s-18.0s");
    }

    #[test]
    fn notes_wrap_under_a_hanging_indent() {
        assert_eq!(
            wrap("spared:", 12, "one two three four five six", 25),
            "spared:     one two three\n            four five six\n"
        );
        assert_eq!(wrap("x:", 4, "", 10), "x:  \n");
    }
}
