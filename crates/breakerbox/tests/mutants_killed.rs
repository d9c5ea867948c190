//! Tests written for the mutants that survived `scripts/mutants.sh` (RELIABILITY.md lists them,
//! with the ones left alive and why). Each test pins a behaviour a user can see through the
//! public API: a getter, a routing decision of the box, a log event, a stale permit or probe
//! that must not count in a later period. They read no wall clock except where the subject
//! is the OS clock itself, and never sleep.
#![cfg(not(loom))] // loom's atomics only work inside `loom::model`

use breakerbox::backoff::{Backoff, Jitter};
use breakerbox::clock::{Clock, ManualClock, MonotonicClock};
use breakerbox::{
    BoxConfig, BreakerBox, BreakerConfig, BreakerRule, CircuitBreaker, Match, Outcome, Overflow,
    State, Target, WindowConfig,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder("upstream", config)
        .clock(Arc::new(clock.clone()))
        .build();
    (b, clock)
}

fn panel(config: BoxConfig) -> BreakerBox {
    BreakerBox::builder(config)
        .clock(Arc::new(ManualClock::new()))
        .build()
}

fn https(host: &str) -> Target<'_> {
    Target::new("https", host, 443, "/")
}

// === backoff ===

#[test]
fn backoff_getters_return_what_it_was_built_with() {
    let b = Backoff::new(150 * MS, 3.0, 7 * SEC, Jitter::Decorrelated).unwrap();
    assert_eq!(b.base(), 150 * MS);
    assert_eq!(b.multiplier(), 3.0);
    assert_eq!(b.max(), 7 * SEC);
    assert_eq!(b.jitter(), Jitter::Decorrelated);
    for jitter in [Jitter::None, Jitter::Equal, Jitter::Full] {
        assert_eq!(Backoff::new(MS, 1.0, MS, jitter).unwrap().jitter(), jitter);
    }
}

#[test]
fn next_delay_follows_the_formula_of_its_jitter() {
    // Without jitter the random draw does not matter: the capped exponential exactly.
    let none = Backoff::new(100 * MS, 2.0, 10 * SEC, Jitter::None).unwrap();
    assert_eq!(none.next_delay(0, None), 100 * MS);
    assert_eq!(none.next_delay(3, None), 800 * MS);
    assert_eq!(none.next_delay(40, None), 10 * SEC);
    // Decorrelated and equal jitter never go below their floor, whatever is drawn.
    let decorrelated = Backoff::new(100 * MS, 2.0, 10 * SEC, Jitter::Decorrelated).unwrap();
    let equal = Backoff::new(100 * MS, 2.0, 10 * SEC, Jitter::Equal).unwrap();
    for _ in 0..100 {
        let d = decorrelated.next_delay(5, Some(SEC));
        assert!((100 * MS..=3 * SEC).contains(&d), "{d:?}");
        let e = equal.next_delay(2, None);
        assert!((200 * MS..=400 * MS).contains(&e), "{e:?}");
    }
}

// === clock ===

#[test]
fn the_monotonic_clock_moves() {
    let clock = MonotonicClock::new();
    // Reads only, no sleep: the OS clock has advanced long before this many reads.
    let moved = (0..10_000_000).any(|_| clock.now() > Duration::ZERO);
    assert!(moved, "the monotonic clock never left its origin");
}

// === config ===

#[test]
fn breaker_config_getters_return_what_was_set() {
    let c = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(7)
        .failure_rate(0.25)
        .slow_call_rate(0.75, 3 * SEC)
        .minimum_calls(12)
        .count_window(40)
        .open_duration(20 * SEC)
        .open_backoff(1.5, 90 * SEC)
        .open_jitter(0.3)
        .half_open_max_calls(4)
        .success_threshold(3)
        .probe_interval(5 * SEC)
        .build()
        .unwrap();
    assert_eq!(c.consecutive_failures(), Some(7));
    assert_eq!(c.failure_rate(), Some(0.25));
    assert_eq!(c.slow_call_rate(), Some(0.75));
    assert_eq!(c.slow_call_duration(), 3 * SEC);
    assert_eq!(c.minimum_calls(), 12);
    assert_eq!(c.window(), WindowConfig::Count { size: 40 });
    assert_eq!(c.open_duration(), 20 * SEC);
    assert_eq!(c.open_backoff_multiplier(), 1.5);
    assert_eq!(c.max_open_duration(), 90 * SEC);
    assert_eq!(c.open_jitter(), 0.3);
    assert_eq!(c.half_open_max_calls(), 4);
    assert_eq!(c.success_threshold(), 3);
    assert_eq!(c.probe_interval(), Some(5 * SEC));
}

