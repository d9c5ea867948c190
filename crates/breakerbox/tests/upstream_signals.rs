//! What an upstream says beyond pass and fail: the server's word (`Retry-After`, rate-limit
//! reset headers), refusals that call for throttling, many upstreams failing at once (the fleet
//! guard), and each upstream's own retry policy and budget.

use breakerbox::clock::{Clock, ManualClock};
use breakerbox::config::{RateLimitReset, ResetForm, ThrottleConfig};
use breakerbox::retry::{RetryDecision, RetryRun, StopReason};
use breakerbox::{
    AttemptOutcome, BoxConfig, BreakerBox, BreakerConfig, CircuitBreaker, Outcome, State, Target,
    TransitionReason,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("upstream", config)
        .clock(Arc::new(clock.clone()))
        .build();
    (breaker, clock)
}

/// A fixed wall-clock time: the server's dates are read against it.
fn wall_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn headers<'a>(pairs: &'a [(&'a str, &'a [u8])]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
    move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

// === the server's word ===

#[test]
fn a_429_with_retry_after_opens_the_breaker_for_the_stated_time() {
    let (breaker, clock) = breaker(BreakerConfig::default());
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    breaker.on_transition(move |e| seen.lock().unwrap().push(e.reason));
    let config = breaker.config().clone();
    let wait = config.server_wait(429, headers(&[("retry-after", b"30")]), wall_clock());
    assert_eq!(wait, Some(Duration::from_secs(30)));
    let permit = breaker.try_acquire().unwrap();
    permit.report_answer(AttemptOutcome::Status(429), wait);
    assert_eq!(breaker.state(), State::Open, "one answer is enough");
    let left = breaker.retry_in().unwrap();
    // Never sooner than asked, and at most a tenth later (so a fleet spreads out).
    assert!(
        left >= Duration::from_secs(30) && left <= Duration::from_secs(33),
        "{left:?}"
    );
    assert_eq!(
        reasons.lock().unwrap()[0],
        TransitionReason::RetryAfter {
            wait: Duration::from_secs(30)
        }
    );
    clock.advance(Duration::from_secs(29));
    assert!(breaker.try_acquire().is_err());
    clock.advance(Duration::from_secs(5));
    let trial = breaker
        .try_acquire()
        .expect("a trial once the wait is over");
    trial.report(AttemptOutcome::Status(200));
    assert_eq!(breaker.state(), State::Closed);
    // The server's time does not grow the breaker's own backoff.
    assert_eq!(breaker.snapshot().open_duration_seconds, 5.0);
}

#[test]
fn the_servers_wait_is_capped_and_hostile_values_are_ignored() {
    let config = BreakerConfig::builder()
        .open_backoff(2.0, Duration::from_secs(60))
        .build()
        .unwrap();
    let now = wall_clock();
    let wait = |value: &[u8]| config.server_wait(503, headers(&[("retry-after", value)]), now);
    assert_eq!(wait(b"86400"), Some(Duration::from_secs(60)), "capped");
    let far_future = httpdate::fmt_http_date(now + Duration::from_secs(10 * 365 * 86400));
    assert_eq!(wait(far_future.as_bytes()), Some(Duration::from_secs(60)));
    let digits = vec![b'9'; 10 * 1024];
    assert_eq!(
        wait(&digits),
        Some(Duration::from_secs(60)),
        "10 KB of digits"
    );
    let past = httpdate::fmt_http_date(now - Duration::from_secs(3600));
    for hostile in [
        &b"-5"[..],
        b"0",
        b"1.5",
        b"soon",
        b"\xff\xfe\xfd",
        past.as_bytes(),
        b"",
    ] {
        assert_eq!(
            wait(hostile),
            None,
            "{:?}",
            String::from_utf8_lossy(hostile)
        );
    }
    // Only 429 and 503 speak for the server; and the key turns it off.
    assert_eq!(
        config.server_wait(500, headers(&[("retry-after", b"5")]), now),
        None
    );
    let off = BreakerConfig::builder()
        .open_on_retry_after(false)
        .build()
        .unwrap();
    assert_eq!(
        off.server_wait(429, headers(&[("retry-after", b"5")]), now),
        None
    );
}

