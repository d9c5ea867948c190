//! Sliding windows over recorded outcomes, lock-free and of fixed size.
//!
//! Both windows keep counters of (calls, failures, slow calls) and answer, as part of recording,
//! the counts the window holds right after that record, so the trip check costs no second pass.
//!
//! Precision: for calls recorded one after another the counts are exact (the model-based tests
//! hold them to a reference). Under concurrency each record is still counted exactly once, with
//! three documented blurs: a count-based window may briefly report counts that mix two records in
//! flight (such a reading is detected and skipped, never acted on); in a time-based window a
//! record that races a bucket rotation may land in the newer bucket or, if its thread stalled for
//! a whole window, be dropped; and a record racing the clearing of the window (a reset, a close)
//! may land in the cleared window. None of them can trip a breaker by itself: a trip needs the
//! generation the call was admitted in to still be current. The run of consecutive failures has
//! no such blur: it is tagged with its generation.

use crate::sync::{AtomicU8, AtomicU64, Ordering};

/// Outcome counts held by a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// One outcome as a window sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    /// Boxed: a time window is larger than a count window, and count windows are the default.
    Time(Box<TimeWindow>),
}

impl Window {
    /// Records a sample at `now` (nanoseconds; only time-based windows read it) and returns the
    /// counts right after it, or `None` when no rate rule needs them: a concurrent record made
    /// the reading inconsistent, or (time-based) the window holds only plain successes.
    pub(crate) fn record(&self, now: u64, sample: Sample) -> Option<Counts> {
        match self {
            Window::Count(w) => w.record(sample),
            Window::Time(w) => w.record(now, sample),
        }
    }

    /// The counts the window holds at `now`.
    pub(crate) fn counts(&self, now: u64) -> Counts {
        match self {
            Window::Count(w) => w.counts(),
            Window::Time(w) => w.counts(now),
        }
    }

    /// Empties the window.
    pub(crate) fn clear(&self, now: u64) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(now),
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Window::Time(_))
    }
}

// === impl CountWindow ===

/// The last `size` outcomes, in a ring of one byte each, plus running totals packed in one word
/// (21 bits per counter) so that one `fetch_add` moves all three at once.
#[derive(Debug)]
pub(crate) struct CountWindow {
    ring: Box<[AtomicU8]>,
    next: AtomicU64,
    totals: AtomicU64,
    size: u64,
}

const PRESENT: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;
const FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

fn packed(slot: u8) -> u64 {
    u64::from(slot & PRESENT)
        | u64::from((slot & FAILED) >> 1) << FIELD_BITS
        | u64::from((slot & SLOW) >> 2) << (2 * FIELD_BITS)
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            ring: (0..size).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            totals: AtomicU64::new(0),
            size: u64::from(size),
        }
    }

    /// Whether one more plain success would leave the window exactly as it is: it is full of
    /// plain successes.
    #[inline]
    pub(crate) fn is_clean(&self) -> bool {
        self.totals.load(Ordering::Acquire) == self.size
    }

    fn record(&self, sample: Sample) -> Option<Counts> {
        if !sample.failure && !sample.slow {
            // Packed totals of a window full of plain successes: calls = size, nothing else.
            let clean = self.size;
            if self.totals.load(Ordering::Acquire) == clean {
                // The window holds `size` plain successes: one more leaves it exactly as it
                // is, so healthy traffic only reads (no write to a line every thread shares).
                return self.decode(clean);
            }
        }
        let slot =
            PRESENT | if sample.failure { FAILED } else { 0 } | if sample.slow { SLOW } else { 0 };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.size;
        // The index is < size, which came from a u32.
        let evicted = self.ring[i as usize].swap(slot, Ordering::AcqRel);
        // Adding (new - old) modulo 2^64 moves each packed field by its own difference.
        let delta = packed(slot).wrapping_sub(packed(evicted));
        let after = self
            .totals
            .fetch_add(delta, Ordering::AcqRel)
            .wrapping_add(delta);
        self.decode(after)
    }

    fn decode(&self, word: u64) -> Option<Counts> {
        let counts = Counts {
            calls: word & FIELD_MASK,
            failures: (word >> FIELD_BITS) & FIELD_MASK,
            slow: (word >> (2 * FIELD_BITS)) & FIELD_MASK,
        };
        // A racing record can leave a field transiently "negative" (borrowed from its
        // neighbour); every such reading shows a field larger than the window.
        let sane = counts.calls <= self.size
            && counts.failures <= counts.calls
            && counts.slow <= counts.calls
            && word >> (3 * FIELD_BITS) == 0;
        sane.then_some(counts)
    }

    fn counts(&self) -> Counts {
        self.decode(self.totals.load(Ordering::Acquire))
            .unwrap_or_default()
    }

    fn clear(&self) {
        for slot in self.ring.iter() {
            let evicted = slot.swap(0, Ordering::AcqRel);
            if evicted != 0 {
                self.totals.fetch_sub(packed(evicted), Ordering::AcqRel);
            }
        }
    }
}

