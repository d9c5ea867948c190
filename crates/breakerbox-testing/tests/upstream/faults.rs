//! Replies that break: bodies that stall or end early, connections reset, closed or fed
//! garbage. Each is seen by reqwest as the error a user would handle, and each is recorded.

use crate::{Proto, chain, io_error, on_both, within};
use breakerbox_testing::{Reply, Script, Upstream};
use std::io;
use std::time::Duration;
use tokio::time::Instant;

on_both!(
    a_stalled_body_is_cut_by_the_client_timeout,
    a_truncated_body_is_a_body_error_after_a_good_head,
    a_reset_before_the_head_is_a_request_error,
    a_close_before_the_head_is_a_request_error,
    garbage_instead_of_a_response_is_an_error,
    a_fault_can_be_late,
    the_next_request_after_a_fault_is_served,
);

async fn a_stalled_body_is_cut_by_the_client_timeout(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("0123456789").stall_after(3))
        .start()
        .await;
    let client = proto
        .builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut response = client.get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.content_length(),
        Some(10),
        "the head promises it all"
    );
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(first, "012");
    let err = response.chunk().await.unwrap_err();
    assert!(err.is_timeout(), "{}", chain(&err));
    assert_eq!(
        start.elapsed().as_secs(),
        5,
        "cut by the timeout, not before"
    );
}

async fn a_truncated_body_is_a_body_error_after_a_good_head(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("0123456789").truncate_after(4))
        .start()
        .await;
    let response = within(proto.client().get(upstream.url("/")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(10));
    let err = within(response.bytes()).await.unwrap_err();
    assert!(err.is_body() || err.is_decode(), "{}", chain(&err));
    assert!(!err.is_timeout());
}

async fn a_reset_before_the_head_is_a_request_error(proto: Proto) {
    let upstream = Upstream::builder().script(Reply::reset()).start().await;
    let err = within(proto.client().get(upstream.url("/")).send())
        .await
        .unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{}", chain(&err));
    let io = io_error(&err).unwrap_or_else(|| panic!("no io error in {}", chain(&err)));
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset, "{}", chain(&err));
    assert_eq!(upstream.hits(), 1, "the request arrived and was recorded");
}

async fn a_close_before_the_head_is_a_request_error(proto: Proto) {
    let upstream = Upstream::builder().script(Reply::close()).start().await;
    let err = within(proto.client().get(upstream.url("/")).send())
        .await
        .unwrap_err();
    assert!(err.is_request(), "{}", chain(&err));
    let reset = io_error(&err).is_some_and(|io| io.kind() == io::ErrorKind::ConnectionReset);
    assert!(!reset, "a close is not a reset: {}", chain(&err));
    assert_eq!(upstream.hits(), 1);
}

async fn garbage_instead_of_a_response_is_an_error(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::garbage(
            &b"\x00\x01\x02\x03 this is not HTTP\r\n\r\n"[..],
        ))
        .start()
        .await;
    let err = within(proto.client().get(upstream.url("/")).send())
        .await
        .unwrap_err();
    assert!(err.is_request(), "{}", chain(&err));
    assert_eq!(upstream.hits(), 1);
}

async fn a_fault_can_be_late(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::reset().delay(Duration::from_secs(2)))
        .start()
        .await;
    let start = Instant::now();
    let err = within(proto.client().get(upstream.url("/")).send())
        .await
        .unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{}", chain(&err));
    assert_eq!(start.elapsed().as_secs(), 2);
}

async fn the_next_request_after_a_fault_is_served(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Script::sequence([
            Reply::close(),
            Reply::ok("0123456789").truncate_after(2),
            Reply::garbage("HTTP/9.9 what\r\n\r\n"),
            Reply::reset(),
            Reply::ok("fine"),
        ]))
        .start()
        .await;
    let client = proto.client();
    for _ in 0..4 {
        let outcome = match client.get(upstream.url("/")).send().await {
            Ok(response) => response.bytes().await.map(drop),
            Err(err) => Err(err),
        };
        assert!(outcome.is_err());
    }
    let response = client.get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "fine");
    assert_eq!(upstream.hits(), 5, "every faulty request was recorded");
    let indexes: Vec<_> = upstream.requests().iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    if proto == Proto::H1 {
        // On HTTP/1.1 every fault closed its connection; the last request had a new one.
        assert_eq!(upstream.connections(), 5);
    }
}
