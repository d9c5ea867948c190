//! Breaker and breaker-box configuration: builders, serde (TOML) and validation.
//!
//! Every config is checked when it is built or loaded, so a config value that exists is valid:
//! an out-of-range value is an [`InvalidConfig`] from the builder, or a deserialization error
//! carrying the same text, naming the field and the value. Never a panic, and never a surprise
//! at the first call.
//!
//! # Reference
//!
//! A breaker box's TOML file ([`BoxConfig::from_toml_file`]) has four parts. Durations are
//! strings like `"500ms"`, `"60s"`, `"2m"`; a rule written `false` is off.
//!
//! **Top level**
//!
//! | key | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `max_breakers` | integer 1 ..= 1,000,000 | 1000 | the most per-target breakers the box creates ([`BoxConfig::max_breakers`]) |
//! | `overflow` | `"metrics_only"` / `"shared"` | `"metrics_only"` | what targets past the cap share ([`Overflow`]) |
//! | `max_open_fraction` | number in (0, 1], or `false` | off | the fleet guard: the largest share of the box's breakers open at once ([`BoxConfig::max_open_fraction`]) |
//!
//! **`[defaults]`**: the config of every breaker no rule names, and the base every rule
//! changes. Every key of [`BreakerConfig`] (its table lists them with their defaults):
//! the trip rules `consecutive_failures`, `consecutive_failures_span`, `failure_rate`,
//! `slow_call_rate`, `slow_call_duration`, `minimum_calls`, `window`; the open period
//! `open_duration`, `open_backoff_multiplier`, `max_open_duration`, `open_jitter`; recovery
//! `half_open_max_calls`, `success_threshold`, `probe_interval`, `probe_timeout`,
//! `max_half_open_wait`; classification `statuses`; the upstream's word `open_on_retry_after`,
//! `rate_limit_reset` ([`RateLimitReset`]); and `throttle` ([`ThrottleConfig`]).
//!
//! **`[[breakers]]`**: one named breaker per entry, matched in order (the first match wins).
//!
//! | key | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `name` | string | required | the breaker's name in metrics, logs and the status table |
//! | `match` | `{ host = "...", path_prefix = "/..." }` | required | the requests it guards ([`Match`]: an exact host or `*.suffix`, optionally a path prefix) |
//! | `health_url` | `http(s)://` URL | none | checked while open, every `probe_interval` (which it needs) |
//! | any `[defaults]` key | as there | inherited | this breaker's own value |
//! | `retry` | a table of `[retry]` keys, or `false` | inherited | this breaker's requests' retry policy: the keys given change `[retry]`'s, `false` turns retries off ([`BoxConfig::retry_for`]) |
//!
//! **`[retry]`**: the retry policy of every breaker's requests (see
//! [`RetryConfig`](crate::RetryConfig) for its table of keys: `max_retries`, `base_delay`,
//! `multiplier`, `max_delay`, `jitter`, `max_elapsed`, `retry_non_idempotent`, `statuses`,
//! `budget`). Every breaker has its own retry budget, so one upstream's outage never spends
//! another's retries; retry metrics carry the breaker's name.
//!
//! Invalid values fail the load naming the field with its table (`breakers[2].retry.multiplier`,
//! `defaults.throttle.k`) and the value.

pub(crate) mod duration;
pub(crate) mod edge;
mod error;
pub(crate) mod number;
mod registry;

pub use edge::{RateLimitReset, ResetForm, ThrottleConfig};
#[cfg(feature = "toml")]
pub use error::ConfigError;
pub use error::InvalidConfig;
pub use registry::{
    BoxConfig, BoxConfigBuilder, BreakerRule, MAX_BREAKERS, Match, OVERFLOW_BREAKER, Overflow,
};