#[test]
fn a_rules_rate_limit_reset_header_is_read_in_its_form() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let epoch = BreakerConfig::builder()
        .rate_limit_reset(RateLimitReset::new("X-RateLimit-Reset", ResetForm::Epoch).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        epoch.server_wait(429, headers(&[("x-ratelimit-reset", b"1700000042")]), now),
        Some(Duration::from_secs(42))
    );
    // Retry-After wins when both are there.
    assert_eq!(
        epoch.server_wait(
            429,
            headers(&[("retry-after", b"7"), ("x-ratelimit-reset", b"1700000042")]),
            now
        ),
        Some(Duration::from_secs(7))
    );
    let config = BoxConfig::from_toml(
        r#"
        [[breakers]]
        name = "github"
        match = { host = "api.github.com" }
        rate_limit_reset = { header = "ratelimit-reset", form = "seconds" }
        "#,
    )
    .unwrap();
    let rule = config.rules()[0].resolve(config.defaults()).unwrap();
    assert_eq!(
        rule.server_wait(503, headers(&[("ratelimit-reset", b"12")]), now),
        Some(Duration::from_secs(12))
    );
    let err = BoxConfig::from_toml(
        r#"
        [[breakers]]
        name = "github"
        match = { host = "api.github.com" }
        rate_limit_reset = { header = "bad header", form = "seconds" }
        "#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("breakers[0].rate_limit_reset.header"),
        "{err}"
    );
}

#[test]
fn a_server_wait_keeps_an_open_breaker_open_at_least_that_long() {
    let config = BreakerConfig::builder()
        .consecutive_failures(1)
        .build()
        .unwrap();
    let (breaker, _clock) = breaker(config);
    let slow = breaker.try_acquire().unwrap();
    breaker
        .try_acquire()
        .unwrap()
        .report(AttemptOutcome::Status(503));
    assert!(breaker.retry_in().unwrap() <= Duration::from_secs(5));
    // A call admitted before it opened comes back asking for 60 s.
    slow.report_answer(AttemptOutcome::Status(503), Some(Duration::from_secs(60)));
    assert!(breaker.retry_in().unwrap() >= Duration::from_secs(60));
}

#[test]
fn a_429_without_retry_after_never_trips_the_default_breaker() {
    let (breaker, clock) = breaker(BreakerConfig::default());
    for _ in 0..100 {
        let permit = breaker
            .try_acquire()
            .expect("a rate limit never locks the host out");
        clock.advance(Duration::from_millis(200));
        permit.report(AttemptOutcome::Status(429));
    }
    assert_eq!(breaker.state(), State::Closed);
}

// === adaptive throttling ===

/// 100 requests a second for `secs` seconds, through a throttled breaker, to an upstream that
/// accepts `capacity` requests a second (one per 1/capacity s) and refuses the rest with 429:
/// (requests sent, requests accepted, local rejections).
fn throttled_run(
    breaker: &CircuitBreaker,
    clock: &ManualClock,
    capacity: u64,
    secs: u64,
) -> (u64, u64, u64) {
    let (mut sent, mut accepted, mut rejected) = (0, 0, 0);
    let every = Duration::from_secs(1) / capacity as u32;
    let mut next_free = clock.now();
    for _ in 0..secs * 100 {
        clock.advance(Duration::from_millis(10));
        match breaker.try_acquire() {
            Ok(permit) => {
                sent += 1;
                if clock.now() >= next_free {
                    next_free = clock.now() + every;
                    accepted += 1;
                    permit.report(AttemptOutcome::Status(200));
                } else {
                    permit.report(AttemptOutcome::Status(429));
                }
            }
            Err(open) => {
                assert!(open.is_throttled(), "{open}");
                rejected += 1;
            }
        }
    }
    (sent, accepted, rejected)
}

#[test]
fn throttling_sends_about_k_times_what_the_upstream_accepts_then_fades() {
    let k = 2.0;
    let config = BreakerConfig::builder()
        .throttle(ThrottleConfig::new(k, Duration::from_secs(10)).unwrap())
        .build()
        .unwrap();
    let (breaker, clock) = breaker(config);
    fastrand::seed(7); // the throttle draws on this thread's generator: a repeatable run
    // 100 requests a second to an upstream that takes 10: warm the window up, then measure a
    // steady 30 s.
    throttled_run(&breaker, &clock, 10, 10);
    let (sent, accepted, rejected) = throttled_run(&breaker, &clock, 10, 30);
    let ratio = sent as f64 / accepted as f64;
    println!("sent {sent}, accepted {accepted}, rejected {rejected}: ratio {ratio:.2}");
    assert!(
        (ratio - k).abs() / k <= 0.10,
        "requests sent should be about k x accepts: {ratio:.2}"
    );
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a partly failing upstream is throttled, not cut off"
    );
    assert!(breaker.snapshot().throttle_rejecting.unwrap() > 0.5);
    // It recovers: the rejections fade over one window (10 s) and are gone within one and a half
    // (the rejections of the recovery itself count as requests not accepted while they are in
    // the window, so the fade takes a little longer than the window).
    let per_second: Vec<u64> = (0..20)
        .map(|_| throttled_run(&breaker, &clock, 100, 1).2)
        .collect();
    println!("rejections per second after recovery: {per_second:?}");
    let sum = |r: std::ops::Range<usize>| per_second[r].iter().sum::<u64>();
    assert!(sum(10..15) * 2 <= sum(0..5), "{per_second:?}");
    assert_eq!(sum(15..20), 0, "{per_second:?}");
    assert_eq!(breaker.snapshot().throttle_rejecting, Some(0.0));
}

