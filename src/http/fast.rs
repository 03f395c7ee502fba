//! The fast path: a connection starts here, in a small loop of its own that reads request heads
//! into a buffer and answers, with a head made once per document and coding, only the requests
//! it understands completely; at the first thing it does not, the connection goes to hyper and
//! the router for the rest of its life, with the bytes already read (see `server`). A body of
//! the lengths where it pays (`SENDFILE`) goes by `sendfile` from the document's sealed file
//! (`site::Sealed`) once the document has been asked for a few times, any other from memory in
//! the `writev` of its head; a request costs one `recv` (see `read`).
//!
//! What it takes is what the hot path (`hot::take`) takes, by the same function, further
//! narrowed so that hyper would read the head exactly as this path does: a head that httparse
//! (hyper's parser, with hyper's default settings) reads completely within `http.max_head_bytes`
//! and `http.max_headers`; `GET` or `HEAD`; HTTP/1.1; an origin-form path of unreserved
//! characters (no query, no percent-escape); exactly one `Host`; and only fields from a short
//! list that hyper does not act on (`Connection` only as `keep-alive`), each value visible
//! ASCII. Anything else (a body, `Expect`, `Upgrade`, `Transfer-Encoding`, HTTP/1.0, a field it
//! does not know, a private or missing feed, a browser, a peer behind a trusted proxy) is
//! hyper's. Every limit of `server` holds here as there: the head within `http.header_timeout`
//! (the deadline is carried over to hyper when it takes over mid-head), a response that sends
//! nothing for `http.send_timeout` abandoned, the drain (the connection closed once the
//! response in flight is sent), the registry's close request (handed to hyper when part of a
//! head is buffered, the connection closed when nothing is), the busy
//! mark, and the request metrics. Pipelined requests are answered in order; once the server
//! stops, those queued behind the response in flight are not (the connection closes).

use std::future::poll_fn;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::http::header::{self, HeaderName};
use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::AppState;
use super::conns::Ticket;
use super::hot::{self, Asked, Taken};
use super::negotiate::{Fields, text};
use super::respond::encoded;
use super::routes::document_with;
use super::server::Phase;
use crate::config::HttpLimits;
use crate::site::{Encoding, Rendered, Sealed};

/// The most header fields this path reads; a head with more is hyper's.
const FIELDS: usize = 32;

/// A connection's buffer at first.
const BUF: usize = 2048;

/// The limits of `server` this path keeps.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub header_timeout: Duration,
    pub max_head: usize,
    pub max_fields: usize,
    pub send_timeout: Duration,
}

impl Limits {
    pub fn of(l: &HttpLimits) -> Limits {
        Limits {
            header_timeout: l.header_timeout,
            max_head: l.max_head_bytes,
            max_fields: l.max_headers.min(FIELDS),
            send_timeout: l.send_timeout,
        }
    }
}

/// A request head this path takes (see the module header).
pub(super) struct Head<'h, 'b> {
    head: bool,
    path: &'b str,
    fields: &'h [httparse::Header<'b>],
    /// The head's length in bytes.
    len: usize,
}

/// What a buffer holds.
pub(super) enum Parse<'h, 'b> {
    Take(Head<'h, 'b>),
    /// The beginning of a head that may still be taken.
    Partial,
    /// Anything else: hyper's.
    Other,
}

/// Whether a byte may appear in a path this path takes: unreserved characters, sub-delimiters,
/// `:`, `@` and `/` (RFC 3986), all of which `http::Uri` keeps as they are.
fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b)
}

/// Whether a field may be in a head this path takes: one it reads, or one neither hyper nor the
/// router reads. `Host` is counted apart.
fn known_field(f: &httparse::Header<'_>) -> bool {
    const KNOWN: [&str; 11] = [
        "accept",
        "accept-encoding",
        "accept-language",
        "if-none-match",
        "if-modified-since",
        "user-agent",
        "cache-control",
        "pragma",
        "referer",
        "dnt",
        "from",
    ];
    if text(f.value).is_none() {
        return false;
    }
    if f.name.eq_ignore_ascii_case("connection") {
        return f.value.eq_ignore_ascii_case(b"keep-alive");
    }
    KNOWN.iter().any(|k| f.name.eq_ignore_ascii_case(k))
}

