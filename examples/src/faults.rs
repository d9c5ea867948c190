//! The fault script: which fake upstream misbehaves how, and when.
//!
//! A script is a comma-separated list of `ROUTE:KIND[@FROM-UNTIL]` entries, times counted from
//! the start of the run:
//!
//! - `ROUTE` is a breaker name: `espn`, `spotify`, `musicbrainz`, `lastfm`, `google_ai_text`,
//!   `google_ai_vision` or `google_ai_imagen`.
//! - `KIND` is `down` (503 Service Unavailable), `error` (500 Internal Server Error), `slow`
//!   (answers only after [`SLOW_ANSWER`], past the client's timeout) or `ratelimit` (503 with
//!   `Retry-After: 1` to a request that comes less than a second after the last one it let
//!   through, like MusicBrainz), `retryafter` (429 with `Retry-After: 2`, like Spotify's rate
//!   limit) or `overloaded` (429 without `Retry-After` to three requests in four: partial
//!   capacity, which throttling handles).
//! - `FROM-UNTIL` is a window like `5s-15s`, `5-15` (seconds), `500ms-2m` or `20s-` (until the
//!   end); without it the fault lasts the whole run.
//!
//! ```
//! use breakerbox_examples::faults::{FaultKind, FaultScript};
//! use breakerbox_examples::routes::Route;
//! use std::time::Duration;
//!
//! let script: FaultScript = "spotify:down@5s-15s, musicbrainz:ratelimit".parse()?;
//! assert_eq!(script.active(Route::Spotify, Duration::from_secs(6)), Some(FaultKind::Down));
//! assert_eq!(script.active(Route::Spotify, Duration::from_secs(15)), None);
//! assert_eq!(script.active(Route::Musicbrainz, Duration::from_secs(99)), Some(FaultKind::RateLimit));
//! # Ok::<(), breakerbox_examples::faults::FaultError>(())
//! ```

use crate::routes::Route;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How long a `slow` upstream takes to answer: well past the scraper's client timeout.
pub const SLOW_ANSWER: Duration = Duration::from_secs(5);

/// The demo's script: Spotify rate-limiting with `Retry-After: 2` from 1 s to 2 s (its breaker
/// opens for the time stated), then down from 5 s to 15 s, Last.fm at a quarter of its capacity
/// until 20 s (throttled, not cut off), Google AI vision failing from the start through the
/// whole incident (until 20 s), ESPN slower than the client timeout from 18 s to 20 s, and
/// MusicBrainz enforcing its 1 request per second throughout. After 20 s every upstream is
/// healthy again, so the end of a 30 s run shows every breaker closed again (vision's health
/// check runs every 5 s) and `/health` back at 200.
pub const DEFAULT_SCRIPT: &str = "spotify:retryafter@1s-2s, spotify:down@5s-15s, lastfm:overloaded@0s-20s, google_ai_vision:error@0s-20s, espn:slow@18s-20s, musicbrainz:ratelimit";

/// What a faulty upstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answers 503 Service Unavailable, health checks included.
    Down,
    /// Answers 500 Internal Server Error.
    Error,
    /// Answers after [`SLOW_ANSWER`], past the client's timeout.
    Slow,
    /// Answers 503 with `Retry-After: 1` to a request less than a second after the last
    /// one it served.
    RateLimit,
    /// Answers 429 with `Retry-After: 2`: the server's word opens the breaker for 2 s.
    RetryAfter,
    /// Answers 429 without `Retry-After` to three requests in four: an upstream at a quarter
    /// of its capacity.
    Overloaded,
}

impl FaultKind {
    const ALL: [FaultKind; 6] = [
        FaultKind::Down,
        FaultKind::Error,
        FaultKind::Slow,
        FaultKind::RateLimit,
        FaultKind::RetryAfter,
        FaultKind::Overloaded,
    ];

    /// The word used in scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Down => "down",
            FaultKind::Error => "error",
            FaultKind::Slow => "slow",
            FaultKind::RateLimit => "ratelimit",
            FaultKind::RetryAfter => "retryafter",
            FaultKind::Overloaded => "overloaded",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The misbehaving route.
    pub route: Route,
    /// How it misbehaves.
    pub kind: FaultKind,
    /// From when, counted from the start of the run.
    pub from: Duration,
    /// Until when (exclusive); `None`: until the end.
    pub until: Option<Duration>,
}

