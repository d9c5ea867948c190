//! The upstream: a hyper HTTP/1.1 server on 127.0.0.1 with a fixed capacity, playing a
//! [`Scenario`]'s script on tokio's clock, counting every attempt it receives.
//!
//! Capacity is a token bucket refilled at the phase's rate (holding at most 100 ms of it).
//! Beyond it the upstream answers 503 at once, or, with [`Overload::Queue`], makes the request
//! wait in a FIFO served at that rate. The queue serves a request even when its caller has
//! already given up (the server cannot know): that work is counted as abandoned. Outages and
//! random failures (a seeded RNG, one draw per attempt in arrival order) answer 503 at once.
//! No response carries `Retry-After`.

use super::script::{Overload, Scenario};
use super::{Series, slot_of};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The request header carrying the slot its request was issued in, so that every attempt
/// (retries included) is counted against the request it belongs to.
pub const TAG: &str = "x-storm-slot";

/// How much capacity the bucket holds: 100 ms of it.
const BURST: f64 = 0.1;

/// What the upstream counted, per slot of the run.
#[derive(Debug)]
pub struct UpstreamCounts {
    /// Every attempt, by the slot it arrived in.
    pub received: Series,
    /// Attempts answered 200, by the slot they were answered in.
    pub served: Series,
    /// Attempts answered 503 (outage, random failure, over capacity, queue full), by arrival.
    pub refused: Series,
    /// Queued attempts served after their caller had gone, by the slot they were served in.
    pub abandoned: Series,
    /// Every tagged attempt, by the slot its request was issued in.
    pub by_issue: Series,
    /// Attempts without the tag (health checks), by arrival.
    pub untagged: Series,
}

impl UpstreamCounts {
    fn new(slots: usize) -> Self {
        Self {
            received: Series::new(slots),
            served: Series::new(slots),
            refused: Series::new(slots),
            abandoned: Series::new(slots),
            by_issue: Series::new(slots),
            untagged: Series::new(slots),
        }
    }
}

/// A running upstream; dropping it stops accepting connections and serving its queue.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    counts: Arc<UpstreamCounts>,
    tasks: Vec<JoinHandle<()>>,
}

impl Upstream {
    /// Starts an upstream playing `scenario` from `start`, counting over `slots` slots.
    pub async fn start(
        scenario: Arc<Scenario>,
        start: Instant,
        slots: usize,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(UpstreamCounts::new(slots));
        let (queue, waiting) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            rng: Mutex::new(fastrand::Rng::with_seed(scenario.seed)),
            bucket: Mutex::new(Bucket::full(scenario.phase_at(Duration::ZERO).capacity)),
            scenario,
            start,
            counts: counts.clone(),
            queue,
            queued: AtomicUsize::new(0),
        });
        let mut tasks = vec![tokio::spawn(serve_queue(state.clone(), waiting))];
        tasks.push(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
        Ok(Self {
            addr,
            counts,
            tasks,
        })
    }

    /// Its address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it counted so far.
    pub fn counts(&self) -> &UpstreamCounts {
        &self.counts
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct State {
    scenario: Arc<Scenario>,
    start: Instant,
    counts: Arc<UpstreamCounts>,
    rng: Mutex<fastrand::Rng>,
    bucket: Mutex<Bucket>,
    queue: mpsc::UnboundedSender<oneshot::Sender<()>>,
    queued: AtomicUsize,
}

impl State {
    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

type Answer = http::Response<Full<Bytes>>;

fn ok() -> Answer {
    http::Response::new(Full::new(Bytes::from_static(br#"{"tracks":{"items":[]}}"#)))
}

fn unavailable() -> Answer {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response
}

async fn handle(state: Arc<State>, req: http::Request<Incoming>) -> Result<Answer, Infallible> {
    let elapsed = state.elapsed();
    let slot = slot_of(elapsed);
    let counts = &state.counts;
    counts.received.add(slot);
    let tag = req
        .headers()
        .get(TAG)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    match tag {
        Some(issued) => counts.by_issue.add(issued),
        None => counts.untagged.add(slot),
    }
    let phase = state.scenario.phase_at(elapsed);
    let unlucky = phase.failure > 0.0 && lock(&state.rng).f64() < phase.failure;
    if phase.outage || unlucky {
        counts.refused.add(slot);
        return Ok(unavailable());
    }
    match state.scenario.overload {
        Overload::Reject => {
            if lock(&state.bucket).try_take(Instant::now(), phase.capacity) {
                counts.served.add(slot);
                Ok(ok())
            } else {
                counts.refused.add(slot);
                Ok(unavailable())
            }
        }
        Overload::Queue { max_queued } => {
            if state.queued.fetch_add(1, Ordering::Relaxed) >= max_queued {
                state.queued.fetch_sub(1, Ordering::Relaxed);
                counts.refused.add(slot);
                return Ok(unavailable());
            }
            let (turn, wait) = oneshot::channel();
            if state.queue.send(turn).is_err() {
                return Ok(unavailable()); // shutting down
            }
            match wait.await {
                Ok(()) => {
                    counts.served.add(slot_of(state.elapsed()));
                    Ok(ok())
                }
                Err(_) => Ok(unavailable()), // shutting down
            }
        }
    }
}

/// Serves the queue in order, one request per token of the capacity in force.
async fn serve_queue(state: Arc<State>, mut waiting: mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
    while let Some(turn) = waiting.recv().await {
        loop {
            let capacity = state.scenario.phase_at(state.elapsed()).capacity;
            let wait = {
                let mut bucket = lock(&state.bucket);
                if bucket.try_take(Instant::now(), capacity) {
                    break;
                }
                bucket.until_one(capacity)
            };
            tokio::time::sleep(wait).await;
        }
        state.queued.fetch_sub(1, Ordering::Relaxed);
        if turn.send(()).is_err() {
            state.counts.abandoned.add(slot_of(state.elapsed()));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A token bucket refilled at the capacity in force, holding at most [`BURST`] seconds of it.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    fn full(capacity: f64) -> Self {
        Self {
            tokens: burst(capacity),
            last: None,
        }
    }

    fn refill(&mut self, now: Instant, capacity: f64) {
        let gained = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64() * capacity
        });
        self.tokens = (self.tokens + gained).min(burst(capacity));
        self.last = Some(now);
    }

    fn try_take(&mut self, now: Instant, capacity: f64) -> bool {
        self.refill(now, capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the bucket holds one token.
    fn until_one(&self, capacity: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / capacity.max(0.001)).max(0.0005))
    }
}

fn burst(capacity: f64) -> f64 {
    (capacity * BURST).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_serves_its_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(150.0);
        let mut served = 0;
        // Offered 1,000/s for 2 s, one request per millisecond.
        for ms in 0..2_000 {
            if bucket.try_take(t0 + Duration::from_millis(ms), 150.0) {
                served += 1;
            }
        }
        assert!((300..=316).contains(&served), "{served}");
        assert!(bucket.until_one(150.0) <= Duration::from_millis(7));
    }
}