#[test]
fn minimum_calls_may_equal_the_window_size() {
    let c = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .failure_rate(0.5)
        .count_window(10)
        .minimum_calls(10)
        .build();
    assert!(c.is_ok(), "{c:?}");
    let c = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .failure_rate(0.5)
        .count_window(10)
        .minimum_calls(11)
        .build();
    assert_eq!(c.unwrap_err().field(), "minimum_calls");
}

#[test]
fn config_limits_are_inclusive() {
    let ok = |b: breakerbox::config::BreakerConfigBuilder| {
        let built = b.failure_rate(0.5).minimum_calls(1).build();
        assert!(built.is_ok(), "{built:?}");
    };
    let refused = |b: breakerbox::config::BreakerConfigBuilder, field: &str| {
        let err = b.failure_rate(0.5).minimum_calls(1).build().unwrap_err();
        assert_eq!(err.field(), field);
    };
    let b = BreakerConfig::builder;
    ok(b().time_window(256 * MS, 256));
    refused(b().time_window(SEC, 257), "window.buckets");
    ok(b().time_window(10 * MS, 10));
    refused(b().time_window(9 * MS, 10), "window.duration");
    ok(b().half_open_max_calls(65_535).success_threshold(65_535));
    refused(b().half_open_max_calls(65_536), "half_open_max_calls");
    refused(b().success_threshold(65_536), "success_threshold");
    ok(b().count_window(1_048_575));
    refused(b().count_window(1_048_576), "window.size");
}

#[test]
fn a_refusal_says_why() {
    let err = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .open_duration(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "open_duration");
    assert_eq!(err.reason(), "must be longer than zero");
}

#[test]
fn match_getters_and_wildcards() {
    let m = Match::host("*.example.com").path_prefix("/v1");
    assert_eq!(m.host_pattern(), "*.example.com");
    assert_eq!(m.path(), Some("/v1"));
    assert!(m.matches_host("a.example.com"));
    assert!(m.matches_host("A.B.Example.COM"));
    assert!(!m.matches_host("example.com"));
    // A dot and the suffix is no subdomain: the label before the suffix may not be empty.
    assert!(!m.matches_host(".example.com"));
    assert!(!m.matches_host("aexample.com"));
}

#[test]
fn host_patterns_that_are_not_host_names_are_refused() {
    for host in [
        "",
        "*.",
        "a b",
        "a/b",
        "a:80",
        "a*b",
        "*.*.a",
        ".a",
        "a.",
        "*.a.",
        "example.com.",
    ] {
        let built = BoxConfig::builder()
            .rule(BreakerRule::new("r", Match::host(host)))
            .build();
        let err = built.err().unwrap_or_else(|| panic!("{host:?} accepted"));
        assert_eq!(err.field(), "breakers[0].match.host", "{host:?}");
    }
    for host in ["a", "example.com", "*.example.com", "xn--bcher-kva.example"] {
        let built = BoxConfig::builder()
            .rule(BreakerRule::new("r", Match::host(host)))
            .build();
        assert!(built.is_ok(), "{host:?}: {built:?}");
    }
}

#[test]
fn a_rule_keeps_its_health_url() {
    let rule = BreakerRule::new("api", Match::host("api.example"));
    assert_eq!(rule.health_check(), None);
    let rule = rule.health_url("http://127.0.0.1:9/health");
    assert_eq!(rule.health_check(), Some("http://127.0.0.1:9/health"));
}

#[test]
fn a_config_file_is_read_from_disk() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("mutants_killed_{}.toml", std::process::id()));
    std::fs::write(&path, "max_breakers = 7\n").unwrap();
    let loaded = BoxConfig::from_toml_file(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.unwrap().max_breakers(), 7);
    let missing = BoxConfig::from_toml_file(dir.join("no such file.toml"));
    assert!(
        matches!(missing, Err(breakerbox::ConfigError::Io { .. })),
        "{missing:?}"
    );
}

// === outcomes and names ===

#[test]
fn http_statuses_map_to_outcomes() {
    let config = breakerbox::BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .build()
        .unwrap();
    let of = |status| config.outcome_of(breakerbox::AttemptOutcome::Status(status));
    for status in [408, 500, 503, 599] {
        assert_eq!(of(status), Outcome::Failure, "{status}");
    }
    // A 429 says "slower", not "broken": the breaker leaves it to retry and throttling.
    for status in [400, 401, 404, 407, 409, 428, 429, 430, 499, 600] {
        assert_eq!(of(status), Outcome::Ignored, "{status}");
    }
    for status in [100, 200, 204, 301, 304, 399] {
        assert_eq!(of(status), Outcome::Success, "{status}");
    }
}

#[test]
fn states_display_as_their_names() {
    for state in [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
        State::MetricsOnly,
    ] {
        assert_eq!(state.to_string(), state.as_str());
    }
    assert_eq!(State::HalfOpen.to_string(), "half_open");
}

