//! Exponential backoff with jitter, as a pure calculator.
//!
//! [`Backoff`] turns an attempt number (and, for decorrelated jitter, the previous delay) into the
//! time to wait before the next attempt, using the formulas from the AWS Architecture Blog post
//! "Exponential Backoff And Jitter". The randomness is a parameter, so every formula can be tested
//! exactly; [`Backoff::next_delay`] draws it from [`fastrand`] for callers that do not care.
//!
//! Jitter is applied *inside* the cap: every delay is within `[0, max]`, and decorrelated delays
//! are within `[base, max]`. No input panics or overflows, whatever the attempt number.
//!
//! ```
//! use breakerbox::backoff::{Backoff, Jitter};
//! use std::time::Duration;
//!
//! let backoff = Backoff::new(
//!     Duration::from_millis(100),
//!     2.0,
//!     Duration::from_secs(10),
//!     Jitter::None,
//! )?;
//! assert_eq!(backoff.delay(0, None, 0.0), Duration::from_millis(100));
//! assert_eq!(backoff.delay(3, None, 0.0), Duration::from_millis(800));
//! assert_eq!(backoff.delay(20, None, 0.0), Duration::from_secs(10)); // capped
//! # Ok::<(), breakerbox::config::InvalidConfig>(())
//! ```

use crate::config::InvalidConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How a [`Backoff`] randomizes its delays, so that clients failing together do not retry in
/// lockstep. Written in config files in snake case: `"none"`, `"full"`, `"equal"`,
/// `"decorrelated"`.
///
/// With `exp = min(max, base * multiplier^attempt)` and `random` in `[0, 1)`:
///
/// | jitter | delay |
/// | --- | --- |
/// | `None` | `exp` |
/// | `Full` (default) | `random * exp` |
/// | `Equal` | `exp / 2 + random * exp / 2` |
/// | `Decorrelated` | `min(max, base + random * (previous * 3 - base))`, with `previous` = `base` at first |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// No randomness: the plain capped exponential.
    None,
    /// Anywhere between zero and the capped exponential. Spreads retries the most; the default.
    #[default]
    Full,
    /// At least half the capped exponential, plus up to the other half at random.
    Equal,
    /// Grows from the previous delay rather than from the attempt number: between `base` and
    /// three times the previous delay, capped.
    Decorrelated,
}

impl Jitter {
    /// The name used in config files and logs: `"none"`, `"full"`, `"equal"` or `"decorrelated"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Capped exponential backoff with [`Jitter`]: `base * multiplier^attempt`, at most `max`.
///
/// Built with [`Backoff::new`], which rejects values that would make the formulas meaningless;
/// afterwards [`delay`](Backoff::delay) is total: it never panics, whatever the attempt number,
/// the previous delay or the random input.
///
/// ```
/// use breakerbox::backoff::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let base = Duration::from_millis(100);
/// let max = Duration::from_secs(2);
/// let backoff = Backoff::new(base, 2.0, max, Jitter::Decorrelated)?;
///
/// // Chain decorrelated delays by feeding each one back in.
/// let mut previous = None;
/// for attempt in 0..50 {
///     let delay = backoff.next_delay(attempt, previous);
///     assert!(base <= delay && delay <= max);
///     previous = Some(delay);
/// }
/// # Ok::<(), breakerbox::config::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    multiplier: f64,
    max: Duration,
    jitter: Jitter,
}

// === impl Backoff ===

