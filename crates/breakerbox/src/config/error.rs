//! Configuration errors.

use std::borrow::Cow;
use std::fmt;

/// A configuration value that breakerbox refuses, naming the field and the value.
///
/// Returned by every config builder's `build`, by [`CircuitBreaker`](crate::CircuitBreaker)
/// construction and by the TOML loaders; nothing is validated lazily.
///
/// ```
/// use breakerbox::BreakerConfig;
///
/// let err = BreakerConfig::builder().failure_rate(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "failure_rate");
/// assert_eq!(err.value(), "1.5");
/// assert_eq!(err.to_string(), "invalid config: `failure_rate` = 1.5: must be in (0, 1]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    field: String,
    value: String,
    reason: Cow<'static, str>,
}

impl InvalidConfig {
    pub(crate) fn new(
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field with the table it sits in, e.g. `breakers[2]` + `failure_rate`
    /// becomes `breakers[2].failure_rate`.
    pub(crate) fn within(mut self, table: &str) -> Self {
        self.field = format!("{table}.{}", self.field);
        self
    }

    /// The offending field, as its config key (with its table path when loaded from a file).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The offending value, as it was given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the value must be instead.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid config: `{}` = {}: {}",
            self.field, self.value, self.reason
        )
    }
}

impl std::error::Error for InvalidConfig {}

/// Loading a TOML config failed: a file could not be read, or the text is not valid TOML of the
/// expected shape (unknown keys, wrong types), or a value in it is invalid. The message names
/// the key and its line; for an invalid value it carries the [`InvalidConfig`] text.
///
/// ```
/// use breakerbox::BoxConfig;
///
/// let err = BoxConfig::from_toml("[defaults]\nconsecutive_failures = -3").unwrap_err();
/// let text = err.to_string();
/// assert!(text.starts_with("invalid config: "), "{text}");
/// assert!(text.contains("consecutive_failures"), "{text}");
///
/// let err = BoxConfig::from_toml_file("no/such/profile.toml").unwrap_err();
/// assert!(err.to_string().starts_with("cannot read config file no/such/profile.toml"));
/// ```
#[cfg(feature = "toml")]
#[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid config.
    #[error("config file {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, and where.
        #[source]
        source: toml::de::Error,
    },
    /// The text is not a valid config.
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
}
