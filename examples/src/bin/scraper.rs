//! The breakerbox scraper demo: see `--help`, and the README.

use breakerbox_examples::PROFILES;
use breakerbox_examples::demo::{Demo, Live, Settings};
use breakerbox_examples::faults::{DEFAULT_SCRIPT, FaultScript};
use breakerbox_reqwest::BoxConfig;
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A scraper on fake upstreams that fail on a script, protected by breakerbox.
///
/// Starts fake ESPN, Spotify, MusicBrainz, Last.fm and Google AI servers on 127.0.0.1 (reached
/// by their real host names), breaks them on a script, and scrapes them concurrently through
/// one reqwest client with retries, a MusicBrainz rate limit and a circuit breaker per
/// upstream. A status table is redrawn every second (printed every 5 s when the output is not
/// a terminal); /metrics, /health and /breakers are served on a local port while it runs; a
/// summary ends the run. Nothing leaves 127.0.0.1. Ctrl-C ends the run early, with the summary.
#[derive(Debug, Parser)]
#[command(name = "scraper", version)]
struct Args {
    /// How long to scrape: seconds (30) or a duration (45s, 2m).
    #[arg(long, default_value = "30", value_parser = parse_duration)]
    duration: Duration,

    /// The fault script: comma-separated `ROUTE:KIND@FROM-UNTIL` entries (`@FROM-UNTIL` optional), or `none`. Routes:
    /// espn, spotify, musicbrainz, lastfm, google_ai_text, google_ai_vision, google_ai_imagen.
    /// Kinds: down (503), error (500), slow (answers after 5 s, past the 1 s timeout),
    /// ratelimit (503 + Retry-After: 1 when called faster than once a second). Windows are
    /// counted from the start (5s-15s, 5-15, 20s- for "until the end"); without one, the fault
    /// lasts the whole run.
    #[arg(long, default_value = DEFAULT_SCRIPT, conflicts_with = "faults_file")]
    faults: FaultScript,

    /// Read the fault script from a file instead (one entry per line or comma-separated;
    /// lines starting with # are comments).
    #[arg(long, value_name = "PATH")]
    faults_file: Option<PathBuf>,

    /// The breaker box and retry settings (TOML). Default: the built-in profiles, the same as
    /// examples/scraper.toml in the repository.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// The status server's port on 127.0.0.1 (0: any free port; a taken port falls back to a
    /// free one, printed at start).
    #[arg(long, default_value_t = 9464)]
    port: u16,

    /// Send MusicBrainz requests without the 1 request/second limiter: watch its server refuse
    /// them with 503 and Retry-After, and the retries wait as told.
    #[arg(long)]
    no_rate_limit: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let duration = match s.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?,
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string())?,
    };
    if duration.is_zero() {
        return Err("must be above zero".to_owned());
    }
    Ok(duration)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let faults = match &args.faults_file {
        None => args.faults,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| text.parse::<FaultScript>().map_err(|e| e.to_string()))
        {
            Ok(script) => script,
            Err(e) => {
                eprintln!("error: --faults-file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let config = match &args.config {
        Some(path) => BoxConfig::from_toml_file(path),
        None => BoxConfig::from_toml(PROFILES),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            // The error names the file (and the key and line, for a file that is not valid).
            eprintln!("error: --config: {e}");
            return ExitCode::from(2);
        }
    };
    let terminal = std::io::stdout().is_terminal();
    let settings = Settings {
        duration: args.duration,
        faults,
        config,
        port: args.port,
        rate_limit: !args.no_rate_limit,
        live: if terminal {
            Live::Redraw
        } else {
            Live::Print {
                every: Duration::from_secs(5),
            }
        },
        colour: terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let demo = match Demo::start(settings).await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shown = match &args.config {
        Some(path) => path
            .strip_prefix(std::env::current_dir().unwrap_or_default())
            .unwrap_or(path)
            .display()
            .to_string(),
        None => "the built-in profiles (examples/scraper.toml)".to_owned(),
    };
    print!("{}", demo.banner(&shown));
    println!();
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match demo.run(&mut std::io::stdout().lock(), ctrl_c).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