use crate::circuit_breaker::{AttemptOutcome, Outcome};
use crate::status::{StatusPattern, Statuses};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// `minimum_calls` when not set (capped at a count window's size).
const DEFAULT_MINIMUM_CALLS: u32 = 10;
/// `max_open_duration` when not set (raised to `open_duration` when that is longer).
const DEFAULT_MAX_OPEN_DURATION: Duration = Duration::from_secs(120);

/// The largest count-based window (outcomes are packed in 21-bit counters).
pub const MAX_WINDOW_SIZE: u32 = (1 << 20) - 1;
/// The most buckets a time-based window may have.
pub const MAX_WINDOW_BUCKETS: u32 = 256;
/// The most trial calls HalfOpen may admit at once, and the largest `success_threshold`.
pub const MAX_HALF_OPEN_CALLS: u32 = u16::MAX as u32;

/// The sliding window over which the rate rules are evaluated.
///
/// In TOML: `window = { kind = "count", size = 100 }` or
/// `window = { kind = "time", duration = "60s", buckets = 10 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    /// The last `size` recorded outcomes.
    Count {
        /// How many outcomes the window holds (1 ..= 1,048,575).
        #[serde(with = "number::plain")]
        size: u32,
    },
    /// The outcomes of the last `duration`, kept in `buckets` equal slices of time: an outcome
    /// leaves the window one whole bucket at a time.
    Time {
        /// How far back the window looks.
        #[serde(with = "duration")]
        duration: Duration,
        /// How many slices the window is kept in (1 ..= 256); more is smoother.
        #[serde(with = "number::plain")]
        buckets: u32,
    },
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig::Count { size: 100 }
    }
}

