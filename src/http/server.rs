//! One TCP connection, served as HTTP/1.1 by hyper within the limits of [`HttpLimits`]. The
//! daemon owns the listening socket and decides how many connections run; this module turns one
//! accepted stream into requests for the router and back.
//!
//! Why hyper's HTTP/1 connection and not `hyper_util`'s auto (HTTP/1 + HTTP/2) builder: feed
//! readers, browsers and reverse proxies reach a cleartext server over HTTP/1.1 (browsers speak
//! HTTP/2 only over TLS, and TLS ends at a proxy in front, if anywhere). One protocol keeps every
//! limit in one place, avoids HTTP/2's own denial-of-service surface (stream resets, header
//! continuation floods, flow-control windows) and pulls in no extra crate. A client that opens
//! with the HTTP/2 preface gets its connection closed.
//!
//! The limits, each with the reason for its value:
//! - a complete request head within `header_timeout` of connecting or of the previous response
//!   (hyper's header timer, which starts whenever the connection waits for a head), so it is
//!   also the idle limit of kept-alive connections;
//! - a head of at most `max_head_bytes` (32 KiB by default: generous for any real client, as
//!   browsers send 1 to 2 KiB with cookies, and small enough that thousands of connections
//!   holding full heads stay within tens of MiB; 431 beyond), at most `max_headers` fields (100
//!   by default, up to which hyper parses them on the stack; 431 beyond), a request target of at
//!   most `max_url_bytes` (8 KiB by default, which fits a query with every filter at its limit;
//!   414, checked by the router's first layer);
//! - a response that cannot send a byte for `send_timeout` is abandoned (`Guarded`), so a
//!   client that stops reading cannot hold its connection for ever;
//! - request bodies are never read: hyper discards a small one and closes the connection after
//!   the response otherwise;
//! - a connection closes, once its response in progress is sent, when the registry of
//!   connections asks it to (through its ticket: the limit is near and it is idle), and a connection
//!   over its address's share is answered 503 and closed before it is served ([`Server::refuse`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower_service::Service;

use super::AppState;
use super::conns::Ticket;
use crate::config::HttpLimits;

/// hyper's per-connection read buffer stops growing at this, or just past the largest head
/// allowed when that is larger. hyper's default (about 400 KiB) would let each connection that
/// pipelines requests hold that much.
const MAX_BUFFER: usize = 64 * 1024;

/// The number of header fields hyper parses when it is given no limit.
const HYPER_MAX_HEADERS: usize = 100;

/// Where the server is in its life, sent to every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// Stopping: finish the request in progress, then close; idle connections close now.
    Draining,
    /// The grace period is over: close at once.
    Closing,
}

/// The router, the state its handlers share (for the hot path, `hot`) and the connection
/// settings, shared by every connection (cloning is cheap).
#[derive(Clone)]
pub struct Server {
    app: Router,
    state: AppState,
    h1: Arc<http1::Builder>,
    send_timeout: Duration,
    /// The fast path's limits (`fast`); `None` when every connection goes to hyper at once.
    fast: Option<super::fast::Limits>,
}

/// A request's answer: made at once by the hot path, or by the router.
enum Answer<F> {
    Ready(Response<Body>),
    Routed(F),
}

impl Server {
    pub fn new(state: AppState, limits: &HttpLimits) -> Server {
        let mut h1 = http1::Builder::new();
        // (hyper's `half_close` stays off: a client whose side is shut is taken as gone, so the
        // work for it stops, `work`; with it on, hyper could not tell a client that left.)
        h1.header_read_timeout(limits.header_timeout)
            .max_header_size(limits.max_head_bytes)
            .max_buf_size(MAX_BUFFER.max(limits.max_head_bytes + 8 * 1024));
        // hyper's own limit is the same number on a stack array it leaves uninitialised; any
        // other number is a vector it fills for every request (about 6 KiB at 100).
        if limits.max_headers != HYPER_MAX_HEADERS {
            h1.max_headers(limits.max_headers);
        }
        Server {
            app: super::router(state.clone()),
            state,
            h1: Arc::new(h1),
            send_timeout: limits.send_timeout,
            fast: Some(super::fast::Limits::of(limits)),
        }
    }

    /// The same server with every connection served by hyper from its first byte (the reference
    /// the fast path is compared with).
    #[cfg(test)]
    pub fn without_fast_path(mut self) -> Server {
        self.fast = None;
        self
    }

