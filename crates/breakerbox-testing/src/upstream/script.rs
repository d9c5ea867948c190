//! What an [`Upstream`](super::Upstream) answers: a [`Reply`] per request, chosen by a
//! [`Script`].

use super::Recorded;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The answer to one request: a response (status, headers, body, trailers), possibly late,
/// slow or broken, or a connection fault instead of any response.
///
/// Build one with a constructor ([`status`](Reply::status), [`ok`](Reply::ok),
/// [`redirect`](Reply::redirect), or a connection fault: [`reset`](Reply::reset),
/// [`close`](Reply::close), [`garbage`](Reply::garbage)) and refine it with the methods that
/// take `self`:
///
/// ```
/// use breakerbox_testing::Reply;
/// use std::time::Duration;
///
/// let throttled = Reply::status(429).retry_after(Duration::from_secs(2));
/// let late = Reply::ok(r#"{"items":[]}"#)
///     .header("content-type", "application/json")
///     .delay(Duration::from_secs(3));
/// let cut = Reply::ok("0123456789").truncate_after(4);
/// # drop((throttled, late, cut));
/// ```
///
/// # HTTP/1.1 and HTTP/2
///
/// Every reply works on both protocols. On HTTP/1.1 the upstream writes the bytes itself, so
/// each fault is exactly what its method says. HTTP/2 (h2c, prior knowledge) goes through
/// hyper, where some faults have their nearest HTTP/2 form instead; each method says which.
/// In short:
///
/// | reply | HTTP/1.1 | HTTP/2 |
/// | --- | --- | --- |
/// | [`reset`](Reply::reset), [`close`](Reply::close) | this request's connection | the whole connection, every stream on it |
/// | [`garbage`](Reply::garbage) | bytes instead of the response head | bytes instead of the next frame, on the whole connection |
/// | [`truncate_after`](Reply::truncate_after) | fewer bytes than `Content-Length`, then the connection closes | fewer bytes, then (100 ms later) the stream is reset (`RST_STREAM`) |
/// | [`trailers`](Reply::trailers) | a chunked body with a trailer section | a trailing `HEADERS` frame |
#[derive(Clone, Debug)]
pub struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    pub(crate) delay: Duration,
    pub(crate) pace: Option<(usize, Duration)>,
    pub(crate) body_fault: Option<BodyFault>,
    pub(crate) fault: Option<Fault>,
    pub(crate) trailers: Vec<(HeaderName, HeaderValue)>,
}

/// How a body goes wrong after the head was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFault {
    /// Send this many bytes, then nothing more, with the connection left open.
    Stall(usize),
    /// Send this many bytes, then close the connection (HTTP/2: reset the stream).
    Truncate(usize),
}

/// A connection fault that replaces the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Reset,
    Close,
    Garbage(Bytes),
}

