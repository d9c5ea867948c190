//! Real outages against real loopback servers: a reqwest client with the middleware, whose DNS
//! maps the field's host names to hyper servers on 127.0.0.1 that fail on command. The breakers'
//! time is a manual clock, so nothing waits.

use breakerbox::clock::ManualClock;
use breakerbox::{BoxConfig, BreakerBox, State};
use breakerbox_reqwest::{CircuitBreakerMiddleware, circuit_open, is_circuit_open};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

const PROFILES: &str = include_str!("../../../../examples/scraper.toml");

/// The field's profiles, with runs of failures tripping however fast they come: these loopback
/// upstreams fail in microseconds, and the tests are about which breaker opens.
fn profiles() -> BoxConfig {
    BoxConfig::from_toml(&PROFILES.replace(
        "[defaults]\n",
        "[defaults]\nconsecutive_failures_span = \"0s\"\n",
    ))
    .unwrap()
}

/// A loopback upstream: answers 503 on the paths listed in `failing`, 200 elsewhere, and counts
/// requests per path prefix.
#[derive(Clone, Default)]
struct Upstream {
    down: Arc<AtomicBool>,
    failing_prefix: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        let path = req.uri().path().to_owned();
                        upstream.hits.fetch_add(1, Ordering::SeqCst);
                        upstream.paths.lock().unwrap().push(path.clone());
                        let failing = upstream.down.load(Ordering::SeqCst)
                            || upstream
                                .failing_prefix
                                .lock()
                                .unwrap()
                                .as_deref()
                                .is_some_and(|p| path.starts_with(p));
                        let status = if failing { 503 } else { 200 };
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct Field {
    client: ClientWithMiddleware,
    panel: BreakerBox,
    clock: ManualClock,
}

/// A client whose DNS sends each host to its own loopback upstream.
async fn field(upstreams: &[(&str, &Upstream)]) -> Field {
    let mut builder = reqwest::Client::builder().no_proxy();
    for (host, upstream) in upstreams {
        builder = builder.resolve(host, upstream.start().await);
    }
    let clock = ManualClock::new();
    let panel = BreakerBox::builder(profiles())
        .clock(Arc::new(clock.clone()))
        .build();
    let client = ClientBuilder::new(builder.build().unwrap())
        .with(CircuitBreakerMiddleware::from_box(panel.clone()))
        .build();
    Field {
        client,
        panel,
        clock,
    }
}

impl Field {
    async fn get(&self, url: &str) -> Result<u16, reqwest_middleware::Error> {
        self.client
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
    }

    fn state(&self, name: &str) -> State {
        self.panel.named(name).unwrap().state()
    }
}

#[tokio::test]
async fn a_spotify_outage_opens_only_spotify_and_two_successes_close_it() {
    let (spotify, espn) = (Upstream::default(), Upstream::default());
    let field = field(&[("api.spotify.com", &spotify), ("site.api.espn.com", &espn)]).await;
    let search = "http://api.spotify.com/v1/search?q=daft+punk";
    let scores = "http://site.api.espn.com/apis/site/v2/sports/football/nfl/scoreboard";

    spotify.down.store(true, Ordering::SeqCst);
    for i in 1..=10 {
        assert_eq!(field.get(search).await.unwrap(), 503);
        assert_eq!(field.get(scores).await.unwrap(), 200, "ESPN keeps working");
        let expected = if i < 10 { State::Closed } else { State::Open };
        assert_eq!(field.state("spotify"), expected, "after {i} failures");
    }
    assert_eq!(spotify.hits(), 10);

    for _ in 0..20 {
        let err = field.get(search).await.unwrap_err();
        assert!(is_circuit_open(&err));
        let open = circuit_open(&err).unwrap();
        assert_eq!(open.breaker(), "spotify");
        assert!(open.retry_after().unwrap() <= Duration::from_secs(120));
        assert_eq!(field.get(scores).await.unwrap(), 200);
    }
    assert_eq!(
        spotify.hits(),
        10,
        "Spotify saw no request while its breaker was open"
    );
    assert_eq!(field.state("espn"), State::Closed);

    spotify.down.store(false, Ordering::SeqCst);
    field.clock.advance(Duration::from_secs(120));
    assert_eq!(field.get(search).await.unwrap(), 200);
    assert_eq!(field.state("spotify"), State::HalfOpen);
    assert_eq!(field.get(search).await.unwrap(), 200);
    assert_eq!(field.state("spotify"), State::Closed);
    assert_eq!(spotify.hits(), 12);
    assert!(field.panel.health().is_healthy());
}

#[tokio::test]
async fn google_vision_failing_opens_vision_only() {
    let google = Upstream::default();
    *google.failing_prefix.lock().unwrap() = Some("/v1beta/models/gemini-pro-vision".into());
    let field = field(&[("generativelanguage.googleapis.com", &google)]).await;
    let base = "http://generativelanguage.googleapis.com/v1beta/models";
    let vision = format!("{base}/gemini-pro-vision:generateContent");
    let text = format!("{base}/gemini-pro:generateContent");
    let imagen = format!("{base}/imagen-3.0-generate:predict");

    for _ in 0..3 {
        assert_eq!(field.get(&vision).await.unwrap(), 503);
    }
    assert_eq!(field.state("google_ai_vision"), State::Open);
    let err = field.get(&vision).await.unwrap_err();
    assert_eq!(circuit_open(&err).unwrap().breaker(), "google_ai_vision");
    for _ in 0..5 {
        assert_eq!(field.get(&text).await.unwrap(), 200);
        assert_eq!(field.get(&imagen).await.unwrap(), 200);
    }
    assert_eq!(field.state("google_ai_text"), State::Closed);
    assert_eq!(field.state("google_ai_imagen"), State::Closed);
    assert_eq!(field.panel.health().failing, ["google_ai_vision"]);
    let vision_hits = google
        .paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.contains("vision"))
        .count();
    assert_eq!(
        vision_hits, 3,
        "the fourth vision call never left the client"
    );
}

