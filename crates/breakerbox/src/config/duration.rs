//! Durations in config files, written the way people say them: `"60s"`, `"2m"`, `"1h 30m"`,
//! `"250ms"`. Serialized back in the same form.

use serde::{Deserialize, Deserializer, Serializer, de};
use std::time::Duration;

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        de::Error::custom(format_args!(
            "invalid duration {text:?} ({e}); write it like \"60s\", \"2m\" or \"250ms\""
        ))
    })
}

/// The same, for `Option<Duration>` fields (absent means `None`).
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
