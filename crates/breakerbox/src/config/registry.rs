//! The breaker box's config: defaults, one rule per named breaker, the cap.

use super::edge::throttle_or_false;
use super::{
    BreakerConfig, InvalidConfig, RateLimitReset, ThrottleConfig, WindowConfig, duration, number,
    table,
};
use crate::retry::RetryConfig;
use crate::retry::rule::{RetryOverride, RuleRetry};
use crate::status::Statuses;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The name of the breaker that requests share past [`BoxConfig::max_breakers`].
pub const OVERFLOW_BREAKER: &str = "overflow";

/// The largest `max_breakers` accepted.
pub const MAX_BREAKERS: usize = 1_000_000;

/// What a [`BreakerBox`](crate::BreakerBox) does with a new target once it holds
/// `max_breakers` per-target breakers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// New targets share one breaker named `overflow` in MetricsOnly mode: their calls pass and
    /// are counted, and one failing host cannot block the others. The default.
    #[default]
    MetricsOnly,
    /// New targets share one real breaker named `overflow`, built from the defaults: they are
    /// protected together, so failures of any of them may block all of them.
    Shared,
}

/// Which requests a rule's breaker guards: a host, exact or `*.suffix`, and optionally a path
/// prefix.
///
/// Hosts compare case-insensitively. `*.example.com` matches `api.example.com` and
/// `a.b.example.com`, not `example.com`. A path prefix is a plain string prefix of the request
/// path (`/v1/models/vision` matches `/v1/models/vision:annotate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
}

impl Match {
    /// Requests to `host` (`"api.spotify.com"`, or `"*.spotify.com"` for every subdomain).
    pub fn host(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            path_prefix: None,
        }
    }

    /// Narrows the match to request paths starting with `prefix` (which starts with `/`).
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// The host pattern.
    pub fn host_pattern(&self) -> &str {
        &self.host
    }

    /// The path prefix, if any.
    pub fn path(&self) -> Option<&str> {
        self.path_prefix.as_deref()
    }

    /// Whether `host` matches this rule's host pattern.
    pub fn matches_host(&self, host: &str) -> bool {
        match self.host.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
            None => host.eq_ignore_ascii_case(&self.host),
        }
    }

    /// Whether every request this match selects is selected by `self` too (so a rule with
    /// `other` after a rule with `self` could never match).
    fn covers(&self, other: &Match) -> bool {
        let hosts = match (self.host.strip_prefix("*."), other.host.strip_prefix("*.")) {
            (None, None) => self.host.eq_ignore_ascii_case(&other.host),
            (None, Some(_)) => false,
            (Some(_), None) => self.matches_host(&other.host),
            (Some(suffix), Some(theirs)) => {
                theirs.eq_ignore_ascii_case(suffix) || self.matches_host(theirs)
            }
        };
        hosts
            && match (&self.path_prefix, &other.path_prefix) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => theirs.starts_with(mine.as_str()),
            }
    }

    /// Whether `path` falls under this rule's path prefix (always, if it has none).
    pub fn matches_path(&self, path: &str) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix))
    }

    /// The match as it is written in TOML.
    fn describe(&self) -> String {
        match &self.path_prefix {
            Some(prefix) => format!("{{ host = {:?}, path_prefix = {prefix:?} }}", self.host),
            None => format!("{{ host = {:?} }}", self.host),
        }
    }

    fn validate(&self) -> Result<(), InvalidConfig> {
        let bare = self.host.strip_prefix("*.").unwrap_or(&self.host);
        if bare.is_empty()
            || bare.contains(['*', '/', ' ', ':'])
            || bare.starts_with('.')
            || bare.ends_with('.')
        {
            return Err(InvalidConfig::new(
                "match.host",
                format_args!("{:?}", self.host),
                "must be a host name, or `*.` followed by a domain suffix",
            ));
        }
        if let Some(prefix) = &self.path_prefix {
            if !prefix.starts_with('/') {
                return Err(InvalidConfig::new(
                    "match.path_prefix",
                    format_args!("{prefix:?}"),
                    "must start with `/`",
                ));
            }
        }
        Ok(())
    }
}