impl Reply {
    /// A response with this status, no headers of its own and an empty body. A 1xx status makes
    /// no final response: on HTTP/1.1 it is sent with nothing after it, so the client goes on
    /// waiting; on HTTP/2 the client sees a protocol error. 204 and 304 are sent without
    /// `Content-Length` or body.
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn status(status: u16) -> Reply {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("{status} is not an HTTP status code (100..=999)"));
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
            pace: None,
            body_fault: None,
            fault: None,
            trailers: Vec::new(),
        }
    }

    /// `200 OK` with this body (`&'static str`, `String`, `Vec<u8>`, `Bytes`…).
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply::status(200).body(body)
    }

    /// A redirect: this status (301, 302, 303, 307, 308…) and a `Location` header, either a
    /// path on the same upstream (`"/moved"`) or a whole URL (another upstream's
    /// [`url`](super::Upstream::url)).
    ///
    /// # Panics
    ///
    /// If `status` is not a status code or `location` is not a valid header value.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).header("location", location)
    }

    /// The connection is reset (a TCP RST) as soon as the request has arrived: no response
    /// head. A client sees "connection reset by peer".
    ///
    /// On HTTP/2 the whole connection is reset, so every stream on it fails.
    pub fn reset() -> Reply {
        Reply::status(200).fault(Fault::Reset)
    }

    /// The connection is closed (a TCP FIN) as soon as the request has arrived: no response
    /// head. A client sees the connection closed before the message completed.
    ///
    /// On HTTP/2 the whole connection is closed, so every stream on it fails.
    pub fn close() -> Reply {
        Reply::status(200).fault(Fault::Close)
    }

    /// These bytes instead of a response, then the connection closes. Bytes that cannot start
    /// an HTTP/1.1 status line (`b"\x00\x01\x02 not http"`) make a client fail to parse the
    /// response; a line like `"HTTP/1.1 200 OK\r\n"` with no end of head makes it wait for the
    /// rest, then see the connection close.
    ///
    /// On HTTP/2 the bytes are written where the next frame would go, after whatever frames
    /// the connection has already sent, and the connection closes: every stream on it fails.
    pub fn garbage(bytes: impl Into<Bytes>) -> Reply {
        Reply::status(200).fault(Fault::Garbage(bytes.into()))
    }

    fn fault(mut self, fault: Fault) -> Reply {
        self.fault = Some(fault);
        self
    }

    /// Adds a header. Headers keep their order, and a name given twice is sent twice.
    /// `Content-Length` is added for you from the body unless you set it (or
    /// `Transfer-Encoding`) yourself, in which case yours is sent as it is, true or not.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name or `value` not a valid header value.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Reply {
        let (name, value) = (name.as_ref(), value.as_ref());
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("{name:?} is not a valid header name"));
        let value = HeaderValue::from_str(value)
            .unwrap_or_else(|_| panic!("{value:?} is not a valid value for header {name}"));
        self.headers.push((name, value));
        self
    }

    /// `Retry-After` in whole seconds (`Retry-After: 2`). A fraction of a second rounds up, so
    /// the client is never asked to wait less than `after`.
    pub fn retry_after(self, after: Duration) -> Reply {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.header("retry-after", secs.to_string())
    }

    /// `Retry-After` as an HTTP-date (`Retry-After: Sun, 06 Nov 1994 08:49:37 GMT`), see
    /// [`http_date`](crate::http_date).
    pub fn retry_after_date(self, at: SystemTime) -> Reply {
        self.header("retry-after", crate::http_date(at))
    }

    /// `Retry-After` as the HTTP-date `after` from now on the wall clock (the date is written
    /// when the reply is built, not when it is sent). An HTTP-date is calendar time, so this
    /// reads the system clock, which `tokio::time::pause()` does not stop; and it has whole
    /// seconds, so a client that compares it with its own clock may find up to a second less.
    pub fn retry_after_date_in(self, after: Duration) -> Reply {
        self.header("retry-after", crate::date::http_date_in(after))
    }

    /// Adds a header `x-breakerbox-padding` whose value is `len` bytes long, for a client's
    /// limits on the size of a response head (hyper's HTTP/1.1 client gives up at about
    /// 400 KiB, its HTTP/2 client at a 16 KiB header list).
    pub fn huge_header(mut self, len: usize) -> Reply {
        let value = HeaderValue::from_maybe_shared(Bytes::from(vec![b'a'; len]))
            .expect("ASCII letters make a valid header value");
        self.headers
            .push((HeaderName::from_static("x-breakerbox-padding"), value));
        self
    }

    /// The body (replaces any earlier one). `Content-Length` is its length, even where a body
    /// fault sends fewer bytes.
    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }

    /// Waits this long after the request has arrived before anything is sent (the response
    /// head, or the fault). On tokio's clock: under `tokio::time::pause()` the wait takes no
    /// real time.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// A slow body: sent `chunk_len` bytes at a time, each chunk after a wait of `gap` on
    /// tokio's clock (the head goes first, without waiting). A body of 10 bytes in chunks of 4
    /// with a gap of 1 s arrives in 3 chunks over 3 s.
    ///
    /// # Panics
    ///
    /// If `chunk_len` is 0.
    pub fn slow_body(mut self, chunk_len: usize, gap: Duration) -> Reply {
        assert!(
            chunk_len > 0,
            "a slow body needs chunks of at least one byte"
        );
        self.pace = Some((chunk_len, gap));
        self
    }

    /// The head promises the whole body (`Content-Length`) but only the first `sent` bytes
    /// follow; then nothing, with the connection left open until the client gives up (or the
    /// upstream is dropped). For a client's read or total timeout.
    pub fn stall_after(mut self, sent: usize) -> Reply {
        self.body_fault = Some(BodyFault::Stall(sent));
        self
    }

    /// The body ends early: the head promises the whole body (`Content-Length`), the first
    /// `sent` bytes follow, then the connection closes. A client sees an error while reading
    /// the body, after a successful head.
    ///
    /// On HTTP/2 the stream is reset (`RST_STREAM`, `INTERNAL_ERROR`) 100 ms (on tokio's
    /// clock) after the bytes, so that the client has taken the head before the reset comes
    /// (an HTTP/2 client that reads a head and a reset together reports only the reset); the
    /// connection stays up for other streams.
    pub fn truncate_after(mut self, sent: usize) -> Reply {
        self.body_fault = Some(BodyFault::Truncate(sent));
        self
    }

    /// Trailers after the body, the way gRPC sends its status
    /// (`.trailers([("grpc-status", "14")])`). On HTTP/2 a trailing `HEADERS` frame; on
    /// HTTP/1.1 the body is sent chunked (no `Content-Length`) with a trailer section.
    ///
    /// # Panics
    ///
    /// If a name or a value is not valid in a header.
    pub fn trailers<N, V>(mut self, trailers: impl IntoIterator<Item = (N, V)>) -> Reply
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        for (name, value) in trailers {
            let (name, value) = (name.as_ref(), value.as_ref());
            let name = HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|_| panic!("{name:?} is not a valid trailer name"));
            let value = HeaderValue::from_str(value)
                .unwrap_or_else(|_| panic!("{value:?} is not a valid value for trailer {name}"));
            self.trailers.push((name, value));
        }
        self
    }

    /// Whether the user set a header that frames the body.
    pub(crate) fn frames_itself(&self) -> bool {
        self.headers.iter().any(|(name, _)| {
            name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING
        })
    }

    /// Whether this status may carry a body (not 1xx, 204 or 304).
    pub(crate) fn has_body(&self) -> bool {
        !(self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED)
    }

    /// The bytes of the body that are really sent.
    pub(crate) fn sent_body(&self) -> Bytes {
        match self.body_fault {
            Some(BodyFault::Stall(n) | BodyFault::Truncate(n)) => {
                self.body.slice(..n.min(self.body.len()))
            }
            None => self.body.clone(),
        }
    }
}