#[test]
fn invalid_throttle_values_are_refused_naming_the_field() {
    for (text, field) in [
        ("throttle = { k = 0.5 }", "throttle.k"),
        ("throttle = { window = \"10ms\" }", "throttle.window"),
        ("throttle = { k = 2.0, windw = \"2m\" }", "windw"),
    ] {
        let err = BoxConfig::from_toml(&format!("[defaults]\n{text}")).unwrap_err();
        assert!(err.to_string().contains(field), "{text}: {err}");
    }
    let on = BoxConfig::from_toml("[defaults]\nthrottle = true").unwrap();
    assert_eq!(on.defaults().throttle(), Some(&ThrottleConfig::default()));
}

// === the fleet guard ===

fn target(host: &str) -> Target<'_> {
    Target::new("https", host, 443, "/")
}

fn fail(panel: &BreakerBox, host: &str, clock: &ManualClock) {
    let permit = panel.try_acquire(&target(host));
    clock.advance(Duration::from_millis(1));
    if let Ok(permit) = permit {
        permit.record(Outcome::Failure);
    }
}

fn guarded_box(hosts: &[&str]) -> (BreakerBox, ManualClock) {
    let clock = ManualClock::new();
    let config = BoxConfig::builder()
        .defaults(
            BreakerConfig::builder()
                .consecutive_failures(3)
                .consecutive_failures_span(Duration::ZERO)
                .build()
                .unwrap(),
        )
        .max_open_fraction(0.5)
        .build()
        .unwrap();
    let panel = BreakerBox::builder(config)
        .clock(Arc::new(clock.clone()))
        .build();
    for host in hosts {
        panel
            .try_acquire(&target(host))
            .unwrap()
            .record(Outcome::Success);
    }
    (panel, clock)
}

#[test]
fn every_host_failing_at_once_opens_at_most_the_fraction() {
    let hosts = ["a.example", "b.example", "c.example", "d.example"];
    let (panel, clock) = guarded_box(&hosts);
    for _ in 0..10 {
        for host in hosts {
            fail(&panel, host, &clock);
        }
    }
    let health = panel.health();
    assert_eq!(health.failing.len(), 2, "{health}");
    assert_eq!(health.held.len(), 2, "{health}");
    assert!(health.local_fault_likely());
    assert!(health.to_string().contains("local fault"), "{health}");
    // The held ones keep admitting.
    for host in &health.held {
        assert!(panel.try_acquire(&target(host)).is_ok());
    }
}

#[test]
fn one_host_failing_opens_as_usual_under_the_guard() {
    let hosts = ["a.example", "b.example", "c.example", "d.example"];
    let (panel, clock) = guarded_box(&hosts);
    for _ in 0..3 {
        fail(&panel, "a.example", &clock);
    }
    let health = panel.health();
    assert_eq!(health.failing, ["a.example"]);
    assert!(!health.local_fault_likely());
}

#[test]
fn invalid_fleet_fractions_are_refused() {
    for text in [
        "max_open_fraction = 0.0",
        "max_open_fraction = 1.5",
        "max_open_fraction = \"half\"",
    ] {
        let err = BoxConfig::from_toml(text).unwrap_err();
        assert!(
            err.to_string().contains("max_open_fraction"),
            "{text}: {err}"
        );
    }
    assert_eq!(
        BoxConfig::from_toml("max_open_fraction = false")
            .unwrap()
            .max_open_fraction(),
        None
    );
}

// === per-breaker retry ===

const PROFILE: &str = r#"
    [[breakers]]
    name = "spotify"
    match = { host = "api.spotify.com" }
    retry = { budget = { ttl = "2s", min_per_sec = 1, retry_ratio = 0.0 } }

    [[breakers]]
    name = "musicbrainz"
    match = { host = "musicbrainz.org" }
    retry = { max_retries = 1, statuses = [503] }

    [[breakers]]
    name = "beatport"
    match = { host = "api.beatport.com" }
    retry = false

    [retry]
    max_retries = 3
    jitter = "none"
"#;

