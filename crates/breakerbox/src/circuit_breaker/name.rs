//! Breaker names.

use serde::{Serialize, Serializer};
use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A breaker's name, as errors, events, logs and metrics show it: a `&'static str` or a shared
/// `Arc<str>`, so that a rejection can carry it without copying it. A name written in the
/// source (`"spotify"`) costs nothing to clone; one built at run time (a host from a request, a
/// name from a config file) is shared behind one reference count.
#[derive(Clone)]
pub struct BreakerName(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl BreakerName {
    /// The name.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(name) => name,
            Repr::Shared(name) => name,
        }
    }
}

impl Deref for BreakerName {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for BreakerName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for BreakerName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for BreakerName {
    fn from(name: &'static str) -> Self {
        Self(Repr::Static(name))
    }
}

impl From<String> for BreakerName {
    fn from(name: String) -> Self {
        Self(Repr::Shared(name.into()))
    }
}

impl From<Box<str>> for BreakerName {
    fn from(name: Box<str>) -> Self {
        Self(Repr::Shared(name.into()))
    }
}

impl From<Arc<str>> for BreakerName {
    fn from(name: Arc<str>) -> Self {
        Self(Repr::Shared(name))
    }
}

impl From<&String> for BreakerName {
    fn from(name: &String) -> Self {
        Self(Repr::Shared(name.as_str().into()))
    }
}

impl From<Cow<'static, str>> for BreakerName {
    fn from(name: Cow<'static, str>) -> Self {
        match name {
            Cow::Borrowed(name) => name.into(),
            Cow::Owned(name) => name.into(),
        }
    }
}

impl PartialEq for BreakerName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BreakerName {}

impl PartialEq<str> for BreakerName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for BreakerName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for BreakerName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BreakerName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_shared_names_read_and_compare_alike() {
        let fixed = BreakerName::from("spotify");
        let built = BreakerName::from(String::from("spotify"));
        assert_eq!(fixed, built);
        assert_eq!(&*fixed, "spotify");
        assert_eq!(built.to_string(), "spotify");
        assert_eq!(format!("{fixed:?}"), "\"spotify\"");
    }

    #[test]
    fn names_compare_by_their_text() {
        let spotify = BreakerName::from("spotify");
        let discogs = BreakerName::from(String::from("discogs"));
        assert_ne!(spotify, discogs);
        assert!(spotify == *"spotify" && spotify == "spotify");
        assert!(spotify != *"discogs" && spotify != "discogs");
        let text: &str = spotify.as_ref();
        assert_eq!(text, "spotify");
    }

    /// `Borrow<str>` promises that a name hashes and compares like its text, so a map keyed by
    /// names is looked up with a plain `&str`.
    #[test]
    fn a_map_keyed_by_names_is_looked_up_by_text() {
        let mut rejections = std::collections::HashMap::new();
        rejections.insert(BreakerName::from("spotify"), 3);
        rejections.insert(BreakerName::from(String::from("api.discogs.com")), 5);
        assert_eq!(rejections.get("spotify"), Some(&3));
        assert_eq!(rejections.get("api.discogs.com"), Some(&5));
        assert_eq!(rejections.get("musicbrainz"), None);
    }
}