/// How one circuit breaker decides to trip, how long it stays open and how it recovers.
///
/// Built with [`BreakerConfig::builder`] or loaded from TOML (every key optional, defaults
/// below). The trip rules fire independently: a breaker trips when any configured rule fires.
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `consecutive_failures` | 5 | trip after this many failures in a row (`false` turns it off) |
/// | `consecutive_failures_span` | `"1s"` | ... that have lasted at least this long, from the run's first failure (`"0s"`: any run) |
/// | `failure_rate` | off | trip when failures / calls in the window reach this (0, 1] |
/// | `slow_call_rate` | off | trip when slow calls / calls in the window reach this (0, 1] |
/// | `slow_call_duration` | `"60s"` | a call at least this long is slow |
/// | `minimum_calls` | 10 (at most the count window's size) | the rate rules wait for this many calls in the window |
/// | `window` | count of 100 | see [`WindowConfig`] |
/// | `open_duration` | `"5s"` | how long the first trip stays open |
/// | `open_backoff_multiplier` | 2.0 | each re-trip from HalfOpen multiplies the open duration |
/// | `max_open_duration` | `"2m"` (at least `open_duration`) | the cap of that growth |
/// | `open_jitter` | 0.0 | shortens each open duration by up to this fraction, at random |
/// | `half_open_max_calls` | 1 | trial calls admitted at once in HalfOpen |
/// | `success_threshold` | 1 | successful trials that close the breaker |
/// | `probe_interval` | off | while open, how often a health probe is due |
/// | `probe_timeout` | `probe_interval` | how long a health probe may take before it counts as failed |
/// | `max_half_open_wait` | `"2m"` | how long trial calls may hold HalfOpen before the breaker decides without them |
/// | `statuses` | `[408, "5xx"]` | HTTP statuses that count as failures (error statuses only; see [`outcome_of`](Self::outcome_of)) |
/// | `open_on_retry_after` | `true` | a 429 or 503 with `Retry-After` opens the breaker for the time it states (see [`server_wait`](Self::server_wait)) |
/// | `rate_limit_reset` | none | a header that says the same as `Retry-After` (see [`RateLimitReset`]) |
/// | `throttle` | off | adaptive client-side throttling (see [`ThrottleConfig`]) |
///
/// A `429 Too Many Requests` says "slower", not "broken": by default the breaker does not count
/// it (it is left to the retry policy, which waits, and to throttling, which counts it as a
/// refusal), so a rate-limited host is never locked out by its own rate limit. A 429 that says
/// how long to wait (`Retry-After`) opens the breaker for that long.
///
/// ```
/// use breakerbox::BreakerConfig;
/// use std::time::Duration;
///
/// // Spotify, as the field runs it: 10 failures, 2 minutes open, 2 successes to close.
/// let spotify = BreakerConfig::builder()
///     .consecutive_failures(10)
///     .open_duration(Duration::from_secs(120))
///     .success_threshold(2)
///     .build()?;
/// assert_eq!(spotify.consecutive_failures(), Some(10));
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(with = "number::toggle")]
    pub(crate) consecutive_failures: Option<u32>,
    #[serde(with = "duration")]
    pub(crate) consecutive_failures_span: Duration,
    #[serde(with = "number::toggle")]
    pub(crate) failure_rate: Option<f64>,
    #[serde(with = "number::toggle")]
    pub(crate) slow_call_rate: Option<f64>,
    #[serde(with = "duration")]
    pub(crate) slow_call_duration: Duration,
    #[serde(
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) minimum_calls: Option<u32>,
    #[serde(deserialize_with = "table::deserialize")]
    pub(crate) window: WindowConfig,
    #[serde(with = "duration")]
    pub(crate) open_duration: Duration,
    #[serde(with = "number::plain")]
    pub(crate) open_backoff_multiplier: f64,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(crate) max_open_duration: Option<Duration>,
    #[serde(with = "number::plain")]
    pub(crate) open_jitter: f64,
    #[serde(with = "number::plain")]
    pub(crate) half_open_max_calls: u32,
    #[serde(with = "number::plain")]
    pub(crate) success_threshold: u32,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(crate) probe_interval: Option<Duration>,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(crate) probe_timeout: Option<Duration>,
    #[serde(with = "duration")]
    pub(crate) max_half_open_wait: Duration,
    pub(crate) statuses: Statuses,
    pub(crate) open_on_retry_after: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate_limit_reset: Option<RateLimitReset>,
    #[serde(with = "edge::throttle_or_false")]
    pub(crate) throttle: Option<ThrottleConfig>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: Some(5),
            consecutive_failures_span: Duration::from_secs(1),
            failure_rate: None,
            slow_call_rate: None,
            slow_call_duration: Duration::from_secs(60),
            minimum_calls: None,
            window: WindowConfig::default(),
            open_duration: Duration::from_secs(5),
            open_backoff_multiplier: 2.0,
            max_open_duration: None,
            open_jitter: 0.0,
            half_open_max_calls: 1,
            success_threshold: 1,
            probe_interval: None,
            probe_timeout: None,
            max_half_open_wait: Duration::from_secs(120),
            statuses: Statuses::breaker_default(),
            open_on_retry_after: true,
            rate_limit_reset: None,
            throttle: None,
        }
    }
}

// === impl BreakerConfig ===

/// Two configs are equal when they behave the same: a key left to its default equals the value
/// the default works out to (`max_open_duration`, `minimum_calls`).
impl PartialEq for BreakerConfig {
    fn eq(&self, other: &Self) -> bool {
        self.consecutive_failures == other.consecutive_failures
            && self.consecutive_failures_span == other.consecutive_failures_span
            && self.failure_rate == other.failure_rate
            && self.slow_call_rate == other.slow_call_rate
            && self.slow_call_duration == other.slow_call_duration
            && self.minimum_calls() == other.minimum_calls()
            && self.window == other.window
            && self.open_duration == other.open_duration
            && self.open_backoff_multiplier == other.open_backoff_multiplier
            && self.max_open_duration() == other.max_open_duration()
            && self.open_jitter == other.open_jitter
            && self.half_open_max_calls == other.half_open_max_calls
            && self.success_threshold == other.success_threshold
            && self.probe_interval == other.probe_interval
            && self.probe_timeout() == other.probe_timeout()
            && self.max_half_open_wait == other.max_half_open_wait
            && self.statuses == other.statuses
            && self.open_on_retry_after == other.open_on_retry_after
            && self.rate_limit_reset == other.rate_limit_reset
            && self.throttle == other.throttle
    }
}

