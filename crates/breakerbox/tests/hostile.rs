//! Hostile input, property-tested: whatever a server, a config file or a caller hands the
//! engine, it must not panic, must not wait longer than it is allowed to, and must say which
//! field it refuses.
//!
//! - `Retry-After` text (arbitrary strings, near-miss numbers, real and malformed dates) through
//!   `parse_retry_after` and on through the retry loop: never a panic, never a wait above
//!   `max_delay` or past `max_elapsed`, and an honoured value is waited at least.
//! - Backoff parameters over their whole range (zero, `Duration::MAX`, NaN, infinities, attempt
//!   `u32::MAX`, "random" numbers outside [0, 1]), for retries and for the breaker's open
//!   duration.
//! - TOML documents, structured (the real keys with random values and types) and unstructured:
//!   never a panic, and every rejection names a field (the TOML section says what that means
//!   and how a syntax error, which has no field, is handled).
//!
//! Each property sets its case count; `PROPTEST_CASES` overrides them all (fewer under
//! cargo-mutants, more for a long run).
#![cfg(not(loom))] // loom's atomics only work inside `loom::model`

use breakerbox::backoff::{Backoff, Jitter};
use breakerbox::clock::ManualClock;
use breakerbox::retry::{
    Retrier, RetryConfig, RetryDecision, RetryRun, StopReason, parse_retry_after,
};
use breakerbox::{
    AttemptOutcome, BoxConfig, BreakerBox, BreakerConfig, CircuitBreaker, ConfigError, Outcome,
    State, Target,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `cases` cases, unless `PROPTEST_CASES` says otherwise.
fn cases(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // A failure becomes a hand-written regression test, not a file in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// === generators shared by the properties ===

/// Durations over the whole range, with the edges (zero, one nanosecond, `Duration::MAX`, the
/// largest value a u64 of nanoseconds holds, the float rounding cliff just below 2^64 s) drawn
/// often: uniform draws would almost never reach them.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::from_nanos(1)),
            Just(Duration::from_millis(1)),
            Just(Duration::from_secs(1)),
            Just(Duration::from_nanos(u64::MAX)),
            Just(Duration::from_secs(u64::MAX - 2048)),
            Just(Duration::from_secs(u64::MAX)),
            Just(Duration::MAX),
            Just(Duration::from_secs(1 << 53)),
        ],
        3 => (0u64..=3_600_000).prop_map(Duration::from_millis),
        2 => any::<u64>().prop_map(Duration::from_nanos),
        2 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        1 => (u64::MAX - 4096..=u64::MAX, 0u32..1_000_000_000)
            .prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

/// Floats over the whole range, edges included: NaN, both infinities, both zeros, subnormals,
/// the neighbours of 0 and 1, `f64::MAX`.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(1e-300),
            Just(1.0 - f64::EPSILON / 2.0),
            Just(1.0),
            Just(1.0 + f64::EPSILON),
            Just(2.0),
            Just(f64::MAX),
            Just(-1.0),
        ],
        3 => 0.0f64..=1.0,
        2 => 1.0f64..=16.0,
        2 => any::<f64>(),
    ]
}

fn any_jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

fn any_attempt() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        0u32..80,
        1000u32..1100,
        any::<u32>(),
    ]
}

// === Retry-After ===

/// The last second an HTTP-date can name: 9999-12-31 23:59:59 GMT.
const LATEST_HTTP_DATE: u64 = 253_402_300_799;

/// A wall-clock reading, anywhere from before the epoch to the last HTTP-date, with nanoseconds.
fn wall_clock() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        4 => (0u64..=LATEST_HTTP_DATE, 0u32..1_000_000_000)
            .prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n)),
        1 => (1u64..1 << 40).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
    ]
}

const DAYS: &str = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Monday|Sunday|Wednesday|Xyz|)";
const MONTHS: &str = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|jan|Foo|)";

/// What a server might put in `Retry-After`, honest or not.
fn retry_after_text() -> impl Strategy<Value = String> {
    let imf = format!(
        "{DAYS}, [0-9]{{1,3}} {MONTHS} [0-9]{{1,5}} [0-9]{{1,2}}:[0-9]{{1,2}}:[0-9]{{1,2}}( GMT| UTC|)"
    );
    let rfc850 =
        format!("{DAYS}, [0-9]{{1,2}}-{MONTHS}-[0-9]{{1,3}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} GMT");
    let asctime =
        format!("{DAYS} {MONTHS} [ 0-9][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} [0-9]{{1,5}}");
    prop_oneof![
        // Arbitrary Unicode, and arbitrary ASCII with control characters.
        2 => any::<String>(),
        2 => "[\\x00-\\x7f]{0,40}",
        // Delta-seconds, from 0 to far past u64::MAX, with optional whitespace.
        3 => "[ \t]{0,2}[0-9]{1,30}[ \t]{0,2}",
        // Near misses: signs, fractions, exponents, units, digits of other scripts.
        2 => "[-+]?[0-9]{0,4}([.,][0-9]{0,3})?([eE][-+]?[0-9]{1,3})?(s|ms|h| |)",
        1 => "[０-９٠-٩]{1,6}",
        // Real HTTP-dates (IMF-fixdate), anywhere from 1970 to 9999.
        3 => (0u64..=LATEST_HTTP_DATE)
            .prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s))),
        // Date-shaped garbage in all three formats.
        1 => regex(&imf),
        1 => regex(&rfc850),
        1 => regex(&asctime),
    ]
}

fn regex(pattern: &str) -> prop::string::RegexGeneratorStrategy<String> {
    prop::string::string_regex(pattern).expect("a valid pattern")
}

/// `text` without the optional whitespace HTTP allows around a field value (SP and HTAB only).
fn ows_trimmed(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

proptest! {
    #![proptest_config(cases(4096))]

    /// Any text: no panic; delta-seconds are read exactly (saturating past u64::MAX seconds);
    /// anything else is a date no later than 9999, or nothing.
    #[test]
    fn retry_after_text_is_read_exactly_or_ignored(
        text in retry_after_text(),
        now in wall_clock(),
    ) {
        let parsed = parse_retry_after(&text, now);
        prop_assert_eq!(parse_retry_after(&format!(" \t{text}\t "), now), parsed);
        let trimmed = ows_trimmed(&text);
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            // An independent reading: decimal digits into a saturating u128.
            let secs = trimmed.bytes().fold(0u128, |n, d| {
                (n * 10 + u128::from(d - b'0')).min(u128::from(u64::MAX) + 1)
            });
            let expected = u64::try_from(secs).map_or(Duration::MAX, Duration::from_secs);
            prop_assert_eq!(parsed, Some(expected));
        } else if let Some(wait) = parsed {
            let latest = UNIX_EPOCH + Duration::from_secs(LATEST_HTTP_DATE);
            let furthest = latest.duration_since(now).unwrap_or(Duration::ZERO);
            prop_assert!(wait <= furthest, "{:?} reads as {:?}", text, wait);
        }
        if !text.trim().is_ascii() {
            prop_assert_eq!(parsed, None, "{:?} is not HTTP", text);
        }
    }

    /// A real HTTP-date reads as the time from now until then, or zero once it has passed.
    #[test]
    fn retry_after_dates_are_read_against_now(
        secs in 0u64..=LATEST_HTTP_DATE,
        now in wall_clock(),
    ) {
        let date = UNIX_EPOCH + Duration::from_secs(secs);
        let expected = date.duration_since(now).unwrap_or(Duration::ZERO);
        prop_assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(date), now),
            Some(expected)
        );
    }
}

