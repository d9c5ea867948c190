//! RetryWithBackoffLayer: every retry rule, in paused time, alone and composed with the breaker
//! and tower's own layers.

use breakerbox::backoff::Jitter;
use breakerbox::retry::BudgetConfig;
use breakerbox::{BreakerConfig, CircuitOpen, RetryConfig, State};
use breakerbox_tower::retry::{Attempts, Http, Policy};
use breakerbox_tower::{CircuitBreakerLayer, RetryWithBackoffLayer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};

type Request = http::Request<String>;
type Response = http::Response<()>;

/// An upstream that answers from a script (the last answer repeats) and counts its hits.
#[derive(Clone, Default)]
struct Upstream {
    script: Arc<Mutex<VecDeque<Answer>>>,
    hits: Arc<Mutex<Vec<(http::Method, Instant)>>>,
}

#[derive(Clone)]
enum Answer {
    Status(u16),
    StatusWithRetryAfter(u16, String),
    Hang,
}

impl Upstream {
    fn new(script: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            hits: Arc::default(),
        }
    }

    fn hits(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn hit_times(&self) -> Vec<Duration> {
        let hits = self.hits.lock().unwrap();
        hits.windows(2).map(|w| w[1].1 - w[0].1).collect()
    }
}

impl Service<Request> for Upstream {
    type Response = Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.hits
            .lock()
            .unwrap()
            .push((req.method().clone(), Instant::now()));
        let answer = {
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script[0].clone()
            }
        };
        Box::pin(async move {
            match answer {
                Answer::Status(code) => {
                    Ok(http::Response::builder().status(code).body(()).unwrap())
                }
                Answer::StatusWithRetryAfter(code, after) => Ok(http::Response::builder()
                    .status(code)
                    .header("retry-after", after)
                    .body(())
                    .unwrap()),
                // Never answers: only the timeout layer ends the attempt.
                Answer::Hang => std::future::pending().await,
            }
        })
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig::builder()
        .max_retries(3)
        .base_delay(Duration::from_millis(100))
        .multiplier(2.0)
        .max_delay(Duration::from_secs(10))
        .jitter(Jitter::None)
        .max_elapsed(Some(Duration::from_secs(30)))
        .build()
        .unwrap()
}

fn get() -> Request {
    http::Request::get("https://api.example.com/v1/items")
        .body(String::new())
        .unwrap()
}

async fn send<S, R>(svc: &mut S, req: Request) -> Result<R, BoxError>
where
    S: Service<Request, Response = R, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

/// The attempts a response took: 1 unless it carries `Attempts`.
fn attempts<B>(response: &http::Response<B>) -> u32 {
    response
        .extensions()
        .get::<Attempts>()
        .map_or(1, Attempts::count)
}

