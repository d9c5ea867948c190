//! A call ends when its response body does: body errors fail, slow bodies are slow, a HalfOpen
//! trial holds its slot until its body ends, and failing statuses are recorded at the head.
//! In-memory services with scripted bodies, in paused time.

use breakerbox_tower::classify::ResponseBody;
use breakerbox_tower::{BreakerConfig, CircuitBreakerLayer, State};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Sleep;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const SEC: Duration = Duration::from_secs(1);

/// A body that yields its chunks after their delays (on tokio's clock), an error where the
/// script says so, and ends after the last.
struct Scripted {
    steps: VecDeque<(Duration, Result<&'static [u8], std::io::ErrorKind>)>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Scripted {
    fn new(
        steps: impl IntoIterator<Item = (Duration, Result<&'static [u8], std::io::ErrorKind>)>,
    ) -> Self {
        Self {
            steps: steps.into_iter().collect(),
            sleep: None,
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let Some(&(delay, step)) = self.steps.front() else {
            return Poll::Ready(None);
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.steps.pop_front();
        Poll::Ready(Some(match step {
            Ok(bytes) => Ok(Frame::data(Bytes::from_static(bytes))),
            Err(kind) => Err(kind.into()),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty()
    }
}

type Guarded = http::Response<ResponseBody<Scripted>>;

/// A breaker layer over a service answering `status` with a body made by `body`.
fn service(
    layer: CircuitBreakerLayer,
    status: u16,
    body: impl Fn() -> Scripted + Clone + Send + 'static,
) -> impl Service<(), Response = Guarded, Error = BoxError> + Clone {
    layer.layer(service_fn(move |()| {
        let body = body.clone();
        async move {
            let mut response = http::Response::new(body());
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, BoxError>(response)
        }
    }))
}

fn one_failure_opens() -> BreakerConfig {
    BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(60 * SEC)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_200_whose_body_breaks_off_is_a_failure() {
    let layer = CircuitBreakerLayer::named("espn", one_failure_opens());
    let breaker = layer.breaker().clone();
    let svc = service(layer, 200, || {
        Scripted::new([
            (Duration::ZERO, Ok(&b"{\"events\":"[..])),
            (SEC, Err(std::io::ErrorKind::ConnectionReset)),
        ])
    });
    let response = svc.oneshot(()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the head is not the whole call"
    );
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(
        breaker.state(),
        State::Open,
        "the body's error is the call's"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_read_to_its_end_or_dropped_early_gives_the_status_outcome() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(2)
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::named("lastfm", config);
    let breaker = layer.breaker().clone();
    let mut failing = service(layer.clone(), 500, || Scripted::new([]));
    let svc = service(layer, 200, || {
        Scripted::new([(SEC, Ok(&b"a"[..])), (SEC, Ok(&b"b"[..]))])
    });
    // A failure, then a success read to its end: the run of failures is over.
    drop(failing.ready().await.unwrap().call(()).await.unwrap());
    let body = svc.clone().oneshot(()).await.unwrap().into_body();
    assert!(body.is_pending());
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"ab");
    drop(failing.ready().await.unwrap().call(()).await.unwrap());
    assert_eq!(breaker.state(), State::Closed);
    // A success dropped before its end counts as the success its status says.
    drop(svc.clone().oneshot(()).await.unwrap());
    drop(failing.ready().await.unwrap().call(()).await.unwrap());
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_status_is_recorded_when_its_head_arrives() {
    let layer = CircuitBreakerLayer::named("spotify", one_failure_opens());
    let breaker = layer.breaker().clone();
    let svc = service(layer, 503, || Scripted::new([(60 * SEC, Ok(&b"down"[..]))]));
    let response = svc.oneshot(()).await.unwrap();
    assert_eq!(breaker.state(), State::Open, "no need to read a 503's body");
    assert!(!response.body().is_pending());
}

#[tokio::test(start_paused = true)]
async fn the_slow_call_clock_runs_to_the_end_of_the_body() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .slow_call_rate(1.0, 2 * SEC)
        .minimum_calls(2)
        .count_window(2)
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::named("google_ai_imagen", config);
    let breaker = layer.breaker().clone();
    // The head comes at once; the image takes 3 s to arrive.
    let svc = service(layer, 200, || Scripted::new([(3 * SEC, Ok(&b"png"[..]))]));
    for _ in 0..2 {
        let body = svc.clone().oneshot(()).await.unwrap().into_body();
        body.collect().await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open, "two calls of 3 s are slow");
}

#[tokio::test(start_paused = true)]
async fn a_half_open_trial_holds_its_slot_until_its_body_ends() {
    let layer = CircuitBreakerLayer::named("musicbrainz", one_failure_opens());
    let breaker = layer.breaker().clone();
    let mut failing = service(layer.clone(), 503, || Scripted::new([]));
    drop(failing.ready().await.unwrap().call(()).await.unwrap());
    tokio::time::advance(60 * SEC).await;

    let mut trial_svc = service(layer.clone(), 200, || {
        Scripted::new([(5 * SEC, Ok(&b"recording"[..]))])
    });
    let trial = trial_svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    // Its head has arrived, but the trial is not over: another caller is turned away.
    let mut other = service(layer, 200, || Scripted::new([]));
    let err = other.ready().await.unwrap().call(()).await.unwrap_err();
    assert!(err.is::<breakerbox_tower::CircuitOpen>(), "{err}");
    trial.into_body().collect().await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the trial ended with its body"
    );
}

#[tokio::test(start_paused = true)]
async fn unnamed_breakers_never_share_a_name() {
    let a = CircuitBreakerLayer::new(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let b = CircuitBreakerLayer::new(
        BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .build()
            .unwrap(),
    );
    assert_ne!(a.breaker().name(), b.breaker().name());
    assert!(a.breaker().name().starts_with("circuit_breaker_"));
    assert!(b.breaker().name().starts_with("circuit_breaker_"));
}
