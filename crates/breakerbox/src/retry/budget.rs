//! A lock-free retry budget (Finagle's model).

use super::config::BudgetConfig;
use crate::clock::{SharedClock, nanos};
use crate::sync::{AtomicU64, Ordering};
use std::fmt;

/// Caps retries to a fraction of recent requests plus a floor per second, so that a fleet of
/// clients cannot multiply an outage's load by retrying (Finagle's `RetryBudget`).
///
/// Each original request [`deposit`](Self::deposit)s; each retry must
/// [`try_withdraw`](Self::try_withdraw). A withdrawal succeeds while the retries made within the
/// last `ttl`, this one included, number at most `min_per_sec * ttl + retry_ratio * requests`
/// made within the last `ttl`. [`Retrier::after_attempt`](super::Retrier::after_attempt) does both.
///
/// # Precision
///
/// Time is cut into [`BUCKETS`](Self::BUCKETS) buckets of `ttl / 10` (rounded down to whole
/// nanoseconds); the window is the current bucket plus the nine before it, so it covers between
/// 90 % and 100 % of `ttl`. Requests and retries leave it a whole bucket at a time. `retry_ratio`
/// is applied in millionths, exactly: no floating-point rounding decides a retry.
///
/// # Concurrency
///
/// No lock is taken. A deposit is one compare-and-swap on a counter striped per thread (so that
/// request threads do not contend on one cache line); a withdrawal reserves its retry first,
/// then checks the bound and gives the reservation back if it does not fit. So concurrent
/// withdrawals never overshoot the bound; under contention one may be refused that a slower
/// interleaving would have allowed, and a deposit not yet visible to another thread is briefly
/// not counted: both err on the side of fewer retries. Memory is fixed at construction
/// (about 700 bytes); nothing grows with traffic.
///
/// ```
/// use breakerbox::clock::ManualClock;
/// use breakerbox::retry::{BudgetConfig, RetryBudget};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// // No floor; one retry per two requests within 10 s.
/// let config = BudgetConfig::new(Duration::from_secs(10), 0, 0.5)?;
/// let budget = RetryBudget::new(&config, Arc::new(clock.clone()));
///
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw());
///
/// // Once the requests have left the window, so has the allowance.
/// clock.advance(Duration::from_secs(10));
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw());
/// # Ok::<(), breakerbox::config::InvalidConfig>(())
/// ```
pub struct RetryBudget {
    config: BudgetConfig,
    clock: SharedClock,
    bucket_nanos: u64,
    /// `min_per_sec * ttl`, in millionths of a retry.
    floor_micros: u128,
    /// `retry_ratio`, in millionths.
    ratio_micros: u128,
    /// `STRIPES` rows of `BUCKETS` counters, each a packed [`Counter`].
    deposits: Box<[AtomicU64]>,
    /// `BUCKETS` counters: retries are rare, so they are not striped.
    withdrawals: Box<[AtomicU64]>,
}

/// Deposit stripes; a thread always uses the same one.
const STRIPES: usize = 8;

// === impl RetryBudget ===

impl RetryBudget {
    /// How many time buckets the `ttl` window is cut into.
    pub const BUCKETS: u32 = 10;

    /// A budget following `config` (valid, as every `BudgetConfig` is), reading time from
    /// `clock`.
    pub fn new(config: &BudgetConfig, clock: SharedClock) -> Self {
        let ttl_nanos = nanos(config.ttl());
        let counters = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        Self {
            config: *config,
            clock,
            bucket_nanos: ttl_nanos / u64::from(Self::BUCKETS),
            floor_micros: u128::from(config.min_per_sec()) * u128::from(ttl_nanos) / 1_000,
            // validate() bounds the ratio to [0, 1000]: at most 1e9 millionths.
            ratio_micros: (config.retry_ratio() * 1e6).round() as u128,
            deposits: counters(STRIPES * Self::BUCKETS as usize),
            withdrawals: counters(Self::BUCKETS as usize),
        }
    }

    /// The config this budget follows.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Records an original request (not a retry): it raises the allowance by `retry_ratio` for
    /// the next `ttl`.
    pub fn deposit(&self) {
        let epoch = self.epoch();
        let row = stripe() * Self::BUCKETS as usize;
        Counter::increment(
            &self.deposits[row + Self::slot(epoch)],
            epoch,
            Ordering::Relaxed,
        );
    }

