//! What upstreams say beyond pass and fail, through reqwest: a `Retry-After` opens the
//! breaker, each upstream has its own retry budget, and a rate limit never locks a host out.
//! Real loopback upstreams, paused time.

use breakerbox_reqwest::{BoxConfig, CircuitBreakerMiddleware, State, Target, circuit_open};
use breakerbox_testing::{Reply, Script, Upstream, client_for};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);

fn stack(
    config: &str,
    hosts: &[(&str, &Upstream)],
) -> (ClientWithMiddleware, CircuitBreakerMiddleware) {
    let breakers = CircuitBreakerMiddleware::new(BoxConfig::from_toml(config).unwrap());
    let http = client_for(hosts.iter().copied()).build().unwrap();
    let client = ClientBuilder::new(http)
        .with(breakers.retry())
        .with(breakers.clone())
        .build();
    (client, breakers)
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_opens_the_breaker_for_that_long_and_the_caller_gets_it() {
    let spotify = Upstream::builder()
        .script(Script::sequence([
            Reply::status(429).retry_after(Duration::from_secs(30)),
            Reply::ok("{}"),
        ]))
        .start()
        .await;
    let (client, breakers) = stack("", &[("api.spotify.com", &spotify)]);
    let url = "http://api.spotify.com/v1/search?q=daft";
    let started = Instant::now();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(
        response.status(),
        429,
        "the caller gets the answer that carried the header"
    );
    assert!(
        started.elapsed() < SEC,
        "30 s is past max_delay: no retry waited for it"
    );
    assert_eq!(spotify.hits(), 1);
    let breaker = breakers
        .breakers()
        .breaker(&Target::new("http", "api.spotify.com", 80, "/"));
    assert_eq!(breaker.state(), State::Open, "one answer opened it");
    let retry_in = breaker.retry_in().unwrap();
    assert!(retry_in >= Duration::from_secs(29), "{retry_in:?}");
    // Meanwhile nothing is sent.
    let err = client.get(url).send().await.unwrap_err();
    assert!(circuit_open(&err).is_some(), "{err}");
    assert_eq!(spotify.hits(), 1);
    // Once the stated time (and its jitter) has passed, a trial goes out and closes it.
    tokio::time::sleep(Duration::from_secs(34)).await;
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap(); // the call ends with its body
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_rules_rate_limit_reset_header_opens_its_breaker() {
    let github = Upstream::builder()
        .script(Script::sequence([
            Reply::status(429).header("x-ratelimit-reset", "12")
        ]))
        .start()
        .await;
    let (client, breakers) = stack(
        r#"
        [[breakers]]
        name = "github"
        match = { host = "api.github.com" }
        rate_limit_reset = { header = "x-ratelimit-reset", form = "seconds" }
        "#,
        &[("api.github.com", &github)],
    );
    let response = client
        .get("http://api.github.com/repos")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let breaker = breakers.breakers().named("github").unwrap();
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker.retry_in().unwrap() >= Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn one_upstreams_outage_cannot_spend_anothers_retries() {
    let spotify = Upstream::builder()
        .script(Script::always(Reply::status(503)))
        .start()
        .await;
    // ESPN fails now and then: every 7th request answers 503 once.
    let espn = Upstream::builder()
        .script(Script::from_fn(|_, i| {
            if i % 7 == 0 {
                Reply::status(503)
            } else {
                Reply::ok("{}")
            }
        }))
        .start()
        .await;
    let (client, _) = stack(
        r#"
        [defaults]
        consecutive_failures = 100000

        [retry]
        jitter = "none"
        base_delay = "10ms"
        budget = { ttl = "2s", min_per_sec = 1, retry_ratio = 0.1 }
        "#,
        &[("api.spotify.com", &spotify), ("site.api.espn.com", &espn)],
    );
    for _ in 0..100 {
        let _ = client.get("http://api.spotify.com/v1/search").send().await;
    }
    let spotify_retries = spotify.hits() - 100;
    let mut espn_requests = 0;
    while espn.hits() < 21 {
        let response = client
            .get("http://site.api.espn.com/apis/v2/scoreboard")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "every ESPN 503 retried");
        espn_requests += 1;
    }
    let espn_retries = espn.hits() - espn_requests;
    println!(
        "retries: spotify {spotify_retries} for 100 requests, espn {espn_retries} for {espn_requests}"
    );
    assert!(
        spotify_retries <= 2 + 10 + 1,
        "spotify kept to its own budget: {spotify_retries}"
    );
    assert_eq!(espn_retries, 3);
}

/// A loopback rate limit of one request a second that answers 429 without Retry-After, like
/// nginx's `limit_req`: (successes, requests) for 5 requests a second offered from 4 tasks
/// for 20 s through `client`.
async fn against_a_rate_limit(client: ClientWithMiddleware, limited: &Upstream) -> (usize, usize) {
    let ok = Arc::new(Mutex::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let client = client.clone();
            let ok = ok.clone();
            tokio::spawn(async move {
                // 4 tasks x 1.25 requests a second, offset from each other.
                tokio::time::sleep(Duration::from_millis(200 * task)).await;
                for _ in 0..25 {
                    if let Ok(response) = client
                        .get("http://musicbrainz.org/ws/2/recording")
                        .send()
                        .await
                    {
                        if response.status() == 200 {
                            *ok.lock().unwrap() += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let successes = *ok.lock().unwrap();
    (successes, limited.hits())
}

fn rate_limited() -> Script {
    let next_free = Arc::new(Mutex::new(None::<Instant>));
    Script::from_fn(move |request, _| {
        let mut next = next_free.lock().unwrap();
        if next.is_none_or(|at| request.arrived >= at) {
            *next = Some(request.arrived + SEC);
            Reply::ok("{}")
        } else {
            Reply::status(429)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_never_locks_a_host_out() {
    let bare_upstream = Upstream::builder().script(rate_limited()).start().await;
    let bare = ClientBuilder::new(
        client_for([("musicbrainz.org", &bare_upstream)])
            .build()
            .unwrap(),
    )
    .build();
    let (bare_ok, bare_sent) = against_a_rate_limit(bare, &bare_upstream).await;

    let profile = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scraper.toml"
    ))
    .unwrap();
    let stacked_upstream = Upstream::builder().script(rate_limited()).start().await;
    let (client, breakers) = stack(&profile, &[("musicbrainz.org", &stacked_upstream)]);
    let (ok, sent) = against_a_rate_limit(client, &stacked_upstream).await;
    println!(
        "rate limit: bare {bare_ok} successes of {bare_sent} requests; the MusicBrainz profile {ok} of {sent}"
    );
    assert!(
        ok * 10 >= bare_ok * 9,
        "at least 90 % of the bare client's successes: {ok} vs {bare_ok}"
    );
    assert!(
        sent <= bare_sent,
        "no more requests than the bare client: {sent} vs {bare_sent}"
    );
    let musicbrainz = breakers.breakers().named("musicbrainz").unwrap();
    assert_eq!(musicbrainz.state(), State::Closed);
}