/// A valid retry config with a random cap, time limit, backoff and retry count; no budget
/// (budgets have their own tests), so every stop is the cap's, the clock's or the count's.
fn retry_config() -> impl Strategy<Value = RetryConfig> {
    (
        1u64..=10_000,
        0u64..=1_000_000,
        1.0f64..=4.0,
        any_jitter(),
        prop::option::of(1u64..=3_600_000),
        0u32..8,
    )
        .prop_map(|(base, extra, multiplier, jitter, elapsed, retries)| {
            RetryConfig::builder()
                .base_delay(Duration::from_millis(base))
                .max_delay(Duration::from_millis(base + extra))
                .multiplier(multiplier)
                .jitter(jitter)
                .max_elapsed(elapsed.map(Duration::from_millis))
                .max_retries(retries)
                .without_budget()
                .build()
                .expect("valid by construction")
        })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => Just(503u16),
        4 => Just(429u16),
        1 => Just(500u16),
        1 => Just(408u16),
        1 => Just(200u16),
        1 => 100u16..=599,
    ]
}

proptest! {
    #![proptest_config(cases(2048))]

    /// Whatever the server says in `Retry-After`, each wait of the retry loop is at most
    /// `max_delay`, all waits together stay within `max_elapsed`, an honoured `Retry-After` (on
    /// a 429 or 503) is waited at least, and a refused one is refused only for being too long.
    #[test]
    fn retry_after_never_stretches_a_wait_past_the_caps(
        config in retry_config(),
        answers in prop::collection::vec((status(), prop::option::of(retry_after_text())), 1..10),
        wall in wall_clock(),
    ) {
        let clock = ManualClock::new();
        let retrier = Retrier::new(config.clone(), Arc::new(clock.clone()), "hostile");
        let mut run = RetryRun::new();
        let mut slept = Duration::ZERO;
        for (status, header) in &answers {
            let wish = header.as_deref().and_then(|h| parse_retry_after(h, wall));
            let honoured = matches!(status, 429 | 503).then_some(wish).flatten();
            let decision =
                retrier.after_attempt(&mut run, AttemptOutcome::Status(*status), || wish);
            prop_assert!(run.attempts() <= config.max_retries() + 1);
            match decision {
                RetryDecision::Retry { after, .. } => {
                    prop_assert!(after <= config.max_delay(), "{:?} > max_delay", after);
                    if let Some(max) = config.max_elapsed() {
                        prop_assert!(slept + after <= max, "{:?} + {:?} > max_elapsed", slept, after);
                    }
                    if let Some(wish) = honoured {
                        prop_assert!(after >= wish, "waited {:?}, asked {:?}", after, wish);
                    }
                    clock.advance(after);
                    slept += after;
                }
                RetryDecision::Stop(StopReason::RetryAfterTooLong) => {
                    let wish = honoured.expect("only an honoured Retry-After can be too long");
                    let left = config.max_elapsed().map(|max| max.saturating_sub(slept));
                    prop_assert!(
                        wish > config.max_delay() || left.is_some_and(|left| wish > left),
                        "{:?} refused though within the caps", wish
                    );
                    break;
                }
                RetryDecision::Stop(_) => break,
            }
        }
    }
}

// === backoff parameters ===

/// The field `Backoff::new` must name for these parameters, by the documented rules, in
/// the order they are checked; `None` when they are valid.
fn backoff_rejection(base: Duration, multiplier: f64, max: Duration) -> Option<&'static str> {
    if base.is_zero() {
        Some("base_delay")
    } else if !(multiplier.is_finite() && multiplier >= 1.0) {
        Some("multiplier")
    } else if max < base {
        Some("max_delay")
    } else {
        None
    }
}

proptest! {
    #![proptest_config(cases(8192))]

    /// Any parameters: `Backoff::new` accepts exactly the valid ones and names the field of an
    /// invalid one; `RetryConfig` does the same. An accepted backoff never panics or overflows,
    /// whatever the attempt (up to `u32::MAX`), previous delay or random number: its capped
    /// exponential grows with the attempt within `[base, max]`, and each jitter stays within its
    /// bounds and the cap.
    #[test]
    fn backoff_never_overflows_and_stays_within_its_cap(
        base in any_duration(),
        multiplier in any_f64(),
        max in any_duration(),
        jitter in any_jitter(),
        attempt in any_attempt(),
        later in any_attempt(),
        previous in prop::option::of(any_duration()),
        random in any_f64(),
    ) {
        let built = Backoff::new(base, multiplier, max, jitter);
        let config = RetryConfig::builder()
            .base_delay(base)
            .multiplier(multiplier)
            .max_delay(max)
            .jitter(jitter)
            .build();
        match backoff_rejection(base, multiplier, max) {
            Some(field) => {
                let (built, config) = (built.unwrap_err(), config.unwrap_err());
                prop_assert_eq!(built.field(), field);
                prop_assert_eq!(config.field(), field);
                return Ok(());
            }
            None => prop_assert!(config.is_ok()),
        }
        let backoff = built.expect("valid parameters");

        let exp = backoff.exponential(attempt);
        prop_assert!(base <= exp && exp <= max, "exponential({}) = {:?}", attempt, exp);
        let (low, high) = (attempt.min(later), attempt.max(later));
        prop_assert!(backoff.exponential(low) <= backoff.exponential(high));

        let delay = backoff.delay(attempt, previous, random);
        prop_assert!(delay <= max, "{:?} > max {:?}", delay, max);
        match jitter {
            Jitter::None => prop_assert_eq!(delay, exp),
            Jitter::Full => prop_assert!(delay <= exp),
            Jitter::Equal => prop_assert!(exp / 2 <= delay && delay <= exp),
            Jitter::Decorrelated => prop_assert!(base <= delay),
        }
        let next = backoff.next_delay(attempt, previous);
        prop_assert!(next <= max);
    }
}

// === the breaker's open-duration backoff ===

/// The field `BreakerConfig` must name for these open-duration parameters (checked in this
/// order), or `None`.
fn open_backoff_rejection(
    open: Duration,
    multiplier: f64,
    max: Duration,
    jitter: f64,
) -> Option<&'static str> {
    if open.is_zero() {
        Some("open_duration")
    } else if !(multiplier.is_finite() && multiplier >= 1.0) {
        Some("open_backoff_multiplier")
    } else if max < open {
        Some("max_open_duration")
    } else if !(0.0..=1.0).contains(&jitter) {
        Some("open_jitter")
    } else {
        None
    }
}

