//! The service manager's protocols, without a dependency: readiness, reload, stop and watchdog
//! notifications (`sd_notify`: datagrams to `$NOTIFY_SOCKET`), socket activation (a listening
//! socket inherited as fd 3, `$LISTEN_FDS`/`$LISTEN_PID`), and the heartbeats the watchdog pings
//! depend on. Outside systemd (no `$NOTIFY_SOCKET`) every call here is a no-op.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::warn;

/// Where notifications go, if anywhere.
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
    pub(crate) fn from_env() -> Notifier {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return Notifier { socket: None } };
        let target = target.to_string_lossy().into_owned();
        let addr = if let Some(name) = target.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        } else {
            std::os::unix::net::SocketAddr::from_pathname(&target)
        };
        match (UnixDatagram::unbound(), addr) {
            (Ok(sock), Ok(addr)) => Notifier { socket: Some((sock, addr)) },
            (Err(e), _) | (_, Err(e)) => {
                warn!("NOTIFY_SOCKET {target:?} is unusable ({e}); not notifying the service manager");
                Notifier { socket: None }
            }
        }
    }

    /// Whether a service manager listens.
    pub(crate) fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one notification (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, ...).
    pub(crate) fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.socket
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            warn!("cannot notify the service manager: {e}");
        }
    }

    /// `RELOADING=1` with the monotonic time systemd asks for with `Type=notify-reload`.
    pub(crate) fn reloading(&self) {
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

/// Microseconds on `CLOCK_MONOTONIC`, the clock systemd compares reload times with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// The watchdog period systemd asks for (`$WATCHDOG_USEC`, for this process when
/// `$WATCHDOG_PID` is set). Pings should go out at half of it.
pub(crate) fn watchdog_period() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_string_lossy().parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The listening socket systemd passed (socket activation), if any: fd 3 when `$LISTEN_PID` is
/// this process and `$LISTEN_FDS` is at least 1. The variables are removed so children do not
/// inherit them. The socket must be a listening TCP socket (IPv4 or IPv6): a unit that passes a
/// Unix socket or a datagram socket is an error that says so.
///
/// # Safety
///
/// The process must have one thread: removing environment variables while another thread may
/// read the environment is undefined behaviour (the C library's `getenv` is not synchronised).
pub(crate) unsafe fn take_inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    const SD_LISTEN_FDS_START: i32 = 3;
    let ours = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let fds: i32 = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    if !ours || fds < 1 {
        return Ok(None);
    }
    debug_assert_eq!(threads(), Some(1), "the environment is changed while other threads run");
    // SAFETY: the caller guarantees that no other thread exists.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let fd = SD_LISTEN_FDS_START;
    // SAFETY: fcntl on a descriptor number; a descriptor that is not open gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let refuse =
        |what: &str| Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("fd 3 from systemd {what}")));
    match socket_option(fd, libc::SO_DOMAIN)? {
        libc::AF_INET | libc::AF_INET6 => {}
        libc::AF_UNIX => {
            return refuse(
                "is a Unix socket; clipfeed serves HTTP over TCP only (give ListenStream= a port or an address and port)",
            );
        }
        other => return refuse(&format!("is not a TCP socket (address family {other})")),
    }
    if socket_option(fd, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return refuse("is not a stream socket (use ListenStream=, not ListenDatagram=)");
    }
    if socket_option(fd, libc::SO_ACCEPTCONN)? == 0 {
        return refuse("is not a listening socket");
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 is an open listening TCP socket handed to this process, and nothing else
    // owns it: the variables that named it are gone.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// An integer socket option (`SOL_SOCKET` level) of a descriptor.
fn socket_option(fd: i32, option: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which is that large.
    let got =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, option, (&mut value as *mut libc::c_int).cast(), &mut len) };
    if got != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value)
}

/// The number of threads of this process (Linux, from `/proc`); `None` where it cannot be read.
pub(crate) fn threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// When a long-running thread last showed it is alive. The watchdog pings only while every
/// heartbeat is fresh, so a hung writer or watcher stops the pings and systemd restarts us.
/// Long jobs beat per file and per feed they handle, so a big reconcile counts as progress.
#[derive(Clone)]
pub struct Heartbeat {
    name: &'static str,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Heartbeat {
        let hb = Heartbeat { name, last: Arc::new(AtomicU64::new(0)), epoch: Instant::now() };
        hb.beat();
        hb
    }

    pub(crate) fn beat(&self) {
        self.last.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub(crate) fn age(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}

/// How often threads that wait for work beat anyway: every 2 s, or a quarter of the watchdog
/// period when that is shorter. Every thread must have beaten within one period at the same
/// moment for a ping to go out, so the beats must come well inside it.
pub(crate) fn beat_every() -> Duration {
    static EVERY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *EVERY.get_or_init(|| {
        let most = Duration::from_secs(2);
        watchdog_period().map_or(most, |p| (p / 4).clamp(Duration::from_millis(10), most))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // SAFETY: tests that touch NOTIFY_SOCKET run in this one test only.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        let n = Notifier::from_env();
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        assert!(n.enabled());
        n.notify("READY=1");
        n.reloading();
        let mut buf = [0u8; 256];
        let got = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"READY=1");
        let got = server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..got]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        assert!(text.split('=').next_back().unwrap().parse::<u64>().unwrap() > 0);
    }

    #[test]
    fn heartbeats_age() {
        let hb = Heartbeat::new("test");
        assert!(hb.age() < Duration::from_secs(1));
        assert_eq!(hb.name(), "test");
    }
}
