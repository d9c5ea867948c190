//! The fault script: six upstreams, the faults each one injects and when, and the breaker and
//! retry settings the clients run with (the field's profiles, with durations scaled from
//! minutes to milliseconds).

use breakerbox::backoff::Jitter;
use breakerbox::{BoxConfig, BreakerConfig, BreakerRule, Match, RetryConfig};
use std::time::Duration;

/// One cycle of the script; the short soak runs one, the long one ten.
pub(crate) const CYCLE: Duration = Duration::from_millis(6_000);
/// After the last cycle every upstream is healthy for this long, so that every breaker that
/// opened can close again (longer than `max_open_duration` plus a few trial calls).
pub(crate) const TAIL: Duration = Duration::from_millis(2_500);
/// Calls per cycle and per front end: the short soak sends 2 × 10,000.
pub(crate) const CALLS_PER_CYCLE: usize = 10_000;
/// Calls in flight at once, per front end.
pub(crate) const CONCURRENCY: usize = 256;
/// The share of calls whose caller plans to abandon them at a random point. Some finish first
/// (a rejection by an open breaker is over at the first poll), so about 10 % of all calls are
/// really dropped in flight; the verdict requires at least 6 %.
pub(crate) const CANCELLED: f64 = 0.14;
/// The client's limit on one attempt (reqwest's `timeout`, tower's `TimeoutLayer`).
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a stalled upstream keeps a request before answering: far past the attempt timeout.
pub(crate) const STALL: Duration = Duration::from_secs(2);
/// The caller's own limit on a whole call, body included. A call still running then is a
/// violation: the stack must bound it (3 attempts of at most 500 ms, 2 short waits, a body of
/// at most 50 ms: about 1.7 s).
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// A breaker may still open this long after its burst ended: a trial or a Closed call sent
/// during the burst can fail up to an attempt timeout later (plus scheduling noise).
pub(crate) const GRACE: Duration = Duration::from_millis(1_500);

/// What an upstream does to the requests it receives while a fault window is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 503 or 500.
    ServerErrors,
    /// Three requests in four get no answer until [`STALL`] has passed (the client's timeout
    /// fires first); the fourth gets a 503 at once. So a trial call can still be stalled when
    /// another one has failed and the breaker has opened again.
    Stall,
    /// 200, with the body in five pieces 10 ms apart.
    SlowBody,
    /// 40 % of requests: the connection is dropped before any response head; 30 %: the head and
    /// part of the body are written, then the connection is dropped; the rest are answered.
    Resets,
    /// 429 with `Retry-After: 0` or `Retry-After: 1`.
    TooManyRequests,
}

impl Fault {
    /// Whether the breaker sees this fault as failures and must open. A slow body is a success
    /// (no slow-call rule); a reset after the head is recorded as the head's 200, but the
    /// resets before the head are failures.
    pub(crate) fn trips(self) -> bool {
        !matches!(self, Fault::SlowBody)
    }
}

/// A fault window within a cycle, in milliseconds from the cycle's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) fault: Fault,
    pub(crate) from_ms: u64,
    pub(crate) until_ms: u64,
}

const fn window(fault: Fault, from_ms: u64, until_ms: u64) -> Window {
    Window {
        fault,
        from_ms,
        until_ms,
    }
}

/// The rule that must open a failing host's breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TripRule {
    Consecutive(u32),
    Rate(f64),
}

/// One upstream: its real host name, the breaker rule that guards it, its faults.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) name: &'static str,
    pub(crate) breaker: &'static str,
    pub(crate) path: &'static str,
    pub(crate) windows: &'static [Window],
    pub(crate) trip: TripRule,
    pub(crate) success_threshold: u32,
    pub(crate) half_open_max_calls: u32,
}