    /// Takes one retry from the budget: `true` if it fits, `false` (and nothing taken) if not.
    pub fn try_withdraw(&self) -> bool {
        let epoch = self.epoch();
        let cell = &self.withdrawals[Self::slot(epoch)];
        // Reserve, then check with the reservation counted: concurrent withdrawals see each
        // other, so they cannot all fit in the last unit of allowance.
        if !Counter::increment(cell, epoch, Ordering::SeqCst) {
            return false;
        }
        if self.fits(epoch) {
            true
        } else {
            Counter::decrement(cell, epoch);
            false
        }
    }

    /// How many retries would be allowed now, were no other thread withdrawing.
    pub fn remaining(&self) -> u64 {
        let epoch = self.epoch();
        let allowance = self.allowance_micros(epoch) / 1_000_000;
        let withdrawn = u128::from(self.withdrawn(epoch));
        u64::try_from(allowance.saturating_sub(withdrawn)).unwrap_or(u64::MAX)
    }

    fn epoch(&self) -> u64 {
        self.clock.now_nanos() / self.bucket_nanos
    }

    fn slot(epoch: u64) -> usize {
        (epoch % u64::from(Self::BUCKETS)) as usize
    }

    /// Whether the withdrawals counted (a reservation included) fit in the allowance.
    fn fits(&self, epoch: u64) -> bool {
        u128::from(self.withdrawn(epoch)) * 1_000_000 <= self.allowance_micros(epoch)
    }

    fn allowance_micros(&self, epoch: u64) -> u128 {
        let deposited = Counter::sum(&self.deposits, epoch, false, Ordering::Relaxed);
        self.floor_micros + self.ratio_micros * u128::from(deposited)
    }