proptest! {
    #![proptest_config(cases(4096))]

    /// Any open duration, growth, cap and jitter: the config accepts exactly the valid ones and
    /// names the field of an invalid one; a breaker built from an accepted one trips and
    /// re-trips without panicking, and never asks callers to wait longer than
    /// `max_open_duration` (nor, without jitter, less than `open_duration`).
    #[test]
    fn open_durations_never_overflow_and_stay_within_their_cap(
        open in any_duration(),
        multiplier in any_f64(),
        max in any_duration(),
        jitter in any_f64(),
        retrips in 0usize..6,
    ) {
        let built = BreakerConfig::builder().consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .open_duration(open)
            .open_backoff(multiplier, max)
            .open_jitter(jitter)
            .build();
        if let Some(field) = open_backoff_rejection(open, multiplier, max, jitter) {
            let err = built.unwrap_err();
            prop_assert_eq!(err.field(), field);
            return Ok(());
        }
        let config = built.expect("valid parameters");
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::builder("hostile", config)
            .clock(Arc::new(clock.clone()))
            .build();
        breaker.try_acquire().expect("closed").record(Outcome::Failure);
        // The clock counts u64 nanoseconds (584 years); at its end every deadline has come.
        let end_of_time = Duration::from_nanos(u64::MAX);
        for _ in 0..=retrips {
            prop_assert_eq!(breaker.state(), State::Open);
            if clock_now(&clock) == end_of_time {
                break;
            }
            let trial = match breaker.try_acquire() {
                Err(rejected) => {
                    let wait = rejected.retry_after().expect("an open breaker says when");
                    prop_assert!(wait <= max, "asked to wait {:?} > {:?}", wait, max);
                    if jitter == 0.0 {
                        // A longer wait saturates at the end of the clock.
                        prop_assert!(wait >= open.min(end_of_time - clock_now(&clock)));
                    }
                    clock.advance(wait);
                    breaker.try_acquire().expect("a trial call once the wait is over")
                }
                // Jitter may shorten a nanosecond-long open duration to nothing.
                Ok(trial) => {
                    prop_assert!(jitter > 0.0, "open for {:?}, yet admitting", open);
                    trial
                }
            };
            prop_assert!(trial.is_trial());
            trial.record(Outcome::Failure);
        }
    }
}

/// Found by the property above: an open duration past 2^53 ns grown by a multiplier of 1.0
/// lost its last nanosecond in the round trip through `f64`, so a re-trip asked callers to wait
/// less than `open_duration`.
#[test]
fn a_retrip_never_shortens_a_long_open_duration() {
    let open = Duration::new(41_162_369, 498_810_248);
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(open)
        .open_backoff(1.0, Duration::from_nanos(u64::MAX))
        .build()
        .expect("valid parameters");
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("long", config)
        .clock(Arc::new(clock.clone()))
        .build();
    breaker
        .try_acquire()
        .expect("closed")
        .record(Outcome::Failure);
    clock.advance(open);
    let trial = breaker
        .try_acquire()
        .expect("a trial once the wait is over");
    trial.record(Outcome::Failure);
    let wait = breaker.try_acquire().unwrap_err().retry_after();
    assert_eq!(
        wait,
        Some(open),
        "a multiplier of 1 keeps the open duration"
    );
}

fn clock_now(clock: &ManualClock) -> Duration {
    breakerbox::clock::Clock::now(clock)
}

// === TOML config documents ===
//
// What "every rejection names a field" means here. A rejected document gives a
// `ConfigError::Parse` carrying toml's error; it names field F (a dotted path as the config
// writes it: `max_breakers`, `defaults.window`, `breakers[1].match.host`, `retry.budget.ttl`)
// when:
//
// 1. a value is out of range (`InvalidConfig`): the message reads "invalid config: `F` = value:
//    reason" (these errors carry no position: the path is the whole story), or
// 2. the document has the wrong shape (unknown key, wrong type, unreadable duration, unknown
//    variant, missing key): the error's span lies on the key or the value of F in the document,
//    and toml prints that line with a caret under it; for a missing key, the span is the table
//    header and the message says "missing field `k`", so F is that table's path plus `k`.
//
// F must end in a key the config knows, or in the unknown key the document holds. Structured
// documents go further: F must be one of the fields the generator made invalid, or one of the
// fields a cross-field rule (checked on the whole document) reports.
//
// A syntax error (the text is not TOML at all: an unclosed bracket, a duplicate key) has no
// field. It is recognised by toml itself rejecting the text as a plain table; it must then be
// exactly toml's own error, passed through with its position (line and column, the line shown
// with a caret). That is the most a parser can say about text it cannot read.

/// The keys a box config knows, in every table.
const KNOWN_KEYS: &[&str] = &[
    // the box
    "max_breakers",
    "overflow",
    "defaults",
    "breakers",
    "retry",
    // a breaker (`[defaults]`, each `[[breakers]]`)
    "consecutive_failures",
    "failure_rate",
    "slow_call_rate",
    "slow_call_duration",
    "minimum_calls",
    "window",
    "open_duration",
    "open_backoff_multiplier",
    "max_open_duration",
    "open_jitter",
    "half_open_max_calls",
    "success_threshold",
    "probe_interval",
    "probe_timeout",
    "max_half_open_wait",
    // `window`
    "kind",
    "size",
    "duration",
    "buckets",
    // a rule
    "name",
    "match",
    "health_url",
    // `match`
    "host",
    "path_prefix",
    // `[retry]`
    "max_retries",
    "base_delay",
    "multiplier",
    "max_delay",
    "jitter",
    "max_elapsed",
    "retry_non_idempotent",
    "statuses",
    "budget",
    // `budget`
    "ttl",
    "min_per_sec",
    "retry_ratio",
];

/// The last key of a path: `breakers[2].match.host` → `host`, `breakers[2]` → `breakers`.
fn last_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// Whether `prefix` is `path` or a path above it (`defaults.window` above `defaults.window.size`).
fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

type Span = std::ops::Range<usize>;

/// The deepest key path whose key or value contains `span` (or, failing that, overlaps it).
fn locate(text: &str, span: &Span) -> Option<String> {
    fn walk(
        table: &toml::de::DeTable<'_>,
        path: &str,
        span: &Span,
        fits: &dyn Fn(&Span, &Span) -> bool,
        best: &mut Option<(usize, String)>,
    ) {
        for (key, value) in table.iter() {
            let here = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            visit(value, &here, span, fits, best, fits(&key.span(), span));
        }
    }
    fn visit(
        value: &toml::Spanned<toml::de::DeValue<'_>>,
        here: &str,
        span: &Span,
        fits: &dyn Fn(&Span, &Span) -> bool,
        best: &mut Option<(usize, String)>,
        key_fits: bool,
    ) {
        if key_fits || fits(&value.span(), span) {
            let depth = here.matches(['.', '[']).count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                *best = Some((depth, here.to_owned()));
            }
        }
        match value.get_ref() {
            toml::de::DeValue::Table(t) => walk(t, here, span, fits, best),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    visit(item, &format!("{here}[{i}]"), span, fits, best, false);
                }
            }
            _ => {}
        }
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let contains =
        |outer: &Span, inner: &Span| outer.start <= inner.start && inner.end <= outer.end;
    let overlaps = |a: &Span, b: &Span| a.start < b.end.max(b.start + 1) && b.start < a.end;
    for fits in [&contains as &dyn Fn(&Span, &Span) -> bool, &overlaps] {
        let mut best = None;
        walk(doc.get_ref(), "", span, fits, &mut best);
        if let Some((_, path)) = best {
            return Some(path);
        }
    }
    None
}