/// The six upstreams. Two stay healthy throughout.
pub(crate) const HOSTS: [Host; 6] = [
    Host {
        name: "musicbrainz.org",
        breaker: "musicbrainz",
        path: "/ws/2/recording",
        windows: &[
            window(Fault::ServerErrors, 300, 1_300),
            window(Fault::ServerErrors, 3_300, 3_900),
        ],
        trip: TripRule::Consecutive(3),
        success_threshold: 2,
        half_open_max_calls: 2,
    },
    Host {
        name: "api.spotify.com",
        breaker: "spotify",
        path: "/v1/search",
        windows: &[
            window(Fault::Stall, 600, 1_800),
            window(Fault::SlowBody, 3_000, 4_500),
        ],
        trip: TripRule::Consecutive(10),
        success_threshold: 2,
        half_open_max_calls: 3,
    },
    Host {
        name: "ws.audioscrobbler.com",
        breaker: "lastfm",
        path: "/2.0/artist.getinfo",
        windows: &[window(Fault::TooManyRequests, 1_000, 2_600)],
        trip: TripRule::Consecutive(5),
        success_threshold: 2,
        half_open_max_calls: 1,
    },
    Host {
        name: "api.beatport.com",
        breaker: "beatport",
        path: "/v4/catalog/tracks",
        windows: &[window(Fault::Resets, 2_000, 3_500)],
        trip: TripRule::Rate(0.3),
        success_threshold: 2,
        half_open_max_calls: 2,
    },
    Host {
        name: "site.api.espn.com",
        breaker: "espn",
        path: "/apis/site/v2/sports/football/nfl/scoreboard",
        windows: &[],
        trip: TripRule::Consecutive(5),
        success_threshold: 1,
        half_open_max_calls: 1,
    },
    Host {
        name: "api.discogs.com",
        breaker: "discogs",
        path: "/database/search",
        windows: &[],
        trip: TripRule::Consecutive(5),
        success_threshold: 2,
        half_open_max_calls: 1,
    },
];

impl Host {
    pub(crate) fn index_of(name: &str) -> Option<usize> {
        HOSTS.iter().position(|h| h.name == name)
    }

    pub(crate) fn index_of_breaker(breaker: &str) -> Option<usize> {
        HOSTS.iter().position(|h| h.breaker == breaker)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.windows.is_empty()
    }

    /// The breaker config: the field's profile, with its 60 s open duration scaled to 50 ms
    /// (doubling on each re-trip, up to 400 ms), and its 1 s span for a run of failures scaled
    /// away: the soak checks that a run trips at exactly its threshold (plus what the workers
    /// had in flight), which the span, tested on its own elsewhere, would blur.
    fn config(&self) -> BreakerConfig {
        let builder = match self.trip {
            TripRule::Consecutive(n) => BreakerConfig::builder()
                .consecutive_failures(n)
                .consecutive_failures_span(Duration::ZERO),
            TripRule::Rate(rate) => BreakerConfig::builder()
                .no_consecutive_failures()
                .failure_rate(rate)
                .count_window(20)
                .minimum_calls(10),
        };
        builder
            .open_duration(Duration::from_millis(50))
            .open_backoff(2.0, Duration::from_millis(400))
            .open_jitter(0.1)
            .success_threshold(self.success_threshold)
            .half_open_max_calls(self.half_open_max_calls)
            .build()
            .expect("a valid breaker config")
    }
}

/// The breaker box config: one named rule per host.
pub(crate) fn box_config() -> BoxConfig {
    let mut builder = BoxConfig::builder();
    for host in &HOSTS {
        builder = builder
            .rule(BreakerRule::new(host.breaker, Match::host(host.name)).config(host.config()));
    }
    builder.build().expect("a valid box config")
}

/// The clients' retries: 2 retries, 10 ms doubling to at most 50 ms with full jitter, 1.5 s
/// overall, the default retry budget.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig::builder()
        .max_retries(2)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(50))
        .jitter(Jitter::Full)
        .max_elapsed(Some(Duration::from_millis(1_500)))
        .build()
        .expect("a valid retry config")
}

/// A fault burst of one host, in time since the soak started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Burst {
    pub(crate) fault: Fault,
    pub(crate) from: Duration,
    pub(crate) until: Duration,
}

/// The whole script: `cycles` cycles, then the healthy tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    pub(crate) cycles: u32,
}

impl Script {
    /// How long the script runs.
    pub(crate) fn length(&self) -> Duration {
        CYCLE * self.cycles + TAIL
    }

    /// How many calls each front end makes.
    pub(crate) fn calls(&self) -> usize {
        CALLS_PER_CYCLE * self.cycles as usize
    }

    /// The fault `host` injects at `elapsed`, if any.
    pub(crate) fn fault_at(&self, host: usize, elapsed: Duration) -> Option<Fault> {
        if elapsed >= CYCLE * self.cycles {
            return None;
        }
        let within = (elapsed.as_millis() % CYCLE.as_millis()) as u64;
        HOSTS[host]
            .windows
            .iter()
            .find(|w| w.from_ms <= within && within < w.until_ms)
            .map(|w| w.fault)
    }

    /// Every burst of `host`, in order.
    pub(crate) fn bursts(&self, host: usize) -> Vec<Burst> {
        let mut bursts = Vec::new();
        for cycle in 0..self.cycles {
            let base = CYCLE * cycle;
            for w in HOSTS[host].windows {
                bursts.push(Burst {
                    fault: w.fault,
                    from: base + Duration::from_millis(w.from_ms),
                    until: base + Duration::from_millis(w.until_ms),
                });
            }
        }
        bursts.sort_by_key(|b| b.from);
        bursts
    }
}