impl Backoff {
    /// A backoff starting at `base`, multiplied by `multiplier` on each attempt, capped at `max`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming `base_delay` if `base` is zero, `multiplier` if it is not a
    /// finite number of at least 1, and `max_delay` if `max` is less than `base`.
    pub fn new(
        base: Duration,
        multiplier: f64,
        max: Duration,
        jitter: Jitter,
    ) -> Result<Self, InvalidConfig> {
        if base.is_zero() {
            return Err(InvalidConfig::new(
                "base_delay",
                humantime::format_duration(base),
                "must be greater than zero",
            ));
        }
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            return Err(InvalidConfig::new(
                "multiplier",
                multiplier,
                "must be a finite number of at least 1",
            ));
        }
        if max < base {
            return Err(InvalidConfig::new(
                "max_delay",
                humantime::format_duration(max),
                "must be at least `base_delay`",
            ));
        }
        Ok(Self {
            base,
            multiplier,
            max,
            jitter,
        })
    }

    /// Like [`new`](Self::new), but moves out-of-range values into range instead of failing: a
    /// zero `base` becomes 1 ns, a `multiplier` below 1 (or NaN) becomes 1, infinity becomes
    /// `f64::MAX`, and a `max` below `base` becomes `base`. Equal to `new` for valid values.
    ///
    /// For configs that may have skipped validation; per-request paths must not fail.
    pub(crate) fn clamped(base: Duration, multiplier: f64, max: Duration, jitter: Jitter) -> Self {
        let base = base.max(Duration::from_nanos(1));
        let multiplier = if multiplier >= 1.0 {
            multiplier.min(f64::MAX)
        } else {
            1.0
        };
        Self {
            base,
            multiplier,
            max: max.max(base),
            jitter,
        }
    }

    /// The first delay, before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The growth factor per attempt.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The cap on every delay, jitter included.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter strategy.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The capped exponential for `attempt` (counted from 0), before jitter:
    /// `min(max, base * multiplier^attempt)`.
    pub fn exponential(&self, attempt: u32) -> Duration {
        // In floating point, overflow goes to infinity instead of panicking; anything not
        // representable as a Duration is above the cap.
        let factor = self.multiplier.powf(f64::from(attempt));
        let secs = self.base.as_secs_f64() * factor;
        // base * multiplier^attempt >= base; clamping there undoes float rounding below it.
        Duration::try_from_secs_f64(secs).map_or(self.max, |d| d.max(self.base).min(self.max))
    }

    /// The delay before retry number `attempt` (0 for the first retry), given the previous
    /// delay (used only by [`Jitter::Decorrelated`]; `None` on the first retry) and a `random`
    /// number in `[0, 1)`.
    ///
    /// The result is always within `[0, max]`, and within `[base, max]` for decorrelated jitter.
    /// A `random` outside `[0, 1]` is clamped into it (NaN counts as 0).
    pub fn delay(&self, attempt: u32, previous: Option<Duration>, random: f64) -> Duration {
        let random = if random > 0.0 { random.min(1.0) } else { 0.0 };
        let delay = match self.jitter {
            Jitter::None => self.exponential(attempt),
            Jitter::Full => scale(self.exponential(attempt), random),
            Jitter::Equal => {
                let half = self.exponential(attempt) / 2;
                half + scale(half, random)
            }
            Jitter::Decorrelated => {
                let previous = previous.unwrap_or(self.base);
                let span = previous.saturating_mul(3).saturating_sub(self.base);
                self.base.saturating_add(scale(span, random))
            }
        };
        delay.min(self.max)
    }

    /// [`delay`](Self::delay) with a random number from the thread-local [`fastrand`] generator.
    pub fn next_delay(&self, attempt: u32, previous: Option<Duration>) -> Duration {
        self.delay(attempt, previous, fastrand::f64())
    }
}

impl Default for Backoff {
    /// 100 ms, doubling, capped at 10 s, full jitter: the retry defaults.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(10),
            jitter: Jitter::Full,
        }
    }
}

