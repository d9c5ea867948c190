//! Scripts: sequences, cycles, functions of the request, replacing a script.

use crate::{Proto, on_both};
use breakerbox_testing::{Reply, Script, Upstream};

on_both!(
    a_sequence_answers_in_order_then_repeats_its_last,
    a_cycle_starts_over,
    a_function_sees_the_request_and_its_index,
    a_reply_converts_into_a_script,
    set_script_changes_the_next_answers,
);

async fn statuses(upstream: &Upstream, client: &reqwest::Client, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let response = client.get(upstream.url("/")).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

async fn a_sequence_answers_in_order_then_repeats_its_last(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Script::sequence([
            Reply::status(503),
            Reply::status(503),
            Reply::ok("hi"),
        ]))
        .start()
        .await;
    let client = proto.client();
    assert_eq!(
        statuses(&upstream, &client, 5).await,
        [503, 503, 200, 200, 200]
    );
    let body = client.get(upstream.url("/")).send().await.unwrap();
    assert_eq!(body.text().await.unwrap(), "hi");
}

async fn a_cycle_starts_over(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Script::cycle([Reply::status(200), Reply::status(500)]))
        .start()
        .await;
    let client = proto.client();
    assert_eq!(
        statuses(&upstream, &client, 5).await,
        [200, 500, 200, 500, 200]
    );
}

async fn a_function_sees_the_request_and_its_index(proto: Proto) {
    let upstream = Upstream::builder()
        .script(Script::from_fn(|req, n| {
            if req.path_only() == "/echo" {
                let q = req.query().unwrap_or("").to_owned();
                return Reply::ok(format!("{n}:{q}:{}", req.header("x-id").unwrap_or("-")));
            }
            Reply::status(if n < 3 { 503 } else { 200 })
        }))
        .start()
        .await;
    let client = proto.client();
    assert_eq!(statuses(&upstream, &client, 4).await, [503, 503, 503, 200]);
    let response = client
        .get(upstream.url("/echo?a=1"))
        .header("x-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "4:a=1:seven");
}

async fn a_reply_converts_into_a_script(proto: Proto) {
    let upstream = Upstream::builder().script(Reply::status(502)).start().await;
    assert_eq!(
        statuses(&upstream, &proto.client(), 3).await,
        [502, 502, 502]
    );
}

async fn set_script_changes_the_next_answers(proto: Proto) {
    let upstream = Upstream::builder().script(Reply::status(503)).start().await;
    let client = proto.client();
    assert_eq!(statuses(&upstream, &client, 2).await, [503, 503]);
    upstream.set_script(Reply::ok("recovered"));
    assert_eq!(statuses(&upstream, &client, 2).await, [200, 200]);
    assert_eq!(upstream.hits(), 4);
}
