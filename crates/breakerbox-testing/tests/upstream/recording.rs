//! What the upstream records, and how it stops.

use crate::{Proto, chain, on_both};
use breakerbox_testing::{Reply, Upstream};
use std::time::Duration;
use tokio::time::Instant;

on_both!(
    every_request_is_recorded_in_order_with_its_parts,
    keep_alive_requests_share_a_connection,
    shutdown_closes_the_listener,
    dropping_the_upstream_ends_a_stalled_response,
);

async fn every_request_is_recorded_in_order_with_its_parts(proto: Proto) {
    let upstream = Upstream::builder().start().await;
    let client = proto.client();
    let start = Instant::now();
    client
        .post(upstream.url("/items?draft=true&tag=a%20b"))
        .header("x-request-id", "r-1")
        .header("content-type", "application/json")
        .body(r#"{"name":"first"}"#)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    client.get(upstream.url("/items/1")).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    client
        .delete(upstream.url("/items/1"))
        .header("x-request-id", "r-3")
        .send()
        .await
        .unwrap();

    let seen = upstream.requests();
    assert_eq!(upstream.hits(), 3);
    let summary: Vec<_> = seen
        .iter()
        .map(|r| (r.index, r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (0, "POST", "/items?draft=true&tag=a%20b"),
            (1, "GET", "/items/1"),
            (2, "DELETE", "/items/1"),
        ]
    );
    let post = &seen[0];
    assert_eq!(post.path_only(), "/items");
    assert_eq!(post.query(), Some("draft=true&tag=a%20b"));
    assert_eq!(post.header("x-request-id"), Some("r-1"));
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.body, r#"{"name":"first"}"#);
    assert_eq!(seen[1].body, "");
    assert_eq!(seen[2].header("x-request-id"), Some("r-3"));
    assert_eq!(seen[1].header("x-request-id"), None);
    let authority = upstream.addr().to_string();
    for request in &seen {
        assert_eq!(request.version, proto.version());
        assert_eq!(request.authority.as_deref(), Some(authority.as_str()));
    }
    // Arrival times on tokio's (paused) clock: 0 s, 5 s, 10 s after the start.
    let at: Vec<_> = seen.iter().map(|r| (r.arrived - start).as_secs()).collect();
    assert_eq!(at, [0, 5, 10]);
}

async fn keep_alive_requests_share_a_connection(proto: Proto) {
    let upstream = Upstream::builder().script(Reply::ok("x")).start().await;
    let client = proto.client();
    for _ in 0..3 {
        let response = client.get(upstream.url("/")).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "x");
    }
    let other = proto.client();
    other.get(upstream.url("/")).send().await.unwrap();
    let connections: Vec<_> = upstream.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0, 1]);
    assert_eq!(upstream.connections(), 2);
}

async fn shutdown_closes_the_listener(proto: Proto) {
    let upstream = Upstream::builder().start().await;
    let url = upstream.url("/");
    proto.client().get(&url).send().await.unwrap();
    upstream.shutdown().await;
    let err = proto.client().get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "{}", chain(&err));
}

async fn dropping_the_upstream_ends_a_stalled_response(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Reply::ok("0123456789").stall_after(5))
        .start()
        .await;
    let mut response = proto.client().get(upstream.url("/")).send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap(), "01234");
    drop(upstream);
    // No client timeout: only the upstream closing the connection ends this read. (The
    // outer timeout only turns a hang into a failure.)
    let read = tokio::time::timeout(Duration::from_secs(3600), response.chunk()).await;
    let err = read.expect("the connection was closed").unwrap_err();
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{}",
        chain(&err)
    );
}
