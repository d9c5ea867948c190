//! A scripted HTTP upstream on 127.0.0.1: HTTP/1.1 served by hand (so that it can break the
//! protocol on purpose), HTTP/2 with prior knowledge through hyper, on the same port.

mod h1;
mod h2;
pub(crate) mod script;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Version};
use script::{Reply, Script};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One request as the upstream received it, whatever it was answered (a fault included).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Recorded {
    /// Its place in arrival order: 0 for the first request the upstream received, then 1, 2…
    /// with no gaps, whatever the connection or protocol. A request counts once its head and
    /// body have been read, which is also when the [`Script`] is asked for its reply.
    pub index: usize,
    /// The method.
    pub method: Method,
    /// The path with its query, as the client sent it: `/v1/search?q=daft+punk`.
    pub path: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: Version,
    /// The headers, in the order received. On HTTP/2 the pseudo-headers are not among them:
    /// see [`authority`](Recorded::authority).
    pub headers: HeaderMap,
    /// The host (and port, if the client sent one) the client addressed: the `Host` header on
    /// HTTP/1.1, the `:authority` on HTTP/2.
    pub authority: Option<String>,
    /// The request body (empty if none; what arrived, if the client gave up half way).
    pub body: Bytes,
    /// When the request head arrived, on tokio's clock (paused time included).
    pub arrived: Instant,
    /// Which connection it came on: 0 for the first connection the upstream accepted, then 1,
    /// 2… So requests with the same number shared a connection.
    pub connection: usize,
}

impl Recorded {
    /// The first value of a header, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The path without its query: `/v1/search`.
    pub fn path_only(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }

    /// The query, without its `?`, if there is one: `q=daft+punk`.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }
}

/// A request head, before the request is recorded.
pub(crate) struct Head {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) authority: Option<String>,
    pub(crate) arrived: Instant,
}

/// What the upstream's tasks share with its handle.
struct Shared {
    script: Mutex<Script>,
    log: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
}

/// A poisoned lock only means a script panicked on another task; the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Records a request (its index is taken under the log's lock, so indexes are exact under
    /// any concurrency) and asks the script for its reply.
    fn record(&self, head: Head, body: Bytes, connection: usize) -> Reply {
        let request = {
            let mut log = lock(&self.log);
            let request = Recorded {
                index: log.len(),
                method: head.method,
                path: head.path,
                version: head.version,
                headers: head.headers,
                authority: head.authority,
                body,
                arrived: head.arrived,
                connection,
            };
            log.push(request.clone());
            request
        };
        let script = lock(&self.script).clone();
        script.reply(&request)
    }
}

/// A scripted HTTP server on `127.0.0.1` (a port of its own), for testing HTTP clients against
/// statuses, delays and faults that a real upstream produces only on a bad day.
///
/// It runs on the tokio runtime that [`UpstreamBuilder::start`] is called on, serves HTTP/1.1
/// and HTTP/2 with prior knowledge (h2c) on the same port, answers each request with the
/// [`Reply`] its [`Script`] picks, and records every request ([`requests`](Upstream::requests)),
/// including those answered with a fault. Dropping it stops the server: its listener and every
/// connection it holds are closed (see [`shutdown`](Upstream::shutdown) to wait for that).
///
/// ```
/// use breakerbox_testing::{Reply, Script, Upstream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let upstream = Upstream::builder()
///     .script(Script::sequence([Reply::status(503), Reply::ok("hi")]))
///     .start()
///     .await;
///
/// let client = reqwest::Client::new();
/// let url = upstream.url("/v1/search?q=daft");
/// assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
/// assert_eq!(client.get(&url).send().await.unwrap().text().await.unwrap(), "hi");
/// assert_eq!(upstream.hits(), 2);
/// assert_eq!(upstream.requests()[1].path, "/v1/search?q=daft");
/// # }
/// ```
///
/// Nothing a client does makes it panic: a malformed request gets `400 Bad Request` (a head
/// over 1 MiB or with more than 256 headers, `431`) and its connection is closed; a client
/// that goes away mid-request is recorded with what it sent.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<watch::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Builds an [`Upstream`]: [`Upstream::builder`], then [`script`](UpstreamBuilder::script),
/// then [`start`](UpstreamBuilder::start).
#[derive(Debug, Default)]
#[must_use = "an upstream builder does nothing until started"]
pub struct UpstreamBuilder {
    script: Script,
}

impl UpstreamBuilder {
    /// What to answer (by default `200 OK` with an empty body, every time). A [`Reply`] works
    /// too: the same reply to every request.
    pub fn script(mut self, script: impl Into<Script>) -> UpstreamBuilder {
        self.script = script.into();
        self
    }

    /// Binds `127.0.0.1:0` and spawns the server on the current tokio runtime. It is accepting
    /// connections once this returns.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start(self) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("breakerbox-testing: cannot bind a port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("breakerbox-testing: a bound listener has an address");
        let shared = Arc::new(Shared {
            script: Mutex::new(self.script),
            log: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(accept(listener, shared.clone(), stopped));
        Upstream {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Upstream {
    /// A builder; see [`Upstream`].
    pub fn builder() -> UpstreamBuilder {
        UpstreamBuilder::default()
    }

    /// The address it listens on: `127.0.0.1` and a port of its own.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a `/` is put in front if it has none):
    /// `upstream.url("/v1/search?q=daft")`.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// How many requests it has received so far (every one recorded, faults included).
    pub fn hits(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Every request received so far, in arrival order (`requests()[i].index == i`).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// How many connections it has accepted so far (whether or not a request came on them).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Replaces the script, from the next request on (indexes go on counting from where they
    /// are: a [`Script::sequence`] set now starts at the index of the next request, not at 0,
    /// so use [`Script::from_fn`] and subtract [`hits`](Upstream::hits) if that matters).
    pub fn set_script(&self, script: impl Into<Script>) {
        *lock(&self.shared.script) = script.into();
    }

    /// Stops the server and waits until its listener is closed: a connection attempt after
    /// this is refused. Its connections are closed too, as their tasks end (at once for
    /// any that is idle, waiting or stalled). Dropping the `Upstream` does the same without
    /// waiting.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .field("hits", &self.hits())
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

/// The accept loop. Each connection's task lives in a `JoinSet`, so that they all end with
/// this task (a stop signal, or its abort).
async fn accept(listener: TcpListener, shared: Arc<Shared>, stopped: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    let mut stop = stopped.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let n = shared.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve(stream, shared.clone(), n, stopped.clone()));
                }
                // Out of file descriptors, or a connection reset while queued: wait a little
                // (on tokio's clock, so paused time does not hang) and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            },
        }
    }
}

/// Reads the first bytes of a connection and hands it to the HTTP/2 server if they are the
/// HTTP/2 preface, to the HTTP/1.1 one otherwise.
async fn serve(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    connection: usize,
    stopped: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    while buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&buf) {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    if buf.starts_with(H2_PREFACE) {
        h2::serve(stream, buf, shared, connection, stopped).await;
    } else {
        h1::serve(stream, buf, &shared, connection).await;
    }
}