    fn withdrawn(&self, epoch: u64) -> u64 {
        // Also count buckets a thread with a later clock reading has already moved on to: their
        // withdrawals are in the window as soon as ours is.
        Counter::sum(&self.withdrawals, epoch, true, Ordering::SeqCst)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ttl", &self.config.ttl())
            .field("min_per_sec", &self.config.min_per_sec())
            .field("retry_ratio", &self.config.retry_ratio())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// Picks this thread's deposit stripe, round robin on first use.
fn stripe() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

// === impl Counter ===

/// A bucket counter packed in one `u64`: the bucket's epoch (its tag) in the high 38 bits, the
/// count in the low 26. A counter tagged with an older epoch than the writer's belongs to a
/// bucket that has left the window, and is reset by the first write of the new epoch.
///
/// Epochs fit in 38 bits because buckets are at least 100 ms long (`ttl` >= 1 s) and the clock
/// counts at most 2^64 ns, so tags never wrap. Counts saturate at 2^26 - 1 (67 million events
/// per bucket, and per stripe for deposits), far above any real request rate.
struct Counter;

impl Counter {
    const COUNT_BITS: u32 = 26;
    const COUNT_MAX: u64 = (1 << Self::COUNT_BITS) - 1;

    fn pack(epoch: u64, count: u64) -> u64 {
        (epoch << Self::COUNT_BITS) | count
    }

    fn unpack(word: u64) -> (u64, u64) {
        (word >> Self::COUNT_BITS, word & Self::COUNT_MAX)
    }

    /// `epoch - tag`: negative for a tag from a later epoch. Both are below 2^38.
    fn age(epoch: u64, tag: u64) -> i64 {
        epoch as i64 - tag as i64
    }

    /// Counts one event of `epoch`. `false` if the counter already belongs to a later epoch
    /// (the caller's clock reading is a whole `ttl` stale): the event is then not counted.
    fn increment(cell: &AtomicU64, epoch: u64, ordering: Ordering) -> bool {
        let mut current = cell.load(ordering);
        loop {
            let (tag, count) = Self::unpack(current);
            let next = match Self::age(epoch, tag) {
                0 => Self::pack(epoch, (count + 1).min(Self::COUNT_MAX)),
                1.. => Self::pack(epoch, 1),
                _ => return false,
            };
            match cell.compare_exchange_weak(current, next, ordering, ordering) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes back one event counted by `increment(cell, epoch)`, unless the counter has moved on
    /// to another epoch (then the event has already left the window).
    fn decrement(cell: &AtomicU64, epoch: u64) {
        let mut current = cell.load(Ordering::SeqCst);
        loop {
            let (tag, count) = Self::unpack(current);
            if tag != epoch || count == 0 {
                return;
            }
            let next = Self::pack(tag, count - 1);
            match cell.compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The events of the window ending at `epoch`, plus those of later epochs if `later`.
    fn sum(cells: &[AtomicU64], epoch: u64, later: bool, ordering: Ordering) -> u64 {
        let buckets = i64::from(RetryBudget::BUCKETS);
        cells
            .iter()
            .map(|cell| Self::unpack(cell.load(ordering)))
            .filter(|&(tag, _)| {
                let age = Self::age(epoch, tag);
                age < buckets && (later || age >= 0)
            })
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;
    use std::time::Duration;

    const SEC: Duration = Duration::from_secs(1);

    fn budget(min_per_sec: u32, retry_ratio: f64) -> (RetryBudget, ManualClock) {
        let clock = ManualClock::new();
        let config = BudgetConfig::new(10 * SEC, min_per_sec, retry_ratio).unwrap();
        let budget = RetryBudget::new(&config, Arc::new(clock.clone()));
        (budget, clock)
    }

    fn withdraw_all(budget: &RetryBudget) -> u32 {
        let mut n = 0;
        while budget.try_withdraw() {
            n += 1;
            assert!(n <= 1_000_000, "unbounded budget");
        }
        n
    }

    #[test]
    fn rejects_invalid_config() {
        let err = serde_json::from_str::<BudgetConfig>(r#"{"ttl": "2m"}"#).unwrap_err();
        assert!(err.to_string().contains("`budget.ttl` = 2m"), "{err}");
    }

    #[test]
    fn floor_without_traffic() {
        // 10 per second over 10 s: 100 retries.
        let (budget, _) = budget(10, 0.2);
        assert_eq!(budget.remaining(), 100);
        assert_eq!(withdraw_all(&budget), 100);
        assert_eq!(budget.remaining(), 0);
    }

    #[test]
    fn ratio_of_deposits() {
        let (budget, _) = budget(0, 0.2);
        assert!(!budget.try_withdraw());
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(withdraw_all(&budget), 2);
        for _ in 0..4 {
            budget.deposit();
        }
        // 14 deposits allow 2.8 retries: still 2.
        assert_eq!(withdraw_all(&budget), 0);
        budget.deposit();
        assert_eq!(withdraw_all(&budget), 1);
    }

    #[test]
    fn ratio_is_exact_in_millionths() {
        // 0.29 * 100 is 28.999999999999996 in f64; the budget must still allow 29.
        let (budget, _) = budget(0, 0.29);
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(withdraw_all(&budget), 29);
    }

    #[test]
    fn floor_and_ratio_add_up() {
        let (budget, _) = budget(1, 0.5);
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(withdraw_all(&budget), 10 + 5);
    }

    #[test]
    fn refused_withdrawals_take_nothing() {
        let (budget, _) = budget(0, 1.0);
        for _ in 0..1000 {
            assert!(!budget.try_withdraw());
        }
        budget.deposit();
        assert!(budget.try_withdraw());
    }

    #[test]
    fn events_leave_the_window_after_ttl() {
        let (budget, clock) = budget(0, 1.0);
        for _ in 0..5 {
            budget.deposit();
        }
        assert_eq!(withdraw_all(&budget), 5);
        // Still inside the window 9.9 s later.
        clock.advance(Duration::from_millis(9_900));
        assert_eq!(budget.remaining(), 0);
        // Gone after 10 s: deposits and withdrawals alike.
        clock.advance(Duration::from_millis(100));
        assert_eq!(budget.remaining(), 0);
        budget.deposit();
        assert_eq!(budget.remaining(), 1);
    }

    #[test]
    fn window_slides_one_bucket_at_a_time() {
        let (budget, clock) = budget(0, 1.0);
        budget.deposit(); // bucket 0
        clock.advance(SEC);
        budget.deposit(); // bucket 1
        assert_eq!(budget.remaining(), 2);
        clock.set(Duration::from_millis(10_000)); // bucket 10: bucket 0 left
        assert_eq!(budget.remaining(), 1);
        clock.set(Duration::from_millis(11_000)); // bucket 11: bucket 1 left
        assert_eq!(budget.remaining(), 0);
    }

    #[test]
    fn old_withdrawals_stop_counting() {
        let (budget, clock) = budget(1, 0.0);
        assert_eq!(withdraw_all(&budget), 10);
        clock.advance(5 * SEC);
        assert_eq!(withdraw_all(&budget), 0);
        clock.advance(5 * SEC);
        assert_eq!(withdraw_all(&budget), 10);
    }

    #[test]
    fn long_idle_periods() {
        let (budget, clock) = budget(0, 1.0);
        budget.deposit();
        // Tags never wrap: a deposit 2^32 buckets old must not come back.
        clock.advance(Duration::from_secs(1) * 2u32.pow(31));
        assert_eq!(budget.remaining(), 0);
        clock.advance(Duration::from_secs(1) * 2u32.pow(31));
        budget.deposit();
        assert_eq!(budget.remaining(), 1);
    }

    #[test]
    fn stale_clock_readings_do_not_reset_newer_buckets() {
        let cell = AtomicU64::new(0);
        assert!(Counter::increment(&cell, 15, Ordering::SeqCst));
        assert!(Counter::increment(&cell, 15, Ordering::SeqCst));
        // An event from epoch 5 (a ttl ago) must not wipe epoch 15's count.
        assert!(!Counter::increment(&cell, 5, Ordering::SeqCst));
        assert_eq!(Counter::unpack(cell.load(Ordering::SeqCst)), (15, 2));
        // A later epoch resets it.
        assert!(Counter::increment(&cell, 25, Ordering::SeqCst));
        assert_eq!(Counter::unpack(cell.load(Ordering::SeqCst)), (25, 1));
        // Rolling back an event of an epoch the counter has left does nothing.
        Counter::decrement(&cell, 15);
        assert_eq!(Counter::unpack(cell.load(Ordering::SeqCst)), (25, 1));
        Counter::decrement(&cell, 25);
        Counter::decrement(&cell, 25);
        assert_eq!(Counter::unpack(cell.load(Ordering::SeqCst)), (25, 0));
    }

    #[test]
    fn deposits_from_many_threads_all_count() {
        let (budget, _) = budget(0, 1.0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        budget.deposit();
                    }
                });
            }
        });
        assert_eq!(budget.remaining(), 16_000);
    }

    #[test]
    fn concurrent_withdrawals_never_overshoot() {
        for _ in 0..50 {
            let (budget, _) = budget(0, 1.0);
            for _ in 0..100 {
                budget.deposit();
            }
            let granted = std::sync::atomic::AtomicU32::new(0);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..50 {
                            if budget.try_withdraw() {
                                granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            let granted = granted.into_inner();
            assert!(
                granted <= 100,
                "{granted} retries granted for an allowance of 100"
            );
            // Every refused reservation was given back.
            assert_eq!(budget.remaining(), u64::from(100 - granted));
        }
    }

    #[test]
    fn debug_shows_the_config() {
        let (budget, _) = budget(10, 0.2);
        let debug = format!("{budget:?}");
        assert!(
            debug.starts_with(
                "RetryBudget { ttl: 10s, min_per_sec: 10, retry_ratio: 0.2, remaining: 100"
            ),
            "{debug}"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn two_withdrawals_for_one_retry() {
        loom::model(|| {
            let config = BudgetConfig::new(Duration::from_secs(10), 0, 1.0).unwrap();
            let budget = Arc::new(RetryBudget::new(
                &config,
                std::sync::Arc::new(ManualClock::new()),
            ));
            budget.deposit();
            let other = Arc::clone(&budget);
            let thread = loom::thread::spawn(move || other.try_withdraw());
            let here = budget.try_withdraw();
            let there = thread.join().unwrap();
            assert!(!(here && there), "both withdrawals granted");
            assert_eq!(budget.remaining(), u64::from(!(here || there)));
        });
    }
}
