//! Property tests for the retry formulas: backoff bounds, the retry budget's bound, and the
//! limits every retry decision respects. Public API only.

use breakerbox::backoff::{Backoff, Jitter};
use breakerbox::clock::{Clock, ManualClock};
use breakerbox::retry::{
    BudgetConfig, Retrier, RetryBudget, RetryConfig, RetryDecision, StopReason, parse_retry_after,
};
use breakerbox::{AttemptOutcome, StatusPattern};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const JITTERS: [Jitter; 4] = [
    Jitter::None,
    Jitter::Full,
    Jitter::Equal,
    Jitter::Decorrelated,
];

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(JITTERS.to_vec())
}

/// Any duration, weighted towards the interesting ends.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..1_000_000_000).prop_map(Duration::from_nanos),
        (1u64..100_000).prop_map(Duration::from_millis),
        (0u32..1_000_000_000).prop_map(|n| Duration::new(u64::MAX, n)),
        any::<u64>().prop_map(Duration::from_secs),
        Just(Duration::MAX),
    ]
}

fn multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![
        1.0..10.0,
        Just(1.0),
        Just(1.000_000_1),
        Just(1e10),
        Just(1e300),
        Just(f64::MAX),
    ]
}

/// A valid backoff.
fn backoff() -> impl Strategy<Value = Backoff> {
    (duration(), duration(), multiplier(), jitter()).prop_map(|(a, b, multiplier, jitter)| {
        let (base, max) = if a <= b { (a, b) } else { (b, a) };
        let base = base.max(Duration::from_nanos(1));
        Backoff::new(base, multiplier, max, jitter).expect("valid by construction")
    })
}

fn attempt() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..100,
        Just(10_000),
        Just(u32::MAX - 1),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn random() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..1.0, Just(0.0), Just(1.0 - f64::EPSILON)]
}

proptest! {
    #[test]
    fn every_delay_is_within_the_cap(
        backoff in backoff(),
        attempt in attempt(),
        previous in prop::option::of(duration()),
        random in random(),
    ) {
        let delay = backoff.delay(attempt, previous, random);
        prop_assert!(delay <= backoff.max(), "{delay:?} > {:?}", backoff.max());
        let exponential = backoff.exponential(attempt);
        prop_assert!(exponential <= backoff.max());
        match backoff.jitter() {
            Jitter::None => prop_assert_eq!(delay, exponential),
            Jitter::Full => prop_assert!(delay <= exponential),
            Jitter::Equal => prop_assert!(exponential / 2 <= delay && delay <= exponential),
            Jitter::Decorrelated => prop_assert!(backoff.base() <= delay),
        }
    }

    #[test]
    fn exponential_grows_until_the_cap(backoff in backoff(), attempt in 0u32..10_000) {
        let (this, next) = (backoff.exponential(attempt), backoff.exponential(attempt + 1));
        prop_assert!(this <= next, "{this:?} then {next:?}");
        prop_assert!(backoff.base() <= this || backoff.base() > backoff.max());
    }

    #[test]
    fn decorrelated_delays_chain_within_base_and_cap(
        base in 1u64..10_000,
        cap in 1u64..1_000_000,
        randoms in prop::collection::vec(random(), 1..300),
    ) {
        let base = Duration::from_millis(base);
        let max = Duration::from_millis(cap).max(base);
        let backoff = Backoff::new(base, 2.0, max, Jitter::Decorrelated).unwrap();
        let mut previous = None;
        for (attempt, random) in (0..).zip(randoms) {
            let delay = backoff.delay(attempt, previous, random);
            prop_assert!(base <= delay && delay <= max, "{delay:?} outside [{base:?}, {max:?}]");
            let ceiling = previous.unwrap_or(base) * 3;
            prop_assert!(delay <= ceiling.max(base), "{delay:?} above 3 * previous");
            previous = Some(delay);
        }
    }

    #[test]
    fn extreme_attempts_and_multipliers_do_not_overflow(
        base in duration().prop_filter("zero base", |d| !d.is_zero()),
        multiplier in prop_oneof![Just(2.0), Just(1e10), Just(1e300), Just(f64::MAX)],
        attempt in prop_oneof![Just(10_000u32), Just(u32::MAX)],
        jitter in jitter(),
        random in random(),
    ) {
        let max = base.saturating_mul(2);
        let backoff = Backoff::new(base, multiplier, max, jitter).unwrap();
        // Such growth passes any cap long before attempt 10,000.
        prop_assert_eq!(backoff.exponential(attempt), max);
        let delay = backoff.delay(attempt, Some(Duration::MAX), random);
        prop_assert!(delay <= max);
        if jitter == Jitter::None {
            prop_assert_eq!(delay, max);
        }
    }

    #[test]
    fn next_delay_is_within_the_cap(backoff in backoff(), attempt in attempt()) {
        prop_assert!(backoff.next_delay(attempt, None) <= backoff.max());
    }
}

// === the retry budget ===

