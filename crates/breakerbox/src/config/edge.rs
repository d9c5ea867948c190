//! What a breaker reads from the upstream beyond pass and fail: adaptive throttling
//! ([`ThrottleConfig`]) and the server's word on when to come back ([`RateLimitReset`], and
//! `Retry-After`, read by [`BreakerConfig::server_wait`](super::BreakerConfig::server_wait)).

use super::{InvalidConfig, duration, number};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// How many buckets a throttle's window is kept in.
pub(crate) const THROTTLE_BUCKETS: u32 = 20;

/// Adaptive client-side throttling, as Google's SRE book describes it ("Handling Overload"):
/// over the last `window`, the breaker counts the requests it was asked to admit and the ones
/// the upstream accepted, and rejects a new request locally with probability
///
/// ```text
/// max(0, (requests - k * accepts) / (requests + 1))
/// ```
///
/// So while the upstream accepts everything nothing is rejected, and while it accepts only part
/// of the load it is sent about `k` times what it accepts instead of everything (or, with only
/// an on/off breaker, alternately everything and nothing). The rejections fade as the upstream
/// recovers, within one window.
///
/// An accept is a call the breaker does not count as a failure and that was not refused with
/// `429 Too Many Requests`. Throttling works beside the trip rules, in Closed: a dead upstream
/// still opens the breaker.
///
/// In TOML: `throttle = { k = 2.0, window = "2m" }` (both keys optional), `throttle = true` for
/// those defaults, or `throttle = false`.
///
/// ```
/// use breakerbox::config::ThrottleConfig;
/// use std::time::Duration;
///
/// let throttle = ThrottleConfig::new(2.0, Duration::from_secs(120))?;
/// assert_eq!(throttle, ThrottleConfig::default());
/// assert_eq!(ThrottleConfig::new(0.5, Duration::from_secs(60)).unwrap_err().field(), "k");
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct ThrottleConfig {
    #[serde(with = "number::plain")]
    pub(crate) k: f64,
    #[serde(with = "duration")]
    pub(crate) window: Duration,
}

impl Default for ThrottleConfig {
    /// `k` 2, over 2 minutes: the SRE book's figures.
    fn default() -> Self {
        Self {
            k: 2.0,
            window: Duration::from_secs(120),
        }
    }
}

impl ThrottleConfig {
    /// The smallest `window` accepted.
    pub const MIN_WINDOW: Duration = Duration::from_secs(1);
    /// The largest `window` accepted.
    pub const MAX_WINDOW: Duration = Duration::from_secs(3600);

    /// A validated throttle config.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn new(k: f64, window: Duration) -> Result<Self, InvalidConfig> {
        let config = Self { k, window };
        config.validate()?;
        Ok(config)
    }

    /// How many times what the upstream accepts it is still sent.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// How far back requests and accepts are counted (kept in 20 equal buckets).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming `k` unless it is a finite number of at least 1 (below 1 a
    /// healthy upstream would be throttled), or `window` outside 1 s to 1 h.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if !(self.k.is_finite() && self.k >= 1.0 && self.k <= 1000.0) {
            return Err(InvalidConfig::new(
                "k",
                self.k,
                "must be a number from 1 to 1000 (below 1 a healthy upstream would be throttled)",
            ));
        }
        if !(Self::MIN_WINDOW..=Self::MAX_WINDOW).contains(&self.window) {
            return Err(InvalidConfig::new(
                "window",
                super::fmt_duration(self.window),
                "must be between 1s and 1h",
            ));
        }
        Ok(())
    }
}

impl Serialize for ThrottleConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ThrottleConfig::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for ThrottleConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config: ThrottleConfig = super::table::deserialize(d)?;
        config
            .validate()
            .map_err(|e| serde::de::Error::custom(e.within("throttle")))?;
        Ok(config)
    }
}

impl<'de> super::table::FromTable<'de> for ThrottleConfig {
    fn from_table<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ThrottleConfig::deserialize(d) // the derive's, unchecked
    }
}

/// How a rate-limit reset header gives its time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetForm {
    /// Seconds from now (`RateLimit-Reset: 30`, as the IETF RateLimit fields draft says). The
    /// default.
    #[default]
    Seconds,
    /// A Unix time in seconds (`X-RateLimit-Reset: 1767225600`, as GitHub and many APIs send).
    Epoch,
}