#[tokio::test(start_paused = true)]
async fn transient_statuses_are_retried_with_exponential_backoff_until_success() {
    let upstream = Upstream::new([
        Answer::Status(503),
        Answer::Status(500),
        Answer::Status(429),
        Answer::Status(200),
    ]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    let response = send(&mut svc, get()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(attempts(&response), 4);
    assert_eq!(
        upstream.hit_times(),
        [
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_return_the_last_response() {
    let upstream = Upstream::new([Answer::Status(502)]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    let response = send(&mut svc, get()).await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(attempts(&response), 4, "1 attempt + max_retries 3");
    assert_eq!(upstream.hits(), 4);
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    for code in [400, 401, 404, 409] {
        let upstream = Upstream::new([Answer::Status(code)]);
        let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
        let response = send(&mut svc, get()).await.unwrap();
        assert_eq!((response.status().as_u16(), attempts(&response)), (code, 1));
        assert_eq!(upstream.hits(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_waited_for_at_least() {
    let upstream = Upstream::new([
        Answer::StatusWithRetryAfter(503, "2".into()),
        Answer::Status(200),
    ]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    assert_eq!(send(&mut svc, get()).await.unwrap().status(), 200);
    assert_eq!(upstream.hit_times(), [Duration::from_secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_honoured() {
    // An HTTP-date is wall-clock with whole seconds: 4 s from now is a wait of 3 to 4 s.
    #[allow(clippy::disallowed_methods)] // the header's own clock
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(4));
    let upstream = Upstream::new([Answer::StatusWithRetryAfter(429, date), Answer::Status(200)]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    assert_eq!(send(&mut svc, get()).await.unwrap().status(), 200);
    let waited = upstream.hit_times()[0];
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_retry_after_falls_back_to_backoff() {
    let upstream = Upstream::new([
        Answer::StatusWithRetryAfter(503, "soon-ish".into()),
        Answer::Status(200),
    ]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    assert_eq!(send(&mut svc, get()).await.unwrap().status(), 200);
    assert_eq!(upstream.hit_times(), [Duration::from_millis(100)]);
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_returns_the_response_without_sleeping() {
    let upstream = Upstream::new([Answer::StatusWithRetryAfter(503, "3600".into())]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    let started = Instant::now();
    let response = send(&mut svc, get()).await.unwrap();
    assert_eq!((response.status().as_u16(), attempts(&response)), (503, 1));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

/// Regression (found by tests/hostile): with a config that allows any wait, a server's
/// `Retry-After: 18446744073709551615` made the deadline overflow `Instant` and panic. The retry
/// now waits (as long as a timer can) instead.
#[tokio::test(start_paused = true)]
async fn an_endless_retry_after_under_an_unbounded_config_waits_without_panicking() {
    let config = RetryConfig::builder()
        .max_delay(Duration::MAX)
        .max_elapsed(None)
        .without_budget()
        .build()
        .unwrap();
    let upstream = Upstream::new([
        Answer::StatusWithRetryAfter(503, u64::MAX.to_string()),
        Answer::Status(200),
    ]);
    let svc = RetryWithBackoffLayer::new(config).layer(upstream.clone());
    let mut call = tokio_test::task::spawn(svc.oneshot(get()));
    tokio_test::assert_pending!(call.poll(), "waiting out the Retry-After");
    tokio::time::advance(Duration::from_secs(86_400 * 365)).await;
    tokio_test::assert_pending!(call.poll(), "a year is not enough");
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_idempotent_requests_are_retried_unless_keyed_or_opted_in() {
    let post = || {
        http::Request::post("https://api.example.com/v1/orders")
            .body("{}".to_string())
            .unwrap()
    };

    let upstream = Upstream::new([Answer::Status(503)]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    assert_eq!(attempts(&send(&mut svc, post()).await.unwrap()), 1);
    assert_eq!(upstream.hits(), 1, "a POST is sent once");

    let upstream = Upstream::new([Answer::Status(503), Answer::Status(201)]);
    let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
    let mut keyed = post();
    keyed
        .headers_mut()
        .insert("idempotency-key", "order-7".parse().unwrap());
    assert_eq!(send(&mut svc, keyed).await.unwrap().status(), 201);
    assert_eq!(upstream.hits(), 2);

    let upstream = Upstream::new([Answer::Status(503), Answer::Status(201)]);
    let opted_in = RetryConfig::builder()
        .retry_non_idempotent(true)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let mut svc = RetryWithBackoffLayer::new(opted_in).layer(upstream.clone());
    assert_eq!(send(&mut svc, post()).await.unwrap().status(), 201);
    for method in [http::Method::GET, http::Method::PUT, http::Method::DELETE] {
        let upstream = Upstream::new([Answer::Status(503), Answer::Status(200)]);
        let mut svc = RetryWithBackoffLayer::new(retry_config()).layer(upstream.clone());
        let mut req = get();
        *req.method_mut() = method.clone();
        assert_eq!(send(&mut svc, req).await.unwrap().status(), 200, "{method}");
        assert_eq!(upstream.hits(), 2);
    }
}

/// HTTP rules, but the body cannot be copied (a stream, say).
#[derive(Clone)]
struct Uncopyable;

impl Policy<Request, Response> for Uncopyable {
    fn is_retryable(&self, req: &Request, config: &RetryConfig) -> bool {
        Policy::<Request, Response>::is_retryable(&Http, req, config)
    }
    fn clone_request(&self, _req: &Request) -> Option<Request> {
        None
    }
    fn outcome(&self, result: Result<&Response, &BoxError>) -> breakerbox::AttemptOutcome {
        Policy::<Request, Response>::outcome(&Http, result)
    }
    fn retry_after(&self, res: &Response) -> Option<Duration> {
        Policy::<Request, Response>::retry_after(&Http, res)
    }
    fn mark(&self, res: &mut Response, attempts: Attempts) {
        Policy::<Request, Response>::mark(&Http, res, attempts)
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_is_sent_exactly_once() {
    let upstream = Upstream::new([Answer::Status(503)]);
    let mut svc = RetryWithBackoffLayer::new(retry_config())
        .policy(Uncopyable)
        .layer(upstream.clone());
    let response = send(&mut svc, get()).await.unwrap();
    assert_eq!((response.status().as_u16(), attempts(&response)), (503, 1));
    assert_eq!(upstream.hits(), 1, "sent, not dropped, and not retried");
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_across_requests() {
    // No ratio, a floor of 1 retry per second over 1 s: one retry in the window.
    let config = RetryConfig::builder()
        .jitter(Jitter::None)
        .budget(BudgetConfig::new(Duration::from_secs(1), 1, 0.0).unwrap())
        .build()
        .unwrap();
    let upstream = Upstream::new([Answer::Status(503)]);
    let mut svc = RetryWithBackoffLayer::new(config).layer(upstream.clone());
    let first = send(&mut svc, get()).await.unwrap();
    assert_eq!(attempts(&first), 2, "the budget's one retry");
    let second = send(&mut svc, get()).await.unwrap();
    assert_eq!(attempts(&second), 1, "no budget left");
    assert_eq!(upstream.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried_and_max_elapsed_stops_them() {
    let config = RetryConfig::builder()
        .max_retries(10)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .max_elapsed(Some(Duration::from_secs(3)))
        .build()
        .unwrap();
    let upstream = Upstream::new([Answer::Hang]);
    let mut svc = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(config))
        .timeout(Duration::from_secs(1))
        .service(upstream.clone());
    let started = Instant::now();
    let err = send(&mut svc, get()).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    // max_elapsed counts from the first failure, at 1 s: waits of 0.1, 0.2 and 0.4 s with
    // 1 s attempts between them end at 3.7 s after it; the next 0.8 s wait would pass 3 s.
    assert_eq!(upstream.hits(), 4);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(1000 + 100 + 1000 + 200 + 1000 + 400 + 1000)
    );
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_never_retried_and_the_caller_gets_the_last_real_answer() {
    let breaker = CircuitBreakerLayer::named(
        "spotify",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(3)
            .build()
            .unwrap(),
    );
    let handle = breaker.breaker().clone();
    let upstream = Upstream::new([Answer::Status(503)]);
    let mut svc = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry_config()))
        .layer(breaker)
        .service(upstream.clone());

    // Attempts 1..3 fail and open the breaker; the 4th attempt is rejected, not retried, and
    // the caller gets the upstream's last answer, marked: the breaker stopped the retries.
    let response = send(&mut svc, get()).await.unwrap();
    assert_eq!(response.status(), 503);
    let marked = response.extensions().get::<Attempts>().copied().unwrap();
    assert_eq!(marked.count(), 3);
    assert!(marked.stopped_by_open_breaker());
    assert_eq!(upstream.hits(), 3);
    assert_eq!(handle.state(), State::Open);

    // Nothing of the next call leaves the client: now the caller gets the rejection.
    let started = Instant::now();
    let err = send(&mut svc, get()).await.unwrap_err();
    let open = err
        .downcast_ref::<CircuitOpen>()
        .expect("the breaker's rejection");
    assert_eq!(open.breaker(), "spotify");
    assert_eq!(started.elapsed(), Duration::ZERO, "fails fast");
    assert_eq!(upstream.hits(), 3, "nothing reached the upstream");
}

#[tokio::test(start_paused = true)]
async fn composes_with_rate_limit_behind_a_buffer_and_concurrency_limit() {
    let breaker = CircuitBreakerLayer::named(
        "musicbrainz",
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let upstream = Upstream::new([Answer::Status(503), Answer::Status(200)]);
    // MusicBrainz asks for 1 request per second.
    let svc = ServiceBuilder::new()
        .layer(RetryWithBackoffLayer::new(retry_config()))
        .buffer(16)
        .rate_limit(1, Duration::from_secs(1))
        .concurrency_limit(4)
        .layer(breaker)
        .timeout(Duration::from_secs(10))
        .service(upstream.clone());
    let handles: Vec<_> = (0..3)
        .map(|_| tokio::spawn(svc.clone().oneshot(get())))
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    // 4 requests (one retried), spaced by the rate limit.
    assert_eq!(upstream.hits(), 4);
    assert!(
        upstream
            .hit_times()
            .iter()
            .all(|gap| *gap >= Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn retries_exhaustion_and_budget_rejections_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let config = RetryConfig::builder()
        .max_retries(2)
        .jitter(Jitter::None)
        .budget(BudgetConfig::new(Duration::from_secs(1), 2, 0.0).unwrap())
        .build()
        .unwrap();
    let layer =
        metrics::with_local_recorder(&recorder, || RetryWithBackoffLayer::named("lastfm", config));
    let upstream = Upstream::new([Answer::Status(503)]);
    let mut svc = layer.layer(upstream.clone());
    send(&mut svc, get()).await.unwrap(); // 2 retries, then exhausted
    send(&mut svc, get()).await.unwrap(); // the budget's 2 retries are spent

    let counters: std::collections::HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                Some((format!("{}{{{}}}", key.key().name(), labels.join(",")), n))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        counters["retry_attempts_total{breaker=lastfm,reason=status_5xx}"],
        2
    );
    assert_eq!(counters["retry_exhausted_total{breaker=lastfm}"], 1);
    assert_eq!(counters["retry_budget_rejected_total{breaker=lastfm}"], 1);
    assert_eq!(upstream.hits(), 4);
    assert!(
        counters.keys().all(|key| key.contains("breaker=lastfm")),
        "named: no series under another target: {counters:?}"
    );
}