// === impl Divider ===

/// Division by a number fixed at construction, by a multiplication: the time-based window
/// divides twice per record (the clock by the bucket length, the bucket index by the ring's
/// length), and a 64-bit division costs tens of cycles.
#[derive(Debug, Clone, Copy)]
struct Divider {
    d: u64,
    /// `(2^64 - 1) / d`.
    m: u64,
}

impl Divider {
    fn new(d: u64) -> Self {
        assert!(d > 0, "a divider is positive");
        Self { d, m: u64::MAX / d }
    }

    /// `n / d`, exactly. `n * m / 2^64` is at most `n / d` (as `m * d < 2^64`) and less by under
    /// `(n / 2^64) * (1 + 1 / d) < 2`, so at most two steps up reach the quotient.
    #[inline]
    fn div(self, n: u64) -> u64 {
        let mut q = ((u128::from(n) * u128::from(self.m)) >> 64) as u64;
        while n - q * self.d >= self.d {
            q += 1;
        }
        q
    }

    /// `n % d`, exactly.
    #[inline]
    fn rem(self, n: u64) -> u64 {
        n - self.div(n) * self.d
    }
}

// === impl TimeWindow ===

/// The outcomes of the last `buckets × bucket_nanos`, in a ring of buckets. Each bucket is one
/// word: a 12-bit tag (the bucket's index in time, modulo 4096) and three 17-bit counters. A
/// record compares tags to tell a live bucket from a stale one and replaces the stale one in the
/// same compare-and-swap, so rotation needs no lock.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    ring: Box<[AtomicU64]>,
    /// Nanoseconds per bucket.
    bucket_nanos: Divider,
    /// The ring's length.
    slots: Divider,
    /// The newest bucket index any record has reached.
    newest: AtomicU64,
    /// One more than the newest bucket index a failure or slow call was recorded in (0: none
    /// yet). While it lies a whole window back, the window holds only plain successes, which
    /// cannot trip a rate rule, so recording another skips summing the buckets.
    dirty: AtomicU64,
}

const TAG_SHIFT: u32 = 52;
const TAG_MASK: u64 = (1 << 12) - 1;
const COUNT_BITS: u32 = 17;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn tag(index: u64) -> u64 {
    index & TAG_MASK
}

fn word_tag(word: u64) -> u64 {
    word >> TAG_SHIFT
}

fn empty_bucket(index: u64) -> u64 {
    tag(index) << TAG_SHIFT
}

fn bucket_counts(word: u64) -> Counts {
    Counts {
        calls: word & COUNT_MASK,
        failures: (word >> COUNT_BITS) & COUNT_MASK,
        slow: (word >> (2 * COUNT_BITS)) & COUNT_MASK,
    }
}

