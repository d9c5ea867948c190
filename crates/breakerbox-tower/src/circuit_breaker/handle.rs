//! How a [`CircuitBreaker`](super::CircuitBreaker) service holds its engine breaker.

use breakerbox::{CircuitOpen, Outcome, OwnedPermit, Permit};
use std::fmt;

/// The engine breaker a [`CircuitBreaker`](super::CircuitBreaker) service records into: an owned
/// handle, or a `&'static` reference.
///
/// A response future outlives the `&mut self` of `call`, so it must own its way back to the
/// breaker: with an owned handle that is one reference-count increment and decrement per call
/// (on a counter every clone of the service shares, so they contend under parallel load). A
/// breaker that lives as long as the program (in a `static`, say) needs neither: the future
/// keeps a plain reference.
///
/// ```
/// use breakerbox::{BreakerConfig, CircuitBreaker};
/// use breakerbox_tower::CircuitBreakerLayer;
/// use std::sync::LazyLock;
///
/// static SPOTIFY: LazyLock<CircuitBreaker> =
///     LazyLock::new(|| CircuitBreaker::new("spotify", BreakerConfig::default()));
///
/// let layer = CircuitBreakerLayer::from_breaker(LazyLock::force(&SPOTIFY));
/// assert_eq!(layer.breaker().name(), "spotify");
/// ```
#[derive(Clone)]
pub struct BreakerHandle(Handle);

#[derive(Clone)]
enum Handle {
    Owned(breakerbox::CircuitBreaker),
    Static(&'static breakerbox::CircuitBreaker),
}

impl BreakerHandle {
    /// The engine breaker.
    pub fn get(&self) -> &breakerbox::CircuitBreaker {
        match &self.0 {
            Handle::Owned(breaker) => breaker,
            Handle::Static(breaker) => breaker,
        }
    }

    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<AnyPermit, CircuitOpen> {
        match &self.0 {
            Handle::Owned(breaker) => breaker.try_acquire_owned().map(AnyPermit::Owned),
            Handle::Static(breaker) => breaker.try_acquire().map(AnyPermit::Static),
        }
    }
}

impl From<breakerbox::CircuitBreaker> for BreakerHandle {
    fn from(breaker: breakerbox::CircuitBreaker) -> Self {
        Self(Handle::Owned(breaker))
    }
}

impl From<&'static breakerbox::CircuitBreaker> for BreakerHandle {
    fn from(breaker: &'static breakerbox::CircuitBreaker) -> Self {
        Self(Handle::Static(breaker))
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.get(), f)
    }
}

/// A permit from either kind of handle. Dropped unrecorded, it records nothing and frees its
/// HalfOpen slot, as the engine's permits do.
#[derive(Debug)]
pub(crate) enum AnyPermit {
    Owned(OwnedPermit),
    Static(Permit<'static>),
}

impl AnyPermit {
    #[inline]
    pub(crate) fn record(self, outcome: Outcome) {
        match self {
            AnyPermit::Owned(permit) => permit.record(outcome),
            AnyPermit::Static(permit) => permit.record(outcome),
        }
    }
}
