//! Reading a connection's socket, for the fast path and for hyper alike: one `recvmsg` a read,
//! which also gives the kernel's count of the bytes it left in the receive queue (`TCP_INQ`,
//! set once on the listening socket and inherited by every connection). A read that leaves
//! nothing clears the socket's readiness, so the next wait goes to the poller instead of into a
//! second `recv` that only finds out that nothing came (a request costs one `recv`, as nginx's).
//!
//! A read that fills only part of its buffer does not prove the queue empty, which is what
//! tokio's own reads assume: TCP ends a read at the urgent mark (where a byte sent with
//! `MSG_OOB` was) with what follows still queued, and no new event comes for bytes already
//! there, so a client's request (or the rest of its head) would wait unread until the header
//! timeout. Here only the kernel's count clears readiness; without it (a kernel or a socket
//! without `TCP_INQ`), a read that leaves nothing is found out by the next one, as before.
//! The urgent byte itself is not part of the stream (no `SO_OOBINLINE`): the kernel drops it,
//! on every path alike, and the requests around it read as if it had never been sent.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use tokio::net::TcpStream;

/// The control message that carries the count (`TCP_CM_INQ` is the option's own number).
const TCP_CM_INQ: libc::c_int = libc::TCP_INQ;

/// Asks the kernel to report, with each read of a connection accepted on `listener` from now on,
/// how many bytes the read left. Without it, reads stay correct and cost a second `recv`.
pub fn count_unread(listener: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, and a pointer to an int of the length given, alive through
    // the call.
    let done = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INQ,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// One `recvmsg` of at most `len` bytes into `dst`: how many came, and whether the kernel said
/// that none are left.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes.
unsafe fn recv_counted(fd: libc::c_int, dst: *mut u8, len: usize) -> io::Result<(usize, bool)> {
    let mut iov = libc::iovec { iov_base: dst.cast(), iov_len: len };
    // Room for one control message with an int, aligned as `cmsghdr` is.
    let mut control = [0u64; 4];
    // SAFETY: an all-zero `msghdr` is a valid empty one; its pointers are set below to `iov` and
    // `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: `msg` describes `len` writable bytes at `dst` (the caller's promise) and the
    // control buffer above.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, 0) };
    let got = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let mut left = None;
    // SAFETY: the control messages the kernel wrote are walked with the libc macros, within
    // `msg_controllen`; the count is read unaligned from its message's data.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_TCP && (*c).cmsg_type == TCP_CM_INQ {
                left = Some(libc::CMSG_DATA(c).cast::<libc::c_int>().read_unaligned());
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    Ok((got, left == Some(0)))
}

/// Reads what the socket holds into `len` bytes at `dst` with one `recvmsg`, giving how many
/// (0 at the end of the stream); `WouldBlock` when nothing was there. The socket's readiness is
/// cleared when the kernel says the read left nothing (see the module header).
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes.
pub(super) unsafe fn read_raw(stream: &TcpStream, dst: *mut u8, len: usize) -> io::Result<usize> {
    let mut got = 0;
    let read = stream.try_io(tokio::io::Interest::READABLE, || {
        // SAFETY: the caller's promise on `dst`; the descriptor is the stream's, open while borrowed.
        let (n, emptied) = unsafe { recv_counted(stream.as_raw_fd(), dst, len) }?;
        got = n;
        if n > 0 && emptied { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(n) }
    });
    match read {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// [`read_raw`] into a slice.
#[cfg(test)]
fn read(stream: &TcpStream, dst: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the slice is valid for writes of its length.
    unsafe { read_raw(stream, dst.as_mut_ptr(), dst.len()) }
}

/// hyper's read of the connection: waits until the socket is readable, then [`read_raw`].
pub(super) fn poll_read(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    mut buf: hyper::rt::ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    loop {
        ready!(stream.poll_read_ready(cx))?;
        // SAFETY: `recvmsg` writes (so initialises) the bytes it reports and no others, and the
        // cursor is advanced by that many only.
        let read = unsafe {
            let dst = buf.as_mut();
            read_raw(stream, dst.as_mut_ptr().cast(), dst.len())
        };
        match read {
            Ok(n) => {
                // SAFETY: `n` bytes were written by the read just above.
                unsafe { buf.advance(n) };
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A connected pair over loopback: the client's std stream and the server's tokio one, on a
    /// listener that asks for the count (or not).
    async fn pair(counted: bool) -> (std::net::TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if counted {
            count_unread(&listener).unwrap();
        }
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, TcpStream::from_std(server).unwrap())
    }

    /// Sends `before`, one urgent byte, then `after` in one segment (corked), so that all of it
    /// is queued when the server reads.
    fn send_with_urgent(client: &std::net::TcpStream, before: &[u8], after: &[u8]) {
        let cork = |on: libc::c_int| {
            // SAFETY: a valid descriptor and an int option, alive through the call.
            let r = unsafe {
                libc::setsockopt(
                    client.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_CORK,
                    (&raw const on).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0);
        };
        cork(1);
        (&*client).write_all(before).unwrap();
        // SAFETY: one byte from a static, sent on a valid descriptor.
        let sent = unsafe { libc::send(client.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        (&*client).write_all(after).unwrap();
        cork(0);
    }

    /// Reads until `want` bytes came or the socket has nothing (its readiness was cleared, or
    /// its read found nothing), the way the fast path does: each read after the socket said it
    /// was readable.
    async fn read_all(stream: &TcpStream, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while got.len() < want {
                stream.readable().await.unwrap();
                let mut chunk = [0u8; 2048];
                match read(stream, &mut chunk) {
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the bytes after the urgent mark were never read: got {:?}",
            String::from_utf8_lossy(&got)
        );
        got
    }

    #[tokio::test]
    async fn the_bytes_after_an_urgent_byte_are_read_and_the_byte_dropped() {
        for counted in [true, false] {
            let (client, server) = pair(counted).await;
            let before = b"GET /feed.rss HTTP/1.1\r\nHo";
            let after = b"st: a\r\n\r\nGET /feed.atom HTTP/1.1\r\nHost: a\r\n\r\n";
            send_with_urgent(&client, before, after);
            let got = read_all(&server, before.len() + after.len()).await;
            assert_eq!(got, [&before[..], &after[..]].concat(), "counted: {counted}");
        }
    }

    #[tokio::test]
    async fn a_read_that_empties_the_queue_says_so() {
        let (client, server) = pair(true).await;
        (&client).write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        server.readable().await.unwrap();
        let mut chunk = [0u8; 2048];
        let fd = server.as_raw_fd();
        // SAFETY: the chunk is valid for writes of its length.
        let (n, emptied) = unsafe { recv_counted(fd, chunk.as_mut_ptr(), 4) }.unwrap();
        assert_eq!((n, emptied), (4, false));
        // SAFETY: as above.
        let (n, emptied) = unsafe { recv_counted(fd, chunk.as_mut_ptr(), chunk.len()) }.unwrap();
        assert_eq!((n, emptied), (14, true));
    }
}