/// A named breaker and the requests it guards, with its own thresholds.
///
/// In TOML, one `[[breakers]]` entry: `name`, `match`, and any key of [`BreakerConfig`] that
/// differs from `[defaults]` (absent keys inherit; `false` turns an inherited rule off). In code,
/// [`BreakerRule::config`] gives the whole config.
///
/// The override keys sit in this struct itself rather than in a flattened one: serde cannot both
/// flatten and reject unknown keys, and a misspelt threshold must be an error, not a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerRule {
    name: String,
    #[serde(rename = "match", deserialize_with = "table::deserialize")]
    matcher: Match,
    /// A URL a front end may GET as this upstream's health check while the breaker is open
    /// (with `probe_interval` set); a 2xx answer moves the breaker to HalfOpen early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health_url: Option<String>,
    #[serde(
        default,
        with = "number::toggle::option",
        skip_serializing_if = "Option::is_none"
    )]
    consecutive_failures: Option<Option<u32>>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    consecutive_failures_span: Option<Duration>,
    #[serde(
        default,
        with = "number::toggle::option",
        skip_serializing_if = "Option::is_none"
    )]
    failure_rate: Option<Option<f64>>,
    #[serde(
        default,
        with = "number::toggle::option",
        skip_serializing_if = "Option::is_none"
    )]
    slow_call_rate: Option<Option<f64>>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    slow_call_duration: Option<Duration>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    minimum_calls: Option<u32>,
    #[serde(
        default,
        deserialize_with = "table::option",
        skip_serializing_if = "Option::is_none"
    )]
    window: Option<WindowConfig>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    open_duration: Option<Duration>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    open_backoff_multiplier: Option<f64>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    max_open_duration: Option<Duration>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    open_jitter: Option<f64>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    half_open_max_calls: Option<u32>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    success_threshold: Option<u32>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    probe_interval: Option<Duration>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    probe_timeout: Option<Duration>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    max_half_open_wait: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    statuses: Option<Statuses>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open_on_retry_after: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit_reset: Option<RateLimitReset>,
    #[serde(
        default,
        with = "throttle_or_false::option",
        skip_serializing_if = "Option::is_none"
    )]
    throttle: Option<Option<ThrottleConfig>>,
    /// This breaker's retry policy: `false` for none, or keys of `[retry]` to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RuleRetry>,
}

impl BreakerRule {
    /// A rule for breaker `name`, guarding the requests `matcher` selects, with the box's
    /// default config until [`config`](Self::config) says otherwise.
    pub fn new(name: impl Into<String>, matcher: Match) -> Self {
        Self {
            name: name.into(),
            matcher,
            health_url: None,
            consecutive_failures: None,
            consecutive_failures_span: None,
            failure_rate: None,
            slow_call_rate: None,
            slow_call_duration: None,
            minimum_calls: None,
            window: None,
            open_duration: None,
            open_backoff_multiplier: None,
            max_open_duration: None,
            open_jitter: None,
            half_open_max_calls: None,
            success_threshold: None,
            probe_interval: None,
            probe_timeout: None,
            max_half_open_wait: None,
            statuses: None,
            open_on_retry_after: None,
            rate_limit_reset: None,
            throttle: None,
            retry: None,
        }
    }

    /// Gives this breaker its own whole config instead of the defaults.
    pub fn config(self, c: BreakerConfig) -> Self {
        Self {
            name: self.name,
            matcher: self.matcher,
            health_url: self.health_url,
            consecutive_failures: Some(c.consecutive_failures),
            consecutive_failures_span: Some(c.consecutive_failures_span),
            failure_rate: Some(c.failure_rate),
            slow_call_rate: Some(c.slow_call_rate),
            slow_call_duration: Some(c.slow_call_duration),
            minimum_calls: Some(c.minimum_calls()),
            window: Some(c.window),
            open_duration: Some(c.open_duration),
            open_backoff_multiplier: Some(c.open_backoff_multiplier),
            max_open_duration: Some(c.max_open_duration()),
            open_jitter: Some(c.open_jitter),
            half_open_max_calls: Some(c.half_open_max_calls),
            success_threshold: Some(c.success_threshold),
            probe_interval: c.probe_interval,
            probe_timeout: c.probe_timeout,
            max_half_open_wait: Some(c.max_half_open_wait),
            statuses: Some(c.statuses),
            open_on_retry_after: Some(c.open_on_retry_after),
            rate_limit_reset: c.rate_limit_reset,
            throttle: Some(c.throttle),
            retry: self.retry,
        }
    }