// Every `BreakerConfig` value is valid: the builder checks, and so does deserialization (the
// derive above generates unchecked inherent functions that these impls wrap).
impl Serialize for BreakerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BreakerConfig::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for BreakerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config: BreakerConfig = table::deserialize(d)?;
        config.validate().map_err(serde::de::Error::custom)?;
        Ok(config)
    }
}

impl BreakerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: Self::default(),
        }
    }

    /// Parses one breaker's config from TOML text (the keys of the table above); an invalid
    /// value is an error naming the field and the value.
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(from_toml_text(text)?)
    }

    /// Trip after this many failures in a row, if set.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }
    /// How long a run of `consecutive_failures` failures must last to trip the breaker.
    ///
    /// At a high request rate a short run of failures is chance: with 30 % of calls failing at
    /// random, five in a row turn up every few hundred calls, a few seconds apart at 100 calls a
    /// second. An outage fails every call for longer than that. So a run trips only once it
    /// spans this long from its first failure (default 1 s): a scraper sending one request a
    /// second trips on its fifth failure as before, a busy client on a real outage within the
    /// first second, and neither on bad luck. `Duration::ZERO` trips on any run, and so does
    /// `consecutive_failures = 1` (a single failure has nothing to span).
    pub fn consecutive_failures_span(&self) -> Duration {
        self.consecutive_failures_span
    }
    /// Trip when the failure rate in the window reaches this, if set.
    pub fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }
    /// Trip when the slow-call rate in the window reaches this, if set.
    pub fn slow_call_rate(&self) -> Option<f64> {
        self.slow_call_rate
    }
    /// A call at least this long counts as slow.
    pub fn slow_call_duration(&self) -> Duration {
        self.slow_call_duration
    }
    /// Calls the window must hold before a rate rule may fire.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls.unwrap_or(match self.window {
            WindowConfig::Count { size } => DEFAULT_MINIMUM_CALLS.min(size),
            WindowConfig::Time { .. } => DEFAULT_MINIMUM_CALLS,
        })
    }
    /// The sliding window of the rate rules.
    pub fn window(&self) -> WindowConfig {
        self.window
    }
    /// How long the first trip stays open.
    pub fn open_duration(&self) -> Duration {
        self.open_duration
    }
    /// Growth of the open duration on each re-trip from HalfOpen.
    pub fn open_backoff_multiplier(&self) -> f64 {
        self.open_backoff_multiplier
    }
    /// The cap of the open duration.
    pub fn max_open_duration(&self) -> Duration {
        self.max_open_duration
            .unwrap_or(DEFAULT_MAX_OPEN_DURATION.max(self.open_duration))
    }
    /// The fraction by which each open duration may be shortened at random.
    pub fn open_jitter(&self) -> f64 {
        self.open_jitter
    }
    /// Trial calls admitted at once in HalfOpen.
    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }
    /// Successful trials that close the breaker.
    pub fn success_threshold(&self) -> u32 {
        self.success_threshold
    }
    /// While open, how often a health probe is due, if probing is on.
    pub fn probe_interval(&self) -> Option<Duration> {
        self.probe_interval
    }

    /// How long a health probe may take before it counts as failed and another may be claimed,
    /// if probing is on: `probe_timeout`, or the probe interval when it is not set.
    pub fn probe_timeout(&self) -> Option<Duration> {
        self.probe_interval
            .map(|every| self.probe_timeout.unwrap_or(every))
    }
    /// How long HalfOpen waits for its trial calls. A trial that never ends (a leaked permit, a
    /// response body streamed for an hour) cannot hold the breaker: once this has passed since
    /// HalfOpen began and every trial slot is still taken, the next call makes the breaker
    /// decide without the trials in flight: Closed if at least one trial has succeeded,
    /// Open again otherwise (for a longer open duration, like a failed trial). The outcomes
    /// of the trials still in flight are then ignored.
    pub fn max_half_open_wait(&self) -> Duration {
        self.max_half_open_wait
    }

    /// The HTTP statuses that count as failures.
    pub fn statuses(&self) -> &[StatusPattern] {
        self.statuses.patterns()
    }

    /// Whether a 429 or 503 that says when to come back opens the breaker until then.
    pub fn open_on_retry_after(&self) -> bool {
        self.open_on_retry_after
    }

    /// The rate-limit reset header read beside `Retry-After`, if any.
    pub fn rate_limit_reset(&self) -> Option<&RateLimitReset> {
        self.rate_limit_reset.as_ref()
    }

    /// Adaptive throttling, if on.
    pub fn throttle(&self) -> Option<&ThrottleConfig> {
        self.throttle.as_ref()
    }

    /// The server's word: how long an answer with `status` asks the client to stay away, when
    /// the breaker opens on it (`open_on_retry_after`, a 429 or a 503, and a `Retry-After`, or
    /// the rule's [`rate_limit_reset`](Self::rate_limit_reset) header, that parses to more than
    /// zero). `header` looks a response header up by its lowercase name; `now` is the
    /// wall-clock time, for HTTP-dates and epoch times.
    ///
    /// The wait is capped at `max_open_duration`, so a hostile or mistaken value (a date far in
    /// the future, 10 KB of digits) can hold the breaker no longer than its own backoff could.
    /// Values that do not parse (negative or fractional numbers, text, bytes that are not
    /// UTF-8) and dates in the past are ignored: the answer then counts as its status alone.
    ///
    /// ```
    /// use breakerbox::BreakerConfig;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let config = BreakerConfig::default();
    /// let headers = |name: &str| (name == "retry-after").then_some(&b"30"[..]);
    /// let now = SystemTime::now();
    /// assert_eq!(config.server_wait(429, headers, now), Some(Duration::from_secs(30)));
    /// assert_eq!(config.server_wait(500, headers, now), None); // only 429 and 503 say it
    /// ```
    pub fn server_wait<'h>(
        &self,
        status: u16,
        header: impl Fn(&str) -> Option<&'h [u8]>,
        now: SystemTime,
    ) -> Option<Duration> {
        if !self.open_on_retry_after || !matches!(status, 429 | 503) {
            return None;
        }
        let from_retry_after = header("retry-after")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| crate::retry::parse_retry_after(v, now));
        let wait = from_retry_after.or_else(|| {
            let reset = self.rate_limit_reset.as_ref()?;
            reset.wait(header(reset.header())?, now)
        })?;
        (!wait.is_zero()).then(|| wait.min(self.max_open_duration()))
    }

    /// What this breaker records for an attempt's result: a status in `statuses` is a failure,
    /// any other status a success below 400 and ignored from 400 (a client's own error, or a
    /// server error the config chose not to count); timeouts, connection and other errors are
    /// failures; a rejection by another breaker is ignored.
    ///
    /// ```
    /// use breakerbox::{AttemptOutcome, BreakerConfig, Outcome, StatusPattern};
    ///
    /// let config = BreakerConfig::default();
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(503)), Outcome::Failure);
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(404)), Outcome::Ignored);
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(429)), Outcome::Ignored); // slower, not broken
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(200)), Outcome::Success);
    /// assert_eq!(config.outcome_of(AttemptOutcome::Timeout), Outcome::Failure);
    ///
    /// // An API that answers 409 when it is overloaded:
    /// let config = BreakerConfig::builder()
    ///     .statuses([StatusPattern::Code(409), StatusPattern::Class(5)])
    ///     .build()?;
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(409)), Outcome::Failure);
    /// assert_eq!(config.outcome_of(AttemptOutcome::Status(429)), Outcome::Ignored);
    /// # Ok::<(), breakerbox::InvalidConfig>(())
    /// ```
    #[inline]
    pub fn outcome_of(&self, attempt: AttemptOutcome) -> Outcome {
        match attempt {
            AttemptOutcome::Success => Outcome::Success,
            AttemptOutcome::Status(status) if self.statuses.contains(status) => Outcome::Failure,
            AttemptOutcome::Status(status) if status < 400 => Outcome::Success,
            AttemptOutcome::Status(_) | AttemptOutcome::CircuitOpen => Outcome::Ignored,
            AttemptOutcome::Timeout | AttemptOutcome::Connect | AttemptOutcome::OtherError => {
                Outcome::Failure
            }
        }
    }

    /// Whether a rate rule needs the sliding window at all.
    pub(crate) fn needs_window(&self) -> bool {
        self.failure_rate.is_some() || self.slow_call_rate.is_some()
    }

    /// Checks every value; the first invalid one is returned, naming its field.
    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        if let Some(n) = self.consecutive_failures {
            if n == 0 {
                return Err(InvalidConfig::new(
                    "consecutive_failures",
                    n,
                    "must be at least 1 (write `false` to turn the rule off)",
                ));
            }
        }
        for (field, rate) in [
            ("failure_rate", self.failure_rate),
            ("slow_call_rate", self.slow_call_rate),
        ] {
            if let Some(r) = rate {
                if !(r > 0.0 && r <= 1.0) {
                    return Err(InvalidConfig::new(field, r, "must be in (0, 1]"));
                }
            }
        }
        if self.consecutive_failures.is_none() && !self.needs_window() {
            return Err(InvalidConfig::new(
                "consecutive_failures",
                "false",
                "no trip rule is left: set consecutive_failures, failure_rate or slow_call_rate",
            ));
        }
        if self.slow_call_duration.is_zero() {
            return Err(InvalidConfig::new(
                "slow_call_duration",
                fmt_duration(self.slow_call_duration),
                "must be longer than zero",
            ));
        }
        if self.minimum_calls == Some(0) {
            return Err(InvalidConfig::new("minimum_calls", 0, "must be at least 1"));
        }
        match self.window {
            WindowConfig::Count { size } => {
                if size == 0 || size > MAX_WINDOW_SIZE {
                    return Err(InvalidConfig::new(
                        "window.size",
                        size,
                        "must be in 1 ..= 1048575",
                    ));
                }
                if self.needs_window() && self.minimum_calls() > size {
                    return Err(InvalidConfig::new(
                        "minimum_calls",
                        self.minimum_calls(),
                        "must not exceed window.size, or the rate rules could never fire",
                    ));
                }
            }
            WindowConfig::Time { duration, buckets } => {
                if buckets == 0 || buckets > MAX_WINDOW_BUCKETS {
                    return Err(InvalidConfig::new(
                        "window.buckets",
                        buckets,
                        "must be in 1 ..= 256",
                    ));
                }
                if duration < Duration::from_millis(u64::from(buckets)) {
                    return Err(InvalidConfig::new(
                        "window.duration",
                        fmt_duration(duration),
                        "must give each bucket at least 1ms",
                    ));
                }
            }
        }
        if self.open_duration.is_zero() {
            return Err(InvalidConfig::new(
                "open_duration",
                fmt_duration(self.open_duration),
                "must be longer than zero",
            ));
        }
        let m = self.open_backoff_multiplier;
        if !(m.is_finite() && m >= 1.0) {
            return Err(InvalidConfig::new(
                "open_backoff_multiplier",
                m,
                "must be a finite number >= 1",
            ));
        }
        if self.max_open_duration() < self.open_duration {
            return Err(InvalidConfig::new(
                "max_open_duration",
                fmt_duration(self.max_open_duration()),
                "must not be shorter than open_duration",
            ));
        }
        if !(0.0..=1.0).contains(&self.open_jitter) {
            return Err(InvalidConfig::new(
                "open_jitter",
                self.open_jitter,
                "must be in [0, 1]",
            ));
        }
        for (field, n) in [
            ("half_open_max_calls", self.half_open_max_calls),
            ("success_threshold", self.success_threshold),
        ] {
            if n == 0 || n > MAX_HALF_OPEN_CALLS {
                return Err(InvalidConfig::new(field, n, "must be in 1 ..= 65535"));
            }
        }
        if let Some(every) = self.probe_interval {
            if every.is_zero() {
                return Err(InvalidConfig::new(
                    "probe_interval",
                    fmt_duration(every),
                    "must be longer than zero",
                ));
            }
        }
        if let Some(timeout) = self.probe_timeout {
            if timeout.is_zero() {
                return Err(InvalidConfig::new(
                    "probe_timeout",
                    fmt_duration(timeout),
                    "must be longer than zero",
                ));
            }
        }
        if self.max_half_open_wait.is_zero() {
            return Err(InvalidConfig::new(
                "max_half_open_wait",
                fmt_duration(self.max_half_open_wait),
                "must be longer than zero",
            ));
        }
        self.statuses.validate()?;
        if let Some(reset) = &self.rate_limit_reset {
            reset.validate()?;
        }
        if let Some(throttle) = &self.throttle {
            throttle.validate().map_err(|e| e.within("throttle"))?;
        }
        Ok(())
    }
}

