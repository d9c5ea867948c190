//! What a reqwest result means to the engine, and responses rebuilt around a new body.

use breakerbox::{AttemptOutcome, CircuitOpen};
use reqwest::{Response, ResponseBuilderExt};
use reqwest_middleware::Result;

/// What an attempt's result means to the engine: the one translation both middlewares use.
pub(crate) fn attempt_outcome(result: &Result<Response>) -> AttemptOutcome {
    match result {
        Ok(response) => AttemptOutcome::Status(response.status().as_u16()),
        Err(err) => error_outcome(err),
    }
}

/// What an error means to the engine.
pub(crate) fn error_outcome(err: &reqwest_middleware::Error) -> AttemptOutcome {
    match err {
        reqwest_middleware::Error::Middleware(e) if e.is::<CircuitOpen>() => {
            AttemptOutcome::CircuitOpen
        }
        reqwest_middleware::Error::Middleware(_) => AttemptOutcome::OtherError,
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => AttemptOutcome::Timeout,
        // Connecting, sending, or reading the response head went wrong: worth another try.
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() || e.is_request() => {
            AttemptOutcome::Connect
        }
        reqwest_middleware::Error::Reqwest(_) => AttemptOutcome::OtherError,
    }
}

/// `response` taken apart: its head (status, version, headers, extensions), its URL and its
/// body. reqwest keeps a response's URL outside its parts, so it travels alongside.
pub(crate) struct Parts {
    head: http::response::Parts,
    url: reqwest::Url,
}

pub(crate) fn into_parts(response: Response) -> (Parts, reqwest::Body) {
    let url = response.url().clone();
    let (head, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    (Parts { head, url }, body)
}

/// A response from `parts` and a new `body`, with the same status, version, headers,
/// extensions and URL as the one taken apart.
pub(crate) fn from_parts(parts: Parts, body: reqwest::Body) -> Response {
    let Parts { head, url } = parts;
    let mut response = http::Response::builder()
        .url(url)
        .body(body)
        .expect("a builder given only a URL extension cannot fail");
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    response.extensions_mut().extend(head.extensions);
    Response::from(response)
}