/// A rate-limit reset header that says, on a 429 or 503, when the upstream takes requests
/// again: `rate_limit_reset = { header = "x-ratelimit-reset", form = "epoch" }`.
///
/// Read after `Retry-After`, which wins when both are present.
///
/// ```
/// use breakerbox::config::{RateLimitReset, ResetForm};
///
/// let reset = RateLimitReset::new("X-RateLimit-Reset", ResetForm::Epoch)?;
/// assert_eq!(reset.header(), "x-ratelimit-reset");
/// assert!(RateLimitReset::new("x rate", ResetForm::Seconds).is_err());
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitReset {
    header: String,
    #[serde(default)]
    form: ResetForm,
}

impl RateLimitReset {
    /// The header `header` (any case; stored lowercase) in the given form.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming `rate_limit_reset.header` when it is not a header name.
    pub fn new(header: impl Into<String>, form: ResetForm) -> Result<Self, InvalidConfig> {
        let reset = Self {
            header: header.into().to_ascii_lowercase(),
            form,
        };
        reset.validate()?;
        Ok(reset)
    }

    /// The header's name, lowercase.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// How the header gives its time.
    pub fn form(&self) -> ResetForm {
        self.form
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        // A header name is an RFC 9110 token; lowercase, as `http` stores names.
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.header.is_empty()
            || self.header.len() > 128
            || !self.header.bytes().all(token)
            || self.header.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(InvalidConfig::new(
                "rate_limit_reset.header",
                format_args!("{:?}", self.header),
                "must be a lowercase HTTP header name",
            ));
        }
        Ok(())
    }

    /// How long `value` says to wait, read at wall-clock time `now`; `None` when it is not a
    /// number of the form (signs, fractions, text) or says nothing is to be waited.
    pub(crate) fn wait(&self, value: &[u8], now: SystemTime) -> Option<Duration> {
        let value = value.trim_ascii();
        if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
        match self.form {
            ResetForm::Seconds => Some(Duration::from_secs(n)),
            ResetForm::Epoch => {
                let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(n))?;
                at.duration_since(now).ok()
            }
        }
    }
}

/// `throttle`: a table, `true` for the defaults, or `false`.
pub(crate) mod throttle_or_false {
    use super::ThrottleConfig;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<ThrottleConfig>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => ThrottleConfig::serialize(t, s),
            None => s.serialize_bool(false),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ThrottleConfig>, D::Error> {
        struct V;

        impl<'de> Visitor<'de> for V {
            type Value = Option<ThrottleConfig>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a throttle table, or true / false")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(v.then(ThrottleConfig::default))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                <ThrottleConfig as serde::Deserialize>::deserialize(
                    de::value::MapAccessDeserializer::new(map),
                )
                .map(Some)
            }
        }

        d.deserialize_any(V)
    }

    /// A rule's override: absent (inherit), or a value.
    pub(crate) mod option {
        use super::ThrottleConfig;
        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<Option<ThrottleConfig>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Option<ThrottleConfig>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_headers_in_both_forms_and_hostile_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let seconds = RateLimitReset::new("RateLimit-Reset", ResetForm::Seconds).unwrap();
        let epoch = RateLimitReset::new("x-ratelimit-reset", ResetForm::Epoch).unwrap();
        assert_eq!(seconds.wait(b"30", now), Some(Duration::from_secs(30)));
        assert_eq!(seconds.wait(b" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(epoch.wait(b"1000060", now), Some(Duration::from_secs(60)));
        // Far past: nothing to wait for.
        assert_eq!(epoch.wait(b"5", now), None);
        for hostile in [
            &b"-5"[..],
            b"1.5",
            b"+3",
            b"soon",
            b"",
            b"\xff\xfe",
            b"99999999999999999999999999",
        ] {
            assert_eq!(seconds.wait(hostile, now), None, "{hostile:?}");
            assert_eq!(epoch.wait(hostile, now), None, "{hostile:?}");
        }
        let huge = vec![b'9'; 10 * 1024];
        assert_eq!(seconds.wait(&huge, now), None);
        // The largest u64: a duration, capped by the breaker later.
        assert_eq!(
            seconds.wait(b"18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(epoch.wait(b"18446744073709551615", now), None);
    }
}
