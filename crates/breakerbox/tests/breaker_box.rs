//! The breaker box: routing by host, suffix and path, the cap, and the reports.

use breakerbox::clock::ManualClock;
use breakerbox::{
    BoxConfig, BreakerBox, BreakerConfig, BreakerRule, Match, Outcome, Overflow, State, Target,
};
use std::sync::Arc;
use std::time::Duration;

const PROFILES: &str = include_str!("../../../examples/scraper.toml");

/// The field's profiles, with runs of failures tripping however fast they come and Last.fm's
/// throttle off (the tests here are about routing and trips;
/// `a_run_must_last_its_span_at_the_field_profiles` keeps the span, and the throttle has tests
/// of its own).
fn field_box() -> (BreakerBox, ManualClock) {
    let clock = ManualClock::new();
    let profiles = PROFILES
        .replace(
            "[defaults]\n",
            "[defaults]\nconsecutive_failures_span = \"0s\"\n",
        )
        .replace("throttle = {", "# throttle = {");
    let panel = BreakerBox::builder(BoxConfig::from_toml(&profiles).unwrap())
        .clock(Arc::new(clock.clone()))
        .build();
    (panel, clock)
}

fn https<'a>(host: &'a str, path: &'a str) -> Target<'a> {
    Target::new("https", host, 443, path)
}

fn fail(panel: &BreakerBox, target: &Target<'_>, times: usize) {
    for _ in 0..times {
        panel
            .try_acquire(target)
            .expect("admitted")
            .record(Outcome::Failure);
    }
}

#[test]
fn a_vision_outage_never_blocks_text_generation_on_the_same_host() {
    let (panel, _) = field_box();
    let host = "generativelanguage.googleapis.com";
    let vision = https(host, "/v1beta/models/gemini-pro-vision:generateContent");
    let imagen = https(host, "/v1beta/models/imagen-3:predict");
    let text = https(host, "/v1beta/models/gemini-pro:generateContent");
    assert_eq!(panel.breaker(&vision).name(), "google_ai_vision");
    assert_eq!(panel.breaker(&imagen).name(), "google_ai_imagen");
    assert_eq!(panel.breaker(&text).name(), "google_ai_text");

    fail(&panel, &vision, 3);
    let rejected = panel.try_acquire(&vision).unwrap_err();
    assert_eq!(rejected.breaker(), "google_ai_vision");
    assert!(panel.try_acquire(&text).is_ok());
    assert!(panel.try_acquire(&imagen).is_ok());
    let health = panel.health();
    assert!(!health.is_healthy());
    assert_eq!(health.failing, ["google_ai_vision"]);
}

#[test]
fn suffix_rules_share_one_named_breaker_across_subdomains() {
    let (panel, _) = field_box();
    let a = panel.breaker(&https("site.api.espn.com", "/a"));
    let b = panel.breaker(&https("cdn.espn.com", "/b"));
    assert!(a.ptr_eq(&b));
    assert_eq!(a.name(), "espn");
    fail(&panel, &https("site.api.espn.com", "/a"), 5);
    assert!(panel.try_acquire(&https("cdn.espn.com", "/b")).is_err());
}

#[test]
fn unmatched_targets_get_a_breaker_per_scheme_host_and_port() {
    let (panel, _) = field_box();
    let a = panel.breaker(&https("example.org", "/x"));
    let same = panel.breaker(&Target::new("https", "Example.ORG", 443, "/y"));
    let other_port = panel.breaker(&Target::new("https", "example.org", 8443, "/x"));
    let plain = panel.breaker(&Target::new("http", "example.org", 80, "/x"));
    assert!(a.ptr_eq(&same), "hosts compare case-insensitively");
    assert!(!a.ptr_eq(&other_port));
    assert!(!a.ptr_eq(&plain));
    assert_eq!(a.name(), "example.org");
    assert_eq!(other_port.name(), "example.org:8443");
    assert_eq!(plain.name(), "example.org");
    assert_eq!(
        a.config(),
        &BreakerConfig::from_toml(
            "consecutive_failures = 5\nconsecutive_failures_span = \"0s\"\nopen_duration = \"60s\"\nmax_open_duration = \"10m\""
        )
        .unwrap()
    );
}

#[test]
fn each_rule_has_its_own_thresholds() {
    let (panel, clock) = field_box();
    let spotify = https("api.spotify.com", "/v1/search");
    fail(&panel, &spotify, 9);
    assert!(panel.try_acquire(&spotify).is_ok(), "spotify trips at 10");
    fail(&panel, &spotify, 1);
    let open = panel.try_acquire(&spotify).unwrap_err();
    assert_eq!(open.retry_after(), Some(Duration::from_secs(120)));
    clock.advance(Duration::from_secs(120));
    panel
        .try_acquire(&spotify)
        .unwrap()
        .record(Outcome::Success);
    assert_eq!(
        panel.named("spotify").unwrap().state(),
        State::HalfOpen,
        "2 successes to close"
    );
    panel
        .try_acquire(&spotify)
        .unwrap()
        .record(Outcome::Success);
    assert_eq!(panel.named("spotify").unwrap().state(), State::Closed);
}

