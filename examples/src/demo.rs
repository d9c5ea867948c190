//! The whole demo: fake upstreams, the client, the scraper, the status server, the live table
//! and the summary, run for a while.

use crate::client::{self, ATTEMPT_TIMEOUT, ScraperClient};
use crate::faults::FaultScript;
use crate::routes::{Host, Route};
use crate::scraper::{JOBS, Scraper};
use crate::status::{self, StatusServer};
use crate::summary::{self, Summary, Transition, UpstreamSummary};
use crate::table::{self, Line};
use crate::timeline::Timeline;
use crate::upstreams::{Hit, Upstreams};
use breakerbox_reqwest::{BoxConfig, BreakerBox};
use metrics_exporter_prometheus::PrometheusHandle;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How the live table is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Redrawn in place every second (a terminal): transitions scroll above it.
    Redraw,
    /// Transitions as they happen and the table every `every` (a log or a pipe).
    Print {
        /// How often the table is printed.
        every: Duration,
    },
    /// Nothing until the summary.
    Off,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long the scraper runs.
    pub duration: Duration,
    /// What the fake upstreams do when.
    pub faults: FaultScript,
    /// The breakers and retry settings (`examples/scraper.toml`).
    pub config: BoxConfig,
    /// The status server's port: 0 for any free one; a taken port falls back to a free one.
    pub port: u16,
    /// Whether MusicBrainz requests go through the rate limit.
    pub rate_limit: bool,
    /// How the live table is shown.
    pub live: Live,
    /// ANSI colours in the table.
    pub colour: bool,
}

impl Settings {
    /// The demo as the README runs it: 30 s, the default fault script, the rate limit on, the
    /// status server on port 9464, the table printed every 5 s without colours.
    pub fn new(config: BoxConfig) -> Self {
        Self {
            duration: Duration::from_secs(30),
            faults: FaultScript::demo(),
            config,
            port: 9464,
            rate_limit: true,
            live: Live::Print {
                every: Duration::from_secs(5),
            },
            colour: false,
        }
    }
}

/// The demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The Prometheus recorder could not be installed.
    #[error("installing the Prometheus recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// A loopback port could not be bound.
    #[error("binding a loopback port: {0}")]
    Io(#[from] io::Error),
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] client::BuildError),
}

/// A started demo: upstreams and the status server are up; [`run`](Self::run) scrapes.
#[derive(Debug)]
pub struct Demo {
    settings: Settings,
    timeline: Timeline,
    upstreams: Upstreams,
    client: ScraperClient,
    status: StatusServer,
    got_port: bool,
    metrics: PrometheusHandle,
    transitions: Arc<Mutex<Vec<Transition>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Demo {
    /// Installs the metrics recorder, starts the fake upstreams and the status server, and
    /// builds the client. The run's clock starts now.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let metrics = status::install_recorder()?;
        let timeline = Timeline::start();
        let upstreams = Upstreams::start(settings.faults.clone(), timeline).await?;
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let log = transitions.clone();
        let client = client::build(
            &settings.config,
            &upstreams,
            settings.rate_limit,
            move |event| {
                lock(&log).push(Transition {
                    breaker: event.breaker.to_string(),
                    from: event.from,
                    to: event.to,
                    reason: event.reason.to_string(),
                    at: timeline.elapsed(),
                })
            },
        )?;
        // Every route's breaker exists from the start, in table order, so the table, /breakers
        // and /metrics list them all before their first call.
        for route in Route::ALL {
            let _ = client.breakers.named(route.name());
        }
        let (listener, got_port) = status::bind(settings.port).await?;
        let status = StatusServer::start(listener, client.breakers.clone(), metrics.clone());
        Ok(Self {
            settings,
            timeline,
            upstreams,
            client,
            status,
            got_port,
            metrics,
            transitions,
        })
    }

    /// The run's clock.
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// The status server's address.
    pub fn status_addr(&self) -> SocketAddr {
        self.status.addr()
    }

    /// The breakers.
    pub fn breakers(&self) -> &BreakerBox {
        &self.client.breakers
    }