/// The text between `open` and the next backtick in `message`.
fn quoted<'m>(message: &'m str, open: &str) -> Option<&'m str> {
    let start = message.find(open)? + open.len();
    message[start..].split('`').next()
}

/// The field a rejection of `text` names, by the rules above; `None` if it names none.
fn named_field(text: &str, err: &toml::de::Error) -> Option<String> {
    if let Some(rest) = err.message().strip_prefix("invalid config: `") {
        return rest.split_once('`').map(|(field, _)| field.to_owned());
    }
    let located = locate(text, &err.span()?)?;
    Some(match quoted(err.message(), "missing field `") {
        Some(missing) if last_key(&located) != missing => format!("{located}.{missing}"),
        _ => located,
    })
}

/// How a rejected document failed.
#[derive(Debug)]
enum Rejection {
    /// Not TOML: toml's own error, with its position.
    Syntax,
    /// A field named, by path.
    Field(String),
}

/// Classifies a rejection by the rules above, failing the property if it is neither a syntax
/// error passed through with its position nor an error naming a known (or the document's
/// own unknown) key.
fn rejection(text: &str, err: &toml::de::Error) -> Result<Rejection, TestCaseError> {
    // Display must not panic either: it is what users read.
    let shown = err.to_string();
    if let Err(syntax) = text.parse::<toml::Table>() {
        prop_assert_eq!(
            err.message(),
            syntax.message(),
            "syntax errors pass through"
        );
        prop_assert_eq!(err.span(), syntax.span());
        prop_assert!(err.span().is_some(), "a syntax error says where: {}", shown);
        prop_assert!(shown.starts_with("TOML parse error at line "), "{}", shown);
        return Ok(Rejection::Syntax);
    }
    let Some(field) = named_field(text, err) else {
        return Err(TestCaseError::fail(format!(
            "the rejection names no field:\n{shown}\n--- document ---\n{text}"
        )));
    };
    let key = last_key(&field);
    let in_document = text.contains(key);
    prop_assert!(
        KNOWN_KEYS.contains(&key) || in_document,
        "names `{}`, which is neither a config key nor in the document:\n{}",
        field,
        shown
    );
    Ok(Rejection::Field(field))
}

#[test]
fn known_rejections_name_their_fields() {
    // (document, the field its rejection must name)
    let cases = [
        ("max_breakers = 0", "max_breakers"),
        ("max_breakers = -1", "max_breakers"),
        ("max_breakers = 1e3", "max_breakers"),
        ("overflow = \"drop\"", "overflow"),
        ("defaults = 5", "defaults"),
        ("breakers = 3", "breakers"),
        ("[defaults]\nfailure_rate = 1.5", "defaults.failure_rate"),
        (
            "[defaults]\nminimum_calls = \"x\"",
            "defaults.minimum_calls",
        ),
        (
            "[defaults]\nopen_duration = \"forever\"",
            "defaults.open_duration",
        ),
        (
            "[defaults]\nconsecutive_failures = true",
            "defaults.consecutive_failures",
        ),
        (
            "[defaults]\nconsecutive_failures = -3",
            "defaults.consecutive_failures",
        ),
        ("[defaults]\nfoo = 1", "defaults.foo"),
        (
            "[defaults]\nwindow = { kind = \"count\", size = 0 }",
            "defaults.window.size",
        ),
        (
            "[defaults]\nwindow = { kind = \"count\", size = \"a\" }",
            "defaults.window",
        ),
        (
            "[defaults]\nwindow = { kind = \"cnt\", size = 3 }",
            "defaults.window.kind",
        ),
        (
            "[defaults]\nwindow = { kind = \"time\", size = 3 }",
            "defaults.window",
        ),
        ("[retry]\nbudget = { ttl = \"0s\" }", "retry.budget.ttl"),
        ("[retry]\nbudget = { ttl = 5 }", "retry.budget.ttl"),
        ("[retry]\nstatuses = [\"6xx\"]", "retry.statuses"),
        ("[retry]\nstatuses = [503, \"abc\"]", "retry.statuses[1]"),
        ("[retry]\nmax_elapsed = true", "retry.max_elapsed"),
        (
            "[[breakers]]\nmatch = { host = \"a.com\" }",
            "breakers[0].name",
        ),
        ("[[breakers]]\nname = \"a\"", "breakers[0].match"),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\nfailure_rate = 2.0",
            "breakers[0].failure_rate",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"\" }",
            "breakers[0].match.host",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\n\
             [[breakers]]\nname = \"b\"\nmatch = { host = \"b.com\" }\nopen_jitter = \"x\"",
            "breakers[1].open_jitter",
        ),
    ];
    for (text, field) in cases {
        let breakerbox::ConfigError::Parse(err) =
            breakerbox::BoxConfig::from_toml(text).expect_err(text)
        else {
            panic!("{text}: not a parse error")
        };
        match rejection(text, &err) {
            Ok(Rejection::Field(named)) => assert_eq!(named, field, "{text}\n{err}"),
            other => panic!("{text}: {other:?}\n{err}"),
        }
    }
    let err = breakerbox::BoxConfig::from_toml("x = [").unwrap_err();
    let breakerbox::ConfigError::Parse(err) = err else {
        panic!("not a parse error")
    };
    assert!(matches!(rejection("x = [", &err), Ok(Rejection::Syntax)));
}

// --- structured documents: the real keys, random values and types ---

/// What the generator knows about a value it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Valid on its own.
    Good,
    /// At a limit (the largest durations, counts at u32::MAX): whether it is accepted is not
    /// asserted, but a rejection may name it.
    Edge,
    /// Invalid whatever the rest of the document says: the document must be rejected.
    Bad,
}

/// One `key = value` the generator wrote.
#[derive(Debug, Clone)]
struct Entry {
    key: &'static str,
    value: String,
    class: Class,
}

/// A value generator for one key: `good`, `edge` (if any) and `bad` values.
struct Values {
    good: BoxedStrategy<String>,
    edge: Option<BoxedStrategy<String>>,
    bad: BoxedStrategy<String>,
}

