//! Numbers in config files, read with errors that say what the key expects in words (never a
//! Rust type name): counts are whole numbers, rates and factors any number, thresholds a value
//! or `false`.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A number as a key holds it: how it reads from TOML's integers and floats, and what a wrong
/// value is told it should be.
pub(crate) trait Number: Sized + Copy + Serialize {
    /// What the key expects, in words.
    const EXPECTING: &'static str;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
}

impl Number for u32 {
    const EXPECTING: &'static str = "a whole number from 0 to 4294967295";
    fn from_i64(v: i64) -> Option<Self> {
        u32::try_from(v).ok()
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
}

impl Number for usize {
    const EXPECTING: &'static str = "a whole number of at least 0";
    fn from_i64(v: i64) -> Option<Self> {
        usize::try_from(v).ok()
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
}

impl Number for f64 {
    const EXPECTING: &'static str = "a number";
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

/// Reads a `T`, or `false` when `toggle` (an optional rule turned off), or `true` refused.
struct NumberVisitor<T> {
    toggle: bool,
    _t: PhantomData<T>,
}

impl<T: Number> Visitor<'_> for NumberVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)?;
        if self.toggle {
            f.write_str(", or false to turn the rule off")?;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match (self.toggle, v) {
            (true, false) => Ok(None),
            (true, true) => Err(E::custom(
                "`true` is not a threshold: give a number, or `false` to turn the rule off",
            )),
            (false, _) => Err(E::invalid_type(Unexpected::Bool(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
    }
}

fn read<'de, T: Number, D: Deserializer<'de>>(d: D, toggle: bool) -> Result<Option<T>, D::Error> {
    d.deserialize_any(NumberVisitor::<T> {
        toggle,
        _t: PhantomData,
    })
}

/// A plain number key.
pub(crate) mod plain {
    use super::*;

    pub(crate) fn serialize<T: Number, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub(crate) fn deserialize<'de, T: Number, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        Ok(read(d, false)?.expect("a plain number is never turned off"))
    }

    /// An override: absent inherits (`None`), a value sets.
    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<T: Number, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => v.serialize(s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, T: Number, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            read(d, false)
        }
    }
}

/// An optional rule's threshold: a value sets the rule, `false` turns it off (TOML has no null).
pub(crate) mod toggle {
    use super::*;

    pub(crate) fn serialize<T: Number, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_bool(false),
        }
    }

    pub(crate) fn deserialize<'de, T: Number, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        read(d, true)
    }

    /// An override of an optional rule: absent inherits, `false` turns off, a value sets.
    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<T: Number, S: Serializer>(
            v: &Option<Option<T>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(inner) => super::serialize(inner, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, T: Number, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Option<T>>, D::Error> {
            read(d, true).map(Some)
        }
    }
}
