//! Telling a circuit-open rejection from other errors.

use breakerbox::CircuitOpen;

/// The circuit-open rejection inside `err`, if that is what it is: the breaker's name and how
/// long until it admits a trial call.
///
/// Rejections come back as `reqwest_middleware::Error::Middleware` wrapping a
/// [`CircuitOpen`]; this finds it without the caller touching `anyhow`.
pub fn circuit_open(err: &reqwest_middleware::Error) -> Option<&CircuitOpen> {
    match err {
        reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<CircuitOpen>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

/// Whether `err` is a circuit-open rejection: nothing of the call left the client (with
/// [`RetryMiddleware`](crate::RetryMiddleware) in front, not even an earlier attempt: once an
/// attempt reached the upstream, the caller gets the upstream's last answer instead).
pub fn is_circuit_open(err: &reqwest_middleware::Error) -> bool {
    circuit_open(err).is_some()
}