fn pick(values: &[&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(values.to_vec())
        .prop_map(str::to_owned)
        .boxed()
}

fn values(good: BoxedStrategy<String>, edge: &[&'static str], bad: &[&'static str]) -> Values {
    Values {
        good,
        edge: (!edge.is_empty()).then(|| pick(edge)),
        bad: pick(bad),
    }
}

/// Values that are wrong for every key (other types entirely).
const WRONG_TYPES: &[&str] = &[
    "\"text\"",
    "[1, 2]",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "[]",
];

fn count(low: u32, high: u32, edge: &[&'static str], bad: &[&'static str]) -> Values {
    let mut v = values(
        (low..=high).prop_map(|n| n.to_string()).boxed(),
        edge,
        &["-1", "1.5", "4294967296", "\"5\"", "true"],
    );
    if !bad.is_empty() {
        v.bad = prop_oneof![v.bad, pick(bad)].boxed();
    }
    v.bad = prop_oneof![3 => v.bad, 1 => pick(WRONG_TYPES)].boxed();
    v
}

/// A duration between `low` and `high` milliseconds when good. Keys in a cross-field rule
/// get ranges that keep their good values in order (`open_duration` below
/// `max_open_duration`), so that well-formed documents load often; edge and bad values still
/// break the rule.
fn duration(low: u64, high: u64) -> Values {
    let good = prop_oneof![
        (low.div_ceil(1000).max(1)..=high / 1000).prop_map(|s| format!("\"{s}s\"")),
        (low..=high).prop_map(|ms| format!("\"{ms}ms\"")),
    ]
    .boxed();
    let edge = &[
        "\"18446744073709551615s\"",
        "\"584942417355y\"",
        "\"1ns\"",
        "\"99999999999999999999s\"",
        "\"1000000000y\"",
    ];
    values(
        good,
        edge,
        &[
            "\"0s\"",
            "\"\"",
            "\"forever\"",
            "\"-1s\"",
            "\"1.5.3s\"",
            "\"60\"",
            "60",
            "true",
            "\"text\"",
            "[1, 2]",
        ],
    )
}

fn fraction(low_open: bool, high: f64, bad: &[&'static str]) -> Values {
    let low = if low_open { 0.001 } else { 0.0 };
    let mut v = values(
        (low..=high).prop_map(|f| format!("{f:?}")).boxed(),
        &["1e-300", "5e-324"],
        bad,
    );
    v.bad = prop_oneof![
        2 => v.bad,
        1 => pick(&["-0.1", "nan", "inf", "-inf", "\"0.5\""]),
        1 => pick(WRONG_TYPES),
    ]
    .boxed();
    v
}

/// Toggled rules accept `false` too, and never `true`.
fn toggle(mut v: Values) -> Values {
    v.good = prop_oneof![3 => v.good, 1 => Just("false".to_owned())].boxed();
    v.bad = prop_oneof![3 => v.bad, 1 => Just("true".to_owned())].boxed();
    v
}

fn window() -> Values {
    let good = prop_oneof![
        (100u32..=1000).prop_map(|size| format!("{{ kind = \"count\", size = {size} }}")),
        (1u64..=600, 1u32..=256).prop_map(|(secs, buckets)| format!(
            "{{ kind = \"time\", duration = \"{secs}s\", buckets = {buckets} }}"
        )),
    ]
    .boxed();
    values(
        good,
        &["{ kind = \"count\", size = 1048575 }"],
        &[
            "{ kind = \"count\", size = 0 }",
            "{ kind = \"count\", size = 1048576 }",
            "{ kind = \"count\", size = \"a\" }",
            "{ kind = \"time\", duration = \"10s\", buckets = 0 }",
            "{ kind = \"time\", duration = \"10s\", buckets = 257 }",
            "{ kind = \"time\", duration = \"5ms\", buckets = 10 }",
            "{ kind = \"time\", duration = \"0s\", buckets = 1 }",
            "{ kind = \"cnt\", size = 3 }",
            "{ size = 3 }",
            "{ kind = \"count\", size = 3, extra = 1 }",
            "{ kind = \"time\", size = 3 }",
            "5",
            "\"count\"",
        ],
    )
}

/// The keys of a breaker table (`[defaults]` and every rule), with their values.
fn breaker_keys() -> Vec<(&'static str, Values)> {
    let rate = || toggle(fraction(true, 1.0, &["0.0", "1.5", "1.0000001"]));
    vec![
        (
            "consecutive_failures",
            toggle(count(1, 1000, &["4294967295"], &["0"])),
        ),
        ("failure_rate", rate()),
        ("slow_call_rate", rate()),
        ("slow_call_duration", duration(1, 3_600_000)),
        (
            "minimum_calls",
            count(1, 100, &["4294967295", "1000"], &["0"]),
        ),
        ("window", window()),
        ("open_duration", duration(1000, 600_000)),
        (
            "open_backoff_multiplier",
            values(
                (1.0f64..=16.0).prop_map(|f| format!("{f:?}")).boxed(),
                &["1e308", "1.7976931348623157e308"],
                &["0.5", "0.999", "-1.0", "nan", "inf", "\"2\"", "true", "0"],
            ),
        ),
        ("max_open_duration", duration(600_000, 3_600_000)),
        ("open_jitter", fraction(false, 1.0, &["1.5", "1.0000001"])),
        (
            "half_open_max_calls",
            count(1, 65535, &[], &["0", "65536", "70000"]),
        ),
        (
            "success_threshold",
            count(1, 65535, &[], &["0", "65536", "70000"]),
        ),
        ("probe_interval", duration(1, 3_600_000)),
        ("probe_timeout", duration(1, 3_600_000)),
        ("max_half_open_wait", duration(1, 3_600_000)),
        ("statuses", statuses()),
    ]
}

/// A `statuses` list, for the breaker and the retry tables alike: error statuses only.
fn statuses() -> Values {
    values(
        prop::collection::vec(
            prop_oneof![
                (400u16..=599).prop_map(|s| s.to_string()),
                (4u8..=5).prop_map(|c| format!("\"{c}xx\"")),
            ],
            0..4,
        )
        .prop_map(|items| format!("[{}]", items.join(", ")))
        .boxed(),
        &["[\"5XX\"]"],
        &[
            "[\"6xx\"]",
            "[\"0xx\"]",
            "[\"2xx\"]",
            "[\"3xx\"]",
            "[70000]",
            "[600]",
            "[399]",
            "[200]",
            "[100]",
            "[99]",
            "[0]",
            "[-1]",
            "[\"abc\"]",
            "[\"5x\"]",
            "[\"\"]",
            "[503, true]",
            "503",
            "\"5xx\"",
        ],
    )
}

fn retry_keys() -> Vec<(&'static str, Values)> {
    let budget = values(
        prop_oneof![
            (1u64..=60, 0u32..=1000, 0.0f64..=1000.0).prop_map(|(ttl, min, ratio)| format!(
                "{{ ttl = \"{ttl}s\", min_per_sec = {min}, retry_ratio = {ratio:?} }}"
            )),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("{}".to_owned()),
        ]
        .boxed(),
        &["{ min_per_sec = 4294967295 }"],
        &[
            "{ ttl = \"0s\" }",
            "{ ttl = \"61s\" }",
            "{ ttl = \"999ms\" }",
            "{ ttl = 5 }",
            "{ retry_ratio = -1.0 }",
            "{ retry_ratio = 1000.5 }",
            "{ retry_ratio = nan }",
            "{ min_per_sec = -1 }",
            "{ tll = \"5s\" }",
            "\"x\"",
            "5",
        ],
    );
    vec![
        ("max_retries", count(0, 20, &["4294967295"], &[])),
        ("base_delay", duration(1, 1000)),
        (
            "multiplier",
            values(
                (1.0f64..=16.0).prop_map(|f| format!("{f:?}")).boxed(),
                &["1e308"],
                &["0.5", "-1.0", "nan", "inf", "0", "\"2\"", "true"],
            ),
        ),
        ("max_delay", duration(1000, 3_600_000)),
        (
            "jitter",
            values(
                pick(&["\"none\"", "\"full\"", "\"equal\"", "\"decorrelated\""]),
                &[],
                &["\"random\"", "\"Full\"", "\"\"", "1", "true"],
            ),
        ),
        ("max_elapsed", {
            let mut v = duration(1, 3_600_000);
            v.good = prop_oneof![3 => v.good, 1 => Just("false".to_owned())].boxed();
            v.bad = prop_oneof![3 => v.bad, 1 => Just("true".to_owned())].boxed();
            v
        }),
        (
            "retry_non_idempotent",
            values(pick(&["true", "false"]), &[], &["\"yes\"", "1", "[]"]),
        ),
        ("statuses", statuses()),
        ("budget", budget),
    ]
}

fn top_keys() -> Vec<(&'static str, Values)> {
    vec![
        ("max_breakers", {
            // At most 1,000,000: a cap that turns the guard off is refused.
            let mut v = values(
                (1u32..=100_000).prop_map(|n| n.to_string()).boxed(),
                &["1000000"],
                &[
                    "0",
                    "-1",
                    "-5",
                    "1e3",
                    "1.5",
                    "\"5\"",
                    "true",
                    "1000001",
                    "4294967296",
                    "9223372036854775807",
                ],
            );
            v.bad = prop_oneof![3 => v.bad, 1 => pick(WRONG_TYPES)].boxed();
            v
        }),
        (
            "overflow",
            values(
                pick(&["\"metrics_only\"", "\"shared\""]),
                &[],
                &["\"drop\"", "\"MetricsOnly\"", "\"\"", "1", "true"],
            ),
        ),
    ]
}

fn rule_keys() -> Vec<(&'static str, Values)> {
    let hosts = [
        "\"api.example.com\"",
        "\"*.example.com\"",
        "\"Example.ORG\"",
        "\"a.b.c\"",
        "\"musicbrainz.org\"",
    ];
    let matcher = values(
        (
            prop::sample::select(hosts.to_vec()),
            prop::option::of(prop::sample::select(vec!["/", "/v1", "/v1/models/vision"])),
        )
            .prop_map(|(host, path)| match path {
                Some(path) => format!("{{ host = {host}, path_prefix = \"{path}\" }}"),
                None => format!("{{ host = {host} }}"),
            })
            .boxed(),
        &[],
        &[
            "{ host = \"\" }",
            "{ host = \"*.\" }",
            "{ host = \"*\" }",
            "{ host = \"a b\" }",
            "{ host = \"h:80\" }",
            "{ host = \".x\" }",
            "{ host = \"x.\" }",
            "{ host = \"*.*.x\" }",
            "{ host = \"a/b\" }",
            "{ host = \"a.com\", path_prefix = \"v1\" }",
            "{ host = \"a.com\", path_prefix = \"\" }",
            "{ host = \"a.com\", port = 1 }",
            "{ path_prefix = \"/v1\" }",
            "\"api.example.com\"",
            "5",
        ],
    );
    let mut keys = vec![
        (
            "name",
            values(
                pick(&[
                    "\"a\"",
                    "\"b\"",
                    "\"c\"",
                    "\"spotify\"",
                    "\"google_ai_vision\"",
                ]),
                &[],
                &["\"\"", "\"  \"", "\"overflow\"", "5", "true"],
            ),
        ),
        ("match", matcher),
        (
            "health_url",
            values(
                pick(&[
                    "\"http://127.0.0.1/health\"",
                    "\"https://api.example.com/ping\"",
                ]),
                &[],
                &["\"ftp://x\"", "\"localhost/health\"", "\"\"", "5"],
            ),
        ),
    ];
    keys.extend(breaker_keys());
    keys
}

/// Misspelt and foreign keys, none of them a key of any table.
const UNKNOWN_KEYS: &[&str] = &[
    "foo",
    "failure-rate",
    "consecutive_failure",
    "Max_breakers",
    "timeout",
];

/// One table's entries: each key absent, good, at an edge, or bad (more often the more hostile
/// the document), plus maybe an unknown key.
fn table(
    keys: Vec<(&'static str, Values)>,
    required: &'static [&'static str],
    hostility: u32,
) -> BoxedStrategy<Vec<Entry>> {
    let entries: Vec<BoxedStrategy<Option<Entry>>> = keys
        .into_iter()
        .map(|(key, v)| {
            let absent = if required.contains(&key) { 0 } else { 8 };
            let entry = move |class: Class| move |value: String| Some(Entry { key, value, class });
            let mut choices: Vec<(u32, BoxedStrategy<Option<Entry>>)> = vec![
                (5, v.good.prop_map(entry(Class::Good)).boxed()),
                (hostility, v.bad.prop_map(entry(Class::Bad)).boxed()),
            ];
            if let Some(edge) = v.edge {
                choices.push((1, edge.prop_map(entry(Class::Edge)).boxed()));
            }
            if absent > 0 {
                choices.push((absent, Just(None).boxed()));
            } else {
                // A required key left out is as bad as a bad value.
                choices.push((
                    hostility,
                    Just(Some(Entry {
                        key,
                        value: String::new(),
                        class: Class::Bad,
                    }))
                    .boxed(),
                ));
            }
            choices.retain(|(w, _)| *w > 0);
            proptest::strategy::Union::new_weighted(choices).boxed()
        })
        .collect();
    let unknown = if hostility == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(
            0.1 * f64::from(hostility),
            prop::sample::select(UNKNOWN_KEYS.to_vec()).prop_map(|key| Entry {
                key,
                value: "1".to_owned(),
                class: Class::Bad,
            }),
        )
        .boxed()
    };
    (entries, unknown)
        .prop_map(|(entries, unknown)| entries.into_iter().flatten().chain(unknown).collect())
        .boxed()
}

/// A whole table may be of the wrong type (`defaults = 5`).
#[derive(Debug, Clone)]
enum Section {
    Table(Vec<Entry>),
    WrongType(String),
}

/// A structured box config document and what its generator knows about it.
#[derive(Debug, Clone)]
struct Document {
    text: String,
    /// Fields with a `Bad` value: the document must be rejected.
    bad: Vec<String>,
    /// Every field a rejection may name: bad and edge values, and the fields reported by a
    /// cross-field rule that the document's values might break.
    suspects: Vec<String>,
}

fn section(
    keys: Vec<(&'static str, Values)>,
    required: &'static [&'static str],
    hostility: u32,
) -> BoxedStrategy<Section> {
    let wrong = prop::sample::select(vec!["5", "\"x\"", "[1]", "true"])
        .prop_map(|v| Section::WrongType(v.to_owned()));
    let table = table(keys, required, hostility).prop_map(Section::Table);
    if hostility == 0 {
        table.boxed()
    } else {
        prop_oneof![20 => table, 1 => wrong].boxed()
    }
}

fn document() -> impl Strategy<Value = Document> {
    prop_oneof![3 => Just(0u32), 1 => Just(1u32), 1 => Just(2u32), 1 => Just(4u32)].prop_flat_map(
        |hostility| {
            (
                table(top_keys(), &[], hostility),
                section(breaker_keys(), &[], hostility),
                prop::option::of(section(retry_keys(), &[], hostility)),
                prop::collection::vec(table(rule_keys(), &["name", "match"], hostility), 0..4),
                if hostility == 0 {
                    Just(false).boxed()
                } else {
                    prop::bool::weighted(0.03).boxed()
                },
            )
                .prop_map(|(top, defaults, retry, rules, breakers_wrong)| {
                    assemble(top, defaults, retry, rules, breakers_wrong)
                })
        },
    )
}

fn has(entries: &[Entry], key: &str) -> bool {
    entries.iter().any(|e| e.key == key)
}

fn value_of<'e>(entries: &'e [Entry], key: &str) -> Option<&'e str> {
    entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