#[derive(Debug, Clone)]
enum Op {
    Deposit(u8),
    Withdraw(u8),
    Advance(Duration),
}

fn op(ttl: Duration) -> impl Strategy<Value = Op> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap();
    prop_oneof![
        3 => (1u8..20).prop_map(Op::Deposit),
        3 => (1u8..20).prop_map(Op::Withdraw),
        2 => (0..ttl_ms / 4).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        1 => (0..3 * ttl_ms).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
    ]
}

/// A budget config with a ratio in whole millionths, so the test's integer bound is exact.
fn budget_case() -> impl Strategy<Value = (BudgetConfig, Vec<Op>)> {
    // Whole seconds and round ratios make allowances whole numbers, where `<` vs `<=` shows.
    let ttl_ms = prop_oneof![(1u64..=60).prop_map(|s| s * 1_000), 1_000u64..=60_000];
    let ratio_micros = prop_oneof![
        prop::sample::select(vec![0u32, 200_000, 500_000, 1_000_000, 2_000_000]),
        0u32..=3_000_000,
    ];
    (ttl_ms, 0u32..5, ratio_micros)
        .prop_map(|(ttl_ms, min_per_sec, ratio_micros)| {
            BudgetConfig::new(
                Duration::from_millis(ttl_ms),
                min_per_sec,
                f64::from(ratio_micros) / 1e6,
            )
            .unwrap()
        })
        .prop_flat_map(|config| {
            (
                Just(config),
                prop::collection::vec(op(config.ttl()), 1..200),
            )
        })
}

fn count_within(events: &[Duration], from: Duration, to: Duration) -> u128 {
    events.iter().filter(|&&t| from <= t && t <= to).count() as u128
}

proptest! {
    /// Drives a budget with a manual clock and checks each answer against the documented bound:
    /// the window is the current `ttl / 10` bucket and the nine before it, so it always covers
    /// the last `0.9 * ttl` and never more than the last `ttl`.
    #[test]
    fn budget_never_exceeds_its_bound((config, ops) in budget_case()) {
        let clock = ManualClock::new();
        let budget = RetryBudget::new(&config, Arc::new(clock.clone()));
        let ttl = config.ttl();
        let bucket = ttl / RetryBudget::BUCKETS;
        let floor_micros = u128::from(config.min_per_sec()) * ttl.as_micros();
        let ratio_micros = (config.retry_ratio() * 1e6).round() as u128;
        let (mut now, mut deposits, mut granted) = (Duration::ZERO, Vec::new(), Vec::new());

        for op in ops {
            match op {
                Op::Advance(by) => {
                    clock.advance(by);
                    now += by;
                }
                Op::Deposit(n) => {
                    for _ in 0..n {
                        budget.deposit();
                        deposits.push(now);
                    }
                }
                Op::Withdraw(n) => {
                    for _ in 0..n {
                        let allowed = budget.try_withdraw();
                        // Oldest instants the window surely covers / may cover.
                        let covered = now.saturating_sub(ttl - bucket);
                        let reach = (now + Duration::from_nanos(1)).saturating_sub(ttl);
                        if allowed {
                            granted.push(now);
                            let used = count_within(&granted, covered, now);
                            let allowance = floor_micros
                                + ratio_micros * count_within(&deposits, reach, now);
                            prop_assert!(
                                used * 1_000_000 <= allowance,
                                "granted retry {used} at {now:?}; allowance {allowance} micro-retries",
                            );
                        } else {
                            // And it does not refuse while surely within its bound.
                            let used = count_within(&granted, reach, now);
                            let allowance = floor_micros
                                + ratio_micros * count_within(&deposits, covered, now);
                            prop_assert!(
                                (used + 1) * 1_000_000 > allowance,
                                "refused retry {} at {now:?}; allowance {allowance} micro-retries",
                                used + 1,
                            );
                        }
                    }
                }
            }
        }
    }
}

// === retry decisions ===

fn outcome() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        4 => prop::sample::select(vec![408u16, 429, 500, 502, 503, 504]).prop_map(AttemptOutcome::Status),
        1 => (100u16..600).prop_map(AttemptOutcome::Status),
        2 => Just(AttemptOutcome::Timeout),
        2 => Just(AttemptOutcome::Connect),
        1 => Just(AttemptOutcome::CircuitOpen),
        1 => Just(AttemptOutcome::OtherError),
        1 => Just(AttemptOutcome::Success),
    ]
}

fn retry_config() -> impl Strategy<Value = RetryConfig> {
    (
        0u32..8,
        1u64..2_000,
        1.0f64..4.0,
        1u64..20,
        jitter(),
        prop::option::of(1u64..120),
        any::<bool>(),
    )
        .prop_map(
            |(max_retries, base_ms, multiplier, max_factor, jitter, max_elapsed, budget)| {
                let base = Duration::from_millis(base_ms);
                let builder = RetryConfig::builder()
                    .max_retries(max_retries)
                    .base_delay(base)
                    .multiplier(multiplier)
                    .max_delay(base * u32::try_from(max_factor).unwrap())
                    .jitter(jitter)
                    .max_elapsed(max_elapsed.map(Duration::from_secs));
                let builder = if budget {
                    builder.budget(BudgetConfig::new(Duration::from_secs(10), 1, 0.1).unwrap())
                } else {
                    builder.without_budget()
                };
                builder.build().unwrap()
            },
        )
}

