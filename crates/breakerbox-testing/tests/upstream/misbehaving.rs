//! Clients that break HTTP/1.1, written byte by byte over TCP: the upstream answers what it
//! can, refuses what it cannot read, and keeps serving everyone else.

use breakerbox_testing::{Reply, Upstream};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `request`, then reads until the upstream closes the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response));
    read.await
        .expect("the upstream closed the connection")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// The upstream still answers a well-behaved client.
async fn still_serves(upstream: &Upstream) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(upstream.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_request_gets_400_and_the_upstream_goes_on() {
    let upstream = Upstream::builder().start().await;
    let response = exchange(upstream.addr(), b"\x16\x03\x01 hello? \r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response:?}");
    assert_eq!(upstream.hits(), 0, "nothing readable, nothing recorded");
    still_serves(&upstream).await;
}

#[tokio::test(start_paused = true)]
async fn a_chunked_request_body_is_read_and_recorded() {
    let upstream = Upstream::builder()
        .script(Reply::ok("got it"))
        .start()
        .await;
    let request = b"POST /upload HTTP/1.1\r\nhost: example\r\ntransfer-encoding: chunked\r\n\r\n\
        5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-checksum: 1\r\n\r\n\
        GET /after HTTP/1.1\r\nhost: example\r\nconnection: close\r\n\r\n";
    let response = exchange(upstream.addr(), request).await;
    assert_eq!(
        response.matches("HTTP/1.1 200 OK").count(),
        2,
        "{response:?}"
    );
    let seen = upstream.requests();
    assert_eq!(seen[0].body, "hello, world");
    assert_eq!(seen[0].authority.as_deref(), Some("example"));
    assert_eq!(
        seen[1].path, "/after",
        "the connection went on after the body"
    );
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let upstream = Upstream::builder()
        .script(breakerbox_testing::Script::from_fn(|req, _| {
            Reply::ok(req.path.clone())
        }))
        .start()
        .await;
    let request = b"GET /one HTTP/1.1\r\nhost: a\r\n\r\nGET /two HTTP/1.1\r\nhost: a\r\n\r\n\
        GET /three HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let response = exchange(upstream.addr(), request).await;
    let one = response.find("/one").unwrap();
    let two = response.find("/two").unwrap();
    let three = response.find("/three").unwrap();
    assert!(one < two && two < three, "{response:?}");
    assert!(response.contains("connection: close"), "{response:?}");
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_mid_body_is_recorded_with_what_it_sent() {
    let upstream = Upstream::builder().start().await;
    let request = b"PUT /big HTTP/1.1\r\nhost: a\r\ncontent-length: 1000\r\n\r\nonly this";
    let response = exchange_and_close(upstream.addr(), request).await;
    assert_eq!(response, "", "no answer to half a request");
    let seen = wait_for_hits(&upstream, 1).await;
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].body, "only this");
    still_serves(&upstream).await;
}

/// Writes `request`, closes the writing half, reads until the upstream closes.
async fn exchange_and_close(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response));
    read.await
        .expect("the upstream closed the connection")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// The recorded requests once there are `n` (the upstream records on its own task).
async fn wait_for_hits(upstream: &Upstream, n: usize) -> Vec<breakerbox_testing::Recorded> {
    for _ in 0..1000 {
        if upstream.hits() >= n {
            return upstream.requests();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} requests recorded, expected {n}", upstream.hits());
}

// Real time: a megabyte through loopback outruns the socket buffers, and while the kernel
// catches up the runtime is idle, which in paused time would fire the exchange's timeout.
#[tokio::test]
async fn a_head_over_a_mebibyte_gets_431() {
    let upstream = Upstream::builder().start().await;
    let mut request = b"GET / HTTP/1.1\r\nhost: a\r\n".to_vec();
    for i in 0..200 {
        request.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(6000)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let response = exchange(upstream.addr(), &request).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response:?}");
    still_serves(&upstream).await;
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_gets_a_100_before_the_answer() {
    let upstream = Upstream::builder().script(Reply::ok("done")).start().await;
    let mut stream = TcpStream::connect(upstream.addr()).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"body").await.unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).await.unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.ends_with("done"),
        "{rest:?}"
    );
    assert_eq!(upstream.requests()[0].body, "body");
}

#[tokio::test(start_paused = true)]
async fn http_1_0_closes_after_the_response() {
    let upstream = Upstream::builder().script(Reply::ok("old")).start().await;
    let response = exchange(upstream.addr(), b"GET /legacy HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    assert!(response.ends_with("\r\n\r\nold"), "{response:?}");
    let seen = upstream.requests();
    assert_eq!(seen[0].version, http::Version::HTTP_10);
    assert_eq!(seen[0].authority, None);
}

#[tokio::test(start_paused = true)]
async fn silent_and_half_preface_connections_are_harmless() {
    let upstream = Upstream::builder().start().await;
    drop(TcpStream::connect(upstream.addr()).await.unwrap());
    assert_eq!(
        exchange_and_close(upstream.addr(), b"PRI * HTTP/2.0\r\n").await,
        ""
    );
    assert_eq!(exchange_and_close(upstream.addr(), b"GET / HT").await, "");
    still_serves(&upstream).await;
    assert_eq!(upstream.hits(), 1);
    assert_eq!(upstream.connections(), 4);
}
