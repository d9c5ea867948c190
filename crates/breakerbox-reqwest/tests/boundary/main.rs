//! The HTTP boundary through reqwest, against the test kit's hostile upstreams, over HTTP/1.1
//! and HTTP/2 (h2c with prior knowledge): a call ends when its body does, the caller gets the
//! last real answer, redirects are charged to the host that answered, health checks have
//! deadlines, and no spelling of a host bypasses its breaker. Paused time throughout.

use breakerbox_reqwest::{
    Attempts, BoxConfig, CircuitBreakerMiddleware, RetryConfig, RetryMiddleware, State, StopReason,
    circuit_open,
};
use breakerbox_testing::{Reply, Script, Upstream, client_for};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Http1,
    Http2,
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

/// A reqwest client that reaches `hosts` on their upstreams, over `protocol`, with a total
/// timeout of 2 s per attempt.
fn http(protocol: Protocol, hosts: &[(&str, &Upstream)]) -> reqwest::Client {
    http_with_timeout(protocol, hosts, 2 * SEC)
}

fn http_with_timeout(
    protocol: Protocol,
    hosts: &[(&str, &Upstream)],
    timeout: Duration,
) -> reqwest::Client {
    let builder = client_for(hosts.iter().copied()).timeout(timeout);
    match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
    }
    .build()
    .unwrap()
}

fn breakers(toml: &str) -> CircuitBreakerMiddleware {
    CircuitBreakerMiddleware::new(BoxConfig::from_toml(toml).unwrap())
}

fn guarded(http: reqwest::Client, breakers: &CircuitBreakerMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(http).with(breakers.clone()).build()
}

const TWO_FAILURES: &str = r#"
    [[breakers]]
    name = "espn"
    match = { host = "site.api.espn.com" }
    consecutive_failures = 2
    consecutive_failures_span = "0s"