proptest! {
    #[test]
    fn decisions_respect_every_limit(
        config in retry_config(),
        attempts in prop::collection::vec(
            (outcome(), prop::option::of(0u64..30_000), 0u64..10_000),
            1..20,
        ),
        start in 0u64..1_000_000,
    ) {
        let clock = ManualClock::new();
        clock.set(Duration::from_millis(start));
        let retrier = Retrier::new(config.clone(), Arc::new(clock.clone()), "t");
        let mut run = retrier.run();
        // `max_elapsed` counts from the first attempt's end (the first transient failure).
        let mut started = None;
        let mut retries = 0;
        for (outcome, retry_after_ms, took_ms) in attempts {
            clock.advance(Duration::from_millis(took_ms));
            let now = clock.now();
            let started = *started.get_or_insert(now);
            let retry_after = retry_after_ms.map(Duration::from_millis);
            let decision = retrier.after_attempt(&mut run, outcome, || retry_after);
            prop_assert_eq!(run.attempts(), retries + 1);
            match decision {
                RetryDecision::Retry { after, .. } => {
                    retries += 1;
                    prop_assert!(retries <= config.max_retries());
                    prop_assert!(!matches!(
                        outcome,
                        AttemptOutcome::CircuitOpen | AttemptOutcome::Success | AttemptOutcome::OtherError
                    ));
                    prop_assert!(after <= config.max_delay());
                    if let (AttemptOutcome::Status(429 | 503), Some(wish)) = (outcome, retry_after) {
                        prop_assert!(after >= wish, "slept {after:?} < Retry-After {wish:?}");
                    }
                    clock.advance(after);
                    let now = clock.now();
                    if let Some(max) = config.max_elapsed() {
                        prop_assert!(now - started <= max, "{:?} past {max:?}", now - started);
                    }
                }
                RetryDecision::Stop(reason) => {
                    match outcome {
                        AttemptOutcome::CircuitOpen => prop_assert_eq!(reason, StopReason::CircuitOpen),
                        AttemptOutcome::Success => prop_assert_eq!(reason, StopReason::Succeeded),
                        _ => prop_assert_ne!(reason, StopReason::CircuitOpen),
                    }
                    if reason == StopReason::Exhausted {
                        prop_assert_eq!(retries, config.max_retries());
                    }
                    break;
                }
            }
        }
        prop_assert!(run.attempts() <= config.max_retries() + 1);
    }

    #[test]
    fn valid_configs_round_trip_through_toml(
        config in retry_config(),
        statuses in prop::collection::vec(
            prop_oneof![(400u16..600).prop_map(StatusPattern::Code), (4u8..6).prop_map(StatusPattern::Class)],
            0..6,
        ),
    ) {
        let config = RetryConfig::builder()
            .max_retries(config.max_retries())
            .base_delay(config.base_delay())
            .multiplier(config.multiplier())
            .max_delay(config.max_delay())
            .jitter(config.jitter())
            .max_elapsed(config.max_elapsed())
            .statuses(statuses)
            .build()
            .unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: RetryConfig = toml::from_str(&text).unwrap();
        prop_assert_eq!(back.validate(), Ok(()));
        prop_assert_eq!(back, config);
    }

    #[test]
    fn invalid_values_are_rejected_by_name(
        multiplier in prop_oneof![-10.0f64..0.999_999, Just(f64::NAN), Just(f64::NEG_INFINITY)],
        status in prop_oneof![0u16..400, 600u16..],
        ratio in prop_oneof![-1e6f64..-1e-9, 1_000.000_001_f64..1e9],
    ) {
        let err = RetryConfig::builder().multiplier(multiplier).build().unwrap_err();
        prop_assert_eq!(err.field(), "multiplier");
        let err = RetryConfig::builder().statuses([StatusPattern::Code(status)]).build().unwrap_err();
        prop_assert_eq!(err.field(), "statuses");
        prop_assert_eq!(err.value(), status.to_string());
        let err = BudgetConfig::new(Duration::from_secs(10), 10, ratio).unwrap_err();
        prop_assert_eq!(err.field(), "retry_ratio");
    }

    #[test]
    fn retry_after_delta_seconds_and_dates(secs in any::<u64>(), ahead in 0u64..10_000_000, base in 0u64..4_000_000_000) {
        let now = UNIX_EPOCH + Duration::from_secs(base);
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(Duration::from_secs(secs)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
        prop_assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(ahead)));
        let past: SystemTime = now - Duration::from_secs(ahead.min(base));
        prop_assert_eq!(parse_retry_after(&httpdate::fmt_http_date(past), now), Some(Duration::ZERO));
    }
}