/// `d * factor` for a factor in `[0, 1]`, never more than `d` and never panicking (unlike
/// `Duration::mul_f64`, which can round past `Duration::MAX`).
fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).map_or(d, |scaled| scaled.min(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff::new(100 * MS, 2.0, 10_000 * MS, jitter).unwrap()
    }

    #[test]
    fn rejects_zero_base() {
        let err = Backoff::new(Duration::ZERO, 2.0, MS, Jitter::Full).unwrap_err();
        assert_eq!(err.field(), "base_delay");
        assert_eq!(err.value(), "0s");
    }

    #[test]
    fn rejects_bad_multipliers() {
        for m in [0.5, -1.0, f64::NAN, f64::INFINITY] {
            let err = Backoff::new(MS, m, MS, Jitter::Full).unwrap_err();
            assert_eq!(err.field(), "multiplier", "{m}");
            assert_eq!(err.value(), m.to_string());
        }
        assert!(Backoff::new(MS, 1.0, MS, Jitter::Full).is_ok());
    }

    #[test]
    fn rejects_max_below_base() {
        let err = Backoff::new(100 * MS, 2.0, 99 * MS, Jitter::Full).unwrap_err();
        assert_eq!(err.field(), "max_delay");
        assert_eq!(err.value(), "99ms");
        assert!(Backoff::new(100 * MS, 2.0, 100 * MS, Jitter::Full).is_ok());
    }

    #[test]
    fn no_jitter_is_the_capped_exponential() {
        let b = backoff(Jitter::None);
        let delays: Vec<_> = (0..9).map(|n| b.delay(n, None, 0.7)).collect();
        let expected = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000].map(|ms| ms * MS);
        assert_eq!(delays, expected);
    }

    #[test]
    fn full_jitter_scales_the_exponential() {
        let b = backoff(Jitter::Full);
        assert_eq!(b.delay(2, None, 0.0), Duration::ZERO);
        assert_eq!(b.delay(2, None, 0.5), 200 * MS);
        assert_eq!(b.delay(30, None, 0.25), 2_500 * MS);
    }

    #[test]
    fn equal_jitter_keeps_half() {
        let b = backoff(Jitter::Equal);
        assert_eq!(b.delay(2, None, 0.0), 200 * MS);
        assert_eq!(b.delay(2, None, 0.5), 300 * MS);
        assert_eq!(b.delay(30, None, 0.0), 5_000 * MS);
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay() {
        let b = backoff(Jitter::Decorrelated);
        // First retry: between base and 3 * base.
        assert_eq!(b.delay(0, None, 0.0), 100 * MS);
        assert_eq!(b.delay(0, None, 0.5), 200 * MS);
        // Then: between base and 3 * previous, capped.
        assert_eq!(b.delay(7, Some(1_000 * MS), 0.5), 1_550 * MS);
        assert_eq!(b.delay(7, Some(9_000 * MS), 0.9), 10_000 * MS);
        // A previous delay below base / 3 leaves no room above base.
        assert_eq!(b.delay(1, Some(MS), 0.9), 100 * MS);
    }

    #[test]
    fn random_out_of_range_is_clamped() {
        let b = backoff(Jitter::Full);
        assert_eq!(b.delay(0, None, f64::NAN), Duration::ZERO);
        assert_eq!(b.delay(0, None, -3.0), Duration::ZERO);
        assert_eq!(b.delay(0, None, 7.0), 100 * MS);
        assert_eq!(b.delay(0, None, f64::INFINITY), 100 * MS);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let b = Backoff::new(Duration::MAX, f64::MAX, Duration::MAX, jitter).unwrap();
            for attempt in [0, 1, 64, u32::MAX] {
                for random in [0.0, 0.5, 0.999_999_999] {
                    let d = b.delay(attempt, Some(Duration::MAX), random);
                    assert!(d <= Duration::MAX);
                }
            }
            assert_eq!(b.exponential(u32::MAX), Duration::MAX);
        }
    }

    #[test]
    fn clamped_repairs_invalid_values() {
        let b = Backoff::clamped(Duration::ZERO, f64::NAN, Duration::ZERO, Jitter::None);
        assert_eq!(b.base(), Duration::from_nanos(1));
        assert_eq!(b.multiplier(), 1.0);
        assert_eq!(b.max(), Duration::from_nanos(1));
        let valid = backoff(Jitter::Equal);
        assert_eq!(
            Backoff::clamped(100 * MS, 2.0, 10_000 * MS, Jitter::Equal),
            valid
        );
        assert_eq!(
            Backoff::clamped(MS, f64::INFINITY, MS, Jitter::None).multiplier(),
            f64::MAX
        );
    }

    #[test]
    fn default_matches_the_retry_defaults() {
        assert_eq!(Backoff::default(), backoff(Jitter::Full));
    }

    #[test]
    fn jitter_serde_names() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let json = serde_json::to_string(&jitter).unwrap();
            assert_eq!(json, format!("\"{jitter}\""));
            assert_eq!(serde_json::from_str::<Jitter>(&json).unwrap(), jitter);
        }
        assert_eq!(Jitter::default(), Jitter::Full);
        assert!(serde_json::from_str::<Jitter>("\"Full\"").is_err());
    }
}
