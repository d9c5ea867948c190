//! Config: builders, TOML, the field's profiles, and an error naming the field for every
//! invalid value.

use breakerbox::{
    BoxConfig, BreakerConfig, BreakerRule, ConfigError, InvalidConfig, Match, WindowConfig,
};
use std::time::Duration;

const PROFILES: &str = include_str!("../../../examples/scraper.toml");

fn invalid(result: Result<BreakerConfig, InvalidConfig>) -> (String, String) {
    let e = result.expect_err("must be rejected");
    (e.field().to_owned(), e.value().to_owned())
}

#[test]
fn every_invalid_breaker_value_names_its_field_and_value() {
    let b = BreakerConfig::builder;
    let cases: Vec<(Result<BreakerConfig, InvalidConfig>, &str, &str)> = vec![
        (
            b().consecutive_failures(0).build(),
            "consecutive_failures",
            "0",
        ),
        (b().failure_rate(0.0).build(), "failure_rate", "0"),
        (b().failure_rate(1.01).build(), "failure_rate", "1.01"),
        (b().failure_rate(f64::NAN).build(), "failure_rate", "NaN"),
        (
            b().slow_call_rate(-0.5, Duration::from_secs(1)).build(),
            "slow_call_rate",
            "-0.5",
        ),
        (
            b().slow_call_rate(0.5, Duration::ZERO).build(),
            "slow_call_duration",
            "\"0s\"",
        ),
        (
            b().no_consecutive_failures().build(),
            "consecutive_failures",
            "false",
        ),
        (b().minimum_calls(0).build(), "minimum_calls", "0"),
        (b().count_window(0).build(), "window.size", "0"),
        (b().count_window(1 << 20).build(), "window.size", "1048576"),
        (
            b().failure_rate(0.5)
                .minimum_calls(20)
                .count_window(10)
                .build(),
            "minimum_calls",
            "20",
        ),
        (
            b().time_window(Duration::from_secs(10), 0).build(),
            "window.buckets",
            "0",
        ),
        (
            b().time_window(Duration::from_secs(10), 257).build(),
            "window.buckets",
            "257",
        ),
        (
            b().time_window(Duration::from_millis(5), 10).build(),
            "window.duration",
            "\"5ms\"",
        ),
        (
            b().open_duration(Duration::ZERO).build(),
            "open_duration",
            "\"0s\"",
        ),
        (
            b().open_backoff(0.5, Duration::from_secs(600)).build(),
            "open_backoff_multiplier",
            "0.5",
        ),
        (
            b().open_backoff(f64::INFINITY, Duration::from_secs(600))
                .build(),
            "open_backoff_multiplier",
            "inf",
        ),
        (
            b().open_duration(Duration::from_secs(120))
                .open_backoff(2.0, Duration::from_secs(60))
                .build(),
            "max_open_duration",
            "\"1m\"",
        ),
        (b().open_jitter(1.5).build(), "open_jitter", "1.5"),
        (
            b().half_open_max_calls(0).build(),
            "half_open_max_calls",
            "0",
        ),
        (
            b().half_open_max_calls(70_000).build(),
            "half_open_max_calls",
            "70000",
        ),
        (b().success_threshold(0).build(), "success_threshold", "0"),
        (
            b().probe_interval(Duration::ZERO).build(),
            "probe_interval",
            "\"0s\"",
        ),
    ];
    for (result, field, value) in cases {
        assert_eq!(invalid(result), (field.to_owned(), value.to_owned()));
    }
}

#[test]
fn the_error_message_says_what_to_do() {
    let e = BreakerConfig::builder()
        .open_backoff(0.5, Duration::from_secs(9))
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid config: `open_backoff_multiplier` = 0.5: must be a finite number >= 1"
    );
    let e: Box<dyn std::error::Error + Send + Sync> = e.into();
    assert!(e.downcast_ref::<InvalidConfig>().is_some());
}

#[test]
fn the_field_profiles_load_with_their_thresholds() {
    let config = BoxConfig::from_toml(PROFILES).expect("the profiles are valid");
    let get = |name: &str| {
        let rule = config.rules().iter().find(|r| r.name() == name).unwrap();
        rule.resolve(config.defaults()).unwrap()
    };
    // name, failures, open, successes to close
    let expected = [
        ("espn", 5, 60, 1),
        ("spotify", 10, 120, 2),
        ("musicbrainz", 3, 60, 2),
        ("lastfm", 5, 60, 2),
        ("beatport", 5, 90, 2),
        ("discogs", 5, 60, 2),
        ("google_ai_text", 5, 60, 1),
        ("google_ai_vision", 3, 60, 1),
        ("google_ai_imagen", 3, 120, 1),
    ];
    assert_eq!(config.rules().len(), expected.len());
    for (name, failures, open, close) in expected {
        let c = get(name);
        assert_eq!(c.consecutive_failures(), Some(failures), "{name}");
        assert_eq!(c.open_duration(), Duration::from_secs(open), "{name}");
        assert_eq!(c.success_threshold(), close, "{name}");
    }
    assert_eq!(config.max_breakers(), 1000);
}

