//! The fast path: a connection starts here, in a small loop of its own that reads request heads
//! into a buffer and answers, with a head made once per document and coding, only the requests
//! it understands completely; at the first thing it does not, the connection goes to hyper and
//! the router for the rest of its life, with the bytes already read (see `server`). A body of
//! the lengths where it pays (`SENDFILE`) goes by `sendfile` from the document's sealed file
//! (`site::Sealed`) once the document has been asked for a few times, any other from memory in
//! the `writev` of its head; a request costs one `recv` (see `read`).
//!
//! What it takes is what the hot path (`hot::take`) takes, by the same function, further
//! narrowed so that hyper would read the head exactly as this path does (`head::parse`): a head
//! that httparse (hyper's parser, with hyper's default settings) reads completely within
//! `http.max_head_bytes` and `http.max_headers`; `GET` or `HEAD`; HTTP/1.1; an origin-form path
//! of unreserved characters (no query, no percent-escape); exactly one `Host`; and only fields
//! from a short list that hyper does not act on (`Connection` only as `keep-alive`), each value
//! visible ASCII. Anything else (a body, `Expect`, `Upgrade`, `Transfer-Encoding`, HTTP/1.0, a field it
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
use std::task::{Poll, Waker};
use std::time::Duration;

use axum::http::header;
use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::AppState;
use super::conns::Ticket;
use super::head::{FIELDS, Parse, Store, parse};
use super::hot::{self, Taken};
use super::respond::encoded;
use super::routes::document_with;
use super::server::Phase;
use crate::config::HttpLimits;
use crate::site::{Encoding, Rendered, Sealed};

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
/// come from the configuration, as hyper writes them; and where in it `Cache-Control` goes (the
/// fields after it, `Vary: Accept` alone when the document has no other `Vary`, stay after it).
fn prebuilt(t: &Taken<'_>) -> (Bytes, usize) {
    let res = document_with(t.doc, t.enc, t.fresh, header::HeaderValue::from_static(""), None);
    let mut out = Vec::with_capacity(256);
    let status = res.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut cache_control = None;
    for (name, value) in res.headers() {
        if name == header::CACHE_CONTROL {
            cache_control = Some(out.len());
        } else {
            line(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let at = cache_control.unwrap_or(out.len());
    (Bytes::from(out), at)
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
    let (head, at) = t.doc.head(slot(t.enc, t.fresh), || prebuilt(&t));
    out.extend_from_slice(&head[..*at]);
    line(out, b"cache-control", t.cache_control.as_bytes());
    out.extend_from_slice(&head[*at..]);
    if let Some(links) = &t.links {
        line(out, b"link", links.as_bytes());
    }
    let body = if t.fresh { Body::Memory(Bytes::new()) } else { body(t.doc, t.enc) };
    // A 304 carries no length (to `HEAD` neither: see `server`); a `HEAD` carries the length of
    // the body it does not send.
    if !t.fresh {
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
    let mut store = Store::new();
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
    // The waker the phase's and the registry's futures and the sleep were last polled with.
    let mut registered: Option<Waker> = None;
    let hand = |buf: BytesMut, deadline, close| End::Hyper { rest: buf.freeze(), deadline, close };
    loop {
        while !buf.is_empty() {
            // Stopping: the response in flight was sent; requests queued behind it are not
            // answered (as hyper does after its graceful shutdown). The phase is read (a lock
            // every connection shares) only once its version says it changed.
            if phase.has_changed().unwrap_or(true) && *phase.borrow() != Phase::Serving {
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
            // Once polled, the phase's and the registry's futures and the sleep hold this task's
            // waker and wake it when they are ready. So at a wake-up they are polled again only
            // when a flag of theirs says they may be ready (the phase's version, the registry's
            // request, the sleep gone off) or the task's waker is another: polling them costs a
            // lock each (the phase's shared by every connection), and nearly every wake-up is
            // the socket's.
            let first = registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker()));
            if first {
                registered = Some(cx.waker().clone());
            }
            if (first || phase.has_changed().unwrap_or(true)) && changed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Phase);
            }
            if (first || ticket.close_asked()) && close.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Close);
            }
            // One sleep per connection, set to a later deadline only when it goes off first.
            let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if first || sleep.is_elapsed() {
                while sleep.as_mut().poll(cx).is_ready() {
                    if sleep.deadline() >= deadline {
                        return Poll::Ready(Woken::Deadline);
                    }
                    sleep.as_mut().reset(deadline);
                }
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

/// Reads what the socket holds onto the end of `buf` (into its free room, at least `BUF`
/// bytes), with one `recv` (`recv::read_raw`: the socket's readiness cleared when the kernel
/// says the read left nothing), giving how many bytes.
fn read(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(BUF);
    let room = buf.spare_capacity_mut();
    // SAFETY: the free room is valid for writes of its length.
    let got = unsafe { super::recv::read_raw(stream, room.as_mut_ptr().cast(), room.len()) }?;
    // SAFETY: the read wrote (so initialised) `got` bytes of the free room, right after the
    // buffer's bytes.
    unsafe { buf.set_len(buf.len() + got) };
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
/// a head alone (a 304, an answer to `HEAD`) by one `send`, which costs the kernel less than a
/// `writev`; head and a body in memory by one `writev`; a head before a sealed body with
/// `MSG_MORE` (its last bytes wait for the body's first, as one segment), the sealed body by
/// `sendfile`.
fn write_from(stream: &TcpStream, head: &[u8], body: &Body, sent: usize) -> io::Result<usize> {
    let file = match body {
        Body::Memory(body) if body.is_empty() => return stream.try_write(&head[sent..]),
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