/// Reads the head at the start of `buf` (see the module header).
pub(super) fn parse<'h, 'b>(
    buf: &'b [u8],
    store: &'h mut [httparse::Header<'b>; FIELDS],
    limits: &Limits,
) -> Parse<'h, 'b> {
    let mut req = httparse::Request::new(&mut store[..limits.max_fields]);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_head => len,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_head => return Parse::Partial,
        _ => return Parse::Other,
    };
    let head = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Parse::Other,
    };
    // Every line ends in CRLF: a bare LF, which httparse allows, is hyper's to judge.
    let crlf = buf[..len].iter().enumerate().all(|(i, &b)| b != b'\n' || (i > 0 && buf[i - 1] == b'\r'));
    let Some(path) = req.path.filter(|_| crlf) else { return Parse::Other };
    let path_ok = path.starts_with('/') && path.len() < usize::from(u16::MAX) - 1 && path.bytes().all(path_byte);
    if req.version != Some(1) || !path_ok {
        return Parse::Other;
    }
    let mut hosts = 0;
    for f in req.headers.iter() {
        if f.name.eq_ignore_ascii_case("host") && text(f.value).is_some() {
            hosts += 1;
        } else if !known_field(f) {
            return Parse::Other;
        }
    }
    if hosts != 1 {
        return Parse::Other;
    }
    Parse::Take(Head { head, path, fields: req.headers, len })
}

impl Fields for Head<'_, '_> {
    fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields.iter().filter(move |f| f.name.eq_ignore_ascii_case(name.as_str())).map(|f| f.value)
    }
}

impl Asked for Head<'_, '_> {
    fn head(&self) -> Option<bool> {
        Some(self.head)
    }

    fn plain_path(&self) -> Option<&str> {
        Some(self.path)
    }

    fn well_formed(&self, max_url: usize) -> bool {
        // One `Host` was required by `parse`.
        self.path.len() <= max_url
    }
}

/// The slot of a prebuilt head among a document's six (coding by freshness).
fn slot(enc: Encoding, fresh: bool) -> usize {
    let coding = match enc {
        Encoding::Identity => 0,
        Encoding::Gzip => 1,
        Encoding::Brotli => 2,
    };
    coding * 2 + usize::from(fresh)
}