#[test]
fn past_the_cap_new_targets_share_a_metrics_only_overflow_breaker() {
    let config = BoxConfig::builder()
        .defaults(
            BreakerConfig::builder()
                .consecutive_failures_span(Duration::ZERO)
                .build()
                .unwrap(),
        )
        .rule(BreakerRule::new("known", Match::host("known.com")))
        .max_breakers(3)
        .build()
        .unwrap();
    let panel = BreakerBox::new(config);
    for i in 0..1000 {
        let host = format!("host{i}.example");
        let target = https(&host, "/");
        fail(&panel, &target, 5);
    }
    let names: Vec<String> = panel
        .breakers()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "host0.example",
            "host1.example",
            "host2.example",
            "overflow"
        ]
    );
    let overflow = panel.breaker(&https("host999.example", "/"));
    assert_eq!(overflow.name(), "overflow");
    assert_eq!(
        overflow.state(),
        State::MetricsOnly,
        "failures of many hosts block none"
    );
    assert!(panel.try_acquire(&https("host500.example", "/")).is_ok());
    assert_eq!(
        panel.breaker(&https("host0.example", "/")).state(),
        State::Open
    );
    // Rules still apply past the cap.
    assert_eq!(panel.breaker(&https("known.com", "/")).name(), "known");
}

#[test]
fn a_shared_overflow_breaker_protects_the_overflow_together() {
    let config = BoxConfig::builder()
        .max_breakers(1)
        .overflow(Overflow::Shared)
        .defaults(
            BreakerConfig::builder()
                .consecutive_failures_span(Duration::ZERO)
                .consecutive_failures(2)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let panel = BreakerBox::new(config);
    fail(&panel, &https("first.example", "/"), 1);
    fail(&panel, &https("a.example", "/"), 1);
    fail(&panel, &https("b.example", "/"), 1);
    let e = panel.try_acquire(&https("c.example", "/")).unwrap_err();
    assert_eq!(e.breaker(), "overflow");
}

#[test]
fn concurrent_first_use_creates_exactly_one_breaker_per_target() {
    let panel = BreakerBox::new(BoxConfig::default());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..200 {
                    let host = format!("h{}.example", i % 50);
                    panel.breaker(&https(&host, "/"));
                }
            });
        }
    });
    assert_eq!(panel.breakers().len(), 50);
}

#[test]
fn the_status_table_snapshot_and_health_report_every_breaker() {
    let (panel, clock) = field_box();
    panel.breaker(&https("site.api.espn.com", "/"));
    fail(&panel, &https("api.spotify.com", "/"), 10);
    let lastfm = https("ws.audioscrobbler.com", "/2.0/");
    fail(&panel, &lastfm, 5);
    clock.advance(Duration::from_secs(33));
    clock.advance(Duration::from_secs(27));
    let trial = panel.try_acquire(&lastfm).unwrap();
    let table = panel.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "  ok   espn     closed     failures 0/5");
    assert_eq!(
        lines[1],
        "  FAIL spotify  open       failures 10/10  retry in 60s"
    );
    assert_eq!(
        lines[2],
        "  warn lastfm   half_open  failures 5/5    trials 0 ok, 1 in flight"
    );
    trial.record(Outcome::Success);

    let json = serde_json::to_value(panel.snapshot()).unwrap();
    assert_eq!(json["breakers"][1]["name"], "spotify");
    assert_eq!(json["breakers"][1]["state"], "open");
    assert_eq!(json["breakers"][1]["retry_in_seconds"], 60.0);
    let health = panel.health();
    assert_eq!(health.failing, ["spotify", "lastfm"]);
    assert_eq!(
        health.to_string(),
        "degraded: 2 of 3 breakers failing (spotify, lastfm)"
    );
    assert_eq!(serde_json::to_value(&health).unwrap()["status"], "degraded");
}

#[test]
fn every_spelling_of_a_host_reaches_its_one_breaker() {
    let (panel, _) = field_box();
    let spotify = panel.named("spotify").unwrap();
    for host in [
        "api.spotify.com",
        "API.Spotify.COM",
        "api.spotify.com.",
        "Api.Spotify.Com.",
    ] {
        assert!(
            panel.breaker(&https(host, "/v1/search")).ptr_eq(&spotify),
            "{host}"
        );
    }
    spotify.force_open();
    // A fully qualified name does not slip past the open rule breaker.
    assert!(
        panel
            .try_acquire(&https("api.spotify.com.", "/v1"))
            .is_err()
    );

    // Per-host breakers: one per host, named without the dot, with the default port implied.
    let a = panel.breaker(&https("example.org.", "/"));
    let b = panel.breaker(&Target::new("https", "EXAMPLE.org", 443, "/"));
    assert!(a.ptr_eq(&b));
    assert_eq!(a.name(), "example.org");
    assert_eq!(panel.breaker(&https(".", "/")).name(), ".");
}

#[test]
fn a_run_must_last_its_span_at_the_field_profiles() {
    let clock = ManualClock::new();
    let panel = BreakerBox::builder(BoxConfig::from_toml(PROFILES).unwrap())
        .clock(Arc::new(clock.clone()))
        .build();
    let musicbrainz = https("musicbrainz.org", "/ws/2/recording");
    // Three failures in a millisecond (a busy client, unlucky): not an outage.
    fail(&panel, &musicbrainz, 3);
    assert_eq!(panel.named("musicbrainz").unwrap().state(), State::Closed);
    // A scraper's pace, one request every 400 ms: the run that reaches 3 has lasted 1.2 s.
    panel
        .try_acquire(&musicbrainz)
        .unwrap()
        .record(Outcome::Success);
    for _ in 0..3 {
        clock.advance(Duration::from_millis(400));
        fail(&panel, &musicbrainz, 1);
    }
    assert_eq!(
        panel.named("musicbrainz").unwrap().state(),
        State::Closed,
        "0.8 s so far"
    );
    clock.advance(Duration::from_millis(400));
    fail(&panel, &musicbrainz, 1);
    assert_eq!(panel.named("musicbrainz").unwrap().state(), State::Open);
}