fn assemble(
    top: Vec<Entry>,
    defaults: Section,
    retry: Option<Section>,
    rules: Vec<Vec<Entry>>,
    breakers_wrong: bool,
) -> Document {
    let mut doc = Document {
        text: String::new(),
        bad: Vec::new(),
        suspects: Vec::new(),
    };
    let mut tables = String::new();
    let mut write_table = |doc: &mut Document, header: &str, path: &str, entries: &[Entry]| {
        tables.push_str(&format!("\n{header}\n"));
        for e in entries {
            let field = format!("{path}{}", e.key);
            if !e.value.is_empty() {
                tables.push_str(&format!("{} = {}\n", e.key, e.value));
            }
            match e.class {
                Class::Good => {}
                Class::Edge => doc.suspects.push(field),
                Class::Bad => {
                    doc.bad.push(field.clone());
                    doc.suspects.push(field);
                }
            }
        }
    };
    // Top-level keys come first, before any table header.
    for e in &top {
        doc.text.push_str(&format!("{} = {}\n", e.key, e.value));
        if e.class != Class::Good {
            doc.suspects.push(e.key.to_owned());
        }
        if e.class == Class::Bad {
            doc.bad.push(e.key.to_owned());
        }
    }
    let whole_wrong = |doc: &mut Document, key: &str, value: &str| {
        doc.text.push_str(&format!("{key} = {value}\n"));
        doc.bad.push(key.to_owned());
        doc.suspects.push(key.to_owned());
    };
    let defaults = match defaults {
        Section::Table(entries) => {
            write_table(&mut doc, "[defaults]", "defaults.", &entries);
            entries
        }
        Section::WrongType(v) => {
            whole_wrong(&mut doc, "defaults", &v);
            Vec::new()
        }
    };
    let retry = match retry {
        Some(Section::Table(entries)) => {
            write_table(&mut doc, "[retry]", "retry.", &entries);
            entries
        }
        Some(Section::WrongType(v)) => {
            whole_wrong(&mut doc, "retry", &v);
            Vec::new()
        }
        None => Vec::new(),
    };
    if breakers_wrong {
        whole_wrong(&mut doc, "breakers", "3");
    } else {
        let mut names = Vec::new();
        for (i, entries) in rules.iter().enumerate() {
            let path = format!("breakers[{i}].");
            write_table(&mut doc, "[[breakers]]", &path, entries);
            if let Some(name) = value_of(entries, "name") {
                if names.contains(&name) {
                    doc.bad.push(format!("{path}name"));
                    doc.suspects.push(format!("{path}name"));
                }
                names.push(name);
            }
            // A rule after another may be one the earlier one shadows (the same hosts and
            // paths, or fewer): refused, naming its `match`.
            if i > 0 && has(entries, "match") {
                doc.suspects.push(format!("{path}match"));
            }
        }
    }
    doc.text.push_str(&tables);

    // Cross-field rules: whether the document's values might break them, per breaker table (a
    // rule inherits what it does not set from the defaults).
    let mut breaker_tables: Vec<(String, Vec<&[Entry]>)> =
        vec![("defaults.".to_owned(), vec![&defaults[..]])];
    if !breakers_wrong {
        for (i, entries) in rules.iter().enumerate() {
            breaker_tables.push((format!("breakers[{i}]."), vec![&entries[..], &defaults[..]]));
            if has(entries, "health_url") {
                doc.suspects.push(format!("breakers[{i}].health_url"));
            }
        }
    }
    for (path, layers) in breaker_tables {
        let any = |key: &str| layers.iter().any(|l| has(l, key));
        let turned_off = layers
            .iter()
            .any(|l| value_of(l, "consecutive_failures") == Some("false"));
        if turned_off {
            doc.suspects.push(format!("{path}consecutive_failures"));
        }
        // The blame of a rule between two keys lands on the key of the pair this table wrote.
        if any("minimum_calls") || any("window") {
            doc.suspects.push(format!("{path}minimum_calls"));
            doc.suspects.push(format!("{path}window.size"));
        }
        if any("open_duration") || any("max_open_duration") {
            doc.suspects.push(format!("{path}max_open_duration"));
            doc.suspects.push(format!("{path}open_duration"));
        }
    }
    if has(&retry, "base_delay") || has(&retry, "max_delay") {
        doc.suspects.push("retry.max_delay".to_owned());
    }
    doc
}