    /// Gives this breaker's requests their own retry policy, instead of the box's `[retry]`.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(RuleRetry::Merge(Box::new(RetryOverride::whole(retry))));
        self
    }

    /// Turns retries off for this breaker's requests.
    pub fn no_retry(mut self) -> Self {
        self.retry = Some(RuleRetry::Off);
        self
    }

    /// This rule's retry policy over the box's `base` (its `[retry]` table, or the default
    /// policy): `None` when the rule turns retries off.
    pub fn retry_config(&self, base: &RetryConfig) -> Result<Option<RetryConfig>, InvalidConfig> {
        match &self.retry {
            None => Ok(Some(base.clone())),
            Some(retry) => retry.resolve(base).map_err(|e| e.within("retry")),
        }
    }

    /// The breaker's name, as it appears in metrics, logs and the status table.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which requests the breaker guards.
    pub fn matcher(&self) -> &Match {
        &self.matcher
    }

    /// Sets the URL front ends GET as this upstream's health check while the breaker is open
    /// (the breaker's config must set `probe_interval`).
    pub fn health_url(mut self, url: impl Into<String>) -> Self {
        self.health_url = Some(url.into());
        self
    }

    /// The health-check URL, if the rule has one.
    pub fn health_check(&self) -> Option<&str> {
        self.health_url.as_deref()
    }

    /// This rule's config: the defaults with this rule's overrides applied, validated. A rule
    /// that breaks a rule between two keys (`open_duration` past an inherited
    /// `max_open_duration`, a `window` smaller than an inherited `minimum_calls`) is told about
    /// the key it wrote.
    pub fn resolve(&self, defaults: &BreakerConfig) -> Result<BreakerConfig, InvalidConfig> {
        let config = self.merged(defaults);
        config.validate().map_err(|e| self.blame(e, &config))?;
        Ok(config)
    }

    /// Moves the blame of a cross-key error onto the key of the pair this rule wrote, when it
    /// wrote only the other one.
    fn blame(&self, e: InvalidConfig, config: &BreakerConfig) -> InvalidConfig {
        match e.field() {
            "max_open_duration"
                if self.max_open_duration.is_none() && self.open_duration.is_some() =>
            {
                InvalidConfig::new(
                    "open_duration",
                    super::fmt_duration(config.open_duration()),
                    format!(
                        "must not be longer than max_open_duration, {} as the defaults set it",
                        super::fmt_duration(config.max_open_duration())
                    ),
                )
            }
            "minimum_calls" if self.minimum_calls.is_none() && self.window.is_some() => {
                InvalidConfig::new(
                    "window.size",
                    match config.window() {
                        WindowConfig::Count { size } => size,
                        WindowConfig::Time { .. } => 0,
                    },
                    format!(
                        "must hold at least minimum_calls, {} as the defaults set it",
                        config.minimum_calls()
                    ),
                )
            }
            _ => e,
        }
    }

    /// The merge alone, for a box whose config was validated as a whole.
    pub(crate) fn merged(&self, defaults: &BreakerConfig) -> BreakerConfig {
        fn set<T: Clone>(slot: &mut T, over: &Option<T>) {
            if let Some(v) = over {
                *slot = v.clone();
            }
        }
        let mut c = defaults.clone();
        set(&mut c.consecutive_failures, &self.consecutive_failures);
        set(
            &mut c.consecutive_failures_span,
            &self.consecutive_failures_span,
        );
        set(&mut c.failure_rate, &self.failure_rate);
        set(&mut c.slow_call_rate, &self.slow_call_rate);
        set(&mut c.slow_call_duration, &self.slow_call_duration);
        if self.minimum_calls.is_some() {
            c.minimum_calls = self.minimum_calls;
        }
        set(&mut c.window, &self.window);
        set(&mut c.open_duration, &self.open_duration);
        set(
            &mut c.open_backoff_multiplier,
            &self.open_backoff_multiplier,
        );
        if self.max_open_duration.is_some() {
            c.max_open_duration = self.max_open_duration;
        }
        set(&mut c.open_jitter, &self.open_jitter);
        set(&mut c.half_open_max_calls, &self.half_open_max_calls);
        set(&mut c.success_threshold, &self.success_threshold);
        set(&mut c.statuses, &self.statuses);
        set(&mut c.max_half_open_wait, &self.max_half_open_wait);
        set(&mut c.open_on_retry_after, &self.open_on_retry_after);
        set(&mut c.throttle, &self.throttle);
        if self.rate_limit_reset.is_some() {
            c.rate_limit_reset = self.rate_limit_reset.clone();
        }
        if self.probe_interval.is_some() {
            c.probe_interval = self.probe_interval;
        }
        if self.probe_timeout.is_some() {
            c.probe_timeout = self.probe_timeout;
        }
        c
    }
}