/// Reads `text` as a `T`: TOML's own syntax errors first, wherever they are (a shape error, an
/// unknown key say, may otherwise be reported before a syntax error further in the text).
#[cfg(feature = "toml")]
pub(crate) fn from_toml_text<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, toml::de::Error> {
    text.parse::<toml::Table>()?;
    toml::from_str(text)
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(d))
}

// === impl BreakerConfigBuilder ===

/// Builds a [`BreakerConfig`]; `build` validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
}

impl BreakerConfigBuilder {
    /// Trip after `n` failures in a row.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }
    /// A run of failures trips only once it has lasted `span` (default 1 s; `Duration::ZERO`
    /// for any run): see [`BreakerConfig::consecutive_failures_span`].
    pub fn consecutive_failures_span(mut self, span: Duration) -> Self {
        self.config.consecutive_failures_span = span;
        self
    }
    /// Turn the consecutive-failures rule off (a rate rule must then be set).
    pub fn no_consecutive_failures(mut self) -> Self {
        self.config.consecutive_failures = None;
        self
    }
    /// Trip when failures / calls in the window reach `rate`, in (0, 1].
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = Some(rate);
        self
    }
    /// Trip when calls of at least `slow` / calls in the window reach `rate`, in (0, 1].
    pub fn slow_call_rate(mut self, rate: f64, slow: Duration) -> Self {
        self.config.slow_call_rate = Some(rate);
        self.config.slow_call_duration = slow;
        self
    }
    /// The rate rules wait for `n` calls in the window.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = Some(n);
        self
    }
    /// Evaluate the rate rules over the last `size` outcomes.
    pub fn count_window(mut self, size: u32) -> Self {
        self.config.window = WindowConfig::Count { size };
        self
    }
    /// Evaluate the rate rules over the last `duration`, kept in `buckets` slices.
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config.window = WindowConfig::Time { duration, buckets };
        self
    }
    /// How long the first trip stays open.
    pub fn open_duration(mut self, d: Duration) -> Self {
        self.config.open_duration = d;
        self
    }
    /// Multiply the open duration by `multiplier` on each re-trip, up to `max`.
    pub fn open_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.config.open_backoff_multiplier = multiplier;
        self.config.max_open_duration = Some(max);
        self
    }
    /// Shorten each open duration by up to `fraction` of it, at random, so a fleet does not
    /// send its trial calls in lockstep.
    pub fn open_jitter(mut self, fraction: f64) -> Self {
        self.config.open_jitter = fraction;
        self
    }
    /// Admit at most `n` trial calls at once in HalfOpen.
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.config.half_open_max_calls = n;
        self
    }
    /// Close after `n` successful trial calls.
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.config.success_threshold = n;
        self
    }
    /// While open, a health probe is due every `every`; a successful probe moves the breaker
    /// to HalfOpen before the open duration ends.
    pub fn probe_interval(mut self, every: Duration) -> Self {
        self.config.probe_interval = Some(every);
        self
    }
    /// A health probe that has not reported after `timeout` counts as failed (default: the
    /// probe interval).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.config.probe_timeout = Some(timeout);
        self
    }
    /// How long trial calls may hold HalfOpen (default 2 minutes); see
    /// [`BreakerConfig::max_half_open_wait`].
    pub fn max_half_open_wait(mut self, wait: Duration) -> Self {
        self.config.max_half_open_wait = wait;
        self
    }
    /// The HTTP statuses that count as failures, replacing the default 408 and 5xx (error
    /// statuses only: codes in 400..=599, classes `4xx` and `5xx`).
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusPattern>) -> Self {
        self.config.statuses = Statuses::unchecked(statuses.into_iter().collect());
        self
    }
    /// Whether a 429 or 503 with `Retry-After` opens the breaker for the time it states (default:
    /// on); see [`BreakerConfig::server_wait`].
    pub fn open_on_retry_after(mut self, on: bool) -> Self {
        self.config.open_on_retry_after = on;
        self
    }
    /// Also reads `reset` on 429 and 503 answers without `Retry-After`.
    pub fn rate_limit_reset(mut self, reset: RateLimitReset) -> Self {
        self.config.rate_limit_reset = Some(reset);
        self
    }
    /// Turns adaptive throttling on; see [`ThrottleConfig`].
    pub fn throttle(mut self, throttle: ThrottleConfig) -> Self {
        self.config.throttle = Some(throttle);
        self
    }
    /// Validates and returns the config.
    pub fn build(self) -> Result<BreakerConfig, InvalidConfig> {
        self.config.validate()?;
        Ok(self.config)
    }
}

