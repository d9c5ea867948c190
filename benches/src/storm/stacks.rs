//! The client stacks, each built as its documentation shows, with its defaults.
//!
//! Every reqwest stack is over a `reqwest::Client` with a per-attempt timeout of
//! [`ATTEMPT_TIMEOUT`] and no proxy; tower's is over hyper-util's client with tower's `Timeout`
//! (see [`tower_stack`]). The breakerbox stacks all come from one function,
//! [`breakerbox_client`], given a `BoxConfig`, so that the bench measures whatever the
//! project's defaults are when it runs.

use super::load::Outcome;
use super::tower_stack::{self, TowerClient};
use super::upstream::TAG;
use breakerbox::{BoxConfig, InvalidConfig};
use breakerbox_reqwest::{CircuitBreakerMiddleware, RetryMiddleware, is_circuit_open};
use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use std::net::SocketAddr;
use std::time::Duration;

/// Every attempt's timeout, set on the client.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// The profile file of the scraper example, from the workspace root.
pub const SCRAPER_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scraper.toml");

/// A profile of `examples/scraper.toml`, reached under its real host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `api.spotify.com`: 10 failures, 120 s open, 2 successes to close, probes every 5 s.
    Spotify,
    /// `musicbrainz.org`: 3 failures, 60 s open, 2 successes to close, probes every 15 s.
    Musicbrainz,
    /// `*.espn.com` (as `site.api.espn.com`): the file's defaults, 5 failures, 60 s open.
    Espn,
}

impl Profile {
    /// The host name the client asks for; `resolve` sends it to the upstream.
    pub fn host(self) -> &'static str {
        match self {
            Profile::Spotify => "api.spotify.com",
            Profile::Musicbrainz => "musicbrainz.org",
            Profile::Espn => "site.api.espn.com",
        }
    }
}

/// Which stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bare reqwest: the reference.
    Bare,
    /// reqwest-retry's `RetryTransientMiddleware`, `ExponentialBackoff` with 3 retries.
    ReqwestRetry,
    /// tower's `Retry` with a `TpsBudget`, over hyper-util's client.
    TowerRetry,
    /// breakerbox's `RetryMiddleware` with `RetryConfig::default()`.
    BreakerboxRetry,
    /// breakerbox's retry, then its breaker, from `BoxConfig::default()`: the default stack.
    BreakerboxDefault,
    /// breakerbox's retry and breaker from `examples/scraper.toml`, under a profiled host.
    Scraper(Profile),
}

impl Kind {
    /// Every stack, in the report's order.
    pub const ALL: [Kind; 8] = [
        Kind::Bare,
        Kind::ReqwestRetry,
        Kind::TowerRetry,
        Kind::BreakerboxRetry,
        Kind::BreakerboxDefault,
        Kind::Scraper(Profile::Spotify),
        Kind::Scraper(Profile::Musicbrainz),
        Kind::Scraper(Profile::Espn),
    ];

    /// Its name in the tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bare => "reqwest (bare)",
            Kind::ReqwestRetry => "reqwest-retry",
            Kind::TowerRetry => "tower Retry + TpsBudget",
            Kind::BreakerboxRetry => "breakerbox retry",
            Kind::BreakerboxDefault => "breakerbox retry + breaker (defaults)",
            Kind::Scraper(Profile::Spotify) => "scraper.toml spotify",
            Kind::Scraper(Profile::Musicbrainz) => "scraper.toml musicbrainz",
            Kind::Scraper(Profile::Espn) => "scraper.toml espn",
        }
    }

    /// Whether it is one of the stacks users would pick instead of breakerbox.
    pub fn is_peer(self) -> bool {
        matches!(self, Kind::Bare | Kind::ReqwestRetry | Kind::TowerRetry)
    }
}

enum Client {
    Reqwest(ClientWithMiddleware),
    // Boxed: tower's `Retry` over hyper-util's client is much larger than a reqwest client.
    Tower(Box<TowerClient>),
}

