//! A reqwest client that reaches upstreams by the host names the code under test uses.

use crate::Upstream;
use std::net::SocketAddr;

/// A [`reqwest::ClientBuilder`] that sends each of these host names to its [`Upstream`], for
/// testing code that calls `http://api.spotify.com/…` without changing its URLs' hosts.
///
/// It sets:
///
/// - [`resolve`](reqwest::ClientBuilder::resolve) for each host: its name resolves to the
///   upstream's `127.0.0.1:PORT` (no DNS, so no blocking resolver thread either), and the
///   request keeps its `Host` header. A URL with no port (`http://api.spotify.com/v1/search`)
///   reaches the upstream's port; a URL with a port uses that port, so give it the upstream's
///   ([`url_for`] does).
/// - [`no_proxy`](reqwest::ClientBuilder::no_proxy): no `HTTP_PROXY` of the machine running
///   the tests takes the requests elsewhere.
/// - [`pool_idle_timeout(None)`](reqwest::ClientBuilder::pool_idle_timeout): an idle pooled
///   connection is never expired on a timer. reqwest's default (90 s) starts an interval
///   task in the pool; under `tokio::time::pause()` tokio jumps the paused clock to the next
///   timer whenever the runtime is idle, so that interval, and the expiry of connections it
///   stands for, would fire at arbitrary points of a test: a test that waits 100 s of paused
///   time would find its connection gone and a new one opened. Without it the pool has no
///   timer at all.
///
/// It sets no timeouts: reqwest has none by default, and a test that wants one adds it
/// ([`timeout`](reqwest::ClientBuilder::timeout), [`read_timeout`](reqwest::ClientBuilder::read_timeout)),
/// which then fires on tokio's clock against the upstream's delays and stalls. reqwest's own
/// retries of HTTP/2 protocol refusals stay as they are (the upstream never sends those).
///
/// A host not listed goes through DNS as usual. Schemes stay as they are: the upstream speaks
/// plain HTTP, so the code under test must be given `http://` URLs.
///
/// ```
/// use breakerbox_testing::{Reply, Upstream, client_for, url_for};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let spotify = Upstream::builder().script(Reply::ok("{}")).start().await;
/// let client = client_for([("api.spotify.com", &spotify)]).build().unwrap();
///
/// let response = client.get("http://api.spotify.com/v1/search?q=daft").send().await.unwrap();
/// assert_eq!(response.status(), 200);
/// client.get(url_for("api.spotify.com", &spotify, "/v1/me")).send().await.unwrap();
///
/// let seen = spotify.requests();
/// assert_eq!(seen[0].authority.as_deref(), Some("api.spotify.com"));
/// assert_eq!(seen[1].path, "/v1/me");
/// # }
/// ```
pub fn client_for<'a>(
    hosts: impl IntoIterator<Item = (&'a str, &'a Upstream)>,
) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None);
    for (host, upstream) in hosts {
        builder = builder.resolve(host, upstream.addr());
    }
    builder
}

/// `http://HOST:PORT/PATH`, with the upstream's port: the URL that a client from
/// [`client_for`] sends to that upstream under the host name `host`. A `/` is put in front of
/// `path` if it has none.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let upstream = breakerbox_testing::Upstream::builder().start().await;
/// let url = breakerbox_testing::url_for("api.spotify.com", &upstream, "/v1/search?q=daft");
/// let port = upstream.addr().port();
/// assert_eq!(url, format!("http://api.spotify.com:{port}/v1/search?q=daft"));
/// # }
/// ```
pub fn url_for(host: &str, upstream: &Upstream, path: &str) -> String {
    let addr: SocketAddr = upstream.addr();
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{host}:{}{slash}{path}", addr.port())
}
