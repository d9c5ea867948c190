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
//!
//! [`Peak`] is a global allocator that keeps the process's live heap bytes and their high-water
//! mark, for the tests that prove memory stays bounded ([`heap_bytes`], [`peak_heap_bytes`],
//! [`reset_peak_heap`]); [`peak_rss_bytes`] reads the kernel's high-water mark of the resident
//! set.
#![allow(unsafe_code)] // the allocator; it only forwards to the system allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A global allocator that forwards to [`System`] and keeps, for the whole process, the bytes
/// currently allocated and the most ever allocated at once (since [`reset_peak_heap`]). Two
/// relaxed atomic operations per allocation: fine for tests, not for benchmarks.
#[derive(Debug)]
pub struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees are ours; the bookkeeping only touches two static atomics and never allocates.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above; `ptr` came from this allocator, hence from `System`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        moved
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
}

/// The heap bytes allocated right now. Counts only in a binary whose global allocator is
/// [`Peak`]; elsewhere it reads 0.
pub fn heap_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The most heap bytes allocated at once since the last [`reset_peak_heap`] (or the start).
pub fn peak_heap_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new high-water mark from the bytes allocated now.
pub fn reset_peak_heap() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The resident set's high-water mark of this process (`VmHWM` in `/proc/self/status`), where
/// the kernel reports it (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