    /// Every request the fake upstreams received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.upstreams.hits()
    }

    /// Every breaker transition so far.
    pub fn transitions(&self) -> Vec<Transition> {
        lock(&self.transitions).clone()
    }

    /// What the demo is about to do, where everything is, and what to try.
    pub fn banner(&self, config_path: &str) -> String {
        let s = &self.settings;
        let addr = self.status_addr();
        let line = |label: &str, text: &str| summary::wrap(&format!("  {label}"), 14, text, 80);
        let mut b = format!(
            "breakerbox scraper demo: {} workers scrape {} upstreams for {}s through one reqwest client\n",
            JOBS.len(),
            Route::ALL.len(),
            s.duration.as_secs_f64()
        );
        b += &line(
            "middleware",
            &format!(
                "retry -> rate limit (musicbrainz: {}) -> circuit breakers -> {}s timeout",
                if s.rate_limit { "1 request/s" } else { "off" },
                ATTEMPT_TIMEOUT.as_secs()
            ),
        );
        b += &line(
            "breakers",
            &format!("{config_path} (and its [retry] table)"),
        );
        let hosts: Vec<String> = Host::ALL
            .iter()
            .map(|h| format!("{h}:{}", self.upstreams.addr(*h).port()))
            .collect();
        b += &line(
            "upstreams",
            &format!("fake, on 127.0.0.1: {}", hosts.join(", ")),
        );
        b += &line("faults", &s.faults.to_string());
        let mut status = format!("http://{addr}  (/metrics, /health, /breakers)");
        if !self.got_port {
            let _ = write!(status, "; port {} was taken", s.port);
        }
        b += &line("status", &status);
        b += &line("try", &format!("curl -s http://{addr}/health"));
        b += &line(
            "table",
            "calls reached the upstream, failed of them, rejected at once by an open breaker, \
             retries beyond first attempts",
        );
        b
    }

    /// Scrapes for the configured duration (or until `stop` resolves), showing the live table
    /// on `out`, then prints and returns the summary.
    pub async fn run<W: Write>(
        &self,
        out: &mut W,
        stop: impl Future<Output = ()>,
    ) -> io::Result<Summary> {
        let scraper = Scraper::start(&self.client, &JOBS);
        let started = self.timeline.elapsed();
        let deadline = tokio::time::sleep_until(self.timeline.at(started + self.settings.duration));
        let mut tick = tokio::time::interval_at(
            self.timeline.at(started + Duration::from_secs(1)),
            Duration::from_secs(1),
        );
        tokio::pin!(stop, deadline);
        let mut screen = Screen::default();
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = &mut deadline => break,
                _ = tick.tick() => {
                    self.metrics.run_upkeep();
                    self.draw(out, &mut screen, false)?;
                }
            }
        }
        scraper.stop().await;
        let elapsed = self.timeline.elapsed() - started;
        self.draw(out, &mut screen, true)?;
        let summary = self.summary(elapsed);
        writeln!(out)?;
        write!(out, "{summary}")?;
        out.flush()?;
        Ok(summary)
    }

    fn lines(&self) -> Vec<Line> {
        self.client
            .breakers
            .breakers()
            .iter()
            .map(|b| Line {
                snapshot: b.snapshot(),
                next_probe: b.next_probe_in(),
            })
            .collect()
    }

    fn status_lines(&self) -> String {
        let at = self.timeline.elapsed();
        let faults: Vec<String> = self
            .settings
            .faults
            .active_at(at)
            .map(|f| format!("{} {}", f.route, f.kind))
            .collect();
        let health = self.client.breakers.health();
        format!(
            "{:>3}s of {}s   health: {}\n       faults now: {}\n",
            at.as_secs(),
            self.settings.duration.as_secs(),
            if health.is_healthy() {
                "healthy".to_owned()
            } else {
                format!("degraded ({})", health.failing.join(", "))
            },
            if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join(", ")
            },
        )
    }

    fn draw<W: Write>(&self, out: &mut W, screen: &mut Screen, last: bool) -> io::Result<()> {
        let transitions = self.transitions();
        let mut text = String::new();
        for t in &transitions[screen.events..] {
            let _ = writeln!(
                text,
                "{:>6.1}s  {:<18} {} -> {}  ({})",
                t.at.as_secs_f64(),
                t.breaker,
                t.from,
                t.to,
                t.reason
            );
        }
        screen.events = transitions.len();
        let table = || {
            format!(
                "{}{}",
                self.status_lines(),
                table::render(&self.lines(), &self.client.ledger, self.settings.colour)
            )
        };
        match self.settings.live {
            Live::Redraw => {
                if screen.lines > 0 {
                    // Back to the table's first line, and clear from there down.
                    write!(out, "\x1b[{}A\x1b[J", screen.lines)?;
                }
                let table = table();
                screen.lines = table.lines().count();
                // The new transitions stay above the table; the table is drawn with line
                // wrapping off (DECAWM), so each of its lines takes one row however narrow the
                // terminal, and the next redraw goes back up exactly that many rows.
                write!(out, "{text}\x1b[?7l{table}\x1b[?7h")?;
            }
            Live::Print { every } => {
                write!(out, "{text}")?;
                let at = self.timeline.elapsed();
                let due = at.as_secs() / every.as_secs().max(1);
                if last || due > screen.printed {
                    screen.printed = due;
                    write!(out, "\n{}", table())?;
                }
            }
            Live::Off => {}
        }
        out.flush()
    }

    /// The summary of the run so far.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let hits = self.upstreams.hits();
        let transitions = self.transitions();
        let snapshot = self.client.breakers.snapshot();
        let end = self.timeline.elapsed();
        let upstreams: Vec<UpstreamSummary> = Route::ALL
            .iter()
            .map(|&route| {
                let b = snapshot.breakers.iter().find(|b| b.name == route.name());
                UpstreamSummary::new(
                    route,
                    self.client.ledger.tally(route),
                    b.map_or(breakerbox_reqwest::State::Closed, |b| b.state),
                    b.and_then(|b| b.consecutive_failures_threshold),
                    &transitions,
                    &hits,
                    end,
                )
            })
            .collect();
        let limited = Host::Musicbrainz.name();
        let rate_limited = self
            .settings
            .faults
            .faults()
            .iter()
            .any(|f| f.route == Route::Musicbrainz);
        let rate_limit = (self.settings.rate_limit || rate_limited).then(|| {
            summary::rate_limit(
                Route::Musicbrainz,
                self.client.rate_limit.interval(limited),
                self.client.rate_limit.waited(limited).unwrap_or_default(),
                self.client.rate_limit.held(limited).unwrap_or_default(),
                &hits,
            )
        });
        Summary {
            elapsed,
            isolation: summary::isolation(&upstreams, &hits, end),
            upstreams,
            transitions,
            rate_limit,
        }
    }
}

/// What is on the screen: how many transitions were printed, how tall the table is, and which
/// period's table was printed last.
#[derive(Debug, Default)]
struct Screen {
    events: usize,
    lines: usize,
    printed: u64,
}