#[test]
fn debug_output_names_the_type_and_its_parts() {
    let config = BoxConfig::builder().max_breakers(3).build().unwrap();
    let builder = BreakerBox::builder(config.clone());
    let shown = format!("{builder:?}");
    assert!(shown.starts_with("BoxBuilder"), "{shown}");
    assert!(shown.contains("listeners"), "{shown}");
    let b = panel(config);
    b.breaker(&https("a.example"));
    let shown = format!("{b:?}");
    assert!(shown.starts_with("BreakerBox"), "{shown}");
    assert!(shown.contains("breakers: 1"), "{shown}");

    let builder = CircuitBreaker::builder(
        "debugged",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let shown = format!("{builder:?}");
    assert!(shown.contains("debugged"), "{shown}");
    let cb = builder.build();
    let shown = format!("{cb:?}");
    assert!(shown.starts_with("CircuitBreaker"), "{shown}");
    assert!(
        shown.contains("debugged") && shown.contains("Closed"),
        "{shown}"
    );
    let permit = format!("{:?}", cb.try_acquire().unwrap());
    assert!(
        permit.starts_with("Permit") && permit.contains("debugged"),
        "{permit}"
    );
    let owned = format!("{:?}", cb.try_acquire_owned().unwrap());
    assert!(
        owned.starts_with("OwnedPermit") && owned.contains("debugged"),
        "{owned}"
    );
}

// === the box: targets, names, routing ===

#[test]
fn target_accessors_return_their_parts() {
    let t = Target::new("wss", "Stream.Example", 8443, "/live");
    assert_eq!(t.scheme(), "wss");
    assert_eq!(t.host(), "Stream.Example");
    assert_eq!(t.port(), 8443);
    assert_eq!(t.path(), "/live");
}

#[test]
fn a_port_is_left_out_of_the_name_only_when_it_is_the_schemes_default() {
    let b = panel(BoxConfig::default());
    let name = |scheme, host, port| {
        b.breaker(&Target::new(scheme, host, port, "/"))
            .name()
            .to_owned()
    };
    assert_eq!(name("http", "a.example", 80), "a.example");
    assert_eq!(name("WS", "b.example", 80), "b.example");
    assert_eq!(name("https", "c.example", 443), "c.example");
    assert_eq!(name("wss", "d.example", 443), "d.example");
    assert_eq!(name("http", "e.example", 443), "e.example:443");
    // A scheme without a known default port keeps its port in the name.
    assert_eq!(name("ftp", "f.example", 80), "f.example:80");
    assert_eq!(name("gopher", "g.example", 443), "g.example:443");
}

#[test]
fn box_config_is_the_one_it_was_built_with() {
    let config = BoxConfig::builder()
        .max_breakers(7)
        .overflow(Overflow::Shared)
        .build()
        .unwrap();
    let b = panel(config);
    assert_eq!(b.config().max_breakers(), 7);
    assert_eq!(b.config().overflow(), Overflow::Shared);
}

#[test]
fn one_target_one_breaker_whatever_the_case_of_its_scheme() {
    let b = panel(BoxConfig::default());
    let lower = b.breaker(&Target::new("https", "a.example", 443, "/"));
    let upper = b.breaker(&Target::new("HTTPS", "a.example", 443, "/x"));
    assert!(lower.ptr_eq(&upper));
    assert_eq!(b.breakers().len(), 1);
}

#[test]
fn two_schemes_on_one_port_get_two_breakers() {
    let b = panel(BoxConfig::default());
    let plain = b.breaker(&Target::new("http", "a.example", 8080, "/"));
    let tls = b.breaker(&Target::new("https", "a.example", 8080, "/"));
    assert!(!plain.ptr_eq(&tls));
    assert_eq!(b.breakers().len(), 2);
}

fn with_rule(max_breakers: usize) -> BoxConfig {
    BoxConfig::builder()
        .max_breakers(max_breakers)
        .rule(BreakerRule::new("ruled", Match::host("rule.example")))
        .build()
        .unwrap()
}

#[test]
fn a_host_taken_by_a_rule_does_not_fill_the_box() {
    let b = panel(with_rule(16));
    assert_eq!(b.breaker(&https("rule.example")).name(), "ruled");
    assert_eq!(b.breaker(&https("other.example")).name(), "other.example");
    assert_eq!(b.breaker(&https("third.example")).name(), "third.example");
}

#[test]
fn every_port_of_a_host_counts_towards_the_cap() {
    let b = panel(BoxConfig::builder().max_breakers(1).build().unwrap());
    assert_eq!(b.breaker(&https("a.example")).name(), "a.example");
    let other_port = b.breaker(&Target::new("https", "a.example", 8443, "/"));
    assert_eq!(other_port.name(), "overflow");
    let names: Vec<_> = b.breakers().iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, ["a.example", "overflow"]);
}

