//! The scraper demo's scenario, whole, as the README runs it: the real fake upstreams, client,
//! status server and summary of `breakerbox-examples`, with the default fault script and
//! `examples/scraper.toml`, over 30 s of tokio's paused time (a few seconds of wall time).
//!
//! Paused time with real loopback sockets: tokio's auto-advance jumps the clock to the next
//! timer whenever the runtime finds no ready task and no socket event. A loopback exchange is
//! normally complete within the sending call, but should the kernel ever deliver late (it may
//! defer network work under load), the clock would jump, and a 1 s client timeout could fire
//! before the server's answer is read. So a driver task keeps the runtime busy and advances the
//! clock 1 ms per scheduler round, after the runtime has polled its sockets: a late delivery
//! costs a millisecond per round instead of a jump, and timers still fire in order.

use breakerbox::BoxConfig;
use breakerbox::State;
use breakerbox::breaker_box::BoxSnapshot;
use breakerbox_examples::demo::{Demo, Live, Settings};
use breakerbox_examples::routes::Route;
use breakerbox_examples::summary::{Summary, UpstreamSummary};
use breakerbox_examples::timeline::Timeline;
use breakerbox_examples::upstreams::{Hit, RATE_LIMIT_INTERVAL};
use std::net::SocketAddr;
use std::time::Duration;

const PROFILES: &str = include_str!("../../examples/scraper.toml");
const DASHBOARD: &str = include_str!("../../examples/grafana/breakerbox-dashboard.json");
const ALERTS: &str = include_str!("../../examples/grafana/breakerbox-alerts.yml");

const RUN: Duration = Duration::from_secs(30);

/// Advances the paused clock 1 ms per step; each step yields, so every ready task runs and the
/// runtime polls its sockets before the next (see the module docs).
async fn drive_time() {
    loop {
        tokio::time::advance(Duration::from_millis(1)).await;
    }
}

/// One answer of `/health`.
#[derive(Debug)]
struct Observed {
    at: Duration,
    status: u16,
    body: String,
}

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// Asks `/health` every 250 ms for the whole run, as a monitoring system would.
async fn watch_health(addr: SocketAddr, timeline: Timeline) -> Vec<Observed> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut seen = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(250));
    while timeline.elapsed() < RUN - Duration::from_millis(250) {
        every.tick().await;
        let at = timeline.elapsed();
        let (status, body) = get(&client, addr, "/health").await;
        seen.push(Observed { at, status, body });
    }
    seen
}

fn upstream(summary: &Summary, route: Route) -> &UpstreamSummary {
    summary
        .upstreams
        .iter()
        .find(|u| u.route == route)
        .expect("every route is summarised")
}

/// The value of a counter line `name{labels} value` whose labels include all of `labels`.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> Option<u64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The metric names a dashboard or rule file queries.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for prefix in ["circuit_breaker_", "retry_"] {
        for (i, _) in text.match_indices(prefix) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[tokio::test(start_paused = true)]
