//! Test support shared by the breakerbox crates.
//!
//! `drop_first_connection` (feature `net`) is a loopback server for the "connection closed before the
//! response" case. [`Counting`] is a global allocator that counts the allocations of the threads that ask it to,
//! for the tests that prove a hot path allocates nothing:
//!
//! ```text
//! #[global_allocator]
//! static GLOBAL: breakerbox_testing::Counting = breakerbox_testing::Counting;
//!
//! assert_eq!(breakerbox_testing::allocations_in(|| hot_path()), 0);
//! ```
#![allow(unsafe_code)] // the allocator; it only forwards to the system allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[cfg(feature = "net")]
pub use net::drop_first_connection;

#[cfg(feature = "net")]
mod net {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A raw HTTP/1.1 server on 127.0.0.1, spawned on the current tokio runtime: it drops its
    /// first connection as soon as the request arrives (no response head at all) and answers
    /// `200 OK` on every later one. Returns its address and a count of the connections it accepted.
    pub async fn drop_first_connection() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    if n > 0 {
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                });
            }
        });
        (addr, connections)
    }
}

/// A global allocator that forwards to [`System`] and counts the allocations made inside
/// [`allocations_in`] on the calling thread.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not count each other's allocations.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees are ours; the bookkeeping touches only const-initialised thread-locals, which do
// not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above; `ptr` came from this allocator, hence from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The allocations this thread makes while `f` runs. Counts only in a binary whose global
/// allocator is [`Counting`]; elsewhere it reads 0, so pair it with a check that it counts
/// (allocate a `Vec` and expect at least one).
pub fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}