/// The part of an answer's head that is the document's own: the status line and every field
/// the router's answer (`routes::document_with`) carries but `Cache-Control` and `Link`, which
/// come from the configuration, as hyper writes them.
fn prebuilt(t: &Taken<'_>) -> Bytes {
    let res = document_with(t.doc, t.enc, t.fresh, header::HeaderValue::from_static(""), None);
    let mut out = Vec::with_capacity(256);
    let status = res.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in res.headers() {
        if name != header::CACHE_CONTROL {
            line(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    Bytes::from(out)
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` value, formatted once a second per thread (as hyper does).
fn date(out: &mut Vec<u8>) {
    thread_local! {
        static NOW: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *text = httpdate::fmt_http_date(now);
            *at = secs;
        }
        line(out, b"date", text.as_bytes());
    });
}

/// Bodies of these lengths are sent by `sendfile` from a sealed file (`site::Sealed`). Below,
/// copying them into the socket costs less than a second system call; above, measured on
/// loopback, the kernel's work for a body of many single pages (more than the 16 of one pass of
/// `sendfile`'s pipe) costs more than the copy it saves (a 20 KB body: 6.6 us of CPU per
/// response copied, 5.4 us sent; a 98 KB body: 16.4-17.8 us copied, 17.9-24.3 us sent).
const SENDFILE: std::ops::Range<usize> = 8 * 1024..64 * 1024;

/// The body of an answer.
enum Body {
    Memory(Bytes),
    /// Sent by `sendfile`; the `Arc` keeps the file (the very bytes of this document) open until
    /// the answer is sent, whatever a publish does meanwhile.
    File(Arc<Sealed>),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Memory(b) => b.len(),
            Body::File(f) => f.len(),
        }
    }
}

/// The document's body in a coding: from its sealed file when it is long enough, else from
/// memory.
fn body(doc: &Rendered, enc: Encoding) -> Body {
    match doc.sealed(enc, SENDFILE, || encoded(doc, enc)) {
        Some(file) => Body::File(file),
        None => Body::Memory(encoded(doc, enc)),
    }
}

/// Writes the head of the answer into `out` and gives its body (empty for `HEAD` and 304),
/// with the status and the body's length for the metrics.
fn compose(out: &mut Vec<u8>, t: Taken<'_>) -> (Body, u16, u64) {
    out.clear();
    out.extend_from_slice(t.doc.head(slot(t.enc, t.fresh), || prebuilt(&t)));
    line(out, b"cache-control", t.cache_control.as_bytes());
    if let Some(links) = &t.links {
        line(out, b"link", links.as_bytes());
    }
    let body = if t.fresh { Body::Memory(Bytes::new()) } else { body(t.doc, t.enc) };
    // hyper's rules: a 304 carries no length unless it answers `HEAD` (the router's `0`); a
    // `HEAD` carries the length of the body it does not send.
    if !t.fresh || t.head {
        out.extend_from_slice(b"content-length: ");
        let _ = write!(out, "{}\r\n", body.len());
    }
    date(out);
    out.extend_from_slice(b"\r\n");
    let status = if t.fresh { 304 } else { 200 };
    if t.head {
        (Body::Memory(Bytes::new()), status, 0)
    } else {
        let len = body.len() as u64;
        (body, status, len)
    }
}

/// What one look at the buffer gives.
enum Step {
    /// Answered: the head's length (to drop from the buffer), and the body to send after `out`.
    Answer(usize, Body),
    Partial,
    Other,
}

/// Parses the head at the start of `buf` and, when this path takes it, writes its answer's head
/// into `out` and counts it.
fn step(state: &AppState, buf: &[u8], peer: SocketAddr, limits: &Limits, out: &mut Vec<u8>) -> Step {
    let mut store = [httparse::EMPTY_HEADER; FIELDS];
    let head = match parse(buf, &mut store, limits) {
        Parse::Take(head) => head,
        Parse::Partial => return Step::Partial,
        Parse::Other => return Step::Other,
    };
    match hot::take(state, &head, peer.ip(), |t| compose(out, t)) {
        Some((body, status, bytes)) => {
            hot::count(state, status, bytes);
            Step::Answer(head.len, body)
        }
        None => Step::Other,
    }
}

/// How the fast path ends.
pub(super) enum End {
    /// The connection is done (closed by the client, a limit, or the server stopping).
    Closed,
    /// hyper serves the rest: the bytes read and not answered, the deadline of the head they
    /// begin (or of the next one), and whether the registry asked the connection to close.
    Hyper { rest: Bytes, deadline: Instant, close: bool },
}

/// What ended a wait for the client's next bytes.
enum Woken {
    Readable(io::Result<()>),
    Phase,
    Close,
    Deadline,
}

/// Serves `stream` until the client closes it, a limit ends it, or hyper must take over (see the
/// module header).
pub(super) async fn serve(
    state: &AppState,
    stream: &mut TcpStream,
    peer: SocketAddr,
    phase: &watch::Receiver<Phase>,
    ticket: &Arc<Ticket>,
    limits: &Limits,
) -> End {
    let mut buf = BytesMut::with_capacity(BUF);
    let mut out = Vec::new();
    let mut deadline = Instant::now() + limits.header_timeout;
    let mut events = phase.clone();
    let mut changed = pin!(events.changed());
    let mut close = pin!(ticket.close_requested());
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    let hand = |buf: BytesMut, deadline, close| End::Hyper { rest: buf.freeze(), deadline, close };
    loop {
        while !buf.is_empty() {
            // Stopping: the response in flight was sent; requests queued behind it are not
            // answered (as hyper does after its graceful shutdown).
            if *phase.borrow() != Phase::Serving {
                linger(stream, phase, limits.header_timeout).await;
                return End::Closed;
            }
            match step(state, &buf, peer, limits, &mut out) {
                Step::Answer(len, body) => {
                    let busy = ticket.busy();
                    if let Err(e) = send(stream, &out, &body, phase, limits.send_timeout).await {
                        tracing::debug!(%peer, "connection closed: error writing a response: {e}");
                        return End::Closed;
                    }
                    drop(busy);
                    buf.advance(len);
                    deadline = Instant::now() + limits.header_timeout;
                }
                Step::Partial => break,
                Step::Other => return hand(buf, deadline, false),
            }
        }
        if buf.len() >= limits.max_head {
            return hand(buf, deadline, false);
        }
        let woken = poll_fn(|cx| {
            if changed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Phase);
            }
            if close.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Close);
            }
            // One sleep per connection, set to a later deadline only when it goes off first.
            let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            while sleep.as_mut().poll(cx).is_ready() {
                if sleep.deadline() >= deadline {
                    return Poll::Ready(Woken::Deadline);
                }
                sleep.as_mut().reset(deadline);
            }
            stream.poll_read_ready(cx).map(Woken::Readable)
        })
        .await;
        match woken {
            Woken::Readable(Ok(())) => {}
            Woken::Readable(Err(_)) => return End::Closed,
            Woken::Phase if *phase.borrow() != Phase::Serving => return End::Closed,
            Woken::Close if buf.is_empty() => return End::Closed,
            Woken::Close => return hand(buf, deadline, true),
            Woken::Phase | Woken::Deadline => return hand(buf, deadline, false),
        }
        match read(stream, &mut buf) {
            Ok(0) if buf.is_empty() => return End::Closed,
            Ok(0) => return hand(buf, deadline, false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return End::Closed,
        }
    }
}

/// Reads what the socket holds onto the end of `buf`, with one `recv` (`recv::read`: the
/// socket's readiness cleared when the kernel says the read left nothing), giving how many bytes.
fn read(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut chunk = [0u8; BUF];
    let got = super::recv::read(stream, &mut chunk)?;
    buf.extend_from_slice(&chunk[..got]);
    Ok(got)
}

/// Closes a connection whose client may still be sending: our side is shut first (so what was
/// sent arrives whole, then the end), and what the client still sends is read and dropped until
/// it closes too, for at most `wait` or until the server closes at once. Closing a socket with
/// unread bytes would reset it and could destroy responses the client has not read yet.
async fn linger(stream: &mut TcpStream, phase: &watch::Receiver<Phase>, wait: Duration) {
    use tokio::io::AsyncWrite;
    if poll_fn(|cx| Pin::new(&mut *stream).poll_shutdown(cx)).await.is_err() {
        return;
    }
    let until = tokio::time::sleep(wait);
    let mut until = pin!(until);
    let mut events = phase.clone();
    loop {
        tokio::select! {
            ready = stream.readable() => if ready.is_err() { return },
            () = &mut until => return,
            _ = events.wait_for(|p| *p == Phase::Closing) => return,
        }
        let mut sink = [0u8; BUF];
        match stream.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Sends `head` then `body`, giving up when the socket takes nothing for `send_timeout` or the
/// server closes at once.
async fn send(
    stream: &TcpStream,
    head: &[u8],
    body: &Body,
    phase: &watch::Receiver<Phase>,
    send_timeout: Duration,
) -> io::Result<()> {
    let mut sent = 0;
    let total = head.len() + body.len();
    while sent < total {
        match write_from(stream, head, body, sent) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let stalled = tokio::time::sleep(send_timeout);
                let mut events = phase.clone();
                tokio::select! {
                    ready = stream.writable() => ready?,
                    () = stalled => return Err(super::server::stalled(send_timeout)),
                    _ = events.wait_for(|p| *p == Phase::Closing) => return Err(io::ErrorKind::Interrupted.into()),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes the answer from its byte `sent` on with one system call, giving how many bytes went:
/// head and a body in memory by one `writev`; a head before a sealed body with `MSG_MORE` (its
/// last bytes wait for the body's first, as one segment), the sealed body by `sendfile`.
fn write_from(stream: &TcpStream, head: &[u8], body: &Body, sent: usize) -> io::Result<usize> {
    let file = match body {
        Body::Memory(body) => {
            let bufs = if sent < head.len() {
                [IoSlice::new(&head[sent..]), IoSlice::new(body)]
            } else {
                [IoSlice::new(&body[sent - head.len()..]), IoSlice::new(&[])]
            };
            return stream.try_write_vectored(&bufs);
        }
        Body::File(file) => file,
    };
    stream.try_io(tokio::io::Interest::WRITABLE, || {
        let socket = stream.as_raw_fd();
        let n = if let Some(rest) = head.get(sent..).filter(|r| !r.is_empty()) {
            // SAFETY: `send` reads at most `rest.len()` bytes of `rest`, alive through the call.
            unsafe { libc::send(socket, rest.as_ptr().cast(), rest.len(), libc::MSG_MORE | libc::MSG_NOSIGNAL) }
        } else {
            let from = sent - head.len();
            let mut offset = libc::off_t::try_from(from).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: both descriptors are open while borrowed; `offset` is a valid `off_t` that
            // `sendfile` reads and advances.
            unsafe { libc::sendfile(socket, file.fd(), &mut offset, file.len() - from) }
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    })
}

/// Reads `bytes` as the fast path does and, when it takes a head, checks that hyper and the
/// router would read the very same request: httparse with hyper's settings and field count
/// reads the same head, the method, target (`http::Uri`: the same path, no query), version,
/// field names and values are ones `http` accepts, no field that hyper acts on is there, one
/// `Host`, and each field the answer depends on has the same lines. Panics when not. For the
/// fuzz target (`fuzz/fuzz_targets/http_head.rs`) and the property tests.
pub fn check(bytes: &[u8]) {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};
    let limits = Limits {
        header_timeout: Duration::ZERO,
        max_head: 32 * 1024,
        max_fields: FIELDS,
        send_timeout: Duration::ZERO,
    };
    let mut store = [httparse::EMPTY_HEADER; FIELDS];
    let Parse::Take(head) = parse(bytes, &mut store, &limits) else { return };
    let mut fields = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut fields);
    assert_eq!(req.parse(bytes), Ok(httparse::Status::Complete(head.len)), "hyper reads the same head");
    let method = Method::from_bytes(req.method.expect("a method").as_bytes()).expect("a method hyper takes");
    assert!(method == Method::GET || method == Method::HEAD);
    assert_eq!(method == Method::HEAD, head.head);
    assert_eq!(req.version, Some(1));
    let uri: Uri = req.path.expect("a target").parse().expect("a target hyper takes");
    assert!(uri.scheme().is_none() && uri.authority().is_none() && uri.query().is_none());
    assert_eq!(uri.path(), head.path);
    let mut map = HeaderMap::new();
    for f in req.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).expect("a name hyper takes");
        let value = HeaderValue::from_bytes(f.value).expect("a value hyper takes");
        assert!(value.to_str().is_ok(), "visible ASCII");
        let acted_on = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::EXPECT, header::UPGRADE, header::TE];
        assert!(!acted_on.contains(&name), "{name} is hyper's");
        assert!(name != header::CONNECTION || value.as_bytes().eq_ignore_ascii_case(b"keep-alive"));
        map.append(name, value);
    }
    assert_eq!(map.get_all(header::HOST).iter().count(), 1);
    for name in
        [header::HOST, header::ACCEPT, header::ACCEPT_ENCODING, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE]
    {
        assert!(head.lines(&name).eq(map.lines(&name)), "{name}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits =
        Limits { header_timeout: Duration::ZERO, max_head: 1024, max_fields: 8, send_timeout: Duration::ZERO };

    fn taken(bytes: &[u8]) -> Option<(bool, String, usize)> {
        let mut store = [httparse::EMPTY_HEADER; FIELDS];
        match parse(bytes, &mut store, &LIMITS) {
            Parse::Take(h) => Some((h.head, h.path.to_string(), h.len)),
            Parse::Partial | Parse::Other => None,
        }
    }

    fn partial(bytes: &[u8]) -> bool {
        let mut store = [httparse::EMPTY_HEADER; FIELDS];
        matches!(parse(bytes, &mut store, &LIMITS), Parse::Partial)
    }

    #[test]
    fn only_plain_heads_are_taken() {
        let ok = b"GET /topics/ai.rss HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\nGET /";
        assert_eq!(taken(ok), Some((false, "/topics/ai.rss".into(), ok.len() - 5)));
        assert!(taken(b"HEAD /feed.rss HTTP/1.1\r\nhost: a\r\nconnection: Keep-Alive\r\n\r\n").unwrap().0);
        assert!(partial(b"GET /feed.rss HTTP/1.1\r\nHost: a\r\n"));
        assert!(partial(b"GET /feed.rs"));
        let long = format!("GET /feed.rss HTTP/1.1\r\nHost: a\r\nUser-Agent: {}\r\n\r\n", "x".repeat(1024));
        assert!(taken(long.as_bytes()).is_none() && !partial(&long.as_bytes()[..1030]), "past max_head");
        for other in [
            "GET /feed.rss HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET /feed.rss?x HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a%2e.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET http://a/feed.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            "get /feed.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /feed.rss HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nX-Other: 1\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nAccept: a\r\n b\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nAccept : a\r\n\r\n",
            "GET /feed.rss HTTP/1.1\nHost: a\n\n\u{1}",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nAccept: \u{e9}\r\n\r\n",
            "GET /feed.rss HTTP/1.1\r\nHost: a\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert!(taken(other.as_bytes()).is_none() && !partial(other.as_bytes()), "{other:?}");
            check(other.as_bytes());
        }
    }

    /// A head built from parts a fuzzer would try, with bytes changed here and there.
    fn heads() -> impl Strategy<Value = Vec<u8>> {
        let method = prop::sample::select(vec!["GET", "HEAD", "get", "POST", "GET  "]);
        let path = prop::sample::select(vec!["/feed.rss", "/topics/ai.rss", "/a?b", "/%41", "*", "/a b", "/\u{e9}"]);
        let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1"]);
        let name = prop::sample::select(vec![
            "Host",
            "host",
            "Accept",
            "Accept-Encoding",
            "If-None-Match",
            "Connection",
            "Content-Length",
            "Transfer-Encoding",
            "Expect",
            "X-A",
            "Host ",
            " Accept",
            "A\u{0}",
        ]);
        let value = prop::sample::select(vec!["a", "keep-alive", "close", "0", "gzip", "", " x ", "\u{7f}", "a\rb"]);
        let fields = prop::collection::vec((name, value), 0..6);
        let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3);
        (method, path, version, fields, prop::sample::select(vec!["\r\n", "\n"]), edits).prop_map(
            |(m, p, v, fields, eol, edits)| {
                let mut s = format!("{m} {p} {v}{eol}");
                for (n, val) in fields {
                    s.push_str(&format!("{n}: {val}{eol}"));
                }
                s.push_str(eol);
                let mut bytes = s.into_bytes();
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                bytes
            },
        )
    }

    proptest! {
        #[test]
        fn whatever_is_taken_hyper_reads_the_same(bytes in heads()) {
            check(&bytes);
        }

        #[test]
        fn any_bytes_are_taken_only_as_hyper_reads_them(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            check(&bytes);
        }
    }
}