#[test]
fn toml_durations_windows_and_rule_toggles() {
    let config = BoxConfig::from_toml(
        r#"
        [defaults]
        consecutive_failures = 5
        failure_rate = 0.5
        minimum_calls = 20
        window = { kind = "time", duration = "2m", buckets = 12 }
        slow_call_duration = "1500ms"
        open_duration = "1m 30s"
        probe_interval = "10s"

        [[breakers]]
        name = "rate-only"
        match = { host = "*.example.com", path_prefix = "/api" }
        consecutive_failures = false
        window = { kind = "count", size = 50 }
        "#,
    )
    .unwrap();
    let d = config.defaults();
    assert_eq!(
        d.window(),
        WindowConfig::Time {
            duration: Duration::from_secs(120),
            buckets: 12
        }
    );
    assert_eq!(d.slow_call_duration(), Duration::from_millis(1500));
    assert_eq!(d.open_duration(), Duration::from_secs(90));
    assert_eq!(d.probe_interval(), Some(Duration::from_secs(10)));
    let rule = config.rules()[0].resolve(d).unwrap();
    assert_eq!(
        rule.consecutive_failures(),
        None,
        "`false` turned the inherited rule off"
    );
    assert_eq!(rule.failure_rate(), Some(0.5), "inherited");
    assert_eq!(rule.window(), WindowConfig::Count { size: 50 });
    assert_eq!(config.rules()[0].matcher().path(), Some("/api"));
}

#[test]
fn config_serializes_back_to_equivalent_toml() {
    let config = BoxConfig::from_toml(PROFILES).unwrap();
    let text = toml::to_string(&config).unwrap();
    assert_eq!(BoxConfig::from_toml(&text).unwrap(), config);
}

fn toml_error(text: &str) -> ConfigError {
    BoxConfig::from_toml(text).expect_err("must be rejected")
}

#[test]
fn toml_errors_name_the_table_and_field() {
    let cases = [
        (
            "[defaults]\nfailure_rate = 2.0",
            "defaults.failure_rate",
            "2",
        ),
        ("max_breakers = 0", "max_breakers", "0"),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\n[[breakers]]\nname = \"b\"\nmatch = { host = \"b.com\" }\nsuccess_threshold = 0",
            "breakers[1].success_threshold",
            "0",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\n[[breakers]]\nname = \"a\"\nmatch = { host = \"b.com\" }",
            "breakers[1].name",
            "\"a\"",
        ),
        (
            "[[breakers]]\nname = \"overflow\"\nmatch = { host = \"a.com\" }",
            "breakers[0].name",
            "\"overflow\"",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"*.\" }",
            "breakers[0].match.host",
            "\"*.\"",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.*.com\" }",
            "breakers[0].match.host",
            "\"a.*.com\"",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\", path_prefix = \"v1\" }",
            "breakers[0].match.path_prefix",
            "\"v1\"",
        ),
    ];
    for (text, field, value) in cases {
        let message = toml_error(text).to_string();
        let named = format!("invalid config: `{field}` = {value}: ");
        assert!(
            message.contains(&named),
            "{text}\n=> {message}\nwanted {named}"
        );
    }
}

#[test]
fn toml_rejects_unknown_keys_bad_durations_and_true_thresholds() {
    for (text, needle) in [
        ("[defaults]\nfailure_rat = 0.5", "failure_rat"),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\nconsecutive_failure = 3",
            "consecutive_failure",
        ),
        (
            "[defaults]\nopen_duration = \"soon\"",
            "invalid duration \"soon\"",
        ),
        ("[defaults]\nopen_duration = 60", "open_duration"),
        (
            "[defaults]\nconsecutive_failures = true",
            "turn the rule off",
        ),
        (
            "[defaults]\nwindow = { kind = \"sliding\", size = 3 }",
            "sliding",
        ),
    ] {
        let message = toml_error(text).to_string();
        assert!(message.contains(needle), "{text}: {message}");
    }
}