#[test]
fn a_rules_retry_keys_merge_over_the_box_retry_table() {
    let config = BoxConfig::from_toml(PROFILE).unwrap();
    let musicbrainz = config.retry_for(Some(1)).unwrap();
    assert_eq!(musicbrainz.max_retries(), 1);
    assert!(musicbrainz.is_transient_status(503));
    assert!(!musicbrainz.is_transient_status(502));
    assert_eq!(musicbrainz.jitter(), breakerbox::Jitter::None, "inherited");
    assert_eq!(config.retry_for(Some(2)), None, "retry = false");
    assert_eq!(config.retry_for(None).unwrap().max_retries(), 3);

    let panel = BreakerBox::new(config);
    let beatport = panel.named("beatport").unwrap();
    assert!(beatport.retrier().is_none());
    let mut run = RetryRun::new();
    assert_eq!(
        beatport.after_attempt(&mut run, AttemptOutcome::Status(503), || None),
        RetryDecision::Stop(StopReason::NotTransient)
    );
    assert_eq!(
        panel
            .breaker(&target("example.com"))
            .retrier()
            .unwrap()
            .config()
            .max_retries(),
        3
    );
}

#[test]
fn invalid_rule_retry_values_are_refused_naming_the_field() {
    for (text, field) in [
        (
            "retry = { multiplier = 0.5 }",
            "breakers[0].retry.multiplier",
        ),
        ("retry = { max_retris = 1 }", "max_retris"),
        ("retry = { budget = { ttl = \"0s\" } }", "budget.ttl"),
        ("retry = 3", "retry"),
    ] {
        let text =
            format!("[[breakers]]\nname = \"x\"\nmatch = {{ host = \"x.example\" }}\n{text}");
        let err = BoxConfig::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains(field), "{text}: {err}");
    }
}

#[test]
fn one_upstreams_outage_cannot_spend_anothers_retry_budget() {
    let clock = ManualClock::new();
    let config = BoxConfig::from_toml(
        r#"
        [defaults]
        consecutive_failures = 100000

        [retry]
        jitter = "none"
        budget = { ttl = "2s", min_per_sec = 1, retry_ratio = 0.1 }
        "#,
    )
    .unwrap();
    let panel = BreakerBox::builder(config)
        .clock(Arc::new(clock.clone()))
        .build();
    let spotify = panel.breaker(&target("api.spotify.com"));
    let espn = panel.breaker(&target("site.api.espn.com"));
    // Spotify is down: 200 requests, each failing, retried while its budget lasts.
    let mut spotify_retries = 0;
    for _ in 0..200 {
        let mut run = RetryRun::new();
        while spotify
            .after_attempt(&mut run, AttemptOutcome::Status(503), || None)
            .is_retry()
        {
            spotify_retries += 1;
        }
    }
    // ESPN's occasional 503 (3 of 20 requests) is still retried: its budget is its own.
    let mut espn_retries = 0;
    for i in 0..20 {
        let mut run = RetryRun::new();
        let statuses: &[u16] = if i % 7 == 0 { &[503, 200] } else { &[200] };
        for &status in statuses {
            if espn
                .after_attempt(&mut run, AttemptOutcome::Status(status), || None)
                .is_retry()
            {
                espn_retries += 1;
            }
        }
    }
    println!(
        "retries: spotify {spotify_retries} for 200 requests, espn {espn_retries} for 3 503s in 20"
    );
    assert!(
        spotify_retries <= 200 / 10 + 2 + 1,
        "spotify kept to its budget: {spotify_retries}"
    );
    assert_eq!(espn_retries, 3, "every ESPN 503 retried");
}

#[test]
fn a_retry_waits_for_the_breaker_the_server_opened() {
    let panel = BreakerBox::new(BoxConfig::default());
    let breaker = panel.breaker(&target("api.spotify.com"));
    let permit = breaker.try_acquire().unwrap();
    permit.report_answer(AttemptOutcome::Status(503), Some(Duration::from_secs(5)));
    let open_for = breaker.retry_in().unwrap();
    let mut run = RetryRun::new();
    match breaker.after_attempt(&mut run, AttemptOutcome::Status(503), || {
        Some(Duration::from_secs(5))
    }) {
        RetryDecision::Retry { after, .. } => assert!(
            after >= open_for - Duration::from_millis(50) && after >= Duration::from_secs(5),
            "{after:?} vs {open_for:?}"
        ),
        other => panic!("retried once the breaker admits a trial: {other:?}"),
    }
    // Further off than max_delay (10 s): the caller gets the answer now.
    let discogs = panel.breaker(&target("api.discogs.com"));
    let permit = discogs.try_acquire().unwrap();
    permit.report_answer(AttemptOutcome::Status(429), Some(Duration::from_secs(60)));
    let mut run = RetryRun::new();
    let decision = discogs.after_attempt(&mut run, AttemptOutcome::Status(429), || {
        Some(Duration::from_secs(60))
    });
    assert_eq!(decision, RetryDecision::Stop(StopReason::RetryAfterTooLong));
}