#[test]
fn hosts_remembered_for_rules_count_towards_the_cap() {
    let b = panel(with_rule(1));
    assert_eq!(b.breaker(&https("rule.example")).name(), "ruled");
    // The box remembers one host: a new one gets the overflow breaker.
    assert_eq!(b.breaker(&https("a.example")).name(), "overflow");
    assert_eq!(b.breakers().len(), 2);
}

#[test]
fn past_the_cap_a_rule_catches_only_its_own_hosts() {
    let b = panel(with_rule(1));
    assert_eq!(b.breaker(&https("a.example")).name(), "a.example");
    assert_eq!(b.breaker(&https("b.example")).name(), "overflow");
    // From here on unknown hosts are resolved without being remembered.
    assert_eq!(b.breaker(&https("c.example")).name(), "overflow");
    assert_eq!(b.breaker(&https("rule.example")).name(), "ruled");
    assert_eq!(b.breaker(&https("d.example")).name(), "overflow");
}

#[test]
fn past_the_cap_every_rule_is_tried_in_order() {
    let b = panel(
        BoxConfig::builder()
            .max_breakers(1)
            .rule(BreakerRule::new("first", Match::host("first.example")))
            .rule(BreakerRule::new("second", Match::host("second.example")))
            .build()
            .unwrap(),
    );
    assert_eq!(b.breaker(&https("a.example")).name(), "a.example");
    assert_eq!(b.breaker(&https("b.example")).name(), "overflow");
    // Full: a host seen for the first time is matched against the rules without being
    // remembered, and a rule that is not its own does not end the search.
    assert_eq!(b.breaker(&https("second.example")).name(), "second");
    assert_eq!(b.breaker(&https("first.example")).name(), "first");
}

// === stale trials and probes ===

/// Trips on one failure; open for 10 s every time (no growth).
fn trips_at_once() -> breakerbox::config::BreakerConfigBuilder {
    BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(10 * SEC)
        .open_backoff(1.0, 10 * SEC)
}

#[test]
fn a_trial_success_from_an_earlier_half_open_period_does_not_count() {
    let (b, clock) = breaker(
        trips_at_once()
            .half_open_max_calls(2)
            .success_threshold(2)
            .build()
            .unwrap(),
    );
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(10 * SEC);
    let stale = b.try_acquire().expect("first trial");
    let failing = b.try_acquire().expect("second trial");
    assert_eq!(b.state(), State::HalfOpen);
    failing.record(Outcome::Failure);
    assert_eq!(b.state(), State::Open);

    clock.advance(10 * SEC);
    let fresh = b.try_acquire().expect("a trial of the next period");
    stale.record(Outcome::Success); // belongs to the period that failed
    assert_eq!(b.state(), State::HalfOpen);
    fresh.record(Outcome::Success);
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "one success of this period, two needed"
    );
    b.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_trial_dropped_from_an_earlier_half_open_period_frees_no_slot() {
    let (b, clock) = breaker(trips_at_once().half_open_max_calls(1).build().unwrap());
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(10 * SEC);
    let stale = b.try_acquire().expect("a trial");
    b.reset();
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(10 * SEC);
    let fresh = b.try_acquire().expect("the trial of the next period");
    assert!(b.try_acquire().is_err(), "one trial at a time");
    drop(stale);
    assert!(
        b.try_acquire().is_err(),
        "a permit of an earlier period released a slot of this one"
    );
    let ignored = {
        // The same through an Ignored outcome, which also releases the slot.
        b.reset();
        b.try_acquire().unwrap().record(Outcome::Failure);
        clock.advance(10 * SEC);
        b.try_acquire().expect("a trial")
    };
    drop(fresh);
    b.reset();
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(10 * SEC);
    let _current = b.try_acquire().expect("the trial of the last period");
    ignored.record(Outcome::Ignored);
    assert!(b.try_acquire().is_err());
}

#[test]
fn a_probe_claimed_in_an_earlier_open_period_does_not_half_open_the_breaker() {
    let (b, clock) = breaker(trips_at_once().probe_interval(SEC).build().unwrap());
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(SEC);
    let probe = b.probe_due().expect("due after one interval");
    clock.advance(9 * SEC);
    b.try_acquire().expect("a trial").record(Outcome::Failure);
    assert_eq!(b.state(), State::Open, "a new Open period");
    probe.succeeded();
    assert_eq!(b.state(), State::Open);
    assert!(b.try_acquire().is_err());
}