/// Whether a named field is one the document's generator suspects: the same path, a path
/// below it (`retry.budget.ttl` for a bad `retry.budget`), or the inline table holding it
/// (`defaults.window` for a bad `defaults.window.size`: toml reports some inline-table errors on
/// the whole table).
fn suspected(named: &str, suspects: &[String]) -> bool {
    suspects.iter().any(|s| {
        is_path_prefix(s, named)
            || (is_path_prefix(named, s)
                && ["window", "match", "budget"].contains(&last_key(named)))
    })
}

/// Builds a box from an accepted config and drives every breaker it names, plus one of its
/// own, through failures and opening, and the retry rules through a 503: nothing a config
/// file allows may panic later, and no breaker asks callers to wait past its
/// `max_open_duration`, no retry past `max_delay`.
fn exercise(config: &BoxConfig) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let panel = BreakerBox::builder(config.clone())
        .clock(Arc::new(clock.clone()))
        .build();
    let mut targets: Vec<(String, String)> = config
        .rules()
        .iter()
        .map(|rule| {
            let m = rule.matcher();
            let host = match m.host_pattern().strip_prefix("*.") {
                Some(suffix) => format!("x.{suffix}"),
                None => m.host_pattern().to_owned(),
            };
            (host, m.path().unwrap_or("/").to_owned())
        })
        .collect();
    targets.push(("unmatched.example".to_owned(), "/".to_owned()));
    for (host, path) in &targets {
        let target = Target::new("https", host, 443, path);
        let max_open = panel.breaker(&target).config().max_open_duration();
        for _ in 0..24 {
            match panel.try_acquire(&target) {
                Ok(permit) => permit.record(Outcome::Failure),
                Err(open) => {
                    let wait = open.retry_after().unwrap_or(Duration::from_secs(1));
                    prop_assert!(wait <= max_open, "{:?} > {:?}", wait, max_open);
                    clock.advance(wait);
                }
            }
        }
    }
    prop_assert!(!panel.to_string().is_empty());
    prop_assert!(
        !panel.health().is_healthy() || panel.breakers().iter().all(|b| b.state() != State::Open)
    );
    if let Some(retry) = config.retry() {
        let retrier = Retrier::new(retry.clone(), Arc::new(clock.clone()), "hostile");
        let mut run = RetryRun::new();
        for _ in 0..=retry.max_retries().min(8) {
            let decision = retrier.after_attempt(&mut run, AttemptOutcome::Status(503), || {
                Some(Duration::from_secs(1))
            });
            match decision {
                RetryDecision::Retry { after, .. } => {
                    prop_assert!(after <= retry.max_delay());
                    clock.advance(after);
                }
                RetryDecision::Stop(_) => break,
            }
        }
    }
    Ok(())
}