impl Fault {
    /// Whether the fault is on at `at`.
    pub fn is_active(&self, at: Duration) -> bool {
        at >= self.from && self.until.is_none_or(|until| at < until)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.route, self.kind)?;
        match self.until {
            None if self.from.is_zero() => Ok(()),
            None => write!(f, "@{}-", secs(self.from)),
            Some(until) => write!(f, "@{}-{}", secs(self.from), secs(until)),
        }
    }
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A fault script: see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultScript {
    faults: Vec<Fault>,
}

impl FaultScript {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// The demo's script, [`DEFAULT_SCRIPT`].
    pub fn demo() -> Self {
        DEFAULT_SCRIPT.parse().expect("the default script parses")
    }

    /// The script's entries, in the order given.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// The fault `route` has at `at` (the first listed, if several overlap).
    pub fn active(&self, route: Route, at: Duration) -> Option<FaultKind> {
        self.faults
            .iter()
            .find(|f| f.route == route && f.is_active(at))
            .map(|f| f.kind)
    }

    /// The entries on at `at`.
    pub fn active_at(&self, at: Duration) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |f| f.is_active(at))
    }
}

impl fmt::Display for FaultScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.faults.is_empty() {
            return f.write_str("none");
        }
        for (i, fault) in self.faults.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{fault}")?;
        }
        Ok(())
    }
}

/// A script that does not parse; the message names the entry and the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// An entry that is not `ROUTE:KIND[@FROM-UNTIL]`.
    #[error(
        "fault `{entry}`: expected ROUTE:KIND or ROUTE:KIND@FROM-UNTIL, e.g. spotify:down@5s-15s"
    )]
    Syntax {
        /// The entry as given.
        entry: String,
    },
    /// A route that is not one of the scraper's.
    #[error("fault `{entry}`: unknown route `{route}` (known: {known})")]
    UnknownRoute {
        /// The entry as given.
        entry: String,
        /// The route as given.
        route: String,
        /// The known routes.
        known: String,
    },
    /// A kind that is not `down`, `error`, `slow` or `ratelimit`.
    #[error("fault `{entry}`: unknown kind `{kind}` (known: down, error, slow, ratelimit)")]
    UnknownKind {
        /// The entry as given.
        entry: String,
        /// The kind as given.
        kind: String,
    },
    /// A window bound that is not a duration.
    #[error("fault `{entry}`: {bound} time `{value}` is not a duration like 5s, 500ms or 2m")]
    Time {
        /// The entry as given.
        entry: String,
        /// `from` or `until`.
        bound: &'static str,
        /// The value as given.
        value: String,
    },
    /// A window that ends before it starts.
    #[error("fault `{entry}`: the window ends before it starts")]
    EmptyWindow {
        /// The entry as given.
        entry: String,
    },
}

impl FromStr for FaultScript {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, FaultError> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        let faults = s
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'))
            .map(parse_fault)
            .collect::<Result<_, _>>()?;
        Ok(Self { faults })
    }
}

fn parse_fault(entry: &str) -> Result<Fault, FaultError> {
    let syntax = || FaultError::Syntax {
        entry: entry.to_owned(),
    };
    let (route, rest) = entry.split_once(':').ok_or_else(syntax)?;
    let (kind, window) = match rest.split_once('@') {
        Some((kind, window)) => (kind, Some(window)),
        None => (rest, None),
    };
    let (route, kind) = (route.trim(), kind.trim());
    let route = Route::from_name(route).ok_or_else(|| FaultError::UnknownRoute {
        entry: entry.to_owned(),
        route: route.to_owned(),
        known: Route::ALL.map(Route::name).join(", "),
    })?;
    let kind = FaultKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| FaultError::UnknownKind {
            entry: entry.to_owned(),
            kind: kind.to_owned(),
        })?;
    let (from, until) = match window {
        None => (Duration::ZERO, None),
        Some(window) => {
            let (from, until) = window.split_once('-').ok_or_else(syntax)?;
            let from = parse_time(entry, "from", from)?;
            let until = match until.trim() {
                "" => None,
                until => Some(parse_time(entry, "until", until)?),
            };
            if until.is_some_and(|until| until <= from) {
                return Err(FaultError::EmptyWindow {
                    entry: entry.to_owned(),
                });
            }
            (from, until)
        }
    };
    Ok(Fault {
        route,
        kind,
        from,
        until,
    })
}

