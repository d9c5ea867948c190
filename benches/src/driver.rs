//! The one way every closed- and open-path case is driven: `poll_ready`, `call`, and polls of
//! the response future with a no-op waker, on the calling thread, with no runtime. Only the
//! middleware's own cost shows on top of the bare service.

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::Service;

/// The request of the closed- and open-path cases.
pub type Req = u64;

/// The upstream of every closed- and open-path case: a `tower::service_fn` answering at once,
/// `Ok` (or `Err(Failed)` when `fail`, to trip the peers that can only be tripped through their
/// service). One type for both, so that a peer's layer can wrap both.
pub fn upstream(
    fail: bool,
) -> impl Service<Req, Response = u64, Error = Failed, Future = Ready<Result<u64, Failed>>>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: Req| ready(if fail { Err(Failed) } else { Ok(req) }))
}

/// The upstream's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream failed")
    }
}

impl std::error::Error for Failed {}

/// Drives one call to completion and tells whether it succeeded. A service that is not ready,
/// or a future that is pending (a peer's lock taken by the other thread), is polled again.
#[inline]
pub fn drive<S: Service<Req>>(svc: &mut S, req: Req) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match svc.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => break,
            Poll::Ready(Err(_)) => return false,
            Poll::Pending => std::hint::spin_loop(),
        }
    }
    let mut future = pin!(svc.call(req));
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => return result.is_ok(),
            Poll::Pending => std::hint::spin_loop(),
        }
    }
}