/// The whole breaker box: default thresholds, named breakers with their matches, and the cap.
///
/// ```toml
/// max_breakers = 1000
///
/// [defaults]
/// consecutive_failures = 5
/// open_duration = "60s"
///
/// [[breakers]]
/// name = "spotify"
/// match = { host = "api.spotify.com" }
/// consecutive_failures = 10
/// open_duration = "120s"
/// success_threshold = 2
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct BoxConfig {
    #[serde(with = "number::plain")]
    pub(crate) max_breakers: usize,
    pub(crate) overflow: Overflow,
    // Checked with the rest of the box, so an error names `defaults.<field>`.
    #[serde(deserialize_with = "table::deserialize")]
    pub(crate) defaults: BreakerConfig,
    #[serde(deserialize_with = "table::vec")]
    pub(crate) breakers: Vec<BreakerRule>,
    // Checked with the rest of the box, so an error names `retry.<field>`.
    #[serde(
        default,
        deserialize_with = "retry_unchecked",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) retry: Option<crate::retry::RetryConfig>,
    #[serde(
        default,
        with = "number::toggle::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) max_open_fraction: Option<Option<f64>>,
}

impl Default for BoxConfig {
    fn default() -> Self {
        Self {
            max_breakers: 1000,
            overflow: Overflow::default(),
            defaults: BreakerConfig::default(),
            breakers: Vec::new(),
            retry: None,
            max_open_fraction: None,
        }
    }
}

fn retry_unchecked<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::retry::RetryConfig>, D::Error> {
    table::deserialize::<_, crate::retry::RetryConfig>(d).map(Some)
}

impl<'de> table::FromTable<'de> for BoxConfig {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BoxConfig::deserialize(d) // the derive's, unchecked
    }
}

impl<'de> table::FromTable<'de> for BreakerRule {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <BreakerRule as Deserialize>::deserialize(d)
    }
}

impl<'de> table::FromTable<'de> for Match {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <Match as Deserialize>::deserialize(d)
    }
}

// === impl BoxConfig ===

// Like `BreakerConfig`, every `BoxConfig` value is valid, rules merged onto the defaults
// included.
impl Serialize for BoxConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BoxConfig::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for BoxConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config: BoxConfig = table::deserialize(d)?;
        config.validate().map_err(serde::de::Error::custom)?;
        Ok(config)
    }
}

impl BoxConfig {
    /// A builder starting from the defaults: no rules, at most 1000 per-target breakers.
    pub fn builder() -> BoxConfigBuilder {
        BoxConfigBuilder {
            config: Self::default(),
        }
    }

    /// Parses a breaker box config from TOML text; an invalid value is an error naming the
    /// field (with its table, e.g. `breakers[2].failure_rate`) and the value.
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> Result<Self, super::ConfigError> {
        Ok(super::from_toml_text(text)?)
    }