/// `5`, `2.5` (seconds) or a humantime duration (`5s`, `500ms`, `1m30s`).
fn parse_time(entry: &str, bound: &'static str, value: &str) -> Result<Duration, FaultError> {
    let value = value.trim();
    let bad = || FaultError::Time {
        entry: entry.to_owned(),
        bound,
        value: value.to_owned(),
    };
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    humantime::parse_duration(value).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_script_reads_back_as_written() {
        let script = FaultScript::demo();
        assert_eq!(script.faults().len(), 6);
        assert_eq!(script.to_string(), DEFAULT_SCRIPT);
        let at = Duration::from_secs;
        assert_eq!(
            script.active(Route::Spotify, at(1)),
            Some(FaultKind::RetryAfter)
        );
        assert_eq!(
            script.active(Route::Lastfm, at(3)),
            Some(FaultKind::Overloaded)
        );
        assert_eq!(script.active(Route::Spotify, at(4)), None);
        assert_eq!(script.active(Route::Spotify, at(5)), Some(FaultKind::Down));
        assert_eq!(
            script.active(Route::GoogleAiVision, at(19)),
            Some(FaultKind::Error)
        );
        assert_eq!(script.active(Route::GoogleAiVision, at(20)), None);
        assert_eq!(script.active(Route::GoogleAiText, at(10)), None);
        assert_eq!(script.active(Route::Espn, at(19)), Some(FaultKind::Slow));
        assert_eq!(
            script.active(Route::Musicbrainz, at(3600)),
            Some(FaultKind::RateLimit)
        );
    }

    #[test]
    fn windows_take_seconds_durations_and_open_ends() {
        let script: FaultScript = "lastfm:error@2.5-4, espn:slow@500ms-1m, spotify:down@20s-"
            .parse()
            .unwrap();
        let [a, b, c] = script.faults() else {
            panic!("three faults")
        };
        assert_eq!(
            (a.from, a.until),
            (Duration::from_millis(2500), Some(Duration::from_secs(4)))
        );
        assert_eq!(
            (b.from, b.until),
            (Duration::from_millis(500), Some(Duration::from_secs(60)))
        );
        assert_eq!((c.from, c.until), (Duration::from_secs(20), None));
        assert_eq!("none".parse::<FaultScript>().unwrap(), FaultScript::none());
        assert_eq!("".parse::<FaultScript>().unwrap(), FaultScript::none());
    }

    #[test]
    fn bad_entries_name_the_entry_and_the_wrong_part() {
        let err = |s: &str| s.parse::<FaultScript>().unwrap_err();
        assert!(
            matches!(err("spotify down"), FaultError::Syntax { entry } if entry == "spotify down")
        );
        match err("spotfy:down") {
            FaultError::UnknownRoute { route, known, .. } => {
                assert_eq!(route, "spotfy");
                assert!(known.contains("spotify"), "{known}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(err("spotify:dead"), FaultError::UnknownKind { kind, .. } if kind == "dead")
        );
        assert!(
            matches!(err("spotify:down@5x-9s"), FaultError::Time { bound: "from", value, .. } if value == "5x")
        );
        assert!(matches!(
            err("spotify:down@5s-nine"),
            FaultError::Time { bound: "until", .. }
        ));
        assert!(matches!(err("spotify:down@5s"), FaultError::Syntax { .. }));
        assert!(matches!(
            err("spotify:down@9s-5s"),
            FaultError::EmptyWindow { .. }
        ));
        assert_eq!(
            err("espn:slow, spotify").to_string(),
            "fault `spotify`: expected ROUTE:KIND or ROUTE:KIND@FROM-UNTIL, e.g. spotify:down@5s-15s"
        );
    }
}
