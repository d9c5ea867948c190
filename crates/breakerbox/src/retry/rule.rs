//! A breaker rule's own retry policy: `retry = { ... }` merged over the box's `[retry]`, or
//! `retry = false`.

use super::BudgetConfig;
use super::config::{RetryConfig, budget_or_false, duration_or_false};
use crate::backoff::Jitter;
use crate::config::{InvalidConfig, duration, number};
use crate::status::Statuses;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A rule's `retry` key: retries off for the rule's breaker, or the keys it changes in the
/// box's `[retry]` policy (absent keys inherit it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RuleRetry {
    Off,
    Merge(Box<RetryOverride>),
}

/// The keys of a `[retry]` table a rule sets; `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryOverride {
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    max_retries: Option<u32>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    base_delay: Option<Duration>,
    #[serde(
        default,
        with = "number::plain::option",
        skip_serializing_if = "Option::is_none"
    )]
    multiplier: Option<f64>,
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    max_delay: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<Jitter>,
    #[serde(
        default,
        with = "duration_or_false::option",
        skip_serializing_if = "Option::is_none"
    )]
    max_elapsed: Option<Option<Duration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_non_idempotent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    statuses: Option<Statuses>,
    #[serde(
        default,
        with = "budget_or_false::option",
        skip_serializing_if = "Option::is_none"
    )]
    budget: Option<Option<BudgetConfig>>,
}

impl RetryOverride {
    /// Every key of `config`: the rule's policy is `config`, whatever the box's.
    pub(crate) fn whole(config: RetryConfig) -> Self {
        Self {
            max_retries: Some(config.max_retries),
            base_delay: Some(config.base_delay),
            multiplier: Some(config.multiplier),
            max_delay: Some(config.max_delay),
            jitter: Some(config.jitter),
            max_elapsed: Some(config.max_elapsed),
            retry_non_idempotent: Some(config.retry_non_idempotent),
            statuses: Some(config.statuses),
            budget: Some(config.budget),
        }
    }
}

impl RuleRetry {
    /// The rule's policy over the box's `base`: `None` when retries are off.
    pub(crate) fn resolve(&self, base: &RetryConfig) -> Result<Option<RetryConfig>, InvalidConfig> {
        let over = match self {
            RuleRetry::Off => return Ok(None),
            RuleRetry::Merge(over) => over,
        };
        fn set<T: Clone>(slot: &mut T, over: &Option<T>) {
            if let Some(v) = over {
                *slot = v.clone();
            }
        }
        let mut c = base.clone();
        set(&mut c.max_retries, &over.max_retries);
        set(&mut c.base_delay, &over.base_delay);
        set(&mut c.multiplier, &over.multiplier);
        set(&mut c.max_delay, &over.max_delay);
        set(&mut c.jitter, &over.jitter);
        set(&mut c.max_elapsed, &over.max_elapsed);
        set(&mut c.retry_non_idempotent, &over.retry_non_idempotent);
        set(&mut c.statuses, &over.statuses);
        set(&mut c.budget, &over.budget);
        c.validate()?;
        Ok(Some(c))
    }
}

impl Serialize for RuleRetry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RuleRetry::Off => s.serialize_bool(false),
            RuleRetry::Merge(over) => over.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RuleRetry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl<'de> Visitor<'de> for V {
            type Value = RuleRetry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a retry table (keys of [retry] to change), or true / false")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(if v {
                    RuleRetry::Merge(Box::default())
                } else {
                    RuleRetry::Off
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RetryOverride::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|over| RuleRetry::Merge(Box::new(over)))
            }
        }

        d.deserialize_any(V)
    }
}
