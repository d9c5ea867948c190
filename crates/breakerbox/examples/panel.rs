//! The breaker-box walkthrough: the field's upstreams on one panel, driven by a simulated clock
//! through an outage and a recovery. Nothing leaves the process.
//!
//! Run with `cargo run -p breakerbox --example panel`.

use breakerbox::clock::ManualClock;
use breakerbox::{BoxConfig, BreakerBox, Outcome, Target};
use std::sync::Arc;
use std::time::Duration;

/// One upstream call per tick: where it goes, and whether the upstream is down at that second.
struct Upstream {
    host: &'static str,
    path: &'static str,
    down: fn(u64) -> bool,
}

const UPSTREAMS: &[Upstream] = &[
    Upstream {
        host: "site.api.espn.com",
        path: "/apis/site/v2/sports/football/nfl/scoreboard",
        down: |_| false,
    },
    // Spotify fails from t=10s to t=200s.
    Upstream {
        host: "api.spotify.com",
        path: "/v1/search",
        down: |t| (10..200).contains(&t),
    },
    Upstream {
        host: "musicbrainz.org",
        path: "/ws/2/recording",
        down: |_| false,
    },
    Upstream {
        host: "ws.audioscrobbler.com",
        path: "/2.0/",
        down: |_| false,
    },
    // Google's vision model fails from t=20s to t=90s; text generation on the same host is fine.
    Upstream {
        host: "generativelanguage.googleapis.com",
        path: "/v1beta/models/gemini-pro-vision:generateContent",
        down: |t| (20..90).contains(&t),
    },
    Upstream {
        host: "generativelanguage.googleapis.com",
        path: "/v1beta/models/gemini-pro:generateContent",
        down: |_| false,
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = BoxConfig::from_toml(include_str!("../../../examples/scraper.toml"))?;
    let clock = ManualClock::new();
    let panel = BreakerBox::builder(config)
        .clock(Arc::new(clock.clone()))
        .listener(|e| {
            println!(
                "  event: {} {} -> {} ({})",
                e.breaker, e.from, e.to, e.reason
            )
        })
        .build();

    let (mut sent, mut rejected) = (0u64, 0u64);
    for t in 0..=400u64 {
        for upstream in UPSTREAMS {
            let target = Target::new("https", upstream.host, 443, upstream.path);
            match panel.try_acquire(&target) {
                Ok(permit) => {
                    sent += 1;
                    permit.record(if (upstream.down)(t) {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                }
                Err(_) => rejected += 1,
            }
        }
        if [0, 30, 150, 400].contains(&t) {
            println!("\nt = {t}s: {}\n{panel}", panel.health());
        }
        clock.advance(Duration::from_secs(1));
    }

    println!("calls sent {sent}, rejected without touching the upstream {rejected}");
    println!(
        "\nsnapshot of spotify:\n{}",
        serde_json::to_string_pretty(
            &panel
                .snapshot()
                .breakers
                .iter()
                .find(|b| b.name == "spotify")
        )?
    );
    Ok(())
}
