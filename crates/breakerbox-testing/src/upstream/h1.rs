//! HTTP/1.x, served by hand: request heads parsed with `httparse`, responses written byte by
//! byte, so that a reply can break the protocol where hyper would refuse to (a body shorter
//! than its `Content-Length`, garbage instead of a head, a reset).

use super::script::{BodyFault, Fault, Reply};
use super::{Head, Shared};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A request head larger than this is refused (431).
const MAX_HEAD: usize = 1024 * 1024;
/// A request with more headers than this is refused (431).
const MAX_HEADERS: usize = 256;
/// A chunk-size line (or a trailer line) longer than this is malformed.
const MAX_LINE: usize = 8 * 1024;

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// Why a request could not be read.
enum ReadError {
    /// The connection ended, or failed.
    Gone,
    /// The client broke the protocol: answer this status and close.
    Refuse(u16),
}

/// How the request body is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// What to do with the connection after a response.
enum Next {
    KeepAlive,
    /// Close gracefully (FIN).
    Close,
    /// Drop the connection as it is (its linger is zero: a RST).
    Reset,
}

impl Conn {
    /// Reads more bytes into the buffer; `false` when the connection has ended.
    async fn fill(&mut self) -> bool {
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// A line ending in CRLF (or LF), without its ending.
    async fn line(&mut self) -> Result<Bytes, ReadError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(end + 1).freeze();
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReadError::Refuse(400));
            }
            if !self.fill().await {
                return Err(ReadError::Gone);
            }
        }
    }

    /// Writes every byte; `false` if the connection failed.
    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Waits until the client closes the connection (or it fails), discarding what it sends.
    async fn wait_for_close(&mut self) {
        let mut scratch = [0u8; 4096];
        while matches!(self.stream.read(&mut scratch).await, Ok(n) if n > 0) {}
    }
}

/// Serves the requests of one HTTP/1.x connection, whose first bytes are in `buf`.
pub(super) async fn serve(stream: TcpStream, buf: BytesMut, shared: &Shared, connection: usize) {
    let mut conn = Conn { stream, buf };
    loop {
        let (head, framing, keep_alive) = match read_head(&mut conn).await {
            Ok(Some(parsed)) => parsed,
            Ok(None) | Err(ReadError::Gone) => return,
            Err(ReadError::Refuse(status)) => return refuse(&mut conn, status).await,
        };
        let head_request = head.method == Method::HEAD;
        let expects_continue = head
            .headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if expects_continue
            && !matches!(framing, Framing::None | Framing::Length(0))
            && !conn.write(b"HTTP/1.1 100 Continue\r\n\r\n").await
        {
            return;
        }
        let mut body = BytesMut::new();
        let read = read_body(&mut conn, framing, &mut body).await;
        let reply = shared.record(head, body.freeze(), connection);
        match read {
            Ok(()) => {}
            Err(ReadError::Gone) => return,
            Err(ReadError::Refuse(status)) => return refuse(&mut conn, status).await,
        }
        match respond(&mut conn, &reply, head_request, keep_alive).await {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = conn.stream.shutdown().await;
                return;
            }
            Next::Reset => return,
        }
    }
}

/// Answers a request the upstream cannot read, and closes.
async fn refuse(conn: &mut Conn, status: u16) {
    let reason = match status {
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let response =
        format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    if conn.write(response.as_bytes()).await && conn.stream.shutdown().await.is_ok() {
        // Read what the client still sends (up to a limit) before the close: closing a socket
        // with unread bytes resets the connection, and the client could lose the answer.
        let mut scratch = [0u8; 8192];
        let mut drained = 0;
        while drained < MAX_HEAD {
            match conn.stream.read(&mut scratch).await {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
}

/// Reads the next request head: `None` if the connection ends cleanly between requests.
async fn read_head(conn: &mut Conn) -> Result<Option<(Head, Framing, bool)>, ReadError> {
    loop {
        // Blank lines between requests are allowed (RFC 9112 §2.2).
        while conn.buf.starts_with(b"\r\n") {
            conn.buf.advance(2);
        }
        while conn.buf.starts_with(b"\n") {
            conn.buf.advance(1);
        }
        if !conn.buf.is_empty() {
            let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&conn.buf) {
                Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
                    return Err(ReadError::Refuse(431));
                }
                Ok(httparse::Status::Complete(len)) => {
                    let parsed = owned_head(&request)?;
                    conn.buf.advance(len);
                    return Ok(Some(parsed));
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Refuse(431)),
                Err(_) => return Err(ReadError::Refuse(400)),
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(ReadError::Refuse(431));
            }
        }
        if !conn.fill().await {
            return if conn.buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Gone)
            };
        }
    }
}