#[test]
fn open_jitter_shortens_every_open_duration_by_at_most_its_fraction() {
    let d = 100 * SEC;
    let (b, _clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .open_duration(d)
            .open_jitter(0.5)
            .build()
            .unwrap(),
    );
    let mut unshortened = 0;
    for _ in 0..200 {
        b.try_acquire().unwrap().record(Outcome::Failure);
        let open_for = b.retry_in().expect("open");
        assert!(d / 2 <= open_for && open_for <= d, "{open_for:?}");
        if open_for == d {
            unshortened += 1;
        }
        b.reset();
    }
    // The shortening is drawn from [0, 50 %]: a draw of exactly 0 is all but impossible.
    assert!(
        unshortened < 10,
        "{unshortened} of 200 trips were not shortened"
    );
}

// === logs ===

/// Every tracing event on this thread: level and message.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Capture {
    fn events(&self) -> Vec<(tracing::Level, String)> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, level: tracing::Level, message: &str) -> usize {
        self.events()
            .iter()
            .filter(|(l, m)| *l == level && m == message)
            .count()
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_full_box_warns_once() {
    const FULL: &str = "breaker box is full: new targets share the `overflow` breaker";
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let b = panel(BoxConfig::builder().max_breakers(1).build().unwrap());
        b.breaker(&https("a.example"));
        assert_eq!(capture.count(tracing::Level::WARN, FULL), 0);
        for host in ["b.example", "c.example", "d.example", "e.example"] {
            assert_eq!(b.breaker(&https(host)).name(), "overflow");
        }
    });
    assert_eq!(
        capture.count(tracing::Level::WARN, FULL),
        1,
        "{:?}",
        capture.events()
    );
}

#[test]
fn opening_is_logged_as_a_warning_and_closing_as_info() {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let (b, clock) = breaker(trips_at_once().build().unwrap());
        b.try_acquire().unwrap().record(Outcome::Failure);
        clock.advance(10 * SEC);
        b.try_acquire().unwrap().record(Outcome::Success);
        assert_eq!(b.state(), State::Closed);
        b.force_open();
        b.disable();
    });
    let events = capture.events();
    let levels: Vec<_> = events
        .iter()
        .map(|(level, message)| (*level, message.as_str()))
        .collect();
    assert_eq!(
        levels,
        [
            (tracing::Level::WARN, "circuit breaker opened"),
            (tracing::Level::INFO, "circuit breaker changed state"),
            (tracing::Level::INFO, "circuit breaker closed"),
            (tracing::Level::WARN, "circuit breaker opened"),
            (tracing::Level::INFO, "circuit breaker changed state"),
        ]
    );
}

// === reports ===

#[test]
fn a_box_without_failing_breakers_is_healthy() {
    let b = panel(BoxConfig::default());
    assert!(b.health().is_healthy());
    b.breaker(&https("a.example"));
    assert!(b.health().is_healthy());
    b.breaker(&https("a.example")).force_open();
    assert!(!b.health().is_healthy());
}

#[test]
fn transition_reasons_read_as_sentences() {
    use breakerbox::TransitionReason as R;
    assert_eq!(
        R::ConsecutiveFailures { count: 5 }.to_string(),
        "5 consecutive failures"
    );
    assert_eq!(
        R::FailureRate { rate: 0.5 }.to_string(),
        "failure rate 50.0%"
    );
    assert_eq!(
        R::SlowCallRate { rate: 0.125 }.to_string(),
        "slow-call rate 12.5%"
    );
    assert_eq!(
        R::TrialsSucceeded { count: 2 }.to_string(),
        "trial calls succeeded (2)"
    );
    assert_eq!(R::Reset.to_string(), "reset");
    assert_eq!(R::TrialFailed.to_string(), "trial_failed");
}

#[test]
fn only_half_open_permits_are_trials() {
    let (b, clock) = breaker(trips_at_once().half_open_max_calls(2).build().unwrap());
    let closed = b.try_acquire().unwrap();
    assert!(!closed.is_trial());
    let owned = b.try_acquire_owned().unwrap();
    assert!(!owned.is_trial());
    let shown = format!("{closed:?} {owned:?}");
    assert!(
        shown.contains("Permit") && shown.contains("upstream") && shown.contains("trial: false"),
        "{shown}"
    );
    closed.record(Outcome::Failure);
    drop(owned);
    clock.advance(10 * SEC);
    let trial = b.try_acquire().unwrap();
    let owned = b.try_acquire_owned().unwrap();
    assert!(trial.is_trial() && owned.is_trial());
    let shown = format!("{trial:?} {owned:?}");
    assert!(shown.contains("trial: true"), "{shown}");
}

#[test]
fn a_probe_ticket_shows_its_breaker() {
    let (b, clock) = breaker(trips_at_once().probe_interval(SEC).build().unwrap());
    b.try_acquire().unwrap().record(Outcome::Failure);
    clock.advance(SEC);
    let probe = b.probe_due().unwrap();
    let shown = format!("{probe:?}");
    assert!(
        shown.contains("ProbeTicket") && shown.contains("upstream"),
        "{shown}"
    );
    probe.failed();
}