type ScriptFn = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// Which [`Reply`] each request gets, by the order requests arrive in: a fixed sequence, or
/// a function of the request and its index (0 for the first request).
///
/// ```
/// use breakerbox_testing::{Reply, Script};
///
/// // Two failures, then success for ever.
/// let flaky = Script::sequence([Reply::status(503), Reply::status(503), Reply::ok("hi")]);
/// // Healthy, except on one path.
/// let broken_search = Script::from_fn(|req, _n| match req.path.starts_with("/v1/search") {
///     true => Reply::status(500),
///     false => Reply::ok("{}"),
/// });
/// # drop((flaky, broken_search));
/// ```
#[derive(Clone)]
pub struct Script(Arc<ScriptFn>);

impl Script {
    /// The same reply to every request.
    pub fn always(reply: Reply) -> Script {
        Script::from_fn(move |_, _| reply.clone())
    }

    /// The replies in order, one per request; the last one then answers every later request.
    ///
    /// # Panics
    ///
    /// If `replies` is empty.
    pub fn sequence(replies: impl IntoIterator<Item = Reply>) -> Script {
        let replies: Vec<Reply> = replies.into_iter().collect();
        assert!(!replies.is_empty(), "a sequence needs at least one reply");
        Script::from_fn(move |_, n| replies[n.min(replies.len() - 1)].clone())
    }

    /// The replies in order, one per request, over and over: request `n` gets reply
    /// `n % len`.
    ///
    /// # Panics
    ///
    /// If `replies` is empty.
    pub fn cycle(replies: impl IntoIterator<Item = Reply>) -> Script {
        let replies: Vec<Reply> = replies.into_iter().collect();
        assert!(!replies.is_empty(), "a cycle needs at least one reply");
        Script::from_fn(move |_, n| replies[n % replies.len()].clone())
    }

    /// A reply computed from the request and its index (`n`, the same as
    /// [`Recorded::index`]; 0 for the first request). It runs on the upstream's task, once per
    /// request, possibly on several threads at once; it should not block.
    pub fn from_fn(f: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Script {
        Script(Arc::new(f))
    }

    pub(crate) fn reply(&self, request: &Recorded) -> Reply {
        (self.0)(request, request.index)
    }
}

/// `200 OK` with an empty body, to every request.
impl Default for Script {
    fn default() -> Script {
        Script::always(Reply::status(200))
    }
}

impl From<Reply> for Script {
    fn from(reply: Reply) -> Script {
        Script::always(reply)
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script").finish_non_exhaustive()
    }
}