    /// Serves one connection until the client closes it, a limit ends it, `phase` says so, or
    /// the registry asks for it back through `ticket`. Handlers see the peer address as
    /// `ConnectInfo<SocketAddr>`. When the client goes away with a request in progress, hyper
    /// notices the end of the stream and the request is dropped.
    pub async fn serve(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        mut phase: watch::Receiver<Phase>,
        ticket: Ticket,
    ) {
        let ticket = Arc::new(ticket);
        let (mut rest, mut deadline, mut close) = (bytes::Bytes::new(), None, false);
        if let Some(limits) = &self.fast
            && *phase.borrow_and_update() == Phase::Serving
        {
            match super::fast::serve(&self.state, &mut stream, peer, &phase, &ticket, limits).await {
                super::fast::End::Closed => return,
                super::fast::End::Hyper { rest: r, deadline: d, close: c } => (rest, deadline, close) = (r, Some(d), c),
            }
        }
        let (app, state) = (self.app.clone(), self.state.clone());
        let marks = ticket.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = marks.busy();
            let answer = match super::hot::answer(&state, &req, peer.ip()) {
                Some(res) => Answer::Ready(res),
                None => {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    Answer::Routed(app.clone().call(req))
                }
            };
            async move {
                let mut res = match answer {
                    Answer::Ready(res) => res,
                    Answer::Routed(response) => response.await?,
                };
                // A 304 carries no length, to `HEAD` as to `GET` (RFC 9110 8.6: only the 200's
                // length may be sent; the router gives `HEAD` the empty body's 0).
                if res.status() == axum::http::StatusCode::NOT_MODIFIED {
                    res.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
                }
                drop(busy);
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        // Each connection keeps its header deadline with a timer of its own (`timer`).
        let mut h1 = http1::Builder::clone(&self.h1);
        h1.timer(super::timer::ConnTimer::new(deadline.map(tokio::time::Instant::into_std)));
        let conn = h1.serve_connection(Guarded::new(stream, self.send_timeout, rest), service);
        let mut conn = std::pin::pin!(conn);
        if close || *phase.borrow_and_update() != Phase::Serving {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                biased;
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        match std::error::Error::source(&e) {
                            Some(cause) => tracing::debug!(%peer, "connection closed: {e}: {cause}"),
                            None => tracing::debug!(%peer, "connection closed: {e}"),
                        }
                    }
                    return;
                }
                changed = phase.changed() => match changed.map(|()| *phase.borrow_and_update()) {
                    Ok(Phase::Serving) => {}
                    Ok(Phase::Draining) => conn.as_mut().graceful_shutdown(),
                    Ok(Phase::Closing) | Err(_) => return,
                },
                () = ticket.close_requested() => conn.as_mut().graceful_shutdown(),
            }
        }
    }
}

/// The answer to a connection past its address's share.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: 43\r\n\r\n\
too many connections from this address now\n";

impl Server {
    /// Answers a connection that is not served (its address holds its share of connections):
    /// 503, then close, without waiting for anything. What the client already sent is read
    /// first, so the close does not turn into a reset that could discard the answer.
    pub fn refuse(stream: TcpStream) {
        let mut sink = [0u8; 4096];
        for _ in 0..4 {
            match stream.try_read(&mut sink) {
                Ok(n) if n == sink.len() => continue,
                _ => break,
            }
        }
        let _ = stream.try_write(TOO_MANY);
        if let Ok(std) = stream.into_std() {
            let _ = std.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// The connection's socket, with a bound on how long a write may make no progress. The timer is
/// armed only when the socket's send buffer is full, so a response that goes out at once costs
/// one branch.
struct Guarded {
    io: TokioIo<TcpStream>,
    /// Bytes read before hyper took the connection (by the fast path), read first.
    rest: bytes::Bytes,
    send_timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the last write attempt found the socket full (the timer runs).
    stalled: bool,
}

impl Guarded {
    fn new(stream: TcpStream, send_timeout: Duration, rest: bytes::Bytes) -> Guarded {
        Guarded { io: TokioIo::new(stream), rest, send_timeout, timer: None, stalled: false }
    }

    /// Passes a ready result through (progress: the timer stops); on `Pending`, starts the timer
    /// if it is not running and fails once it expires.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = false;
            return poll;
        }
        let timeout = self.send_timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !self.stalled {
            timer.as_mut().reset(tokio::time::Instant::now() + timeout);
            self.stalled = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(stalled(timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error a response ends with when the client took nothing for `send_timeout`.
pub(super) fn stalled(send_timeout: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("the client read nothing for {} s", send_timeout.as_secs()))
}

impl hyper::rt::Read for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.rest.is_empty() {
            let n = self.rest.len().min(buf.remaining());
            buf.put_slice(&self.rest.split_to(n));
            return Poll::Ready(Ok(()));
        }
        // Not tokio's read, which takes a short read for an empty queue (see `recv`).
        super::recv::poll_read(self.io.inner(), cx, buf)
    }
}

impl hyper::rt::Write for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        // Without this, hyper would copy every body into its own buffer instead of handing the
        // cached bytes to writev.
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
