//! The breakerbox scraper demo, as a library: the `scraper` binary is a thin command line over
//! [`demo::Demo`], so tests run the very same scenario (in tokio's paused time).
//!
//! The demo starts fake upstreams on 127.0.0.1 for ESPN, Spotify, MusicBrainz, Last.fm and
//! Google AI ([`upstreams`]), reached by their real host names through
//! `reqwest::ClientBuilder::resolve`; runs a [fault script](faults) against them; scrapes them
//! concurrently ([`scraper`]) through one reqwest-middleware client ([`client`]): breakerbox's
//! retry, a MusicBrainz rate limit on governor ([`rate_limit`]), breakerbox's circuit breakers
//! from `examples/scraper.toml`, and a timeout; redraws a [status table](table) every second;
//! serves `/metrics`, `/health` and `/breakers` ([`status`]); and ends with a [`summary`].
//!
//! ```no_run
//! use breakerbox_reqwest::BoxConfig;
//! use breakerbox_examples::demo::{Demo, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = BoxConfig::from_toml(breakerbox_examples::PROFILES)?;
//! let demo = Demo::start(Settings::new(config)).await?;
//! print!("{}", demo.banner("the built-in profiles"));
//! let ctrl_c = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! let summary = demo.run(&mut std::io::stdout(), ctrl_c).await?;
//! assert!(summary.upstreams.iter().all(|u| u.tally.requests > 0));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod demo;
pub mod faults;
pub mod ledger;
pub mod rate_limit;
pub mod routes;
pub mod scraper;
pub mod status;
pub mod summary;
pub mod table;
pub mod timeline;
pub mod upstreams;

/// The field's profiles (`examples/scraper.toml`), built into the demo so that it runs from any
/// directory: ESPN, Spotify, MusicBrainz, Last.fm, Beatport, Discogs and Google AI's text,
/// vision and image generation, with the retry settings.
pub const PROFILES: &str = include_str!("../scraper.toml");

// The repository README's examples, compiled and run with this package's tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
