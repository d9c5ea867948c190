//! Many requests at once, on two worker threads: every one answered, every one recorded once,
//! indexes without gaps or repeats.

use crate::Proto;
use breakerbox_testing::{Reply, Script, Upstream};
use std::collections::BTreeSet;

const REQUESTS: usize = 500;

async fn all_answered_and_recorded_once(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Script::from_fn(|req, n| {
            Reply::ok(format!("{n} {}", req.path))
        }))
        .start()
        .await;
    let client = proto.client();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let (client, url) = (client.clone(), upstream.url(&format!("/call/{i}")));
        calls.spawn(async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            (i, response.text().await.unwrap())
        });
    }
    let mut indexes = BTreeSet::new();
    while let Some(call) = calls.join_next().await {
        let (i, body) = call.unwrap();
        let (n, path) = body.split_once(' ').unwrap();
        assert_eq!(path, format!("/call/{i}"), "each call got its own answer");
        assert!(
            indexes.insert(n.parse::<usize>().unwrap()),
            "index {n} twice"
        );
    }
    assert_eq!(
        indexes,
        (0..REQUESTS).collect(),
        "indexes 0..{REQUESTS}, no gap"
    );
    assert_eq!(upstream.hits(), REQUESTS);
    let recorded = upstream.requests();
    let paths: BTreeSet<_> = recorded.iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), REQUESTS, "every path recorded once");
    assert!(recorded.iter().enumerate().all(|(i, r)| r.index == i));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_500_concurrent_requests() {
    all_answered_and_recorded_once(Proto::H1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_500_concurrent_requests() {
    all_answered_and_recorded_once(Proto::H2).await;
}