#[tokio::test]
async fn a_refused_connection_counts_as_a_failure() {
    // Bind, learn the port, close: connecting there is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = profiles();
    let middleware = CircuitBreakerMiddleware::new(config);
    let panel = middleware.breakers().clone();
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .no_proxy()
            .resolve("musicbrainz.org", addr)
            .build()
            .unwrap(),
    )
    .with(middleware)
    .build();
    for _ in 0..3 {
        let err = client
            .get("http://musicbrainz.org/ws/2/recording")
            .send()
            .await
            .unwrap_err();
        assert!(!is_circuit_open(&err), "{err}");
    }
    let err = client
        .get("http://musicbrainz.org/ws/2/recording")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        circuit_open(&err).unwrap().breaker(),
        "musicbrainz",
        "3 failures open it"
    );
    assert_eq!(panel.named("musicbrainz").unwrap().state(), State::Open);
}

#[test]
fn the_shipped_profiles_load_and_bad_files_name_the_field() {
    let config = BoxConfig::from_toml(PROFILES).expect("examples/scraper.toml loads");
    assert_eq!(config.rules().len(), 9);
    assert_eq!(config.retry().map(|r| r.max_retries()), Some(3));
    for (text, needle) in [
        ("[defaults]\nconsecutive_failure = 5", "consecutive_failure"),
        (
            "[defaults]\nopen_duration = \"-5s\"",
            "invalid duration \"-5s\"",
        ),
        (
            "[defaults]\nfailure_rate = 1.5",
            "`defaults.failure_rate` = 1.5",
        ),
        ("[retry]\nmultiplier = 0.5", "`retry.multiplier` = 0.5"),
    ] {
        let err = BoxConfig::from_toml(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[tokio::test]
async fn a_health_check_admits_trials_before_the_open_duration_ends() {
    let spotify = Upstream::default();
    let addr = spotify.start().await;
    let plain = || {
        reqwest::Client::builder()
            .no_proxy()
            .resolve("api.spotify.com", addr)
            .build()
            .unwrap()
    };
    let config = BoxConfig::from_toml(
        r#"
        [[breakers]]
        name = "spotify"
        match = { host = "api.spotify.com" }
        consecutive_failures = 2
        consecutive_failures_span = "0s"
        open_duration = "120s"
        probe_interval = "10s"
        health_url = "http://api.spotify.com/health"
        "#,
    )
    .unwrap();
    let clock = ManualClock::new();
    let panel = BreakerBox::builder(config)
        .clock(Arc::new(clock.clone()))
        .build();
    let client = ClientBuilder::new(plain())
        .with(CircuitBreakerMiddleware::from_box(panel.clone()).health_checks(plain()))
        .build();
    let search = "http://api.spotify.com/v1/search?q=air";
    let spotify_state = || panel.named("spotify").unwrap().state();
    let health_checks = || {
        spotify
            .paths
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == "/health")
            .count()
    };
    // Waits (without sleeping) for the spawned health check to come back.
    let settle = |expected: usize| async move {
        tokio::time::timeout(Duration::from_secs(10), async {
            while health_checks() < expected {
                tokio::task::yield_now().await;
            }
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the health check ran");
    };

    spotify.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert_eq!(client.get(search).send().await.unwrap().status(), 503);
    }
    assert_eq!(spotify_state(), State::Open);

    // Due after 10 s: the check runs but the upstream is still down.
    clock.advance(Duration::from_secs(10));
    assert!(is_circuit_open(
        &client.get(search).send().await.unwrap_err()
    ));
    settle(1).await;
    assert_eq!(spotify_state(), State::Open);

    // 10 s later it is back: the check passes and trial requests start, 100 s early.
    spotify.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(10));
    assert!(is_circuit_open(
        &client.get(search).send().await.unwrap_err()
    ));
    settle(2).await;
    assert_eq!(spotify_state(), State::HalfOpen);
    assert_eq!(client.get(search).send().await.unwrap().status(), 200);
    assert_eq!(spotify_state(), State::Closed);
}

#[test]
fn a_health_url_needs_a_probe_interval_and_an_http_url() {
    let rule = |extra: &str| {
        format!("[[breakers]]\nname = \"x\"\nmatch = {{ host = \"x.com\" }}\n{extra}")
    };
    let err = BoxConfig::from_toml(&rule("health_url = \"http://x.com/health\"")).unwrap_err();
    assert!(
        err.to_string().contains("`breakers[0].health_url`"),
        "{err}"
    );
    assert!(err.to_string().contains("needs probe_interval"), "{err}");
    let err = BoxConfig::from_toml(&rule(
        "probe_interval = \"5s\"\nhealth_url = \"x.com/health\"",
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be an http:// or https:// URL"),
        "{err}"
    );
    BoxConfig::from_toml(&rule(
        "probe_interval = \"5s\"\nhealth_url = \"https://x.com/health\"",
    ))
    .unwrap();
}