async fn the_demo_scenario_opens_isolates_rate_limits_and_recovers() {
    tokio::spawn(drive_time());
    let config = BoxConfig::from_toml(PROFILES).expect("examples/scraper.toml loads");
    let settings = Settings {
        port: 0,
        live: Live::Print {
            every: Duration::from_secs(5),
        },
        colour: false,
        ..Settings::new(config)
    };
    assert_eq!(settings.duration, RUN, "the README's run");
    let demo = Demo::start(settings).await.expect("the demo starts");
    let addr = demo.status_addr();
    let health = tokio::spawn(watch_health(addr, demo.timeline()));

    let mut printed = Vec::new();
    let summary = demo
        .run(&mut printed, std::future::pending())
        .await
        .expect("the run prints");
    let printed = String::from_utf8(printed).expect("UTF-8 output");
    println!("{printed}"); // shown when an assertion fails
    let health = health.await.expect("the health watcher finishes");
    let hits: Vec<Hit> = demo.hits();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (_, metrics) = get(&client, addr, "/metrics").await;
    let (breakers_status, breakers) = get(&client, addr, "/breakers").await;
    assert_eq!(breakers_status, 200);
    let snapshot: BoxSnapshot = serde_json::from_str(&breakers).expect("/breakers is a snapshot");

    assert!(
        summary.elapsed >= RUN && summary.elapsed < RUN + Duration::from_millis(100),
        "{:?}",
        summary.elapsed
    );
    for u in &summary.upstreams {
        assert!(u.tally.requests > 0, "{} was scraped", u.route);
    }

    // Spotify, rate-limiting with `Retry-After: 2` from 1 s to 2 s: the server's word opened
    // its breaker at once, for the time stated, and it closed after; then down from 5 s to
    // 15 s: its breaker opened once during the outage, and closed again after it, found
    // healthy by a health check.
    let spotify = upstream(&summary, Route::Spotify);
    let [told, period] = spotify.open_periods[..] else {
        panic!("spotify opened twice: {:?}", spotify.open_periods)
    };
    let secs = Duration::from_secs;
    let told_trial = told
        .trial
        .expect("spotify admitted a trial after the stated time");
    assert!(
        told.opened >= secs(1)
            && told.opened < secs(2)
            && told_trial >= told.opened + secs(2)
            && told.closed.is_some_and(|closed| closed < secs(5)),
        "{told:?}"
    );
    assert!(
        period.opened > secs(5) && period.opened < secs(10),
        "{period:?}"
    );
    let trial = period.trial.expect("spotify admitted trials again");
    let closed = period.closed.expect("spotify closed again");
    assert!(
        trial >= secs(15) && closed >= trial && closed < secs(25),
        "{period:?}"
    );
    assert_eq!(spotify.state, State::Closed);
    // While open, its server saw no scraping request (health checks only), and the scraper's
    // rejected requests are the breaker's rejections, as /metrics counts them.
    let during_open = |h: &&Hit| h.at > period.opened && h.at < trial;
    let spotify_hits = || hits.iter().filter(|h| h.route == Route::Spotify);
    assert_eq!(
        spotify_hits()
            .filter(|h| !h.health_check)
            .filter(during_open)
            .count(),
        0,
        "no Spotify search reached the server while its breaker was open"
    );
    assert!(
        spotify_hits()
            .filter(|h| h.health_check)
            .filter(during_open)
            .count()
            >= 1,
        "health checks probed it"
    );
    assert!(spotify.tally.rejected >= 20, "{:?}", spotify.tally);
    // Every attempt the breaker refused is a request rejected before it left the client, or the
    // retry of one that got the upstream's last answer instead.
    assert_eq!(
        spotify.tally.rejected + spotify.tally.refused_retries,
        spotify.tally.attempt_rejections
    );
    assert_eq!(
        counter(
            &metrics,
            "circuit_breaker_calls_total",
            &[r#"breaker="spotify""#, r#"result="rejected""#]
        ),
        Some(spotify.tally.attempt_rejections),
        "the summary and /metrics agree"
    );

    // Vision failed from the start: its breaker opened at once; text generation on the same
    // host was never rejected and its server answered every call meanwhile.
    let vision = upstream(&summary, Route::GoogleAiVision);
    let first = vision.open_periods.first().expect("vision opened");
    assert!(first.opened < secs(2), "{first:?}");
    let vision_closed = vision.open_periods.last().and_then(|p| p.closed);
    assert!(
        vision_closed.is_some_and(|c| c >= secs(20)),
        "vision closed after its faults ended: {:?}",
        vision.open_periods
    );
    let text = upstream(&summary, Route::GoogleAiText);
    assert_eq!(text.tally.rejected, 0);
    assert_eq!(text.tally.attempt_rejections, 0);
    assert!(text.open_periods.is_empty());
    let text_during: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.route == Route::GoogleAiText)
        .filter(|h| h.at > first.opened && vision_closed.is_some_and(|c| h.at < c))
        .collect();
    assert!(text_during.len() >= 30, "{}", text_during.len());
    assert!(text_during.iter().all(|h| h.status == 200));
    let isolation = summary
        .isolation
        .iter()
        .find(|i| i.failing == Route::GoogleAiVision && i.neighbour == Route::GoogleAiText)
        .expect("the summary proves isolation");
    assert_eq!(
        (isolation.succeeded, isolation.calls, isolation.rejected),
        (text_during.len(), text_during.len(), 0)
    );

    // MusicBrainz: the server, which refuses anything faster than 1 request per second, never
    // saw two requests within a second, and refused none.
    let musicbrainz: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.route == Route::Musicbrainz)
        .collect();
    assert!(musicbrainz.len() >= 25, "{}", musicbrainz.len());
    for pair in musicbrainz.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= RATE_LIMIT_INTERVAL,
            "two MusicBrainz requests within a second: {pair:?}"
        );
    }
    assert!(musicbrainz.iter().all(|h| h.status == 200));
    let rate = summary.rate_limit.as_ref().expect("rate limit summary");
    assert_eq!((rate.requests, rate.refused), (musicbrainz.len(), 0));
    assert!(rate.held >= 20, "the limiter held requests back: {rate:?}");

    // ESPN's slow spell cost timeouts, which were retried; its breaker never opened.
    let espn = upstream(&summary, Route::Espn);
    assert!(espn.tally.timeouts >= 2, "{:?}", espn.tally);
    assert!(espn.tally.retries() >= espn.tally.timeouts);
    assert!(espn.open_periods.is_empty());

    // /metrics has every breaker's state gauge, and every metric the Grafana dashboard and the
    // alert rules query.
    assert_eq!(snapshot.breakers.len(), Route::ALL.len());
    for b in &snapshot.breakers {
        assert_eq!(b.state, State::Closed, "{} closed at the end", b.name);
        assert!(
            metrics.contains(&format!(
                "circuit_breaker_state{{breaker=\"{}\"}} 0",
                b.name
            )),
            "circuit_breaker_state for {}:\n{metrics}",
            b.name
        );
    }
    let queried: Vec<String> = metric_names(DASHBOARD)
        .into_iter()
        .chain(metric_names(ALERTS))
        .collect();
    assert!(queried.len() >= 6, "{queried:?}");
    for name in &queried {
        // A histogram's name stands for its `_bucket`, `_sum` and `_count` series.
        let series = [
            format!("{name}{{"),
            format!("{name} "),
            format!("{name}_bucket{{"),
        ];
        assert!(
            metrics
                .lines()
                .any(|l| series.iter().any(|s| l.starts_with(s.as_str()))),
            "{name} is named in examples/grafana but not in /metrics"
        );
    }
    serde_json::from_str::<serde_json::Value>(DASHBOARD).expect("the dashboard is JSON");
    assert!(
        metrics.contains("# HELP circuit_breaker_state "),
        "described"
    );
    // The summary's retries are the retry middleware's, as counted in retry_attempts_total (a
    // request stopped by the end of the run may have counted a retry it never sent).
    let retried: u64 = summary.upstreams.iter().map(|u| u.tally.retries()).sum();
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("retry_attempts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        retried >= 10 && counted >= retried && counted <= retried + 8,
        "summary {retried}, /metrics {counted}"
    );

    // /health: 503 naming Spotify during its outage, 200 once every breaker had closed.
    assert!(health.len() >= 100, "{}", health.len());
    let outage: Vec<&Observed> = health
        .iter()
        .filter(|o| o.at > period.opened && o.at < trial)
        .collect();
    assert!(!outage.is_empty());
    for o in &outage {
        assert_eq!(o.status, 503, "{o:?}");
        assert!(o.body.contains("\"spotify\""), "{o:?}");
    }
    let all_closed = summary
        .transitions
        .iter()
        .filter(|t| t.to == State::Closed)
        .map(|t| t.at)
        .max()
        .expect("breakers closed");
    let after: Vec<&Observed> = health.iter().filter(|o| o.at > all_closed).collect();
    assert!(
        after.len() >= 4,
        "{} answers after {all_closed:?}",
        after.len()
    );
    for o in &after {
        assert_eq!(o.status, 200, "{o:?}");
        assert!(o.body.contains("\"healthy\""), "{o:?}");
    }

    // What the user reads.
    assert!(
        printed.contains("spotify            closed -> open"),
        "{printed}"
    );
    assert!(printed.contains("summary after 30.0s"), "{printed}");
    let words = printed.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!(
            "isolation: while google_ai_vision was open ({:.1}s-{:.1}s), google_ai_text on the same host answered {n} of {n} calls and was never rejected",
            first.opened.as_secs_f64(),
            vision_closed.unwrap().as_secs_f64(),
            n = text_during.len(),
        )),
        "{printed}"
    );
}