/// A client stack pointed at one upstream.
pub struct Stack {
    kind: Kind,
    client: Client,
    url: String,
    uri: http::Uri,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A stack could not be built.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

impl Stack {
    /// The `kind` stack against the upstream at `addr`; `scraper` is `examples/scraper.toml`.
    pub fn build(kind: Kind, addr: SocketAddr, scraper: &BoxConfig) -> Result<Self, BuildError> {
        let plain = || {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(ATTEMPT_TIMEOUT)
        };
        let mut url = format!("http://{addr}/v1/search?q=storm");
        let client = match kind {
            Kind::Bare => {
                Client::Reqwest(reqwest_middleware::ClientBuilder::new(plain().build()?).build())
            }
            Kind::ReqwestRetry => Client::Reqwest(
                reqwest_middleware::ClientBuilder::new(plain().build()?)
                    .with(RetryTransientMiddleware::new_with_policy(
                        ExponentialBackoff::builder().build_with_max_retries(3),
                    ))
                    .build(),
            ),
            Kind::TowerRetry => Client::Tower(Box::new(tower_stack::client(ATTEMPT_TIMEOUT))),
            Kind::BreakerboxRetry => {
                Client::Reqwest(breakerbox_client(BoxConfig::default(), false, plain)?)
            }
            Kind::BreakerboxDefault => {
                Client::Reqwest(breakerbox_client(BoxConfig::default(), true, plain)?)
            }
            Kind::Scraper(profile) => {
                let host = profile.host();
                url = format!("http://{host}:{}/v1/search?q=storm", addr.port());
                let resolved = || plain().resolve(host, addr);
                Client::Reqwest(breakerbox_client(scraper.clone(), true, resolved)?)
            }
        };
        let uri = url.parse()?;
        Ok(Self {
            kind,
            client,
            url,
            uri,
        })
    }

    /// Which stack it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// One GET, tagged with its issue slot, its body read.
    pub async fn get(&self, issued: usize) -> Outcome {
        let client = match &self.client {
            Client::Tower(client) => return tower_stack::get(client, &self.uri, issued).await,
            Client::Reqwest(client) => client,
        };
        match client.get(&self.url).header(TAG, issued).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            },
            Ok(_) => Outcome::Failed,
            Err(err) if is_circuit_open(&err) => Outcome::Rejected,
            Err(_) => Outcome::Failed,
        }
    }
}

/// breakerbox's reqwest stack from `config`, as its docs put it together: `RetryMiddleware`
/// with the config's `[retry]` table (`RetryConfig::default()` without one), then, with
/// `breaker`, `CircuitBreakerMiddleware` over the config, over clients from `http`.
///
/// When the config's rules have health checks, the breaker runs them with a plain client from
/// `http` (which resolves the profiled host names to the upstream), their `https://` URLs
/// turned into `http://`: the upstream speaks plain HTTP on loopback.
pub fn breakerbox_client(
    config: BoxConfig,
    breaker: bool,
    http: impl Fn() -> reqwest::ClientBuilder,
) -> Result<ClientWithMiddleware, BuildError> {
    let retry = RetryMiddleware::new(config.retry().cloned().unwrap_or_default());
    let builder = reqwest_middleware::ClientBuilder::new(http().build()?).with(retry);
    if !breaker {
        return Ok(builder.build());
    }
    let middleware = if config.rules().iter().any(|r| r.health_check().is_some()) {
        CircuitBreakerMiddleware::new(plain_http_health_checks(&config)?)
            .health_checks(http().build()?)
    } else {
        CircuitBreakerMiddleware::new(config)
    };
    Ok(builder.with(middleware).build())
}

/// `config` with every rule's `https://` health-check URL made `http://`, nothing else changed.
fn plain_http_health_checks(config: &BoxConfig) -> Result<BoxConfig, InvalidConfig> {
    let mut builder = BoxConfig::builder()
        .defaults(config.defaults().clone())
        .max_breakers(config.max_breakers())
        .overflow(config.overflow());
    if let Some(retry) = config.retry() {
        builder = builder.retry(retry.clone());
    }
    for rule in config.rules() {
        let plain = rule
            .health_check()
            .and_then(|url| url.strip_prefix("https://"))
            .map(|rest| format!("http://{rest}"));
        builder = builder.rule(match plain {
            Some(url) => rule.clone().health_url(url),
            None => rule.clone(),
        });
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scraper_profiles_keep_everything_but_the_scheme() {
        let config = BoxConfig::from_toml_file(SCRAPER_TOML).expect("examples/scraper.toml");
        let plain = plain_http_health_checks(&config).expect("still valid");
        assert_eq!(plain.retry(), config.retry());
        assert_eq!(plain.defaults(), config.defaults());
        assert_eq!(plain.rules().len(), config.rules().len());
        let spotify = plain
            .rules()
            .iter()
            .find(|r| r.name() == "spotify")
            .expect("spotify");
        assert_eq!(
            spotify.health_check(),
            Some("http://api.spotify.com/v1/markets")
        );
    }

    #[test]
    fn each_profiled_host_gets_its_rule() {
        let config = BoxConfig::from_toml_file(SCRAPER_TOML).expect("examples/scraper.toml");
        let breakers = breakerbox::BreakerBox::builder(config).build();
        for (profile, rule) in [
            (Profile::Spotify, "spotify"),
            (Profile::Musicbrainz, "musicbrainz"),
            (Profile::Espn, "espn"),
        ] {
            let target = breakerbox::Target::new("http", profile.host(), 8080, "/v1/search");
            assert_eq!(
                breakers.with_breaker(&target, |b| b.name().to_owned()),
                rule
            );
        }
    }
}
