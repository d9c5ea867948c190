//! HTTP/2 with prior knowledge, through hyper. A connection fault is carried out by the
//! connection's task: it drops hyper's connection and takes the socket back to reset, close or
//! write garbage on it.

use super::script::{BodyFault, Fault, Reply};
use super::{Head, Shared};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

/// How long a truncated body waits after its bytes before its stream is reset.
pub(crate) const RESET_GAP: Duration = Duration::from_millis(100);

/// Serves one HTTP/2 connection whose first bytes (the preface, perhaps more) are in `read`.
pub(super) async fn serve(
    stream: TcpStream,
    read: BytesMut,
    shared: Arc<Shared>,
    connection: usize,
    stopped: watch::Receiver<()>,
) {
    let socket = Arc::new(Mutex::new(Some(stream)));
    let io = SharedIo {
        unread: read.freeze(),
        socket: socket.clone(),
    };
    let (faults, mut fault) = mpsc::unbounded_channel::<Fault>();
    let service = hyper::service::service_fn(move |request| {
        answer(request, shared.clone(), connection, faults.clone())
    });
    let fault = {
        let served = hyper::server::conn::http2::Builder::new(Exec { stopped })
            .serve_connection(TokioIo::new(io), service);
        let mut served = pin!(served);
        tokio::select! {
            _ = &mut served => None,
            Some(fault) = fault.recv() => Some(fault),
        }
        // hyper's connection is dropped here; the socket stays, in `socket`.
    };
    let Some(fault) = fault else { return };
    let Some(mut stream) = super::lock(&socket).take() else {
        return;
    };
    match fault {
        // A zero linger makes the drop a RST.
        Fault::Reset => drop(stream.set_zero_linger()),
        Fault::Close => drop(stream.shutdown().await),
        Fault::Garbage(bytes) => {
            if stream.write_all(&bytes).await.is_ok() {
                let _ = stream.shutdown().await;
            }
        }
    }
}

/// One request: read, recorded, answered.
async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    connection: usize,
    faults: mpsc::UnboundedSender<Fault>,
) -> Result<Response<ReplyBody>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = read_all(body).await;
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            let host = parts.headers.get(HOST)?.to_str().ok()?;
            Some(host.to_owned())
        });
    let head_request = parts.method == Method::HEAD;
    let head = Head {
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        method: parts.method,
        version: parts.version,
        headers: parts.headers,
        authority,
        arrived,
    };
    let reply = shared.record(head, body, connection);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(fault) = reply.fault.clone() {
        // The connection's task drops the connection, and this future with it.
        let _ = faults.send(fault);
        std::future::pending::<()>().await;
    }
    Ok(response(&reply, head_request))
}

/// The request body, or what arrived of it.
async fn read_all(body: Incoming) -> Bytes {
    let mut body = pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(Ok(frame)) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    bytes.freeze()
}

fn response(reply: &Reply, head_request: bool) -> Response<ReplyBody> {
    let body_allowed = reply.has_body();
    let body = if head_request || !body_allowed {
        ReplyBody::empty()
    } else {
        ReplyBody::new(reply)
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    for (name, value) in &reply.headers {
        headers.append(name.clone(), value.clone());
    }
    if body_allowed && !reply.frames_itself() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(reply.body.len()));
    }
    response
}

/// How a response body ends once its bytes are sent.
enum End {
    /// Cleanly, with these trailers if any.
    Complete(Option<HeaderMap>),
    /// Never.
    Stall,
    /// With an error: hyper resets the stream.
    Truncate,
    /// Already ended.
    Done,
}

/// A response body that can be slow, stall or end early.
pub(crate) struct ReplyBody {
    unsent: Bytes,
    pace: Option<(usize, Duration)>,
    gap: Option<Pin<Box<Sleep>>>,
    end: End,
}

impl ReplyBody {
    fn empty() -> ReplyBody {
        ReplyBody {
            unsent: Bytes::new(),
            pace: None,
            gap: None,
            end: End::Complete(None),
        }
    }

    fn new(reply: &Reply) -> ReplyBody {
        let end = match reply.body_fault {
            Some(BodyFault::Stall(_)) => End::Stall,
            Some(BodyFault::Truncate(_)) => End::Truncate,
            None if reply.trailers.is_empty() => End::Complete(None),
            None => End::Complete(Some(reply.trailers.iter().cloned().collect())),
        };
        ReplyBody {
            unsent: reply.sent_body(),
            pace: reply.pace,
            gap: None,
            end,
        }
    }
}

/// The error that ends a truncated body (hyper answers it with `RST_STREAM`).
#[derive(Debug)]
pub(crate) struct Truncated;

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reply's body was truncated on purpose")
    }
}

impl std::error::Error for Truncated {}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Truncated;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Truncated>>> {
        let this = self.get_mut();
        if !this.unsent.is_empty() {
            let len = match this.pace {
                Some((chunk_len, gap)) => {
                    let wait = this
                        .gap
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
                    ready!(wait.as_mut().poll(cx));
                    this.gap = None;
                    chunk_len.min(this.unsent.len())
                }
                None => this.unsent.len(),
            };
            return Poll::Ready(Some(Ok(Frame::data(this.unsent.split_to(len)))));
        }
        if let End::Truncate = this.end {
            // hyper writes the head, the data and the reset together; a client that reads
            // them together reports the reset instead of the head. So the reset waits a
            // moment (on tokio's clock) for the client to take the head.
            let wait = this
                .gap
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(RESET_GAP)));
            ready!(wait.as_mut().poll(cx));
            this.end = End::Done;
            return Poll::Ready(Some(Err(Truncated)));
        }
        match std::mem::replace(&mut this.end, End::Done) {
            End::Complete(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            // (A truncated body was handled above.)
            End::Complete(None) | End::Done | End::Truncate => Poll::Ready(None),
            End::Stall => {
                // Nothing will ever wake this: the stream waits until the client resets it
                // or the connection goes.
                this.end = End::Stall;
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.unsent.is_empty() && matches!(self.end, End::Complete(None) | End::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The socket, shared between hyper (which reads and writes through it) and the connection's
/// task (which takes it back for a fault), behind the bytes already read from it.
struct SharedIo {
    unread: Bytes,
    socket: Arc<Mutex<Option<TcpStream>>>,
}

fn taken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was taken for a fault",
    )
}

impl AsyncRead for SharedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let len = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread.split_to(len));
            return Poll::Ready(Ok(()));
        }
        match super::lock(&this.socket).as_mut() {
            Some(stream) => Pin::new(stream).poll_read(cx, buf),
            None => Poll::Ready(Err(taken())),
        }
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match super::lock(&self.socket).as_mut() {
            Some(stream) => Pin::new(stream).poll_write(cx, buf),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match super::lock(&self.socket).as_mut() {
            Some(stream) => Pin::new(stream).poll_flush(cx),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match super::lock(&self.socket).as_mut() {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Err(taken())),
        }
    }
}

/// Spawns hyper's per-stream tasks on tokio, each ended when the upstream stops.
#[derive(Clone)]
struct Exec {
    stopped: watch::Receiver<()>,
}

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let mut stopped = self.stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = future => {}
                _ = stopped.changed() => {}
            }
        });
    }
}
