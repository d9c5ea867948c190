//! How a [`CircuitBreaker`](super::CircuitBreaker) service holds its engine breaker.

use super::guard::Guard;
use breakerbox::CircuitOpen;
use breakerbox::circuit_breaker::BreakerHolder;
use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The engine breaker a [`CircuitBreaker`](super::CircuitBreaker) service records into: an owned
/// handle, or a `&'static` reference.
///
/// A response future outlives the `&mut self` of `call`, so it must own its way back to the
/// breaker. With an owned breaker that is one reference-count increment and decrement per call.
/// So that the clones of a service (one per task or connection, on many threads) do not all
/// count on one shared counter, whose cache line would then travel between their cores on
/// every call, the handle keeps a few *leases* of the breaker, each with its own counter on a
/// cache line of its own, and each clone takes the next lease in turn. A breaker that lives as
/// long as the program (in a `static`, say) needs no counting at all: the future keeps a plain
/// reference.
///
pub(crate) struct BreakerHandle(Handle);

enum Handle {
    Owned {
        /// The lease this clone's permits hold.
        lease: Arc<Lease>,
        leases: Arc<Leases>,
    },
    Static(&'static breakerbox::CircuitBreaker),
}

/// A clone of the engine handle whose `Arc` reference count sits alone on its cache line (the
/// `Arc`'s counts come first, the aligned lease starts on the next line).
#[repr(align(64))]
pub(crate) struct Lease(breakerbox::CircuitBreaker);

impl BreakerHolder for Lease {
    #[inline]
    fn breaker(&self) -> &breakerbox::CircuitBreaker {
        &self.0
    }
}

/// Every lease of one breaker, handed to clones in turn.
struct Leases {
    all: Box<[Arc<Lease>]>,
    next: AtomicUsize,
}

/// As many leases as the threads that can run at once (at most 16): more would only cost memory.
fn lease_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 16)
    })
}

impl Leases {
    fn new(breaker: &breakerbox::CircuitBreaker, count: usize) -> Self {
        Self {
            all: (0..count.max(1))
                .map(|_| Arc::new(Lease(breaker.clone())))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> Arc<Lease> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.all.len();
        self.all[i].clone()
    }
}

impl BreakerHandle {
    /// The engine breaker.
    pub(crate) fn get(&self) -> &breakerbox::CircuitBreaker {
        match &self.0 {
            Handle::Owned { lease, .. } => &lease.0,
            Handle::Static(breaker) => breaker,
        }
    }

    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<Guard, CircuitOpen> {
        match &self.0 {
            Handle::Owned { lease, .. } => {
                breakerbox::CircuitBreaker::try_acquire_by(lease).map(Guard::leased)
            }
            Handle::Static(breaker) => breaker.try_acquire().map(Guard::of_static),
        }
    }

    fn owned(breaker: &breakerbox::CircuitBreaker, leases: usize) -> Self {
        let leases = Arc::new(Leases::new(breaker, leases));
        Self(Handle::Owned {
            lease: leases.next(),
            leases,
        })
    }
}

impl Clone for BreakerHandle {
    /// Another handle to the same breaker; an owned one takes the next lease.
    fn clone(&self) -> Self {
        match &self.0 {
            Handle::Owned { leases, .. } => Self(Handle::Owned {
                lease: leases.next(),
                leases: leases.clone(),
            }),
            Handle::Static(breaker) => Self(Handle::Static(breaker)),
        }
    }
}

impl From<breakerbox::CircuitBreaker> for BreakerHandle {
    fn from(breaker: breakerbox::CircuitBreaker) -> Self {
        Self::owned(&breaker, lease_count())
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

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox::BreakerConfig;

    fn lease_of(handle: &BreakerHandle) -> *const Lease {
        match &handle.0 {
            Handle::Owned { lease, .. } => Arc::as_ptr(lease),
            Handle::Static(_) => panic!("an owned handle"),
        }
    }

    #[test]
    fn clones_take_the_leases_in_turn_and_share_one_breaker() {
        let breaker = breakerbox::CircuitBreaker::new("musicbrainz", BreakerConfig::default());
        let first = BreakerHandle::owned(&breaker, 3);
        let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
        let leases: Vec<_> = std::iter::once(&first)
            .chain(&clones)
            .map(lease_of)
            .collect();
        // Three leases, handed out in turn: no two of three consecutive clones share one.
        assert_eq!(leases[0], leases[3]);
        assert_eq!(leases[1], leases[4]);
        assert_eq!(leases[2], leases[5]);
        assert!(leases[0] != leases[1] && leases[1] != leases[2] && leases[0] != leases[2]);
        for handle in &clones {
            assert_eq!(handle.get().name(), "musicbrainz");
        }
        // A permit through any clone reports to the one breaker.
        clones[1].get().force_open();
        assert!(clones[4].try_acquire().is_err());
    }

    #[test]
    fn an_owned_breaker_gets_a_lease_per_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let breaker = breakerbox::CircuitBreaker::new("lastfm", BreakerConfig::default());
        let first = BreakerHandle::from(breaker);
        let clones: Vec<_> = (0..cpus.min(16)).map(|_| first.clone()).collect();
        let mut leases: Vec<_> = clones.iter().map(lease_of).collect();
        leases.sort();
        leases.dedup();
        // As many clones as CPUs (up to 16) count on as many different leases.
        assert_eq!(leases.len(), cpus.clamp(1, 16));
    }

    #[test]
    fn a_lease_count_sits_alone_on_its_cache_line() {
        // The Arc's counts take the first 16 bytes of its allocation; the lease starts 64 bytes
        // in, so nothing else is written on the counts' line.
        assert_eq!(std::mem::align_of::<Lease>(), 64);
        assert_eq!(std::mem::size_of::<Lease>(), 64);
    }
}
