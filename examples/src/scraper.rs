//! The scraper loop: one worker per job, all at once, each making a request, reading the
//! answer, and waiting for its next turn.

use crate::client::ScraperClient;
use crate::ledger::RequestResult;
use crate::routes::{Host, Route};
use reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// A kind of request the scraper makes, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// What it is.
    pub name: &'static str,
    /// Where it goes.
    pub route: Route,
    /// How often a worker starts one (a slower answer delays the next).
    pub every: Duration,
    request: fn(&ClientWithMiddleware, usize) -> RequestBuilder,
}

/// Tracks the scraper looks up, in turn.
const TRACKS: [(&str, &str, &str); 4] = [
    (
        "Daft Punk",
        "One More Time",
        "d8e3d1b3-7fd3-4c5a-8a36-8a8a4d1a2c5e",
    ),
    (
        "Aphex Twin",
        "Windowlicker",
        "0b6b6f5c-2b0e-4b8c-9a39-5d2f0c3b7f11",
    ),
    (
        "Massive Attack",
        "Teardrop",
        "5b11f4ce-a62d-471e-81fc-a69a8278c7da",
    ),
    (
        "Boards of Canada",
        "Roygbiv",
        "9e2d4a3c-1f7b-4d8e-b6a5-3c2e1f0d9b8a",
    ),
];

fn url(host: Host, path: &str) -> String {
    format!("http://{host}{path}")
}

fn with_query(host: Host, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(&url(host, path), query).expect("a valid URL")
}

fn gemini(model: &str, method: &str) -> String {
    url(Host::GoogleAi, &format!("/v1beta/models/{model}:{method}"))
}

fn json_post(client: &ClientWithMiddleware, url: String, body: String) -> RequestBuilder {
    client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
}

/// The demo's jobs: ESPN's scoreboard and injuries, Spotify searches, MusicBrainz lookups
/// (wanted twice a second, allowed once), Last.fm track info, and Google AI text, vision and
/// image generation. The Google AI calls are POSTs, which are not idempotent: the retry
/// middleware sends them once.
pub const JOBS: [Job; 8] = [
    Job {
        name: "espn scoreboard",
        route: Route::Espn,
        every: Duration::from_millis(500),
        request: |c, _| {
            c.get(url(
                Host::Espn,
                "/apis/site/v2/sports/football/nfl/scoreboard",
            ))
        },
    },
    Job {
        name: "espn injuries",
        route: Route::Espn,
        every: Duration::from_millis(500),
        request: |c, _| {
            c.get(url(
                Host::Espn,
                "/apis/site/v2/sports/football/nfl/injuries",
            ))
        },
    },
    Job {
        name: "spotify search",
        route: Route::Spotify,
        every: Duration::from_millis(250),
        request: |c, n| {
            let (artist, title, _) = TRACKS[n % TRACKS.len()];
            let q = format!("{artist} {title}");
            c.get(with_query(
                Host::Spotify,
                "/v1/search",
                &[("q", &q), ("type", "track")],
            ))
        },
    },
    Job {
        name: "musicbrainz lookup",
        route: Route::Musicbrainz,
        every: Duration::from_millis(500),
        request: |c, n| {
            let (_, _, mbid) = TRACKS[n % TRACKS.len()];
            c.get(with_query(
                Host::Musicbrainz,
                &format!("/ws/2/recording/{mbid}"),
                &[("fmt", "json"), ("inc", "artists")],
            ))
        },
    },
    Job {
        name: "lastfm track info",
        route: Route::Lastfm,
        every: Duration::from_millis(400),
        request: |c, n| {
            let (artist, title, _) = TRACKS[n % TRACKS.len()];
            c.get(with_query(
                Host::Lastfm,
                "/2.0/",
                &[
                    ("method", "track.getInfo"),
                    ("artist", artist),
                    ("track", title),
                    ("format", "json"),
                ],
            ))
        },
    },
    Job {
        name: "google ai text",
        route: Route::GoogleAiText,
        every: Duration::from_millis(300),
        request: |c, n| {
            let (artist, title, _) = TRACKS[n % TRACKS.len()];
            json_post(
                c,
                gemini("gemini-pro", "generateContent"),
                format!(
                    r#"{{"contents":[{{"parts":[{{"text":"One line about {title} by {artist}"}}]}}]}}"#
                ),
            )
        },
    },
    Job {
        name: "google ai vision",
        route: Route::GoogleAiVision,
        every: Duration::from_millis(300),
        request: |c, _| {
            json_post(
                c,
                gemini("gemini-pro-vision", "generateContent"),
                r#"{"contents":[{"parts":[{"text":"Describe this cover"},{"inline_data":{"mime_type":"image/png","data":"iVBORw0KGgo="}}]}]}"#.to_owned(),
            )
        },
    },
    Job {
        name: "google ai image",
        route: Route::GoogleAiImagen,
        every: Duration::from_secs(1),
        request: |c, n| {
            let (artist, _, _) = TRACKS[n % TRACKS.len()];
            json_post(
                c,
                gemini("imagen-3.0-generate-002", "predict"),
                format!(r#"{{"instances":[{{"prompt":"An album cover for {artist}"}}]}}"#),
            )
        },
    },
];

/// The running workers.
#[derive(Debug)]
pub struct Scraper {
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
}

impl Scraper {
    /// Starts a worker per job of `jobs`.
    pub fn start(client: &ScraperClient, jobs: &[Job]) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut workers = JoinSet::new();
        for job in jobs {
            workers.spawn(work(*job, client.clone(), stopped.clone()));
        }
        Self { stop, workers }
    }

    /// Stops every worker; requests still in flight are dropped, uncounted.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.workers.join_next().await.is_some() {}
    }
}

async fn work(job: Job, client: ScraperClient, mut stopped: watch::Receiver<bool>) {
    let mut turn = tokio::time::interval(job.every);
    turn.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for n in 0.. {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|&stop| stop) => return,
            _ = turn.tick() => {}
        }
        let request = (job.request)(&client.http, n);
        let result = tokio::select! {
            biased;
            _ = stopped.wait_for(|&stop| stop) => return,
            result = send(request) => result,
        };
        let (result, refused) = result;
        client.ledger.request(job.route, result, refused);
    }
}

/// Sends `request` and reads its answer: how it ended, and whether a breaker refused its retry.
async fn send(request: RequestBuilder) -> (RequestResult, bool) {
    let result = request.send().await;
    let outcome = RequestResult::of(&result);
    let refused = RequestResult::retry_refused(&result);
    if let Ok(response) = result {
        let _ = response.bytes().await;
    }
    (outcome, refused)
}
