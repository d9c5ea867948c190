//! Call counts kept per thread and published to the recorder in batches.
//!
//! Every call through a breaker bumps `circuit_breaker_calls_total`. Bumping the recorder's
//! counter directly would make it the one atomic that every thread calling the breaker writes:
//! under load its cache line travels between cores on every call. Instead each breaker keeps a
//! few stripes of counts, one per thread for the first threads of the process (their owner
//! alone writes them, with a plain load and store: no locked instruction) and one shared
//! stripe for the threads after those (an atomic add). A stripe publishes what it has not
//! published yet each time its count reaches a multiple of [`BATCH`] (one test of the count it
//! just wrote, no second load); a flush (every state change, every snapshot, dropping the
//! breaker, or an explicit `flush_metrics`) publishes the rest.
//!
//! What a scrape may miss: at most `BATCH - 1` calls per result per stripe, published at the
//! next batch or flush. Nothing is ever lost or counted twice: what is published is the
//! difference between a stripe's count and what it published before, claimed by a
//! compare-and-swap.

// std's atomics even under `--cfg loom`: the counts are no part of the breaker's decisions, and
// the loom models stay small (tested below with real threads instead).
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Result indexes.
pub(crate) const SUCCESS: usize = 0;
pub(crate) const FAILURE: usize = 1;
pub(crate) const IGNORED: usize = 2;
pub(crate) const REJECTED: usize = 3;
const RESULTS: usize = 4;

/// A stripe publishes at every multiple of this count: it runs at most `BATCH - 1` calls ahead
/// of what it published.
pub(crate) const BATCH: u64 = 32;

/// The most threads that get a stripe of their own.
const MAX_OWNED: usize = 8;

/// One cache line: the counts of one thread (or of the shared stripe) and what was published of
/// them.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Stripe {
    counts: [AtomicU64; RESULTS],
    published: [AtomicU64; RESULTS],
}

/// The call counts of one breaker.
#[derive(Debug)]
pub(crate) struct CallCounts {
    /// `owned()` stripes owned by threads `0..owned()`, then the shared one.
    stripes: Box<[Stripe]>,
}

/// This process's number for the calling thread: 0 for the first thread that counts a call, 1
/// for the next… Never reused, so a stripe has one owner for the life of the process.
#[inline]
fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    // A thread being torn down (a call from another thread-local's destructor) counts in the
    // shared stripe.
    NUMBER.try_with(|n| *n).unwrap_or(usize::MAX)
}

/// Threads with a stripe of their own: as many as the machine runs at once (a runtime's
/// workers), at most [`MAX_OWNED`]. Each costs a breaker a cache line; later threads share one.
fn owned_stripes() -> usize {
    static OWNED: OnceLock<usize> = OnceLock::new();
    *OWNED.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.clamp(1, MAX_OWNED)
    })
}

impl CallCounts {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..=owned_stripes()).map(|_| Stripe::default()).collect(),
        }
    }

    fn owned(&self) -> usize {
        self.stripes.len() - 1
    }

    /// Counts one call with `result`; `publish(result, n)` adds `n` to the recorder's counter.
    #[inline]
    pub(crate) fn add(&self, result: usize, publish: impl Fn(usize, u64)) {
        let number = thread_number();
        let (stripe, count) = if number < self.owned() {
            let stripe = &self.stripes[number];
            // Only this thread writes this count: a plain read and write, no locked instruction.
            let count = stripe.counts[result].load(Ordering::Relaxed) + 1;
            stripe.counts[result].store(count, Ordering::Relaxed);
            (stripe, count)
        } else {
            let stripe = &self.stripes[self.owned()];
            (
                stripe,
                stripe.counts[result].fetch_add(1, Ordering::Relaxed) + 1,
            )
        };
        if count % BATCH == 0 {
            Self::publish(stripe, result, &publish);
        }
    }

    /// Publishes what `stripe` counted of `result` beyond what it published.
    #[cold]
    fn publish(stripe: &Stripe, result: usize, publish: &impl Fn(usize, u64)) {
        let mut published = stripe.published[result].load(Ordering::Acquire);
        loop {
            let count = stripe.counts[result].load(Ordering::Acquire);
            if count <= published {
                return;
            }
            match stripe.published[result].compare_exchange_weak(
                published,
                count,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return publish(result, count - published),
                Err(actual) => published = actual,
            }
        }
    }

    /// Publishes every count of every stripe.
    pub(crate) fn flush(&self, publish: impl Fn(usize, u64)) {
        for stripe in self.stripes.iter() {
            for result in 0..RESULTS {
                Self::publish(stripe, result, &publish);
            }
        }
    }

    /// Calls counted with `result` so far, published or not.
    #[cfg(test)]
    fn total(&self, result: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.counts[result].load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn batches_publish_every_call_once() {
        let counts = CallCounts::new();
        let published = AtomicU64::new(0);
        let publish = |_: usize, n: u64| {
            published.fetch_add(n, Ordering::Relaxed);
        };
        for _ in 0..BATCH - 1 {
            counts.add(SUCCESS, publish);
        }
        assert_eq!(
            published.load(Ordering::Relaxed),
            0,
            "a batch is not full yet"
        );
        counts.add(SUCCESS, publish);
        assert_eq!(published.load(Ordering::Relaxed), BATCH);
        counts.add(SUCCESS, publish);
        counts.flush(publish);
        assert_eq!(published.load(Ordering::Relaxed), BATCH + 1);
        counts.flush(publish);
        assert_eq!(
            published.load(Ordering::Relaxed),
            BATCH + 1,
            "nothing twice"
        );
    }

    #[test]
    fn many_threads_lose_nothing_and_count_nothing_twice() {
        // More threads than owned stripes, so the shared stripe is exercised too, with flushes
        // racing the owners.
        let counts = Arc::new(CallCounts::new());
        let published: Arc<[AtomicU64; RESULTS]> = Arc::new(Default::default());
        let threads = counts.owned() + 4;
        let per_thread = 10_000u64;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (counts, published) = (counts.clone(), published.clone());
                scope.spawn(move || {
                    let publish = |r: usize, n: u64| {
                        published[r].fetch_add(n, Ordering::Relaxed);
                    };
                    for i in 0..per_thread {
                        counts.add(((t as u64 + i) % 4) as usize, publish);
                        if i % 1000 == 0 {
                            counts.flush(publish);
                        }
                    }
                });
            }
        });
        counts.flush(|r, n| {
            published[r].fetch_add(n, Ordering::Relaxed);
        });
        let total: u64 = published.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        assert_eq!(total, threads as u64 * per_thread);
        for r in 0..RESULTS {
            assert_eq!(published[r].load(Ordering::Relaxed), counts.total(r));
        }
    }
}