/// The parsed head as owned values, with the body's framing and whether the connection may
/// stay open after the response.
fn owned_head(request: &httparse::Request<'_, '_>) -> Result<(Head, Framing, bool), ReadError> {
    let arrived = Instant::now();
    let bad = ReadError::Refuse(400);
    let method =
        Method::from_bytes(request.method.unwrap_or_default().as_bytes()).map_err(|_| bad)?;
    let path = request.path.unwrap_or_default().to_owned();
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name =
            HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| ReadError::Refuse(400))?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| ReadError::Refuse(400))?;
        headers.append(name, value);
    }

    let has_token = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let keep_alive = match version {
        Version::HTTP_10 => has_token(CONNECTION, "keep-alive"),
        _ => !has_token(CONNECTION, "close"),
    };
    let framing = if headers.contains_key(TRANSFER_ENCODING) {
        // Chunked must be the last coding; anything else cannot be framed (RFC 9112 §6.3).
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
            .map(<[u8]>::trim_ascii);
        match last {
            Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            _ => return Err(ReadError::Refuse(400)),
        }
    } else if headers.contains_key(CONTENT_LENGTH) {
        let mut lengths = headers.get_all(CONTENT_LENGTH).iter().map(|v| {
            std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        });
        let first = lengths.next().flatten().ok_or(ReadError::Refuse(400))?;
        if lengths.any(|n| n != Some(first)) {
            return Err(ReadError::Refuse(400));
        }
        Framing::Length(first)
    } else {
        Framing::None
    };
    let authority = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let head = Head {
        method,
        path,
        version,
        headers,
        authority,
        arrived,
    };
    Ok((head, framing, keep_alive))
}

/// Reads the request body into `body` (what arrived, if the connection ends early).
async fn read_body(
    conn: &mut Conn,
    framing: Framing,
    body: &mut BytesMut,
) -> Result<(), ReadError> {
    match framing {
        Framing::None => Ok(()),
        Framing::Length(len) => read_exact(conn, len, body).await,
        Framing::Chunked => loop {
            let line = conn.line().await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or(ReadError::Refuse(400))?;
            if size == 0 {
                // The trailer section, up to its empty line.
                while !conn.line().await?.is_empty() {}
                return Ok(());
            }
            read_exact(conn, size, body).await?;
            if !conn.line().await?.is_empty() {
                return Err(ReadError::Refuse(400));
            }
        },
    }
}

/// Moves `len` bytes from the connection into `body`, as they arrive (nothing is reserved
/// up front, whatever length the client claims).
async fn read_exact(conn: &mut Conn, len: u64, body: &mut BytesMut) -> Result<(), ReadError> {
    let mut left = len;
    loop {
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(conn.buf.len());
        body.extend_from_slice(&conn.buf.split_to(take));
        left -= take as u64;
        if left == 0 {
            return Ok(());
        }
        if !conn.fill().await {
            return Err(ReadError::Gone);
        }
    }
}

/// Sends the reply; says whether the connection may serve another request.
async fn respond(conn: &mut Conn, reply: &Reply, head_request: bool, keep_alive: bool) -> Next {
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    match &reply.fault {
        Some(Fault::Reset) => {
            // A zero linger makes the close that follows (the connection's drop) a RST.
            let _ = conn.stream.set_zero_linger();
            return Next::Reset;
        }
        Some(Fault::Close) => return Next::Close,
        Some(Fault::Garbage(bytes)) => {
            conn.write(bytes).await;
            return Next::Close;
        }
        None => {}
    }

    let body_allowed = reply.has_body();
    let chunked = body_allowed && !reply.trailers.is_empty() && !reply.frames_itself();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            reply.status.as_u16(),
            reply.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &reply.headers {
        push_field(&mut head, name, value);
    }
    if body_allowed && !reply.frames_itself() {
        if chunked {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else {
            head.extend_from_slice(format!("content-length: {}\r\n", reply.body.len()).as_bytes());
        }
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if !conn.write(&head).await {
        return Next::Close;
    }
    if head_request || !body_allowed {
        return if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        };
    }

    let sent = reply.sent_body();
    let pieces: Vec<Bytes> = match reply.pace {
        Some((chunk_len, _)) => (0..sent.len())
            .step_by(chunk_len)
            .map(|at| sent.slice(at..(at + chunk_len).min(sent.len())))
            .collect(),
        None if sent.is_empty() => Vec::new(),
        None => vec![sent],
    };
    for piece in pieces {
        if let Some((_, gap)) = reply.pace {
            tokio::time::sleep(gap).await;
        }
        let written = if chunked {
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(&piece);
            framed.extend_from_slice(b"\r\n");
            conn.write(&framed).await
        } else {
            conn.write(&piece).await
        };
        if !written {
            return Next::Close;
        }
    }

    match reply.body_fault {
        Some(BodyFault::Stall(_)) => {
            conn.wait_for_close().await;
            Next::Close
        }
        Some(BodyFault::Truncate(_)) => Next::Close,
        None => {
            if chunked {
                let mut end = b"0\r\n".to_vec();
                for (name, value) in &reply.trailers {
                    push_field(&mut end, name, value);
                }
                end.extend_from_slice(b"\r\n");
                if !conn.write(&end).await {
                    return Next::Close;
                }
            }
            if keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            }
        }
    }
}

fn push_field(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}
