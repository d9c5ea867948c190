//! HTTP status lists: the `statuses` keys of the breaker and retry configs.
//!
//! [`StatusPattern`] is one entry (`503`, or a class like `"5xx"`); [`Statuses`] a validated list
//! of them, compiled to a bit set so that a lookup is one load and a mask.

use crate::config::InvalidConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

// === impl StatusPattern ===

/// One entry of `statuses`: an HTTP status (`503`) or a whole class (`"5xx"`).
///
/// In config files, a number or a string: `statuses = [408, 429, "5xx"]`.
///
/// ```
/// use breakerbox::status::StatusPattern;
///
/// let class: StatusPattern = "5xx".parse()?;
/// assert_eq!(class, StatusPattern::Class(5));
/// assert!(class.matches(503));
/// assert_eq!("429".parse::<StatusPattern>()?, StatusPattern::Code(429));
/// # Ok::<(), breakerbox::status::InvalidStatusPattern>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusPattern {
    /// Exactly this status.
    Code(u16),
    /// Every status of this class: `Class(5)` is 500 to 599.
    Class(u8),
}

impl StatusPattern {
    /// Whether `status` is this code or in this class.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusPattern::Code(code) => status == code,
            StatusPattern::Class(class) => status / 100 == u16::from(class),
        }
    }

    /// Whether this is an error status or class: 400..=599, `4xx` or `5xx`.
    fn is_error(self) -> bool {
        match self {
            StatusPattern::Code(code) => (400..=599).contains(&code),
            StatusPattern::Class(class) => (4..=5).contains(&class),
        }
    }
}

impl From<u16> for StatusPattern {
    fn from(code: u16) -> Self {
        StatusPattern::Code(code)
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPattern::Code(code) => write!(f, "{code}"),
            StatusPattern::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// A string that is neither a status number nor a class like `"5xx"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid status {0:?}: write a number like 503 or a class like \"5xx\"")]
pub struct InvalidStatusPattern(String);

impl FromStr for StatusPattern {
    type Err = InvalidStatusPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidStatusPattern(s.to_owned());
        match s.as_bytes() {
            [class @ b'0'..=b'9', b'x' | b'X', b'x' | b'X'] => {
                Ok(StatusPattern::Class(class - b'0'))
            }
            digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                s.parse().map(StatusPattern::Code).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        }
    }
}

impl Serialize for StatusPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusPattern::Code(code) => s.serialize_u16(*code),
            StatusPattern::Class(_) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for StatusPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = StatusPattern;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status like 503 or a class like \"5xx\"")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u16::try_from(v)
                    .map(StatusPattern::Code)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u16::try_from(v)
                    .map(StatusPattern::Code)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }

        d.deserialize_any(Visitor)
    }
}

// === impl StatusSet ===

/// `statuses` compiled to a bit set over 100..=599, small and `Copy` so that every retry run can
/// carry one without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusSet {
    bits: [u64; 8],
}

impl StatusSet {
    const FIRST: u16 = 100;
    const LAST: u16 = 599;

    /// Adds `first..=last`, ignoring the part outside 100..=599 (validation reports it).
    fn insert_range(&mut self, first: u16, last: u16) {
        let (first, last) = (first.max(Self::FIRST), last.min(Self::LAST));
        let mut i = first;
        while i <= last {
            let offset = i - Self::FIRST;
            let (word, bit) = (usize::from(offset / 64), offset % 64);
            // Set bits `bit..bit + width` of this word at once.
            let width = (last - i + 1).min(64 - bit);
            let mask = if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << bit
            };
            self.bits[word] |= mask;
            i += width;
        }
    }

    #[inline]
    pub(crate) fn contains(&self, status: u16) -> bool {
        if !(Self::FIRST..=Self::LAST).contains(&status) {
            return false;
        }
        let offset = status - Self::FIRST;
        self.bits[usize::from(offset / 64)] & (1 << (offset % 64)) != 0
    }
}

// === impl Statuses ===

/// A list of HTTP error statuses, as configured (`statuses = [408, 429, "5xx"]`), compiled for
/// lookups.
///
/// Only error statuses may be listed: codes in 400..=599 and the classes `"4xx"` and `"5xx"`. A
/// 1xx, 2xx or 3xx answer is never a failure to count or a reason to retry.
///
/// ```
/// use breakerbox::status::{StatusPattern, Statuses};
///
/// let statuses = Statuses::new([StatusPattern::Code(429), StatusPattern::Class(5)])?;
/// assert!(statuses.contains(503));
/// assert!(!statuses.contains(404));
/// assert!(Statuses::new([StatusPattern::Class(2)]).is_err());
/// # Ok::<(), breakerbox::InvalidConfig>(())
/// ```
#[derive(Debug, Clone)]
pub struct Statuses {
    patterns: Vec<StatusPattern>,
    set: StatusSet,
}

