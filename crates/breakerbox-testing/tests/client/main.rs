//! `client_for` and `url_for`: real host names reach their upstreams, pooled connections
//! survive paused time, and a breakerbox-wrapped client can be tested end to end.

use breakerbox::BoxConfig;
use breakerbox_reqwest::{CircuitBreakerMiddleware, circuit_open, is_circuit_open};
use breakerbox_testing::{Reply, Script, Upstream, client_for, url_for};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn each_host_name_reaches_its_own_upstream() {
    let spotify = Upstream::builder()
        .script(Reply::ok("spotify"))
        .start()
        .await;
    let musicbrainz = Upstream::builder()
        .script(Reply::ok("musicbrainz"))
        .start()
        .await;
    let client = client_for([
        ("api.spotify.com", &spotify),
        ("musicbrainz.org", &musicbrainz),
    ])
    .build()
    .unwrap();

    let text = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // A URL without a port, as the code under test writes it.
    assert_eq!(
        text("http://api.spotify.com/v1/search?q=daft".into()).await,
        "spotify"
    );
    assert_eq!(
        text("http://musicbrainz.org/ws/2/artist".into()).await,
        "musicbrainz"
    );
    // And with the upstream's port.
    let url = url_for("musicbrainz.org", &musicbrainz, "ws/2/release");
    assert_eq!(text(url).await, "musicbrainz");

    assert_eq!((spotify.hits(), musicbrainz.hits()), (1, 2));
    let seen = spotify.requests();
    assert_eq!(seen[0].authority.as_deref(), Some("api.spotify.com"));
    assert_eq!(seen[0].path, "/v1/search?q=daft");
    let seen = musicbrainz.requests();
    assert_eq!(seen[0].authority.as_deref(), Some("musicbrainz.org"));
    let with_port = format!("musicbrainz.org:{}", musicbrainz.addr().port());
    assert_eq!(seen[1].authority.as_deref(), Some(with_port.as_str()));
    assert_eq!(seen[1].path, "/ws/2/release");
}

#[tokio::test(start_paused = true)]
async fn url_for_names_the_host_and_the_upstreams_port() {
    let upstream = Upstream::builder().start().await;
    let port = upstream.addr().port();
    assert_eq!(
        url_for("api.spotify.com", &upstream, "/v1/me"),
        format!("http://api.spotify.com:{port}/v1/me")
    );
    assert_eq!(
        url_for("api.spotify.com", &upstream, "v1/me"),
        format!("http://api.spotify.com:{port}/v1/me")
    );
}

#[tokio::test(start_paused = true)]
async fn a_pooled_connection_survives_hours_of_paused_time() {
    let upstream = Upstream::builder().start().await;
    let client = client_for([("api.example.com", &upstream)])
        .build()
        .unwrap();
    client.get("http://api.example.com/").send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    client.get("http://api.example.com/").send().await.unwrap();
    assert_eq!(upstream.connections(), 1, "the idle connection was kept");

    // reqwest's default idle timeout (90 s) expires it: what client_for turns off.
    let other = Upstream::builder().start().await;
    let default = reqwest::Client::builder().no_proxy().build().unwrap();
    default.get(other.url("/")).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    default.get(other.url("/")).send().await.unwrap();
    assert_eq!(
        other.connections(),
        2,
        "the default pool opened a new connection"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_timeout_fires_on_tokios_clock_over_both_protocols() {
    let upstream = Upstream::builder()
        .script(Reply::ok("slow").delay(Duration::from_secs(30)))
        .start()
        .await;
    for h2 in [false, true] {
        let mut builder =
            client_for([("api.example.com", &upstream)]).timeout(Duration::from_secs(10));
        if h2 {
            builder = builder.http2_prior_knowledge();
        }
        let client = builder.build().unwrap();
        let start = Instant::now();
        let err = client
            .get("http://api.example.com/")
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
    let versions: Vec<_> = upstream.requests().iter().map(|r| r.version).collect();
    assert_eq!(versions, [http::Version::HTTP_11, http::Version::HTTP_2]);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_five_503s_and_the_upstream_sees_five() {
    let upstream = Upstream::builder()
        .script(Script::sequence([
            Reply::status(503).delay(Duration::from_millis(300))
        ]))
        .start()
        .await;
    let client = client_for([("api.example.com", &upstream)])
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(client)
        .with(CircuitBreakerMiddleware::new(BoxConfig::default()))
        .build();
    let url = "http://api.example.com/v1/items";
    for i in 1..=5 {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 503, "call {i} reached the upstream");
    }
    for _ in 0..3 {
        let err = client.get(url).send().await.unwrap_err();
        assert!(is_circuit_open(&err), "{err}");
        assert!(circuit_open(&err).unwrap().retry_after().is_some());
    }
    assert_eq!(
        upstream.hits(),
        5,
        "no call went out while the breaker was open"
    );
}

/// The README's example, run (the README's copy is only compiled).
#[tokio::test(start_paused = true)]
async fn the_readme_example() {
    let upstream = Upstream::builder()
        .script(Script::sequence([
            Reply::ok(r#"{"items":[]}"#).stall_after(5),
            Reply::ok(r#"{"items":[]}"#),
        ]))
        .start()
        .await;
    let client = client_for([("api.example.com", &upstream)])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let started = Instant::now();
    let response = client
        .get("http://api.example.com/v1/items")
        .send()
        .await
        .unwrap();
    let err = response.text().await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(started.elapsed(), Duration::from_secs(10));

    let response = client
        .get("http://api.example.com/v1/items")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), r#"{"items":[]}"#);

    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].authority.as_deref(), Some("api.example.com"));
    assert_eq!(seen[0].path, "/v1/items");
}
