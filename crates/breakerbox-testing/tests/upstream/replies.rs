//! Replies that are responses: statuses, headers, bodies, delays, redirects, slow bodies,
//! trailers.

use crate::{Proto, on_both};
use breakerbox_testing::{Reply, Upstream};
use http_body_util::BodyExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

on_both!(
    status_headers_and_body_arrive,
    a_default_upstream_answers_200,
    retry_after_is_seconds_rounded_up_or_a_date,
    a_delay_holds_the_head_on_tokios_clock,
    a_delay_longer_than_the_client_timeout_times_out,
    redirects_are_followed,
    a_slow_body_arrives_in_chunks_one_gap_apart,
    a_head_request_gets_the_length_but_no_body,
    no_content_has_no_body,
    trailers_follow_the_body,
    a_small_huge_header_arrives_whole,
    a_huge_header_beyond_the_clients_limit_fails,
    an_informational_status_is_no_final_response,
);

async fn status_headers_and_body_arrive(proto: Proto) {
    let upstream = Upstream::builder()
        .script(
            Reply::status(418)
                .header("x-one", "1")
                .header("x-many", "a")
                .header("x-many", "b")
                .body("short and stout"),
        )
        .start()
        .await;
    let response = proto
        .client()
        .get(upstream.url("/teapot"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.version(), proto.version());
    assert_eq!(response.headers()["x-one"], "1");
    let many: Vec<_> = response.headers().get_all("x-many").iter().collect();
    assert_eq!(
        many,
        ["a", "b"],
        "a header given twice is sent twice, in order"
    );
    assert_eq!(response.content_length(), Some(15));
    assert_eq!(response.text().await.unwrap(), "short and stout");
}

async fn a_default_upstream_answers_200(proto: Proto) {
    let upstream = Upstream::builder().start().await;
    let response = proto.client().get(upstream.url("")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(upstream.requests()[0].path, "/");
}

async fn retry_after_is_seconds_rounded_up_or_a_date(proto: Proto) {
    let date = UNIX_EPOCH + Duration::from_secs(784_111_777);
    let upstream = Upstream::builder()
        .script(breakerbox_testing::Script::sequence([
            Reply::status(429).retry_after(Duration::from_millis(1500)),
            Reply::status(503).retry_after(Duration::from_secs(7)),
            Reply::status(503).retry_after_date(date),
            Reply::status(503).retry_after_date_in(Duration::from_secs(120)),
        ]))
        .start()
        .await;
    let client = proto.client();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = client.get(upstream.url("/")).send().await.unwrap();
        let value = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .to_owned();
        seen.push((response.status().as_u16(), value));
    }
    assert_eq!(seen[0], (429, "2".to_owned()));
    assert_eq!(seen[1], (503, "7".to_owned()));
    assert_eq!(seen[2], (503, "Sun, 06 Nov 1994 08:49:37 GMT".to_owned()));
    // The date "120 s from now" is on the wall clock, which paused time does not stop.
    #[allow(clippy::disallowed_methods)] // the wall clock is what an HTTP-date is compared with
    let now = SystemTime::now();
    let at = httpdate::parse_http_date(&seen[3].1).unwrap();
    let ahead = at.duration_since(now).unwrap_or_default();
    assert!(
        (Duration::from_secs(110)..=Duration::from_secs(121)).contains(&ahead),
        "{:?} is {ahead:?} ahead",
        seen[3].1
    );
}

async fn a_delay_holds_the_head_on_tokios_clock(proto: Proto) {
    // An hour: on the wall clock this test would never finish.
    let upstream = Upstream::builder()
        .script(Reply::ok("late").delay(Duration::from_secs(3600)))
        .start()
        .await;
    let start = Instant::now();
    let response = proto.client().get(upstream.url("/")).send().await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(3600), "head after {waited:?}");
    assert!(waited < Duration::from_secs(3601), "head after {waited:?}");
    assert_eq!(response.text().await.unwrap(), "late");
    assert!(upstream.requests()[0].arrived - start < Duration::from_secs(1));
}

async fn a_delay_longer_than_the_client_timeout_times_out(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("late").delay(Duration::from_secs(30)))
        .start()
        .await;
    let client = proto
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = client.get(upstream.url("/")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(start.elapsed().as_secs(), 10);
    assert_eq!(upstream.hits(), 1, "the request did arrive");

    let patient = proto
        .builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap();
    let response = patient.get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "late");
}

