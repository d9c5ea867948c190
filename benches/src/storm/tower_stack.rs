//! tower's own `Retry`, as a user would put it together over hyper-util's legacy client: a
//! small [`Policy`] (GET only, 5xx and errors, at most 3 retries), tower's `TpsBudget` with its
//! defaults, tower's exponential backoff with its defaults, and tower's `Timeout` per attempt.

use super::load::Outcome;
use super::upstream::TAG;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, Retry};
use tower::timeout::Timeout;
use tower::{BoxError, ServiceExt};

/// The request body: empty for a GET.
pub type Body = Full<Bytes>;

/// The stack: `Retry` over `Timeout` over hyper-util's client.
pub type TowerClient = Retry<RetryPolicy, Timeout<Client<HttpConnector, Body>>>;

/// Retries per request beyond the first attempt.
const MAX_RETRIES: u32 = 3;

/// The policy a user writes: retry a GET that failed (an error, the timeout included, or a 5xx)
/// at most 3 times, each retry withdrawn from a budget shared by every request
/// of the client and waited for with tower's exponential backoff. As tower's budget example
/// does, an answer that needs no retry deposits in the budget.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    budget: Arc<TpsBudget>,
    backoff: ExponentialBackoff,
    retries: u32,
}

impl RetryPolicy {
    /// `TpsBudget::default()` (10 s ttl, 10 retries/s floor, 20 %) and
    /// `ExponentialBackoffMaker::default()` (50 ms doubling, 99 % jitter).
    pub fn new() -> Self {
        Self {
            budget: Arc::new(TpsBudget::default()),
            backoff: ExponentialBackoffMaker::default().make_backoff(),
            retries: 0,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy<http::Request<Body>, http::Response<Incoming>, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut http::Request<Body>,
        result: &mut Result<http::Response<Incoming>, BoxError>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        if !failed {
            self.budget.deposit();
            return None;
        }
        if req.method() != http::Method::GET
            || self.retries >= MAX_RETRIES
            || !self.budget.withdraw()
        {
            return None;
        }
        self.retries += 1;
        Some(self.backoff.next_backoff())
    }

    fn clone_request(&mut self, req: &http::Request<Body>) -> Option<http::Request<Body>> {
        let mut copy = http::Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        Some(copy)
    }
}

/// The stack over a fresh hyper-util client, each attempt timed out after `attempt_timeout`.
pub fn client(attempt_timeout: Duration) -> TowerClient {
    let http = Client::builder(TokioExecutor::new()).build_http::<Body>();
    Retry::new(RetryPolicy::new(), Timeout::new(http, attempt_timeout))
}

/// One GET of `uri` tagged with its issue slot, its body read.
pub async fn get(client: &TowerClient, uri: &http::Uri, issued: usize) -> Outcome {
    let request = http::Request::get(uri.clone())
        .header(TAG, issued)
        .body(Body::default())
        .expect("a valid request");
    match client.clone().oneshot(request).await {
        Ok(response) if response.status().is_success() => {
            match response.into_body().collect().await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            }
        }
        Ok(_) | Err(_) => Outcome::Failed,
    }
}
