//! The upstreams the scraper calls: real host names, paths, and the breaker each one gets from
//! `examples/scraper.toml`.

use std::fmt;
use std::time::Duration;

/// One upstream route: a host, or a family of paths on a host, with a breaker of its own.
///
/// Its [`name`](Self::name) is its breaker's name in `examples/scraper.toml`, so the fault
/// script, the status table, the metrics and the summary all use one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// ESPN's site API: scoreboard and injuries (`*.espn.com`).
    Espn,
    /// Spotify's Web API: track search.
    Spotify,
    /// MusicBrainz: recording lookups, at most 1 request per second.
    Musicbrainz,
    /// Last.fm (Audioscrobbler): track info.
    Lastfm,
    /// Google AI text generation (Gemini).
    GoogleAiText,
    /// Google AI vision (Gemini Pro Vision), on the same host as text generation.
    GoogleAiVision,
    /// Google AI image generation (Imagen), on the same host as text generation.
    GoogleAiImagen,
}

/// Where a route's requests go: the real host name, resolved to a loopback port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    /// `site.api.espn.com`
    Espn,
    /// `api.spotify.com`
    Spotify,
    /// `musicbrainz.org`
    Musicbrainz,
    /// `ws.audioscrobbler.com`
    Lastfm,
    /// `generativelanguage.googleapis.com`: text, vision and image generation.
    GoogleAi,
}

impl Route {
    /// Every route, in the order of the status table.
    pub const ALL: [Route; 7] = [
        Route::Espn,
        Route::Spotify,
        Route::Musicbrainz,
        Route::Lastfm,
        Route::GoogleAiText,
        Route::GoogleAiVision,
        Route::GoogleAiImagen,
    ];

    /// The breaker's name (the `name` of its `[[breakers]]` entry in `examples/scraper.toml`).
    pub fn name(self) -> &'static str {
        match self {
            Route::Espn => "espn",
            Route::Spotify => "spotify",
            Route::Musicbrainz => "musicbrainz",
            Route::Lastfm => "lastfm",
            Route::GoogleAiText => "google_ai_text",
            Route::GoogleAiVision => "google_ai_vision",
            Route::GoogleAiImagen => "google_ai_imagen",
        }
    }

    /// The route named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The host serving this route.
    pub fn host(self) -> Host {
        match self {
            Route::Espn => Host::Espn,
            Route::Spotify => Host::Spotify,
            Route::Musicbrainz => Host::Musicbrainz,
            Route::Lastfm => Host::Lastfm,
            Route::GoogleAiText | Route::GoogleAiVision | Route::GoogleAiImagen => Host::GoogleAi,
        }
    }

    /// How long the fake upstream takes to answer when nothing is wrong.
    pub fn latency(self) -> Duration {
        Duration::from_millis(match self {
            Route::Espn => 30,
            Route::Spotify => 40,
            Route::Musicbrainz => 60,
            Route::Lastfm => 25,
            Route::GoogleAiText => 150,
            Route::GoogleAiVision => 200,
            Route::GoogleAiImagen => 600,
        })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Host {
    /// Every host, one fake server each.
    pub const ALL: [Host; 5] = [
        Host::Espn,
        Host::Spotify,
        Host::Musicbrainz,
        Host::Lastfm,
        Host::GoogleAi,
    ];

    /// The real host name, which the client resolves to the fake server's loopback port.
    pub fn name(self) -> &'static str {
        match self {
            Host::Espn => "site.api.espn.com",
            Host::Spotify => "api.spotify.com",
            Host::Musicbrainz => "musicbrainz.org",
            Host::Lastfm => "ws.audioscrobbler.com",
            Host::GoogleAi => "generativelanguage.googleapis.com",
        }
    }

    /// Which route a request to this host belongs to, and whether it is a health check (the
    /// `health_url` of the route's breaker) rather than scraping traffic. `None`: no such page.
    pub fn route(self, path: &str) -> Option<(Route, bool)> {
        const MODELS: &str = "/v1beta/models/";
        match self {
            Host::Espn => path
                .starts_with("/apis/site/v2/sports/")
                .then_some((Route::Espn, false)),
            Host::Spotify => match path {
                "/v1/search" => Some((Route::Spotify, false)),
                "/v1/markets" => Some((Route::Spotify, true)),
                _ => None,
            },
            Host::Musicbrainz => match path {
                "/ws/2/" => Some((Route::Musicbrainz, true)),
                p if p.starts_with("/ws/2/recording/") => Some((Route::Musicbrainz, false)),
                _ => None,
            },
            Host::Lastfm => (path == "/2.0/").then_some((Route::Lastfm, false)),
            Host::GoogleAi => match path.strip_prefix(MODELS)? {
                "gemini-pro:generateContent" => Some((Route::GoogleAiText, false)),
                "gemini-pro-vision:generateContent" => Some((Route::GoogleAiVision, false)),
                "gemini-pro-vision" => Some((Route::GoogleAiVision, true)),
                "imagen-3.0-generate-002:predict" => Some((Route::GoogleAiImagen, false)),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_served_by_its_host_and_named_once() {
        for route in Route::ALL {
            assert_eq!(Route::from_name(route.name()), Some(route));
        }
        assert_eq!(
            Host::GoogleAi.route("/v1beta/models/gemini-pro-vision:generateContent"),
            Some((Route::GoogleAiVision, false))
        );
        assert_eq!(
            Host::GoogleAi.route("/v1beta/models/gemini-pro:generateContent"),
            Some((Route::GoogleAiText, false))
        );
        assert_eq!(
            Host::Spotify.route("/v1/markets"),
            Some((Route::Spotify, true))
        );
        assert_eq!(Host::Musicbrainz.route("/ws/3/"), None);
    }
}