#[test]
fn snapshot_rates_are_over_the_calls_in_the_window() {
    let (b, clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .no_consecutive_failures()
            .failure_rate(0.9)
            .slow_call_rate(0.9, SEC)
            .count_window(10)
            .minimum_calls(10)
            .build()
            .unwrap(),
    );
    let snapshot = b.snapshot();
    assert_eq!(snapshot.failure_rate(), None);
    assert_eq!(snapshot.slow_call_rate(), None);
    for (outcome, took) in [
        (Outcome::Failure, MS),
        (Outcome::Success, 2 * SEC),
        (Outcome::Success, MS),
        (Outcome::Success, MS),
    ] {
        let permit = b.try_acquire().unwrap();
        clock.advance(took);
        permit.record(outcome);
    }
    let snapshot = b.snapshot();
    assert_eq!(snapshot.failure_rate(), Some(0.25));
    assert_eq!(snapshot.slow_call_rate(), Some(0.25));
}

// === metrics ===

#[test]
fn every_automatic_transition_is_counted_by_the_recorder_the_breaker_was_built_under() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new();
    // Built under a local recorder; the transitions happen outside its scope.
    let b = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder("counted", trips_at_once().build().unwrap())
            .clock(Arc::new(clock.clone()))
            .build()
    });
    b.try_acquire().unwrap().record(Outcome::Failure); // closed -> open
    clock.advance(10 * SEC);
    b.try_acquire().unwrap().record(Outcome::Failure); // open -> half_open -> open
    clock.advance(10 * SEC);
    b.try_acquire().unwrap().record(Outcome::Success); // open -> half_open -> closed
    let mut transitions = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if key.name() != "circuit_breaker_transitions_total" {
            continue;
        }
        let label = |name| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap()
        };
        let DebugValue::Counter(n) = value else {
            panic!("a counter: {value:?}")
        };
        transitions.insert((label("from"), label("to")), n);
    }
    let count = |from: &str, to: &str| transitions[&(from.to_owned(), to.to_owned())];
    assert_eq!(count("closed", "open"), 1);
    assert_eq!(count("open", "half_open"), 2);
    assert_eq!(count("half_open", "open"), 1);
    assert_eq!(count("half_open", "closed"), 1);
}

// === clock reads ===

/// A clock standing still that counts how often it is read.
#[derive(Debug, Default)]
struct CountingClock {
    reads: std::sync::atomic::AtomicUsize,
}

impl Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Duration::ZERO
    }
}

#[test]
fn a_count_window_without_a_slow_call_rule_never_reads_the_clock_in_closed() {
    let clock = Arc::new(CountingClock::default());
    let b = CircuitBreaker::builder(
        "counted",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5)
            .count_window(10)
            .minimum_calls(10)
            .build()
            .unwrap(),
    )
    .clock(clock.clone())
    .build();
    let reads = || clock.reads.load(std::sync::atomic::Ordering::Relaxed);
    let at_build = reads();
    for i in 0..100 {
        let outcome = if i % 10 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        b.try_acquire().unwrap().record(outcome);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(reads(), at_build, "the clock was read on the healthy path");
}

// === time windows ===