/// Regression (found by tests/hostile.rs): serde's derive read a table written as an array by
/// position, so `defaults = [5, 0.5]` loaded as 5 consecutive failures and a 0.5 failure rate.
/// Every config table now refuses an array as the wrong type, pointing at it.
#[test]
fn tables_written_as_arrays_are_refused_where_they_stand() {
    for (text, line) in [
        ("defaults = [5, 0.5]", "defaults = [5, 0.5]"),
        ("retry = [1]", "retry = [1]"),
        (
            "breakers = [[\"a\", { host = \"a.com\" }]]",
            "breakers = [[",
        ),
        (
            "[defaults]\nwindow = [\"count\", 5]",
            "window = [\"count\", 5]",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = [\"a.com\"]",
            "match = [\"a.com\"]",
        ),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\nwindow = [\"count\", 5]",
            "window = [",
        ),
    ] {
        let message = toml_error(text).to_string();
        assert!(
            message.contains("invalid type: sequence, expected a table") && message.contains(line),
            "{text}: {message}"
        );
    }
    let retry = toml::from_str::<breakerbox::RetryConfig>("budget = { ttl = \"5s\" }").unwrap();
    assert_eq!(
        retry.budget().unwrap().ttl(),
        Duration::from_secs(5),
        "tables still load"
    );
    assert!(BreakerConfig::from_toml("window = [\"count\", 5]").is_err());
}

#[test]
fn box_builder_validates_rules_against_the_defaults() {
    let err = BoxConfig::builder()
        .defaults(
            BreakerConfig::builder()
                .open_duration(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
        .rule(BreakerRule::new("x", Match::host("x.com")))
        .max_breakers(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_breakers");
}

#[test]
fn host_matching_is_exact_or_suffix_and_case_insensitive() {
    let exact = Match::host("api.spotify.com");
    assert!(exact.matches_host("API.Spotify.com"));
    assert!(!exact.matches_host("xapi.spotify.com"));
    let suffix = Match::host("*.espn.com");
    assert!(suffix.matches_host("site.api.espn.com"));
    assert!(suffix.matches_host("a.ESPN.com"));
    assert!(
        !suffix.matches_host("espn.com"),
        "the suffix rule wants a subdomain"
    );
    assert!(!suffix.matches_host("notespn.com"));
    let path = Match::host("g.com").path_prefix("/v1/vision");
    assert!(path.matches_path("/v1/vision:annotate"));
    assert!(!path.matches_path("/v1/text"));
}

// === nonsense refused, each error blaming the key the user wrote ===

/// The whole message of loading `text` as a box.
fn box_error(text: &str) -> String {
    BoxConfig::from_toml(text).unwrap_err().to_string()
}

#[test]
fn statuses_must_be_error_statuses() {
    for (text, field) in [
        ("[retry]\nstatuses = [\"2xx\"]", "retry.statuses"),
        ("[retry]\nstatuses = [503, 304]", "retry.statuses"),
        ("[defaults]\nstatuses = [\"1xx\"]", "defaults.statuses"),
        (
            "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\" }\nstatuses = [200]",
            "breakers[0].statuses",
        ),
    ] {
        let message = box_error(text);
        assert!(message.contains(&format!("`{field}`")), "{text}: {message}");
        assert!(message.contains("must be error statuses"), "{message}");
    }
    let config = BoxConfig::from_toml("[defaults]\nstatuses = [409, \"5xx\"]").unwrap();
    assert_eq!(config.defaults().statuses().len(), 2);
}

#[test]
fn max_breakers_has_a_stated_maximum() {
    let message = box_error("max_breakers = 9223372036854775807");
    assert!(message.contains("`max_breakers`"), "{message}");
    assert!(message.contains("1 ..= 1000000"), "{message}");
    assert_eq!(
        BoxConfig::from_toml("max_breakers = 1000000")
            .unwrap()
            .max_breakers(),
        breakerbox::config::MAX_BREAKERS
    );
    let err = BoxConfig::builder()
        .max_breakers(1_000_001)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_breakers");
}

#[test]
fn a_rule_that_an_earlier_one_shadows_is_refused_naming_both() {
    for (first, second) in [
        (
            "{ host = \"api.spotify.com\" }",
            "{ host = \"API.spotify.com\" }",
        ),
        (
            "{ host = \"*.espn.com\" }",
            "{ host = \"site.api.espn.com\" }",
        ),
        ("{ host = \"*.espn.com\" }", "{ host = \"*.api.espn.com\" }"),
        (
            "{ host = \"generativelanguage.googleapis.com\" }",
            "{ host = \"generativelanguage.googleapis.com\", path_prefix = \"/v1beta/models/gemini-pro-vision\" }",
        ),
        (
            "{ host = \"g.com\", path_prefix = \"/v1\" }",
            "{ host = \"g.com\", path_prefix = \"/v1/models\" }",
        ),
    ] {
        let text = format!(
            "[[breakers]]\nname = \"broad\"\nmatch = {first}\n\n[[breakers]]\nname = \"narrow\"\nmatch = {second}\n"
        );
        let message = box_error(&text);
        assert!(message.contains("`breakers[1].match`"), "{message}");
        assert!(message.contains("breakers[0] (\"broad\""), "{message}");
        assert!(message.contains("can never match"), "{message}");
        // The other way round, narrow first, both can match.
        let text = format!(
            "[[breakers]]\nname = \"narrow\"\nmatch = {second}\n\n[[breakers]]\nname = \"broad\"\nmatch = {first}\n"
        );
        if first != second && !first.eq_ignore_ascii_case(second) {
            BoxConfig::from_toml(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
    // Neither covers the other: both stay.
    BoxConfig::from_toml(
        "[[breakers]]\nname = \"a\"\nmatch = { host = \"a.com\", path_prefix = \"/v1\" }\n\n[[breakers]]\nname = \"b\"\nmatch = { host = \"a.com\", path_prefix = \"/v2\" }\n\n[[breakers]]\nname = \"c\"\nmatch = { host = \"*.a.com\" }\n",
    )
    .unwrap();
}

#[test]
fn a_wrong_number_says_what_the_key_expects_in_words() {
    for (text, field, expects) in [
        (
            "[defaults]\nconsecutive_failures = -3",
            "consecutive_failures",
            "a whole number from 0 to 4294967295, or false to turn the rule off",
        ),
        (
            "[defaults]\nfailure_rate = \"half\"",
            "failure_rate",
            "a number, or false to turn the rule off",
        ),
        (
            "[defaults]\nminimum_calls = -1",
            "minimum_calls",
            "a whole number from 0 to 4294967295",
        ),
        ("max_breakers = 2.5", "max_breakers", "a whole number"),
        (
            "[retry]\nmax_retries = \"3\"",
            "max_retries",
            "a whole number",
        ),
        ("[retry]\nmultiplier = true", "multiplier", "a number"),
    ] {
        let message = box_error(text);
        assert!(message.contains(field), "{text}: {message}");
        assert!(message.contains(expects), "{text}: {message}");
        for internal in ["Toggle", "untagged", "u32", "usize", "f64"] {
            assert!(!message.contains(internal), "{text}: {message}");
        }
    }
}

#[test]
fn only_a_file_is_called_a_file() {
    let text = box_error("[defaults]\nopen_jitter = 2.0");
    assert!(text.starts_with("invalid config: "), "{text}");
    assert!(!text.contains("config file"), "{text}");

    let dir = std::env::temp_dir().join(format!("breakerbox-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::write(&path, "[defaults]\nopen_jitter = 2.0\n").unwrap();
    let text = BoxConfig::from_toml_file(&path).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("config file {}: ", path.display())),
        "{text}"
    );
    assert!(text.contains("defaults.open_jitter"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn defaults_that_depend_on_another_key_follow_it() {
    // A long open duration alone raises the cap it would otherwise break.
    let config = BoxConfig::from_toml("[defaults]\nopen_duration = \"20m\"").unwrap();
    assert_eq!(
        config.defaults().max_open_duration(),
        Duration::from_secs(1200)
    );
    // A small count window alone lowers minimum_calls to fit.
    let config = BoxConfig::from_toml(
        "[defaults]\nfailure_rate = 0.5\nwindow = { kind = \"count\", size = 5 }",
    )
    .unwrap();
    assert_eq!(config.defaults().minimum_calls(), 5);
    // Written out, both are the user's to keep consistent.
    let message = box_error("[defaults]\nopen_duration = \"20m\"\nmax_open_duration = \"10m\"");
    assert!(
        message.contains("`defaults.max_open_duration`"),
        "{message}"
    );
}

#[test]
fn a_rule_is_blamed_for_the_key_it_wrote_not_the_one_it_inherited() {
    let message = box_error(
        "[defaults]\nmax_open_duration = \"10m\"\n\n[[breakers]]\nname = \"imagen\"\nmatch = { host = \"g.com\" }\nopen_duration = \"20m\"\n",
    );
    assert!(message.contains("`breakers[0].open_duration`"), "{message}");
    assert!(message.contains("max_open_duration"), "{message}");
    let message = box_error(
        "[defaults]\nminimum_calls = 10\nfailure_rate = 0.5\n\n[[breakers]]\nname = \"small\"\nmatch = { host = \"g.com\" }\nwindow = { kind = \"count\", size = 4 }\n",
    );
    assert!(message.contains("`breakers[0].window.size`"), "{message}");
}