/// Config tables are read from maps only. serde's derive also reads a struct from a sequence,
/// giving values to fields by position (`defaults = [5, 0.5]` would set `consecutive_failures`
/// and `failure_rate`, by the order of the struct's fields); in a config file that is a wrong
/// type, refused as one: "invalid type: sequence, expected a table".
pub(crate) mod table {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// A config struct's own reading of a table: the derive's, before validation.
    pub(crate) trait FromTable<'de>: Sized {
        fn from_table<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    }

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromTable<'de>,
    {
        struct TableVisitor<T>(PhantomData<T>);

        impl<'de, T: FromTable<'de>> Visitor<'de> for TableVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::from_table(de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(TableVisitor(PhantomData))
    }

    /// An optional table (absent means `None`, with `#[serde(default)]`).
    pub(crate) fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromTable<'de>,
    {
        deserialize(d).map(Some)
    }

    /// An array of tables.
    pub(crate) fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromTable<'de>,
    {
        struct Item<T>(T);

        impl<'de, T: FromTable<'de>> Deserialize<'de> for Item<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize(d).map(Item)
            }
        }

        let items = Vec::<Item<T>>::deserialize(d)?;
        Ok(items.into_iter().map(|Item(t)| t).collect())
    }
}

impl<'de> table::FromTable<'de> for BreakerConfig {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BreakerConfig::deserialize(d) // the derive's, unchecked
    }
}

impl<'de> table::FromTable<'de> for WindowConfig {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <WindowConfig as Deserialize>::deserialize(d)
    }
}