fn bucket_add(word: u64, sample: Sample) -> u64 {
    let mut c = bucket_counts(word);
    if c.calls == COUNT_MASK {
        // A full bucket halves its counters: the rates it reports stay right, the absolute
        // counts (only shown past 131,071 calls per bucket) become an estimate.
        c.calls /= 2;
        c.failures /= 2;
        c.slow /= 2;
    }
    c.calls += 1;
    c.failures += u64::from(sample.failure);
    c.slow += u64::from(sample.slow);
    (word_tag(word) << TAG_SHIFT) | c.calls | c.failures << COUNT_BITS | c.slow << (2 * COUNT_BITS)
}

impl TimeWindow {
    pub(crate) fn new(window_nanos: u64, buckets: u32, now: u64) -> Self {
        let bucket_nanos = (window_nanos / u64::from(buckets)).max(1);
        let w = Self {
            ring: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            bucket_nanos: Divider::new(bucket_nanos),
            slots: Divider::new(u64::from(buckets)),
            newest: AtomicU64::new(0),
            dirty: AtomicU64::new(0),
        };
        w.clear(now);
        w
    }

    fn len(&self) -> u64 {
        self.ring.len() as u64
    }

    fn slot(&self, index: u64) -> &AtomicU64 {
        // The remainder is < len, which came from a u32.
        &self.ring[self.slots.rem(index) as usize]
    }