"#;

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_past_the_client_timeout_is_a_failure() {
    for protocol in PROTOCOLS {
        let upstream = Upstream::builder()
            .script(Reply::ok("{\"events\":[1,2,3]}").stall_after(5))
            .start()
            .await;
        let mw = breakers(TWO_FAILURES);
        let espn = mw.breakers().named("espn").unwrap();
        let client = guarded(http(protocol, &[("site.api.espn.com", &upstream)]), &mw);
        for n in 1..=2 {
            let response = client
                .get("http://site.api.espn.com/apis/v2/scoreboard")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{protocol:?}");
            assert_eq!(
                espn.state(),
                State::Closed,
                "{protocol:?}: the head is not the call"
            );
            let err = response.bytes().await.unwrap_err();
            assert!(err.is_timeout(), "{protocol:?}: {err}");
            assert_eq!(espn.snapshot().consecutive_failures, n, "{protocol:?}");
        }
        assert_eq!(espn.state(), State::Open, "{protocol:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_truncated_body_is_a_failure() {
    for protocol in PROTOCOLS {
        let body = "x".repeat(100);
        let upstream = Upstream::builder()
            .script(Reply::ok(body).truncate_after(10))
            .start()
            .await;
        let mw = breakers(TWO_FAILURES);
        let espn = mw.breakers().named("espn").unwrap();
        let client = guarded(http(protocol, &[("site.api.espn.com", &upstream)]), &mw);
        for _ in 0..2 {
            let response = client
                .get("http://site.api.espn.com/apis/v2/teams")
                .send()
                .await
                .unwrap();
            assert!(response.bytes().await.is_err(), "{protocol:?}");
        }
        assert_eq!(espn.state(), State::Open, "{protocol:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_read_or_dropped_is_the_status_outcome_and_slow_bodies_are_slow() {
    for protocol in PROTOCOLS {
        let upstream = Upstream::builder()
            .script(Reply::ok("a".repeat(12)).slow_body(4, SEC))
            .start()
            .await;
        let mw = breakers(
            r#"
            [[breakers]]
            name = "imagen"
            match = { host = "generativelanguage.googleapis.com" }
            consecutive_failures = false
            slow_call_rate = 1.0
            slow_call_duration = "2s"
            minimum_calls = 3
            window = { kind = "count", size = 3 }
            "#,
        );
        let imagen = mw.breakers().named("imagen").unwrap();
        let client = guarded(
            http_with_timeout(
                protocol,
                &[("generativelanguage.googleapis.com", &upstream)],
                10 * SEC,
            ),
            &mw,
        );
        let url = "http://generativelanguage.googleapis.com/v1beta/models/imagen:predict";
        // Dropped at once: a quick success. Read to the end (3 chunks, 1 s apart): slow.
        drop(client.get(url).send().await.unwrap());
        for _ in 0..2 {
            let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(body.len(), 12, "{protocol:?}");
        }
        assert_eq!(imagen.state(), State::Closed, "{protocol:?}: 2 of 3 slow");
        assert_eq!(imagen.snapshot().window_slow_calls, 2, "{protocol:?}");
        client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(
            imagen.state(),
            State::Open,
            "{protocol:?}: the window is full"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_retry_hands_back_the_last_real_answer() {
    for protocol in PROTOCOLS {
        let upstream = Upstream::builder().script(Reply::status(503)).start().await;
        let mw = breakers(
            r#"
            [[breakers]]
            name = "spotify"
            match = { host = "api.spotify.com" }
            consecutive_failures = 1
            "#,
        );
        let retry = RetryConfig::builder().max_retries(3).build().unwrap();
        let client = ClientBuilder::new(http(protocol, &[("api.spotify.com", &upstream)]))
            .with(RetryMiddleware::named("spotify", retry))
            .with(mw.clone())
            .build();
        let response = client
            .get("http://api.spotify.com/v1/search?q=daft")
            .send()
            .await
            .expect("the upstream's own answer, not a rejection");
        assert_eq!(response.status(), 503, "{protocol:?}");
        assert_eq!(
            response.extensions().get::<Attempts>(),
            Some(&Attempts::new(1, StopReason::CircuitOpen)),
            "{protocol:?}"
        );
        assert_eq!(upstream.hits(), 1, "{protocol:?}");
        // Nothing of the next call is sent: now it is a rejection.
        let err = client
            .get("http://api.spotify.com/v1/search?q=punk")
            .send()
            .await
            .unwrap_err();
        assert_eq!(circuit_open(&err).unwrap().breaker(), "spotify");
        assert_eq!(upstream.hits(), 1, "{protocol:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_redirect_is_charged_to_the_host_that_answered() {
    for protocol in PROTOCOLS {
        let failing = Upstream::builder().script(Reply::status(503)).start().await;
        let healthy = Upstream::builder()
            .script(Reply::redirect(302, "http://cdn.example.net/file"))
            .start()
            .await;
        let mw = breakers(
            r#"
            [defaults]
            consecutive_failures = 2
            consecutive_failures_span = "0s"
            "#,
        );
        let panel = mw.breakers().clone();
        let client = guarded(
            http(
                protocol,
                &[("api.example.com", &healthy), ("cdn.example.net", &failing)],
            ),
            &mw,
        );
        for _ in 0..2 {
            let response = client
                .get("http://api.example.com/download")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 503, "{protocol:?}");
            assert_eq!(response.url().host_str(), Some("cdn.example.net"));
        }
        let named = |name: &str| {
            panel
                .breakers()
                .into_iter()
                .find(|b| b.name() == name)
                .unwrap_or_else(|| panic!("{protocol:?}: no breaker {name}"))
        };
        assert_eq!(
            named("api.example.com").state(),
            State::Closed,
            "{protocol:?}"
        );
        assert_eq!(
            named("cdn.example.net").state(),
            State::Open,
            "{protocol:?}"
        );
        assert_eq!((healthy.hits(), failing.hits()), (2, 2), "{protocol:?}");
    }
}

/// Waits (in paused time, a millisecond at a time, so that sockets get polled) until `done`.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}

#[tokio::test(start_paused = true)]
async fn a_health_check_that_hangs_never_stops_probing() {
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = healthy.clone();
    let upstream = Upstream::builder()
        .script(Script::from_fn(move |req, _| {
            match (
                req.path_only(),
                up.load(std::sync::atomic::Ordering::SeqCst),
            ) {
                ("/health", true) => Reply::ok("ok"),
                // The health endpoint accepts and never answers.
                ("/health", false) => Reply::ok("ok").delay(Duration::from_secs(86_400)),
                _ => Reply::status(503),
            }
        }))
        .start()
        .await;
    let mw = breakers(
        r#"
        [[breakers]]
        name = "musicbrainz"
        match = { host = "musicbrainz.org" }
        consecutive_failures = 1
        open_duration = "10m"
        probe_interval = "5s"
        health_url = "http://musicbrainz.org/health"
        "#,
    );
    let musicbrainz = mw.breakers().named("musicbrainz").unwrap();
    // The documented usage: a plain client, no timeout of its own.
    let plain = client_for([("musicbrainz.org", &upstream)])
        .build()
        .unwrap();
    let mw = mw.health_checks(plain);
    let client = guarded(
        client_for([("musicbrainz.org", &upstream)])
            .build()
            .unwrap(),
        &mw,
    );
    let url = "http://musicbrainz.org/ws/2/recording";
    assert_eq!(client.get(url).send().await.unwrap().status(), 503);
    assert_eq!(musicbrainz.state(), State::Open);
    let health_checks = || {
        upstream
            .requests()
            .iter()
            .filter(|r| r.path_only() == "/health")
            .count()
    };
    // Rejected requests every 5 s: each probe hangs and is given up on at its deadline (the
    // 5 s interval), after which the next one is due an interval later. Without a deadline the
    // first would hold the claim for good.
    for _ in 0..8 {
        tokio::time::advance(5 * SEC).await;
        assert!(client.get(url).send().await.is_err());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hung = health_checks();
    assert!(hung >= 4, "only {hung} health checks in 40 s");
    assert_eq!(musicbrainz.state(), State::Open);
    // The upstream is back: the next probe answers, and the breaker admits trials early.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..2 {
        tokio::time::advance(5 * SEC).await;
        let _ = client.get(url).send().await;
        if eventually(|| musicbrainz.state() != State::Open).await {
            break;
        }
    }
    assert_ne!(
        musicbrainz.state(),
        State::Open,
        "a healthy probe ends the open period"
    );
}

#[tokio::test(start_paused = true)]
async fn no_spelling_of_a_guarded_host_slips_past_its_open_breaker() {
    let upstream = Upstream::builder().script(Reply::ok("{}")).start().await;
    let mw = breakers(
        r#"
        [[breakers]]
        name = "spotify"
        match = { host = "api.spotify.com" }
        "#,
    );
    mw.breakers().named("spotify").unwrap().force_open();
    let client = guarded(
        http(Protocol::Http1, &[("api.spotify.com", &upstream)]),
        &mw,
    );
    for url in [
        "http://api.spotify.com/v1",
        "http://API.Spotify.com/v1",
        "http://api.spotify.com./v1",
        "http://api.spotify.com:80/v1",
    ] {
        let err = client.get(url).send().await.unwrap_err();
        assert_eq!(
            circuit_open(&err).map(|o| o.breaker()),
            Some("spotify"),
            "{url}"
        );
    }
    assert_eq!(upstream.hits(), 0);
    assert_eq!(mw.breakers().breakers().len(), 1, "no second breaker");
}

#[tokio::test(start_paused = true)]
async fn garbage_resets_and_huge_headers_are_typed_errors_the_breaker_counts() {
    for (reply, what) in [
        (Reply::garbage("SSH-2.0-OpenSSH_9.6\r\n"), "garbage"),
        (Reply::reset(), "reset"),
        (Reply::close(), "closed before the head"),
        (Reply::ok("{}").huge_header(1 << 20), "a 1 MiB header"),
    ] {
        let upstream = Upstream::builder().script(reply).start().await;
        let mw = breakers(TWO_FAILURES);
        let espn = mw.breakers().named("espn").unwrap();
        let client = guarded(
            http(Protocol::Http1, &[("site.api.espn.com", &upstream)]),
            &mw,
        );
        for _ in 0..2 {
            let err = client
                .get("http://site.api.espn.com/apis/v2/news")
                .send()
                .await
                .unwrap_err();
            assert!(
                matches!(err, reqwest_middleware::Error::Reqwest(_)),
                "{what}: {err:?}"
            );
        }
        assert_eq!(espn.state(), State::Open, "{what}: two failures open it");
        assert_eq!(
            upstream.hits(),
            2,
            "{what}: every attempt reached the upstream"
        );
    }
}