async fn redirects_are_followed(proto: Proto) {
    let elsewhere = Upstream::builder()
        .script(Reply::ok("you found me"))
        .start()
        .await;
    let far = elsewhere.url("/far");
    let upstream = Upstream::builder()
        .script(breakerbox_testing::Script::from_fn(
            move |req, _| match req.path.as_str() {
                "/old" => Reply::redirect(301, "/new"),
                "/new" => Reply::ok("moved here"),
                "/away" => Reply::redirect(307, &far),
                _ => Reply::status(404),
            },
        ))
        .start()
        .await;
    let client = proto.client();

    let response = client.get(upstream.url("/old")).send().await.unwrap();
    assert_eq!(response.url().path(), "/new");
    assert_eq!(response.text().await.unwrap(), "moved here");
    let response = client.get(upstream.url("/away")).send().await.unwrap();
    assert_eq!(response.url().as_str(), elsewhere.url("/far"));
    assert_eq!(response.text().await.unwrap(), "you found me");

    let paths: Vec<_> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/old", "/new", "/away"]);
    assert_eq!(elsewhere.hits(), 1);

    let unfollowed = proto
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = unfollowed.get(upstream.url("/old")).send().await.unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(response.headers()["location"], "/new");
}

async fn a_slow_body_arrives_in_chunks_one_gap_apart(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("0123456789").slow_body(4, Duration::from_secs(1)))
        .start()
        .await;
    let start = Instant::now();
    let mut response = proto.client().get(upstream.url("/")).send().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the head does not wait"
    );
    assert_eq!(response.content_length(), Some(10));
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push((
            String::from_utf8(chunk.to_vec()).unwrap(),
            start.elapsed().as_secs(),
        ));
    }
    let expected = [("0123", 1), ("4567", 2), ("89", 3)].map(|(s, t)| (s.to_owned(), t));
    assert_eq!(chunks, expected);
}

async fn a_head_request_gets_the_length_but_no_body(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("twelve bytes"))
        .start()
        .await;
    let client = proto.client();
    let response = client.head(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "12");
    assert_eq!(response.bytes().await.unwrap().len(), 0);
    // The connection is still good for a GET (on HTTP/1.1, no stray body bytes on it).
    let response = client.get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "twelve bytes");
    assert_eq!(upstream.connections(), 1);
}

async fn no_content_has_no_body(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::status(204).body("ignored"))
        .start()
        .await;
    let client = proto.client();
    for _ in 0..2 {
        let response = client.get(upstream.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 204);
        assert!(response.headers().get("content-length").is_none());
        assert_eq!(response.bytes().await.unwrap().len(), 0);
    }
    assert_eq!(upstream.connections(), 1, "the connection was reused");
}

async fn trailers_follow_the_body(proto: Proto) {
    let upstream = Upstream::builder()
        .script(
            Reply::ok("payload").trailers([("grpc-status", "14"), ("grpc-message", "unavailable")]),
        )
        .start()
        .await;
    let response = proto.client().get(upstream.url("/")).send().await.unwrap();
    let collected = http::Response::from(response)
        .into_body()
        .collect()
        .await
        .unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "14");
    assert_eq!(trailers["grpc-message"], "unavailable");
    assert_eq!(collected.to_bytes(), "payload");
}

async fn a_small_huge_header_arrives_whole(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("").huge_header(8 * 1024))
        .start()
        .await;
    let response = proto.client().get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.headers()["x-breakerbox-padding"].len(), 8 * 1024);
}

async fn a_huge_header_beyond_the_clients_limit_fails(proto: Proto) {
    // hyper's limits: about 400 KiB of HTTP/1.1 head, a 16 KiB HTTP/2 header list.
    let len = match proto {
        Proto::H1 => 1024 * 1024,
        Proto::H2 => 64 * 1024,
    };
    let upstream = Upstream::builder()
        .script(Reply::ok("").huge_header(len))
        .start()
        .await;
    let err = proto
        .client()
        .get(upstream.url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request(), "{}", crate::chain(&err));
    assert_eq!(upstream.hits(), 1);
}

async fn an_informational_status_is_no_final_response(proto: Proto) {
    let upstream = Upstream::builder()
        .script(breakerbox_testing::Script::sequence([
            Reply::status(103),
            Reply::ok("final"),
        ]))
        .start()
        .await;
    let client = proto
        .builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = client.get(upstream.url("/")).send().await.unwrap_err();
    match proto {
        Proto::H1 => assert!(err.is_timeout(), "{}", crate::chain(&err)),
        Proto::H2 => assert!(
            err.is_request() && !err.is_timeout(),
            "{}",
            crate::chain(&err)
        ),
    }
    // The upstream goes on serving (a new connection on HTTP/1.1, whose old one is stuck).
    let response = proto.client().get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "final");
}