    pub(crate) fn record(&self, now: u64, sample: Sample) -> Option<Counts> {
        let index = self.bucket_nanos.div(now);
        let dirty = sample.failure || sample.slow;
        if dirty && self.dirty.load(Ordering::Acquire) <= index {
            self.dirty.fetch_max(index + 1, Ordering::AcqRel);
        }
        // Read first: within one bucket's time every record sees the same newest index, and
        // a plain load leaves the line shared instead of writing it on every call.
        let mut before = self.newest.load(Ordering::Acquire);
        if index > before {
            before = self.newest.fetch_max(index, Ordering::AcqRel);
            if index > before {
                self.rotate(before, index);
            }
        }
        if index + self.len() > before {
            let slot = self.slot(index);
            let mut word = slot.load(Ordering::Acquire);
            loop {
                let next = if word_tag(word) == tag(index) {
                    bucket_add(word, sample)
                } else {
                    bucket_add(empty_bucket(index), sample)
                };
                match slot.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(actual) => word = actual,
                }
            }
        }
        // else: this record's bucket left the window while its thread stalled; drop it.
        let last_dirty = self.dirty.load(Ordering::Acquire);
        if !dirty && (last_dirty == 0 || (last_dirty - 1).saturating_add(self.len()) <= index) {
            return None; // only plain successes in the window: no rate can reach its limit
        }
        Some(self.counts_at(index, index.max(before)))
    }

    /// [`record`](Self::record) of a plain success, when it would only add one call to the
    /// current bucket and answer `None`: the bucket is the newest any record reached (no
    /// rotation), has room (no halving), and no failure or slow call lies within a window of it
    /// (no rate to check). `false`, with nothing recorded, otherwise or when the
    /// compare-and-swap loses a race.
    #[inline]
    pub(crate) fn record_quiet(&self, now: u64) -> bool {
        let index = self.bucket_nanos.div(now);
        if self.newest.load(Ordering::Acquire) != index {
            return false;
        }
        let last_dirty = self.dirty.load(Ordering::Acquire);
        if last_dirty != 0 && (last_dirty - 1).saturating_add(self.len()) > index {
            return false;
        }
        let slot = self.slot(index);
        let word = slot.load(Ordering::Acquire);
        // The calls are the word's low bits: with room left, one more is `word + 1`.
        word_tag(word) == tag(index)
            && word & COUNT_MASK < COUNT_MASK
            && slot
                .compare_exchange(word, word + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Empties the buckets time has passed since `from`, up to and including `to`.
    fn rotate(&self, from: u64, to: u64) {
        let first = (from + 1).max(to.saturating_sub(self.len() - 1));
        // After an idle gap of a whole window every slot predates `from`, even one whose tag
        // happens to be `index`'s (tags repeat every 4096 buckets): clear it once whatever its
        // tag. A record of `index` racing this rotation may be dropped with it.
        let whole_window_idle = to - from >= self.len();
        for index in first..=to {
            let slot = self.slot(index);
            let mut word = slot.load(Ordering::Acquire);
            let mut aliased = whole_window_idle && word != empty_bucket(index);
            // Leave a bucket that a record of `index` (or a later rotation) already claimed.
            while (aliased || word_tag(word) != tag(index))
                && self.newest.load(Ordering::Acquire) < index + self.len()
            {
                aliased = false;
                match slot.compare_exchange_weak(
                    word,
                    empty_bucket(index),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => word = actual,
                }
            }
        }
    }

    /// Whether a failure may lie in the window at `now`: `false` means only plain successes
    /// do (or nothing), read from one word.
    #[inline]
    pub(crate) fn has_failures(&self, now: u64) -> bool {
        let last_dirty = self.dirty.load(Ordering::Acquire);
        last_dirty != 0 && (last_dirty - 1).saturating_add(self.len()) > self.bucket_nanos.div(now)
    }

    pub(crate) fn counts(&self, now: u64) -> Counts {
        let index = self.bucket_nanos.div(now);
        self.counts_at(index, self.newest.load(Ordering::Acquire))
    }

    fn counts_at(&self, index: u64, newest: u64) -> Counts {
        let mut sum = Counts::default();
        if newest + self.len() <= index {
            // Nothing was recorded for a whole window.
            return sum;
        }
        // Slot `s` holds bucket `index - back`, where `back` counts the slots from `s` forward
        // to `index`'s slot, around the ring.
        let len = self.len();
        let here = self.slots.rem(index);
        for slot in 0..len {
            let back = if slot <= here {
                here - slot
            } else {
                here + len - slot
            };
            let word = self.ring[slot as usize].load(Ordering::Acquire);
            if word_tag(word) == tag(index.wrapping_sub(back)) {
                let c = bucket_counts(word);
                sum.calls += c.calls;
                sum.failures += c.failures;
                sum.slow += c.slow;
            }
        }
        sum
    }

    fn clear(&self, now: u64) {
        // An empty bucket counts nothing whatever its tag, and a record or a rotation replaces
        // it alike: every slot is zeroed, without working out which bucket it stands for.
        for slot in self.ring.iter() {
            slot.store(0, Ordering::Release);
        }
        self.newest
            .fetch_max(self.bucket_nanos.div(now), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The divider agrees with `/` and `%` over the whole range, at the edges too.
        #[test]
        fn divider_is_exact(
            n in proptest::prop_oneof![
                proptest::prelude::any::<u64>(),
                (0u64..1000),
                (u64::MAX - 1000..=u64::MAX),
            ],
            d in proptest::prop_oneof![
                (1u64..=u64::MAX),
                (1u64..200),
                (u64::MAX - 10..=u64::MAX),
            ],
        ) {
            let divider = Divider::new(d);
            proptest::prop_assert_eq!(divider.div(n), n / d);
            proptest::prop_assert_eq!(divider.rem(n), n % d);
            proptest::prop_assert_eq!(divider.div(n.saturating_sub(n % d)), n / d);
        }
    }

    use super::*;

    const OK: Sample = Sample {
        failure: false,
        slow: false,
    };
    const FAIL: Sample = Sample {
        failure: true,
        slow: false,
    };
    const SLOW: Sample = Sample {
        failure: false,
        slow: true,
    };

    fn counts(calls: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
        }
    }

    /// A record racing another can read the packed totals while one field has borrowed from
    /// its neighbour; such a reading is discarded instead of tripping on nonsense.
    #[test]
    fn a_torn_reading_of_the_totals_is_discarded() {
        let w = CountWindow::new(10);
        let word = |calls: u64, failures: u64, slow: u64| {
            calls | failures << FIELD_BITS | slow << (2 * FIELD_BITS)
        };
        assert_eq!(w.decode(word(10, 3, 2)), Some(counts(10, 3, 2)));
        assert_eq!(
            w.decode(word(11, 0, 0)),
            None,
            "more calls than the window holds"
        );
        assert_eq!(w.decode(word(5, 6, 0)), None, "more failures than calls");
        assert_eq!(w.decode(word(5, 0, 6)), None, "more slow calls than calls");
        assert_eq!(
            w.decode(word(5, 0, 0) | 1 << (3 * FIELD_BITS)),
            None,
            "a borrow past the last field"
        );
    }

    #[test]
    fn a_healthy_window_stays_exact_while_successes_only_read_it() {
        let w = CountWindow::new(3);
        for _ in 0..10 {
            w.record(OK);
        }
        assert_eq!(w.counts(), counts(3, 0, 0));
        let position = w.next.load(Ordering::Relaxed);
        assert_eq!(w.record(OK), Some(counts(3, 0, 0)));
        assert_eq!(w.next.load(Ordering::Relaxed), position, "nothing written");
        // A failure still counts, and leaves after exactly `size` more outcomes.
        assert_eq!(w.record(FAIL), Some(counts(3, 1, 0)));
        assert_eq!(w.record(OK), Some(counts(3, 1, 0)));
        assert_eq!(w.record(OK), Some(counts(3, 1, 0)));
        assert_eq!(w.record(OK), Some(counts(3, 0, 0)));
        assert_eq!(w.record(SLOW), Some(counts(3, 0, 1)));
    }

    #[test]
    fn count_window_keeps_the_last_n_outcomes() {
        let w = CountWindow::new(3);
        assert_eq!(w.record(FAIL), Some(counts(1, 1, 0)));
        assert_eq!(w.record(FAIL), Some(counts(2, 2, 0)));
        assert_eq!(w.record(SLOW), Some(counts(3, 2, 1)));
        // The first failure leaves the window.
        assert_eq!(w.record(OK), Some(counts(3, 1, 1)));
        assert_eq!(w.record(OK), Some(counts(3, 0, 1)));
        assert_eq!(w.record(OK), Some(counts(3, 0, 0)));
        w.clear();
        assert_eq!(w.counts(), Counts::default());
        assert_eq!(w.record(FAIL), Some(counts(1, 1, 0)));
    }

    #[test]
    fn count_window_memory_does_not_grow() {
        let w = CountWindow::new(10);
        for i in 0..100_000 {
            w.record(if i % 4 == 0 { FAIL } else { OK });
        }
        assert_eq!(w.ring.len(), 10);
        // The last 10 of a repeating F,O,O,O pattern ending at 99,999: indices 99,990..=99,999
        // hold failures at 99,992 and 99,996.
        assert_eq!(w.counts(), counts(10, 2, 0));
    }

    #[test]
    fn time_window_forgets_whole_buckets() {
        // 10 s in 10 buckets of 1 s.
        let s = 1_000_000_000;
        let w = TimeWindow::new(10 * s, 10, 0);
        assert_eq!(w.record(0, FAIL), Some(counts(1, 1, 0)));
        assert_eq!(w.record(s / 2, OK), Some(counts(2, 1, 0)));
        assert_eq!(w.record(5 * s, SLOW), Some(counts(3, 1, 1)));
        // At 10 s the first bucket [0, 1 s) has left the window.
        assert_eq!(w.record(10 * s, OK), Some(counts(2, 0, 1)));
        assert_eq!(w.counts(14 * s), counts(2, 0, 1));
        assert_eq!(w.counts(15 * s), counts(1, 0, 0));
        assert_eq!(w.counts(21 * s), Counts::default());
    }

    #[test]
    fn time_window_sums_its_buckets_only_while_it_holds_failures() {
        let s = 1_000_000_000;
        let w = TimeWindow::new(10 * s, 10, 0);
        assert_eq!(
            w.record(0, OK),
            None,
            "plain successes: nothing to evaluate"
        );
        assert_eq!(w.record(2 * s, FAIL), Some(counts(2, 1, 0)));
        assert_eq!(
            w.record(11 * s, OK),
            Some(counts(2, 1, 0)),
            "the failure is still in"
        );
        // At 12 s the failure's bucket [2 s, 3 s) has left: successes only again.
        assert_eq!(w.record(12 * s, OK), None);
        assert_eq!(w.counts(12 * s), counts(2, 0, 0));
        assert_eq!(w.record(12 * s, SLOW), Some(counts(3, 0, 1)));
    }

    #[test]
    fn time_window_survives_long_idle_gaps() {
        let s = 1_000_000_000;
        let w = TimeWindow::new(10 * s, 10, 0);
        w.record(3 * s, FAIL);
        // 4096 buckets later the tag repeats; the stale bucket must not count.
        let later = (3 + 4096) * s;
        assert_eq!(w.counts(later), Counts::default());
        assert_eq!(w.record(later, OK), None, "only successes in the window");
        assert_eq!(w.counts(later), counts(1, 0, 0));
        // And past half the tag range too.
        let much_later = later + 3000 * s;
        assert_eq!(w.record(much_later, FAIL), Some(counts(1, 1, 0)));
    }

    #[test]
    fn time_window_forgets_a_bucket_whose_tag_comes_round_again() {
        // One bucket of 1 s: 4096 s later the bucket index has the same 12-bit tag.
        let s = 1_000_000_000;
        let w = TimeWindow::new(s, 1, 0);
        w.record(0, FAIL);
        assert_eq!(w.record(4096 * s, SLOW), Some(counts(1, 0, 1)));
        assert_eq!(w.counts(4096 * s), counts(1, 0, 1));
    }

    #[test]
    fn time_window_clear_empties_it() {
        let s = 1_000_000_000;
        let w = TimeWindow::new(10 * s, 5, 7 * s);
        w.record(7 * s, FAIL);
        w.record(8 * s, FAIL);
        w.clear(9 * s);
        assert_eq!(w.counts(9 * s), Counts::default());
        assert_eq!(w.record(9 * s, OK), Some(counts(1, 0, 0)));
    }

    #[test]
    fn full_time_bucket_keeps_its_rates() {
        let w = TimeWindow::new(1000, 1, 0);
        for i in 0..(COUNT_MASK + 10) {
            w.record(5, if i % 2 == 0 { FAIL } else { OK });
        }
        let c = w.counts(5);
        assert!(c.calls > COUNT_MASK / 2 && c.calls <= COUNT_MASK);
        let rate = c.failures as f64 / c.calls as f64;
        assert!((rate - 0.5).abs() < 0.01, "rate {rate}");
    }

    #[test]
    fn full_time_bucket_keeps_its_slow_call_rate() {
        let w = TimeWindow::new(1000, 1, 0);
        for i in 0..(COUNT_MASK + 10) {
            w.record(5, if i % 4 == 0 { SLOW } else { OK });
        }
        let c = w.counts(5);
        let rate = c.slow as f64 / c.calls as f64;
        assert!((rate - 0.25).abs() < 0.01, "slow-call rate {rate}");
    }

    /// A thread that stalled for a whole window between reading the clock and recording must
    /// not land its outcome in the slot that now holds the newest bucket.
    #[test]
    fn a_record_a_whole_window_late_is_dropped() {
        let s = 1_000_000_000;
        let w = TimeWindow::new(10 * s, 10, 0);
        w.record(10 * s, FAIL);
        w.record(10 * s, OK);
        // Bucket 0 [0 s, 1 s) shares its slot with bucket 10 and left the window at 10 s.
        w.record(s / 2, OK);
        assert_eq!(w.counts(10 * s), counts(2, 1, 0));
    }
}
