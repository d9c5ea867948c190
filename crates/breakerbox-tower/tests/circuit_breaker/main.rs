//! CircuitBreakerLayer and KeyedCircuitBreakerLayer against tower-test mocks, in paused time.

use breakerbox::{BoxConfig, BreakerConfig, CircuitOpen, State};
use breakerbox_tower::classify::{OkIsSuccess, ResponseBody};
use breakerbox_tower::{CircuitBreakerLayer, KeyedCircuitBreakerLayer, Probe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_test::{assert_pending, assert_ready_ok};
use tower::BoxError;
use tower::Service as _;
use tower_test::mock;

type Response = http::Response<()>;

fn status(code: u16) -> Response {
    http::Response::builder().status(code).body(()).unwrap()
}

fn config(failures: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(failures)
        .open_duration(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn open_error(err: BoxError) -> CircuitOpen {
    match err.downcast::<CircuitOpen>() {
        Ok(open) => *open,
        Err(other) => panic!("expected CircuitOpen, got {other}"),
    }
}

/// What the breaker layers answer for the mocks' responses: the body wrapped, so that the call
/// ends when the body does (dropping the response ends it).
type Guarded = http::Response<ResponseBody<()>>;

/// One call through the mock: the upstream answers `answer`.
async fn call_with<S, R>(
    svc: &mut mock::Spawn<S>,
    handle: &mut mock::Handle<(), Response>,
    answer: Result<u16, &'static str>,
) -> Result<R, BoxError>
where
    S: tower::Service<(), Response = R, Error = BoxError>,
{
    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(());
    let (_, send) = handle
        .next_request()
        .await
        .expect("the request reached the upstream");
    match answer {
        Ok(code) => send.send_response(status(code)),
        Err(e) => send.send_error(e),
    }
    response.await
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_open_and_rejections_never_touch_the_inner_service() {
    let layer = CircuitBreakerLayer::named("espn", config(3));
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    for _ in 0..3 {
        assert!(
            call_with(&mut svc, &mut handle, Err("connection reset"))
                .await
                .is_err()
        );
    }
    assert_eq!(breaker.state(), State::Open);

    // The inner service is not ready, yet the rejection is immediate.
    handle.allow(0);
    assert_ready_ok!(svc.poll_ready());
    let open = open_error(svc.call(()).await.unwrap_err());
    assert_eq!(open.breaker(), "espn");
    assert_eq!(open.retry_after(), Some(Duration::from_secs(60)));
    assert_pending!(handle.poll_request(), "no request reached the upstream");

    tokio::time::advance(Duration::from_secs(60)).await;
    handle.allow(1);
    let ok: Guarded = call_with(&mut svc, &mut handle, Ok(200)).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "the trial lasts until its body ends"
    );
    drop(ok);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn http_statuses_5xx_and_408_fail_and_other_4xx_are_ignored() {
    let layer = CircuitBreakerLayer::named("lastfm", config(3));
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    for code in [404, 400, 401, 404, 410, 422] {
        assert_eq!(
            call_with(&mut svc, &mut handle, Ok(code))
                .await
                .unwrap()
                .status(),
            code
        );
    }
    // A 429 says "slower", not "broken": never counted by the breaker.
    for _ in 0..5 {
        call_with(&mut svc, &mut handle, Ok(429)).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
    for code in [503, 408] {
        call_with(&mut svc, &mut handle, Ok(code)).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
    call_with(&mut svc, &mut handle, Ok(500)).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn generic_services_fail_on_errors_only() {
    let layer = CircuitBreakerLayer::named("generic", config(2)).classifier(OkIsSuccess);
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    call_with(&mut svc, &mut handle, Ok(500)).await.unwrap();
    call_with(&mut svc, &mut handle, Ok(500)).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "Ok is a success for a generic classifier"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_one_trial_and_a_dropped_trial_frees_its_slot() {
    let layer = CircuitBreakerLayer::named("spotify", config(1));
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    let mut other = svc.clone();
    call_with(&mut svc, &mut handle, Err("down"))
        .await
        .unwrap_err();
    tokio::time::advance(Duration::from_secs(60)).await;

    assert_ready_ok!(svc.poll_ready());
    let trial = svc.call(());
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_ready_ok!(other.poll_ready());
    let open = open_error(other.call(()).await.unwrap_err());
    assert_eq!((open.state(), open.retry_after()), (State::HalfOpen, None));

    // The caller gives up on its trial: the slot is free again, nothing was recorded.
    drop(trial);
    let _ = handle.next_request().await;
    let ok: Guarded = call_with(&mut other, &mut handle, Ok(200)).await.unwrap();
    assert_eq!(ok.status(), 200);
    drop(ok);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn readiness_asked_again_decides_again_and_holds_one_permit() {
    let layer = CircuitBreakerLayer::named("lastfm", config(1));
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    let mut other = svc.clone();
    call_with(&mut svc, &mut handle, Err("down"))
        .await
        .unwrap_err();

    // Rejected while open; asked again once the open duration is over, the service is admitted
    // as the trial, and its call goes out instead of the rejection decided earlier.
    assert_ready_ok!(svc.poll_ready());
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_ready_ok!(svc.poll_ready());
    assert_eq!(breaker.state(), State::HalfOpen);
    // Asked a third time it keeps its trial slot rather than taking a second one: the only
    // slot is taken, so another caller is turned away.
    assert_ready_ok!(svc.poll_ready());
    assert_ready_ok!(other.poll_ready());
    let open = open_error(other.call(()).await.unwrap_err());
    assert_eq!(open.state(), State::HalfOpen);

    let trial = svc.call(());
    let (_, send) = handle.next_request().await.expect("the trial went out");
    send.send_response(status(200));
    assert_eq!(trial.await.unwrap().status(), 200);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn response_futures_name_their_layer_in_debug_output() {
    let (mut svc, _handle) =
        mock::spawn_layer::<(), Response, _>(CircuitBreakerLayer::new(config(1)));
    assert_ready_ok!(svc.poll_ready());
    assert!(format!("{:?}", svc.call(())).starts_with("ResponseFuture"));

    let layer = KeyedCircuitBreakerLayer::new(BoxConfig::default());
    let (mut keyed, _handle) = mock::spawn_layer::<http::Request<()>, Response, _>(layer);
    assert_ready_ok!(keyed.poll_ready());
    let request = http::Request::get("https://api.discogs.com/database/search")
        .body(())
        .unwrap();
    assert!(format!("{:?}", keyed.call(request)).starts_with("ResponseFuture"));
}

#[tokio::test(start_paused = true)]
async fn open_duration_grows_on_each_failed_trial() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(10))
        .open_backoff(2.0, Duration::from_secs(25))
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::named("musicbrainz", config);
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    call_with(&mut svc, &mut handle, Err("down"))
        .await
        .unwrap_err();
    for expected in [20, 25, 25] {
        tokio::time::advance(Duration::from_secs(60)).await;
        call_with(&mut svc, &mut handle, Err("still down"))
            .await
            .unwrap_err();
        assert_ready_ok!(svc.poll_ready());
        let open = open_error(svc.call(()).await.unwrap_err());
        assert_eq!(open.retry_after(), Some(Duration::from_secs(expected)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_admits_trials_before_the_open_duration_ends() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(300))
        .probe_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let probes = Arc::new(AtomicUsize::new(0));
    let counted = probes.clone();
    let layer = CircuitBreakerLayer::named("beatport", config).probe(Probe::new(move |_| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move { n >= 1 } // the first probe fails, the second succeeds
    }));
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    call_with(&mut svc, &mut handle, Err("down"))
        .await
        .unwrap_err();

    let mut rejected = || {
        assert_ready_ok!(svc.poll_ready());
        drop(svc.call(()));
    };
    rejected(); // not due yet
    tokio::time::advance(Duration::from_secs(10)).await;
    rejected(); // due: the first probe runs and fails
    tokio::task::yield_now().await;
    assert_eq!(probes.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(Duration::from_secs(10)).await;
    rejected(); // the second probe succeeds
    tokio::task::yield_now().await;
    assert_eq!(probes.load(Ordering::SeqCst), 2);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "at 20s of a 300s open period"
    );
    call_with(&mut svc, &mut handle, Ok(200)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn keyed_breakers_isolate_routes_on_one_host() {
    let config = BoxConfig::from_toml(
        r#"
        [defaults]
        consecutive_failures = 5
        consecutive_failures_span = "0s"
        [[breakers]]
        name = "google_ai_vision"
        match = { host = "generativelanguage.googleapis.com", path_prefix = "/v1beta/models/gemini-pro-vision" }
        consecutive_failures = 3
        consecutive_failures_span = "0s"
        [[breakers]]
        name = "google_ai_text"
        match = { host = "generativelanguage.googleapis.com" }
        "#,
    )
    .unwrap();
    let layer = KeyedCircuitBreakerLayer::new(config);
    let panel = layer.breakers().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<http::Request<()>, Response, _>(layer);
    let request = |path: &str| {
        http::Request::get(format!("https://generativelanguage.googleapis.com{path}"))
            .body(())
            .unwrap()
    };
    let vision = "/v1beta/models/gemini-pro-vision:generateContent";
    let text = "/v1beta/models/gemini-pro:generateContent";
    for _ in 0..3 {
        assert_ready_ok!(svc.poll_ready());
        let response = svc.call(request(vision));
        let (_, send) = handle.next_request().await.unwrap();
        send.send_response(status(503));
        assert_eq!(response.await.unwrap().status(), 503);
    }
    assert_ready_ok!(svc.poll_ready());
    let open = open_error(svc.call(request(vision)).await.unwrap_err());
    assert_eq!(open.breaker(), "google_ai_vision");

    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(request(text));
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.uri().path(), text);
    send.send_response(status(200));
    assert_eq!(response.await.unwrap().status(), 200);
    assert_eq!(panel.health().failing, ["google_ai_vision"]);
}

#[tokio::test(start_paused = true)]
async fn keyed_requests_without_a_host_pass_unguarded() {
    let layer = KeyedCircuitBreakerLayer::new(BoxConfig::default());
    let panel = layer.breakers().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<http::Request<()>, Response, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(http::Request::get("/relative").body(()).unwrap());
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(status(503));
    assert_eq!(response.await.unwrap().status(), 503);
    assert!(panel.breakers().is_empty());
}

/// Futures dropped at random points (before their first poll, while the upstream works, after
/// completing) in HalfOpen never leak a trial slot nor leave the breaker stuck.
#[tokio::test(start_paused = true)]
async fn dropped_futures_never_wedge_a_half_open_breaker() {
    use std::future::{Future, poll_fn};
    use std::pin::Pin;
    use tower::{Layer, Service, ServiceExt};

    let upstream = tower::service_fn(|(delay_ms, code): (u64, u16)| async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        Ok::<_, BoxError>(status(code))
    });
    type Call = Pin<Box<dyn Future<Output = Result<Guarded, BoxError>>>>;

    let mut saw_all_slots_taken = 0;
    for seed in 0..300 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let config = BreakerConfig::builder()
            .consecutive_failures_span(Duration::ZERO)
            .consecutive_failures(1)
            .half_open_max_calls(2)
            .success_threshold(2)
            .open_duration(Duration::from_secs(10))
            .open_backoff(1.0, Duration::from_secs(10))
            .build()
            .unwrap();
        let layer = CircuitBreakerLayer::named("flaky", config);
        let breaker = layer.breaker().clone();
        let mut svc = layer.layer(upstream);
        svc.ready().await.unwrap().call((0, 503)).await.unwrap();
        assert_eq!(breaker.state(), State::Open);
        tokio::time::advance(Duration::from_secs(10)).await;

        let mut calls: Vec<Call> = Vec::new();
        for _ in 0..40 {
            match rng.u8(0..5) {
                0 => tokio::time::advance(Duration::from_millis(rng.u64(0..12_000))).await,
                1 => {
                    let code = if rng.bool() { 200 } else { 503 };
                    let call = svc.ready().await.unwrap().call((rng.u64(0..50), code));
                    calls.push(Box::pin(call));
                }
                2 if !calls.is_empty() => drop(calls.swap_remove(rng.usize(..calls.len()))),
                3 => {
                    // Poll each once; the ones that finished are done with.
                    let mut pending = Vec::new();
                    for mut call in calls.drain(..) {
                        let polled = poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx)));
                        if polled.await.is_pending() {
                            pending.push(call);
                        }
                    }
                    calls = pending;
                    tokio::time::advance(Duration::from_millis(10)).await;
                }
                _ if !calls.is_empty() => {
                    let _ = calls.swap_remove(rng.usize(..calls.len())).await;
                }
                _ => {}
            }
            let snap = breaker.snapshot();
            assert!(snap.half_open_in_flight <= 2, "seed {seed}: {snap:?}");
            saw_all_slots_taken += usize::from(snap.half_open_in_flight == 2);
        }
        drop(calls);
        assert_eq!(
            breaker.snapshot().half_open_in_flight,
            0,
            "seed {seed}: a slot leaked"
        );

        // Whatever happened, a healthy upstream closes the breaker again.
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..2 {
            let response = svc.ready().await.unwrap().call((0, 200)).await;
            assert!(response.is_ok(), "seed {seed}: {:?}", response.err());
        }
        assert_eq!(breaker.state(), State::Closed, "seed {seed}");
    }
    assert!(
        saw_all_slots_taken > 100,
        "the sequences reach the trial limit: {saw_all_slots_taken}"
    );
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_time_window_trips_the_layer() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .failure_rate(0.5)
        .minimum_calls(4)
        .time_window(Duration::from_secs(10), 10)
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::named("discogs", config);
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    // Two old failures fall out of the window before the next calls.
    for code in [500, 500] {
        call_with(&mut svc, &mut handle, Ok(code)).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    for code in [200, 200, 500] {
        call_with(&mut svc, &mut handle, Ok(code)).await.unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 of 3 calls in the window, under minimum_calls"
    );
    call_with(&mut svc, &mut handle, Ok(503)).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 of 4 calls in the window failed"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_calls_measured_on_tokio_time_trip_the_layer() {
    let config = BreakerConfig::builder()
        .consecutive_failures_span(Duration::ZERO)
        .no_consecutive_failures()
        .slow_call_rate(0.5, Duration::from_secs(2))
        .minimum_calls(2)
        .count_window(10)
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::named("google_ai_imagen", config);
    let breaker = layer.breaker().clone();
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    for took in [Duration::from_millis(300), Duration::from_secs(5)] {
        assert_ready_ok!(svc.poll_ready());
        let response = svc.call(());
        let (_, send) = handle.next_request().await.unwrap();
        tokio::time::advance(took).await;
        send.send_response(status(200));
        response.await.unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "1 of 2 successful calls took 5 s"
    );
    assert_eq!(
        breaker.snapshot().window_slow_calls,
        1,
        "the window shows what tripped it"
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_rejections_and_passes_everything_else() {
    use breakerbox_tower::FallbackLayer;
    use tower::Layer;

    let breaker = CircuitBreakerLayer::named("spotify", config(1));
    let fallback = FallbackLayer::new(|open: &CircuitOpen| {
        http::Response::builder()
            .status(200)
            .header("x-served-from", format!("cache ({} open)", open.breaker()))
            .body(ResponseBody::unguarded(()))
            .unwrap()
    });
    let (mock, mut handle) = mock::pair::<(), Response>();
    let mut svc = fallback.layer(breaker.layer(mock));
    use tower::ServiceExt;
    let first = {
        let call = svc.ready().await.unwrap().call(());
        let (_, send) = handle.next_request().await.unwrap();
        send.send_response(status(503));
        call.await.unwrap()
    };
    assert_eq!(first.status(), 503, "a real failure passes through");
    let cached = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(cached.headers()["x-served-from"], "cache (spotify open)");
    assert_pending!(
        handle.poll_request(),
        "the fallback did not reach the upstream"
    );
}

#[tokio::test(start_paused = true)]
async fn a_static_breaker_trips_rejects_and_frees_dropped_trials_like_an_owned_one() {
    // A breaker that lives as long as the program: its response futures hold a plain
    // reference instead of a counted handle.
    let breaker: &'static breakerbox::CircuitBreaker = Box::leak(Box::new(
        breakerbox::CircuitBreaker::builder("musicbrainz", config(2))
            .clock(Arc::new(breakerbox_tower::TokioClock::new()))
            .build(),
    ));
    let layer = CircuitBreakerLayer::from_static(breaker);
    let (mut svc, mut handle) = mock::spawn_layer::<(), Response, _>(layer);
    let mut other = svc.clone();

    call_with(&mut svc, &mut handle, Ok(503)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    call_with(&mut other, &mut handle, Ok(503)).await.unwrap();
    assert_eq!(breaker.state(), State::Open, "both clones record into it");
    assert_ready_ok!(svc.poll_ready());
    let open = open_error(svc.call(()).await.unwrap_err());
    assert_eq!(open.breaker(), "musicbrainz");
    assert_pending!(
        handle.poll_request(),
        "a rejection never reaches the upstream"
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    assert_ready_ok!(svc.poll_ready());
    let trial = svc.call(());
    assert_ready_ok!(other.poll_ready());
    assert_eq!(
        open_error(other.call(()).await.unwrap_err()).state(),
        State::HalfOpen
    );
    drop(trial); // cancelled: its slot is free again, nothing recorded
    let _ = handle.next_request().await;
    call_with(&mut other, &mut handle, Ok(200)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}