#[test]
fn a_full_time_bucket_halves_its_counts() {
    let (b, _clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .failure_rate(0.5)
            .minimum_calls(1)
            .time_window(10 * SEC, 10)
            .build()
            .unwrap(),
    );
    // A bucket holds 131,071 calls (17 bits); the next call halves it first.
    const FULL: u64 = (1 << 17) - 1;
    for _ in 0..FULL {
        b.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(b.snapshot().window_calls, FULL);
    b.try_acquire().unwrap().record(Outcome::Failure);
    let snapshot = b.snapshot();
    assert_eq!(
        (snapshot.window_calls, snapshot.window_failures),
        (FULL / 2 + 1, 1)
    );
    assert_eq!(b.state(), State::Closed);
}

// === retry config and budget ===

#[test]
fn a_box_config_keeps_its_retry_table() {
    let with = BoxConfig::from_toml("[retry]\nmax_retries = 2\n").unwrap();
    assert_eq!(with.retry().map(|r| r.max_retries()), Some(2));
    let without = BoxConfig::from_toml("max_breakers = 5\n").unwrap();
    assert!(without.retry().is_none());
}

fn budget(ttl: Duration, min_per_sec: u32, ratio: f64) -> (breakerbox::RetryBudget, ManualClock) {
    let clock = ManualClock::new();
    let config = breakerbox::retry::BudgetConfig::new(ttl, min_per_sec, ratio).unwrap();
    (
        breakerbox::RetryBudget::new(&config, Arc::new(clock.clone())),
        clock,
    )
}

#[test]
fn a_budget_keeps_its_config() {
    let (b, _clock) = budget(20 * SEC, 3, 0.25);
    assert_eq!(b.config().ttl(), 20 * SEC);
    assert_eq!(b.config().min_per_sec(), 3);
    assert_eq!(b.config().retry_ratio(), 0.25);
}

#[test]
fn deposits_from_many_threads_all_count_while_in_the_window() {
    // One retry per request, no floor, a 10 s window of ten 1 s buckets.
    let (b, clock) = budget(10 * SEC, 0, 1.0);
    // Each deposit from a new thread (so each takes the next stripe), one bucket apart.
    for i in 0..64 {
        if i > 0 {
            clock.advance(SEC);
        }
        std::thread::scope(|s| {
            s.spawn(|| b.deposit());
        });
    }
    // The window holds the last ten buckets: ten deposits, ten retries.
    assert_eq!(b.remaining(), 10);
}

#[test]
fn may_retry_with_needs_any_one_of_its_three_reasons() {
    use breakerbox::RetryConfig;
    let strict = RetryConfig::default();
    assert!(strict.may_retry_with(true, || false));
    assert!(strict.may_retry_with(false, || true));
    assert!(!strict.may_retry_with(false, || false));
    let lax = RetryConfig::builder()
        .retry_non_idempotent(true)
        .build()
        .unwrap();
    assert!(lax.may_retry_with(false, || false));
}

#[test]
fn status_patterns_match_their_code_or_class() {
    use breakerbox::StatusPattern;
    assert!(StatusPattern::Code(503).matches(503));
    assert!(!StatusPattern::Code(503).matches(502));
    assert!(StatusPattern::Class(5).matches(500));
    assert!(StatusPattern::Class(5).matches(503));
    assert!(StatusPattern::Class(5).matches(599));
    assert!(!StatusPattern::Class(5).matches(499));
    assert!(!StatusPattern::Class(5).matches(600));
    assert!(!StatusPattern::Class(5).matches(5));
    assert!(StatusPattern::Class(4).matches(429));
}

#[test]
fn a_status_class_covers_its_hundred_codes_only() {
    use breakerbox::RetryConfig;
    let config = RetryConfig::builder()
        .statuses(["4xx".parse().unwrap()])
        .build()
        .unwrap();
    assert!(config.is_transient_status(400));
    assert!(config.is_transient_status(499));
    assert!(!config.is_transient_status(399));
    assert!(!config.is_transient_status(500));
    assert!(!config.is_transient_status(503));
    let default = RetryConfig::default();
    assert!(default.is_transient_status(599));
    assert!(!default.is_transient_status(600));
}

#[test]
fn a_400_that_is_not_retried_is_not_a_success() {
    use breakerbox::AttemptOutcome;
    use breakerbox::retry::{Retrier, RetryConfig, RetryDecision, StopReason};
    let retrier = Retrier::new(RetryConfig::default(), Arc::new(ManualClock::new()), "t");
    let stop =
        |status| retrier.after_attempt(&mut retrier.run(), AttemptOutcome::Status(status), || None);
    assert_eq!(stop(400), RetryDecision::Stop(StopReason::NotTransient));
    assert_eq!(stop(399), RetryDecision::Stop(StopReason::Succeeded));
}

#[test]
fn a_status_of_the_wrong_type_is_refused_with_what_is_expected() {
    let err = toml::from_str::<breakerbox::RetryConfig>("statuses = [true]\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("an HTTP status like 503 or a class like \"5xx\""),
        "{err}"
    );
}

#[test]
fn wrong_types_for_max_elapsed_and_budget_say_what_is_expected() {
    let err = toml::from_str::<breakerbox::RetryConfig>("max_elapsed = 5\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("a duration like \"30s\", or false for no limit"),
        "{err}"
    );
    let err = toml::from_str::<breakerbox::RetryConfig>("budget = 5\n").unwrap_err();
    assert!(
        err.to_string().contains("a budget table, or true / false"),
        "{err}"
    );
}

#[test]
fn a_stop_is_not_a_retry() {
    use breakerbox::retry::{RetryDecision, StopReason};
    assert!(!RetryDecision::Stop(StopReason::Exhausted).is_retry());
    assert!(!RetryDecision::Stop(StopReason::Succeeded).is_retry());
}

#[test]
fn a_retry_after_that_uses_exactly_the_time_left_is_honoured() {
    use breakerbox::AttemptOutcome;
    use breakerbox::RetryConfig;
    use breakerbox::retry::{Retrier, RetryDecision, RetryReason};
    let config = RetryConfig::builder()
        .jitter(Jitter::None)
        .max_delay(60 * SEC)
        .max_elapsed(Some(10 * SEC))
        .without_budget()
        .build()
        .unwrap();
    let retrier = Retrier::new(config, Arc::new(ManualClock::new()), "t");
    let decision = retrier.after_attempt(&mut retrier.run(), AttemptOutcome::Status(503), || {
        Some(10 * SEC)
    });
    assert_eq!(
        decision,
        RetryDecision::Retry {
            after: 10 * SEC,
            reason: RetryReason::Status(503)
        }
    );
}