    /// Reads and parses a TOML config file.
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, super::ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| super::ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        super::from_toml_text(&text).map_err(|source| super::ConfigError::File {
            path: path.to_owned(),
            source,
        })
    }

    /// The config of breakers that no rule names.
    pub fn defaults(&self) -> &BreakerConfig {
        &self.defaults
    }

    /// The named breakers, in matching order (the first match wins).
    pub fn rules(&self) -> &[BreakerRule] {
        &self.breakers
    }

    /// The most per-target breakers the box creates; see [`Overflow`] for what comes after.
    /// Breakers named by rules do not count: their number is fixed by the config.
    pub fn max_breakers(&self) -> usize {
        self.max_breakers
    }

    /// What happens past `max_breakers`.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// The `[retry]` table, if the config has one: the retry policy front ends apply to the
    /// requests this box guards (rules may change it for their breakers: see
    /// [`retry_for`](Self::retry_for)).
    pub fn retry(&self) -> Option<&crate::retry::RetryConfig> {
        self.retry.as_ref()
    }

    /// The retry policy of the requests a breaker guards: rule `rule`'s (by index in
    /// [`rules`](Self::rules)), or with `None` the per-target breakers', which is `[retry]` (or
    /// the default policy without one). `None` when the rule turns retries off.
    pub fn retry_for(&self, rule: Option<usize>) -> Option<RetryConfig> {
        let base = self.retry.clone().unwrap_or_default();
        match rule.and_then(|i| self.breakers.get(i)) {
            // Validated with the box: resolving cannot fail.
            Some(rule) => rule.retry_config(&base).ok().flatten(),
            None => Some(base),
        }
    }

    /// The fleet guard: the largest share of the box's active breakers (those that saw calls
    /// in the last minute) that may be open at once, if set. Past it, a breaker that would
    /// trip is held closed (it keeps admitting and counting) and the box's health says a local
    /// fault (the client's own network, DNS or proxy) is likely: every upstream failing at once
    /// is more often the client's problem than theirs. One breaker may always open. Off by
    /// default: a box's breakers guard different services, which do fail together sometimes.
    pub fn max_open_fraction(&self) -> Option<f64> {
        self.max_open_fraction.flatten()
    }

    /// Checks the defaults, every rule (as merged onto the defaults) and the cap.
    fn validate(&self) -> Result<(), InvalidConfig> {
        if !(1..=MAX_BREAKERS).contains(&self.max_breakers) {
            return Err(InvalidConfig::new(
                "max_breakers",
                self.max_breakers,
                "must be in 1 ..= 1000000: the cap bounds memory (about 1 KiB a breaker) and metric labels",
            ));
        }
        if let Some(fraction) = self.max_open_fraction() {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(InvalidConfig::new(
                    "max_open_fraction",
                    fraction,
                    "must be in (0, 1] (write `false` to turn the guard off)",
                ));
            }
        }
        self.defaults.validate().map_err(|e| e.within("defaults"))?;
        if let Some(retry) = &self.retry {
            retry.validate().map_err(|e| e.within("retry"))?;
        }
        let base_retry = self.retry.clone().unwrap_or_default();
        for (i, rule) in self.breakers.iter().enumerate() {
            let table = format!("breakers[{i}]");
            if rule.name.trim().is_empty() || rule.name == OVERFLOW_BREAKER {
                return Err(InvalidConfig::new(
                    "name",
                    format_args!("{:?}", rule.name),
                    "must be a non-empty name other than \"overflow\"",
                )
                .within(&table));
            }
            if self.breakers[..i].iter().any(|r| r.name == rule.name) {
                return Err(InvalidConfig::new(
                    "name",
                    format_args!("{:?}", rule.name),
                    "names another breaker already: each rule names its own",
                )
                .within(&table));
            }
            rule.matcher.validate().map_err(|e| e.within(&table))?;
            if let Some((j, earlier)) = self.breakers[..i]
                .iter()
                .enumerate()
                .find(|(_, earlier)| earlier.matcher.covers(&rule.matcher))
            {
                return Err(InvalidConfig::new(
                    "match",
                    rule.matcher.describe(),
                    format!(
                        "can never match: breakers[{j}] ({:?}, {}) comes first and takes every \
                         request it would; put the narrower rule first",
                        earlier.name,
                        earlier.matcher.describe()
                    ),
                )
                .within(&table));
            }
            let config = rule.resolve(&self.defaults).map_err(|e| e.within(&table))?;
            rule.retry_config(&base_retry)
                .map_err(|e| e.within(&table))?;
            if let Some(url) = &rule.health_url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(InvalidConfig::new(
                        "health_url",
                        format_args!("{url:?}"),
                        "must be an http:// or https:// URL",
                    )
                    .within(&table));
                }
                if config.probe_interval().is_none() {
                    return Err(InvalidConfig::new(
                        "health_url",
                        format_args!("{url:?}"),
                        "needs probe_interval: it says how often the check runs while open",
                    )
                    .within(&table));
                }
            }
        }
        Ok(())
    }
}

/// Builds a [`BoxConfig`]; `build` validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct BoxConfigBuilder {
    config: BoxConfig,
}

impl BoxConfigBuilder {
    /// The config of breakers that no rule names.
    pub fn defaults(mut self, defaults: BreakerConfig) -> Self {
        self.config.defaults = defaults;
        self
    }
    /// Adds a named breaker; rules match in the order they are added.
    pub fn rule(mut self, rule: BreakerRule) -> Self {
        self.config.breakers.push(rule);
        self
    }
    /// Caps the per-target breakers the box creates.
    pub fn max_breakers(mut self, n: usize) -> Self {
        self.config.max_breakers = n;
        self
    }
    /// What happens past the cap.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.config.overflow = overflow;
        self
    }
    /// The retry policy for the requests this box guards.
    pub fn retry(mut self, retry: crate::retry::RetryConfig) -> Self {
        self.config.retry = Some(retry);
        self
    }
    /// The fleet guard: see [`BoxConfig::max_open_fraction`].
    pub fn max_open_fraction(mut self, fraction: f64) -> Self {
        self.config.max_open_fraction = Some(Some(fraction));
        self
    }
    /// Validates and returns the config.
    pub fn build(self) -> Result<BoxConfig, InvalidConfig> {
        self.config.validate()?;
        Ok(self.config)
    }
}
