//! The physical-limit model: the least any circuit breaker must do per call, one state load and
//! one shared counter bump. Every breakerbox case is compared with what this adds to the bare
//! service.

use crate::driver::Req;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use tower::Service;

/// A wrapper doing one `AtomicU8` state load and one `AtomicU64::fetch_add` per call. Clones
/// share the state and the counter.
#[derive(Debug, Clone)]
pub struct Proxy<S> {
    inner: S,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    open: AtomicU8,
    calls: AtomicU64,
}

/// The proxy's rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

impl<S> Proxy<S> {
    /// A closed proxy around `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            shared: Arc::default(),
        }
    }

    /// Rejects every later call (of every clone).
    pub fn open(&self) {
        self.shared.open.store(1, Ordering::Release);
    }

    /// Calls admitted so far.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }
}

/// The proxy's response future: the inner one, or a rejection.
#[derive(Debug)]
pub enum ProxyFuture<F> {
    /// Admitted.
    Called(F),
    /// Rejected.
    Rejected(Ready<()>),
}

impl<S> Service<Req> for Proxy<S>
where
    S: Service<Req>,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = Result<S::Error, Rejected>;
    type Future = ProxyFuture<S::Future>;

    #[inline]
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Ok)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        if self.shared.open.load(Ordering::Acquire) != 0 {
            return ProxyFuture::Rejected(ready(()));
        }
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        ProxyFuture::Called(self.inner.call(req))
    }
}

impl<F, T, E> std::future::Future for ProxyFuture<F>
where
    F: std::future::Future<Output = Result<T, E>> + Unpin,
{
    type Output = Result<T, Result<E, Rejected>>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            ProxyFuture::Called(f) => std::pin::Pin::new(f).poll(cx).map(|r| r.map_err(Ok)),
            ProxyFuture::Rejected(_) => std::task::Poll::Ready(Err(Err(Rejected))),
        }
    }
}