#[test]
fn a_backoff_that_uses_exactly_the_time_left_is_waited() {
    use breakerbox::AttemptOutcome;
    use breakerbox::RetryConfig;
    use breakerbox::retry::{Retrier, RetryDecision, RetryReason, StopReason};
    let config = RetryConfig::builder()
        .jitter(Jitter::None)
        .base_delay(200 * MS)
        .max_elapsed(Some(SEC))
        .without_budget()
        .build()
        .unwrap();
    // The first failure at 0 starts the clock; the second, at `at`, asks for 400 ms of backoff.
    let second = |at: Duration| {
        let clock = ManualClock::new();
        let retrier = Retrier::new(config.clone(), Arc::new(clock.clone()), "t");
        let mut run = retrier.run();
        let first = retrier.after_attempt(&mut run, AttemptOutcome::Status(502), || None);
        assert!(first.is_retry());
        clock.advance(at);
        retrier.after_attempt(&mut run, AttemptOutcome::Status(502), || None)
    };
    // 600 ms in, 400 ms are left: the 400 ms backoff still fits.
    assert_eq!(
        second(600 * MS),
        RetryDecision::Retry {
            after: 400 * MS,
            reason: RetryReason::Status(502)
        }
    );
    assert_eq!(second(601 * MS), RetryDecision::Stop(StopReason::Elapsed));
}

#[test]
fn a_retrier_keeps_what_it_was_built_with() {
    use breakerbox::RetryConfig;
    use breakerbox::retry::Retrier;
    let config = RetryConfig::builder().max_retries(7).build().unwrap();
    let with = Retrier::new(config, Arc::new(ManualClock::new()), "musicbrainz");
    assert_eq!(with.config().max_retries(), 7);
    assert!(with.budget().is_some());
    assert_eq!(with.target(), "musicbrainz");
    let without = Retrier::new(
        RetryConfig::builder().without_budget().build().unwrap(),
        Arc::new(ManualClock::new()),
        "t",
    );
    assert!(without.budget().is_none());
}

#[test]
fn giving_up_is_logged_only_when_retries_run_out() {
    use breakerbox::AttemptOutcome;
    use breakerbox::RetryConfig;
    use breakerbox::retry::{Retrier, RetryDecision, RetryRun, StopReason};
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let clock = ManualClock::new();
        let config = RetryConfig::builder()
            .max_retries(1)
            .jitter(Jitter::None)
            .without_budget()
            .build()
            .unwrap();
        let retrier = Retrier::new(config, Arc::new(clock.clone()), "t");
        // A retry that succeeds: no "giving up".
        let mut run = RetryRun::new();
        let first = retrier.after_attempt(&mut run, AttemptOutcome::Status(503), || None);
        assert!(first.is_retry());
        let second = retrier.after_attempt(&mut run, AttemptOutcome::Status(200), || None);
        assert_eq!(second, RetryDecision::Stop(StopReason::Succeeded));
        assert_eq!(capture.count(tracing::Level::DEBUG, "giving up"), 0);
        // Retries that run out: "giving up", once.
        let mut run = RetryRun::new();
        retrier.after_attempt(&mut run, AttemptOutcome::Status(503), || None);
        let last = retrier.after_attempt(&mut run, AttemptOutcome::Status(503), || None);
        assert_eq!(last, RetryDecision::Stop(StopReason::Exhausted));
    });
    assert_eq!(capture.count(tracing::Level::DEBUG, "giving up"), 1);
}

#[test]
fn a_bucket_skipped_by_traffic_is_still_emptied_when_time_passes_it() {
    // 256 buckets of 1 ms. Bucket tags repeat every 4096 buckets: ring slot 0 holds buckets
    // 0, 256, 512, ... and bucket 4096 carries bucket 0's tag.
    let (b, clock) = breaker(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .no_consecutive_failures()
            .failure_rate(1.0)
            .minimum_calls(256)
            .time_window(256 * MS, 256)
            .build()
            .unwrap(),
    );
    b.try_acquire().unwrap().record(Outcome::Failure); // bucket 0
    // A success in every later bucket but those of slot 0, so no gap is a whole window long.
    for bucket in 1..4096 {
        clock.advance(MS);
        if bucket % 256 != 0 {
            b.try_acquire().unwrap().record(Outcome::Success);
        }
    }
    clock.advance(MS); // bucket 4096
    let snapshot = b.snapshot();
    assert_eq!(
        (snapshot.window_calls, snapshot.window_failures),
        (255, 0),
        "bucket 0's failure came back 4096 buckets later"
    );
}