/// How the documents of one property fared.
#[derive(Debug, Default)]
struct Tally {
    accepted: AtomicUsize,
    field: AtomicUsize,
    syntax: AtomicUsize,
}

impl Tally {
    fn count(&self, result: &Result<Rejection, ()>) {
        let slot = match result {
            Err(()) => &self.accepted,
            Ok(Rejection::Field(_)) => &self.field,
            Ok(Rejection::Syntax) => &self.syntax,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> (usize, usize, usize) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.field.load(Ordering::Relaxed),
            self.syntax.load(Ordering::Relaxed),
        )
    }
}

/// Runs `test` on `cases` values of `strategy`, panicking with the minimal failing input.
fn check<S: Strategy>(
    cases: ProptestConfig,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = proptest::test_runner::TestRunner::new(cases);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// The structured documents: every rejection names a field the generator made invalid (or a
/// field a cross-field rule reports), every document with an invalid value is rejected, and
/// every accepted config runs without panicking.
#[test]
fn structured_config_documents_are_loaded_or_refused_by_field() {
    let config = cases(2048);
    let n = config.cases as usize;
    let tally = Tally::default();
    check(config, document(), |doc| {
        let outcome = match BoxConfig::from_toml(&doc.text) {
            Ok(config) => {
                prop_assert!(
                    doc.bad.is_empty(),
                    "accepted, though {:?} are invalid:\n{}",
                    doc.bad,
                    doc.text
                );
                exercise(&config)?;
                Err(())
            }
            Err(ConfigError::Parse(err)) => {
                let rejection = rejection(&doc.text, &err)?;
                match &rejection {
                    Rejection::Syntax => prop_assert!(
                        false,
                        "the generator writes valid TOML:\n{}\n{}",
                        err,
                        doc.text
                    ),
                    Rejection::Field(field) => prop_assert!(
                        suspected(field, &doc.suspects),
                        "names `{}`, none of {:?}:\n{}\n--- document ---\n{}",
                        field,
                        doc.suspects,
                        err,
                        doc.text
                    ),
                }
                Ok(rejection)
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        tally.count(&outcome);
        Ok(())
    });
    let (accepted, field, syntax) = tally.get();
    eprintln!(
        "structured documents: {n} cases, {accepted} accepted, {field} refused naming a field, {syntax} syntax errors"
    );
    if n >= 256 {
        // The generator must keep producing both kinds, or the property proves little.
        assert!(accepted * 10 >= n, "only {accepted} of {n} accepted");
        assert!(field * 4 >= n, "only {field} of {n} refused");
    }
}

// --- unstructured text ---

/// TOML literals of every type, in and out of every key's range.
const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "5",
    "65536",
    "4294967296",
    "9223372036854775807",
    "0.0",
    "0.5",
    "1.5",
    "-0.0",
    "nan",
    "inf",
    "1e-300",
    "1e308",
    "true",
    "false",
    "\"60s\"",
    "\"0s\"",
    "\"\"",
    "\"x\"",
    "\"*.a.com\"",
    "\"overflow\"",
    "\"5xx\"",
    "\"http://h/\"",
    "\"count\"",
    "\"time\"",
    "\"none\"",
    "\"shared\"",
    "\"18446744073709551615s\"",
    "[]",
    "[503, \"5xx\"]",
    "[1, \"a\"]",
    "{}",
    "{ kind = \"count\", size = 3 }",
    "{ kind = \"time\", duration = \"1s\", buckets = 2 }",
    "{ host = \"a.com\" }",
    "{ ttl = \"5s\" }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
];

/// Text from arbitrary characters to documents of random lines over the real keys (headers,
/// `key = value` with any literal, dotted keys, junk).
fn toml_text() -> impl Strategy<Value = String> {
    let mut keys: Vec<&'static str> = KNOWN_KEYS.to_vec();
    keys.extend(UNKNOWN_KEYS);
    keys.extend([
        "window.size",
        "match.host",
        "budget.ttl",
        "defaults.failure_rate",
        "\"name\"",
    ]);
    let value = prop_oneof![
        4 => pick(LITERALS),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => "\"[ -~]{0,12}\"",
        1 => "[ -~]{0,8}",
    ];
    let line = prop_oneof![
        2 => pick(&[
            "[defaults]", "[retry]", "[[breakers]]", "[defaults.window]", "[retry.budget]",
            "[[breakers.match]]", "[breakers]", "[junk]", "",
        ]),
        6 => (prop::sample::select(keys), value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[ -~]{0,30}",
    ]
    .boxed();
    prop_oneof![
        1 => any::<String>(),
        1 => "[ -~\n\t]{0,120}",
        6 => prop::collection::vec(line.clone(), 0..24).prop_map(|lines| lines.join("\n")),
        // Short documents repeat keys and headers less, so more of them are TOML.
        6 => prop::collection::vec(line, 0..6).prop_map(|lines| lines.join("\n")),
    ]
}

/// Any text, as a box config, a breaker config and a retry table: no panic; a rejection is a
/// syntax error passed through with its position, or names a field; an accepted box runs.
#[test]
fn any_config_text_is_loaded_or_refused_by_field() {
    let config = cases(4096);
    let n = config.cases as usize;
    let tally = Tally::default();
    check(config, toml_text(), |text| {
        let outcome = match BoxConfig::from_toml(&text) {
            Ok(config) => {
                exercise(&config)?;
                Err(())
            }
            Err(ConfigError::Parse(err)) => Ok(rejection(&text, &err)?),
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        tally.count(&outcome);
        match BreakerConfig::from_toml(&text) {
            Ok(_) => {}
            Err(ConfigError::Parse(err)) => {
                rejection(&text, &err)?;
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        }
        match RetryConfig::from_toml(&text) {
            Ok(_) => {}
            Err(ConfigError::Parse(err)) => {
                rejection(&text, &err)?;
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        }
        Ok(())
    });
    let (accepted, field, syntax) = tally.get();
    eprintln!(
        "unstructured text: {n} cases, {accepted} accepted, {field} refused naming a field, {syntax} syntax errors"
    );
    if n >= 256 {
        assert!(
            field * 10 >= n,
            "only {field} of {n} reach the config's own checks"
        );
    }
}