impl Statuses {
    /// A validated list: every entry an error status (see the type's docs).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming `statuses` and the first entry that is not an error status.
    pub fn new(patterns: impl IntoIterator<Item = StatusPattern>) -> Result<Self, InvalidConfig> {
        let statuses = Self::unchecked(patterns.into_iter().collect());
        statuses.validate()?;
        Ok(statuses)
    }

    /// 408 and every 5xx: the breaker's default (a 429 says "slower", not "broken").
    pub fn breaker_default() -> Self {
        Self::unchecked(vec![StatusPattern::Code(408), StatusPattern::Class(5)])
    }

    /// 408, 429 and every 5xx: the retry policy's default.
    pub fn default_errors() -> Self {
        Self::unchecked(vec![
            StatusPattern::Code(408),
            StatusPattern::Code(429),
            StatusPattern::Class(5),
        ])
    }

    pub(crate) fn unchecked(patterns: Vec<StatusPattern>) -> Self {
        let mut set = StatusSet::default();
        for pattern in &patterns {
            match *pattern {
                StatusPattern::Code(code) => set.insert_range(code, code),
                StatusPattern::Class(class) => {
                    let first = u16::from(class) * 100;
                    set.insert_range(first, first + 99);
                }
            }
        }
        Self { patterns, set }
    }

    /// The entries, as configured.
    pub fn patterns(&self) -> &[StatusPattern] {
        &self.patterns
    }

    /// The compiled set, `Copy`.
    pub(crate) fn set(&self) -> StatusSet {
        self.set
    }

    /// Whether `status` is listed.
    #[inline]
    pub fn contains(&self, status: u16) -> bool {
        self.set.contains(status)
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        match self.patterns.iter().find(|s| !s.is_error()) {
            Some(bad) => Err(InvalidConfig::new(
                "statuses",
                bad,
                "must be error statuses: codes in 400..=599 or the classes \"4xx\" and \"5xx\"",
            )),
            None => Ok(()),
        }
    }
}

impl Default for Statuses {
    fn default() -> Self {
        Self::default_errors()
    }
}

impl PartialEq for Statuses {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Serialize for Statuses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(s)
    }
}

/// Reads the list only; the config that holds it validates it, so that the error names the
/// config's own field path.
impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<StatusPattern>::deserialize(d).map(Self::unchecked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_set_matches_the_patterns() {
        let patterns = [
            vec![
                StatusPattern::Code(408),
                StatusPattern::Code(429),
                StatusPattern::Class(5),
            ],
            vec![
                StatusPattern::Class(1),
                StatusPattern::Code(163),
                StatusPattern::Code(164),
            ],
            vec![
                StatusPattern::Code(100),
                StatusPattern::Code(599),
                StatusPattern::Class(4),
            ],
            vec![
                StatusPattern::Code(700),
                StatusPattern::Class(9),
                StatusPattern::Class(0),
            ],
            vec![
                StatusPattern::Code(99),
                StatusPattern::Code(600),
                StatusPattern::Class(6),
            ],
            vec![],
        ];
        for statuses in patterns {
            let set = Statuses::unchecked(statuses.clone());
            for status in 0..=1000 {
                assert_eq!(
                    set.contains(status),
                    (100..=599).contains(&status) && statuses.iter().any(|p| p.matches(status)),
                    "{statuses:?} {status}"
                );
            }
        }
    }

    #[test]
    fn status_pattern_parsing() {
        assert_eq!("4xx".parse(), Ok(StatusPattern::Class(4)));
        assert_eq!("0503".parse(), Ok(StatusPattern::Code(503)));
        assert_eq!(StatusPattern::from(418), StatusPattern::Code(418));
        for bad in ["", "5x", "xx5", "five", "5xxx", "-1", "99999", "+5"] {
            assert!(bad.parse::<StatusPattern>().is_err(), "{bad}");
        }
        assert_eq!(StatusPattern::Class(2).to_string(), "2xx");
    }

    #[test]
    fn only_error_statuses_are_valid() {
        for ok in [
            vec![StatusPattern::Code(400)],
            vec![StatusPattern::Code(599)],
            vec![StatusPattern::Class(4), StatusPattern::Class(5)],
            vec![],
        ] {
            assert!(Statuses::new(ok.clone()).is_ok(), "{ok:?}");
        }
        for bad in [
            StatusPattern::Code(399),
            StatusPattern::Code(200),
            StatusPattern::Code(600),
            StatusPattern::Class(2),
            StatusPattern::Class(3),
            StatusPattern::Class(6),
        ] {
            let err = Statuses::new([StatusPattern::Code(503), bad]).unwrap_err();
            assert_eq!(
                (err.field(), err.value()),
                ("statuses", bad.to_string().as_str())
            );
        }
    }
}
