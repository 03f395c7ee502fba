//! Overload (issue 12, points 5 and 6, and clients behind a proxy): costly filtered views must
//! not hold up views already made or archive pages; a view past its time budget is answered 503
//! with `Retry-After`; work for clients that have gone stops; one address cannot take every
//! connection, and idle connections make way for new clients near the limit; behind a trusted
//! proxy the forwarded client address is the one the access rules and limits see.
//!
//! Costly means what an attacker would send: a filter over a feed's whole history (`since`
//! 1970), 500 items, and phrases that make every request a new cache entry. Connections "from
//! another address" are bound to 127.0.0.2 before connecting, so the daemon sees two clients.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// A site of `n` clippings with excerpts and bodies long enough that a view of 500 of them
/// takes a while to make, and `extra` configuration.
fn crowded_site(n: usize, extra: &str) -> (Site, Daemon) {
    let site = Site::new();
    site.write_config(extra);
    let body = "Cranes, quays and containers, and the people who move them. ".repeat(60);
    for i in 0..n {
        let text = format!(
            "---\ntitle: \"Harbour report {i}\"\nexcerpt: \"Ships, cranes and berths on day {i} of the season\"\npublishedDateTime: 2025-{:02}-{:02}T10:{:02}:00Z\nwebUrl: https://overload.example/{i}\ntopics: [Ports]\n---\n{body}\n",
            1 + i % 12,
            1 + i % 28,
            i % 60
        );
        site.put(&format!("c{i}.md"), text);
    }
    let d = Daemon::start(&site);
    (site, d)
}

fn addr(d: &Daemon) -> SocketAddr {
    d.base.trim_start_matches("http://").trim_end_matches('/').parse().expect("the daemon's address")
}

/// A filter nobody asked for before (`n` makes it new): every item since 1970, 500 of them, and
/// twenty phrases to leave out that no clipping has.
fn costly(n: usize) -> String {
    let phrases: Vec<String> = (0..20).map(|j| format!("nothing{n}x{j}+like+this")).collect();
    format!("/feed.atom?since=1970-01-01T00:00:00Z&limit=500&exclude={}", phrases.join(","))
}

/// A TCP connection from `source` (a loopback address) to `to`.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(to) = to else { panic!("the daemon listens on IPv4 loopback") };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with well-formed IPv4 addresses; the
    // descriptor is handed to a TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(source, 0);
        let r = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "bind to {source}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*to.ip(), to.port());
        let r = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "connect from {source}: {}", std::io::Error::last_os_error());
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        stream
    }
}

/// Sends a GET of `target` that asks the server to close after answering, and reads the whole
/// answer: (status, the response as text). Status 0 when the server closed without a word.
fn fetch(mut s: TcpStream, target: &str, extra_headers: &str) -> (u16, String) {
    let request = format!("GET {target} HTTP/1.1\r\nHost: overload.test\r\nConnection: close\r\n{extra_headers}\r\n");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut bytes = Vec::new();
    match s.read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("GET {target}: no answer ({e})"),
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// A header's value in a response read by [`fetch`].
fn header(response: &str, name: &str) -> Option<String> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn local(d: &Daemon) -> TcpStream {
    connect_from(Ipv4Addr::LOCALHOST, addr(d))
}

/// Sends `targets`, each on its own connection and thread; each thread adds 1 to `done` once
/// its answer is in. The handles give (status, response).
fn send_all(d: &Daemon, targets: Vec<String>, done: &Arc<AtomicUsize>) -> Vec<std::thread::JoinHandle<(u16, String)>> {
    targets
        .into_iter()
        .map(|target| {
            let (stream, done) = (local(d), done.clone());
            std::thread::spawn(move || {
                let answer = fetch(stream, &target, "");
                done.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
        .collect()
}

#[test]
fn cached_views_and_archive_pages_do_not_wait_behind_costly_filters() {
    let (_site, d) = crowded_site(700, "items_per_feed: 10\nhttp:\n  view_timeout: 600\n");
    let cached = "/feed.atom?limit=5";
    assert_eq!(fetch(local(&d), cached, "").0, 200);
    // 48 costly filters at once, more than can be made side by side: most wait their turn.
    let n = 48;
    let done = Arc::new(AtomicUsize::new(0));
    let flood = send_all(&d, (0..n).map(costly).collect(), &done);
    // Once one is answered, the others have long been read and are waiting or being made.
    poll("the first costly filter to be answered", || (done.load(Ordering::SeqCst) >= 1).then_some(()));

    let (status, response) = fetch(local(&d), cached, "");
    let after_cached = done.load(Ordering::SeqCst);
    assert_eq!(status, 200, "{response}");
    // An archive page nobody asked for yet: it is made, but not behind the filters.
    let page = get(&d.url("/feed/archive/5-7.atom"), &[]);
    let after_archive = done.load(Ordering::SeqCst);
    assert_eq!(page.status, 200, "{}", page.text());
    eprintln!(
        "of {n} costly filters, {after_cached} were answered before the cached view, {after_archive} before the archive page"
    );
    let archived = feed_rs::parser::parse(&page.body[..]).expect("the archive page parses");
    assert_eq!(archived.entries.len(), 5);
    assert!(
        n - after_cached >= n / 4 && n - after_archive >= n / 4,
        "the cached view was answered after {after_cached} and the archive page after {after_archive} of {n} costly filters"
    );
    for t in flood {
        let (status, response) = t.join().unwrap();
        assert_eq!(
            status,
            200,
            "a costly filter within its budget is served: {}",
            &response[..response.len().min(300)]
        );
    }
}

#[test]
fn a_view_past_its_time_budget_gets_503_with_retry_after() {
    let (_site, d) = crowded_site(700, "http:\n  view_timeout: 1\n  max_connections_per_address: 10000\n");
    // Enough costly filters that making them one after the other takes four budgets or more.
    let started = Instant::now();
    let (first, _) = fetch(local(&d), &costly(0), "");
    let one = started.elapsed().max(Duration::from_millis(1));
    assert!(first == 200 || first == 503, "{first}");
    let n = (Duration::from_secs(4).as_millis() / one.as_millis()).clamp(8, 400) as usize;
    let done = Arc::new(AtomicUsize::new(0));
    let flood = send_all(&d, (1..=n).map(costly).collect(), &done);
    let answers: Vec<(u16, String)> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let refused: Vec<&String> = answers.iter().filter(|(s, _)| *s == 503).map(|(_, r)| r).collect();
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{:?}",
        answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert!(!refused.is_empty(), "{n} costly filters of about {one:?} each, with a budget of 1 s: none refused");
    for r in refused {
        let retry: u64 = header(r, "retry-after").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{r}"));
        assert!(retry >= 1, "{r}");
        assert_eq!(header(r, "cache-control").as_deref(), Some("no-store"), "{r}");
    }
    // Nothing is left running: the next requests are answered as usual.
    assert_eq!(fetch(local(&d), "/feed.atom", "").0, 200);
    assert_eq!(fetch(local(&d), "/feed.atom?limit=3", "").0, 200);
}

/// CPU time the process has used (user and system), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Waits until the process has used no CPU for half a second, and returns its CPU time then.
fn cpu_when_idle(pid: u32) -> u64 {
    let mut last = cpu_ticks(pid);
    poll("the daemon to be idle", || {
        std::thread::sleep(Duration::from_millis(500)); // the window over which idle is judged
        let now = cpu_ticks(pid);
        let idle = now == last;
        last = now;
        idle.then_some(now)
    })
}

#[test]
fn work_for_clients_that_have_gone_stops() {
    let (_site, d) = crowded_site(700, "http:\n  view_timeout: 600\n  max_connections_per_address: 10000\n");
    let pid = d.pid();
    // What one costly filter costs when someone waits for it.
    let before = cpu_when_idle(pid);
    for i in 0..3 {
        assert_eq!(fetch(local(&d), &costly(i), "").0, 200);
    }
    let one = ((cpu_when_idle(pid) - before) / 3).max(4);
    // Twelve costly filters, sent at once; the clients leave once the work is under way.
    let before = cpu_when_idle(pid);
    let clients: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut s = local(&d);
            let request = format!("GET {} HTTP/1.1\r\nHost: overload.test\r\n\r\n", costly(1000 + i));
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    poll("the daemon to start on them", || (cpu_ticks(pid) >= before + (one / 8).max(1)).then_some(()));
    drop(clients);
    let spent = cpu_when_idle(pid) - before;
    eprintln!("12 costly filters abandoned while being made: {spent} ticks of CPU; one answered: {one} ticks");
    assert!(spent < one, "the work went on after the clients left: {spent} ticks, one filter costs {one}");
    assert_eq!(fetch(local(&d), &costly(1), "").0, 200, "and a filter asked for is still made");
}

/// Raises this process's soft open-file limit to its hard limit; returns the limit in force.
fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read or write only the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Whether the server still holds a connection open (no answer, no close).
fn held(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!((&*s).read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

#[test]
fn thousands_of_idle_sockets_from_one_address_leave_another_answered() {
    let wanted = 5000;
    let files = raise_open_file_limit();
    let n = usize::try_from(files.saturating_sub(300)).unwrap_or(usize::MAX).min(wanted);
    if n < wanted {
        eprintln!("NOTICE: the open-file limit is {files}; opening {n} idle connections instead of {wanted}");
    }
    // Idle connections are held for a minute: longer than this test may wait.
    let (_site, d) = crowded_site(3, "http:\n  header_timeout: 60\n");
    let idle: Vec<TcpStream> = (0..n).map(|_| local(&d)).collect();
    // The other client is answered while the idle ones are held.
    let other = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr(&d));
    let (status, response) = fetch(other, "/feed.atom", "");
    assert_eq!(status, 200, "{response}");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let f = feed_rs::parser::parse(body.as_bytes()).expect("the feed parses");
    assert_eq!(f.entries.len(), 3);
    // The first connections are still held: the other client did not wait for them to go.
    let still_held = idle.iter().take(100).filter(|s| held(s)).count();
    assert_eq!(still_held, 100.min(n), "idle connections were closed before the other client was answered");
    // Past its share, the address is told so.
    if n > 256 {
        let mut last = idle.into_iter().last().unwrap();
        let mut text = String::new();
        let _ = last.read_to_string(&mut text);
        assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
        assert!(header(&text, "retry-after").is_some(), "{text}");
    }
}

#[test]
fn near_the_connection_limit_idle_connections_make_way() {
    // One address may hold them all: this is about the global limit.
    let (_site, d) =
        crowded_site(3, "http:\n  header_timeout: 60\n  max_connections: 64\n  max_connections_per_address: 10000\n");
    // A kept-alive client that has been served: idle sockets that never sent a request go first.
    let mut client = local(&d);
    client.write_all(b"GET /healthz HTTP/1.1\r\nHost: overload.test\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let got = client.read(&mut buf).unwrap();
    assert!(buf[..got].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..got]));
    let idle: Vec<TcpStream> = (0..200).map(|_| local(&d)).collect();
    let other = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr(&d));
    let (status, response) = fetch(other, "/feed.atom", "");
    assert_eq!(status, 200, "{response}");
    // The idle ones that made way were closed, never answered.
    let closed = idle.iter().filter(|s| !held(s)).count();
    assert!(closed > 0, "no idle connection made way");
    client.write_all(b"GET /healthz HTTP/1.1\r\nHost: overload.test\r\nConnection: close\r\n\r\n").unwrap();
    let mut rest = String::new();
    let _ = client.read_to_string(&mut rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "the served client lost its connection: {rest:?}");
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let (_site, d) = crowded_site(
        3,
        "metrics:\n  allow: [203.0.113.0/24]\nhttp:\n  trusted_proxies: [127.0.0.1/32]\n  max_connections_per_address: 3\n",
    );
    let metrics = |from: Ipv4Addr, headers: &str| fetch(connect_from(from, addr(&d)), "/metrics", headers).0;
    let proxy = Ipv4Addr::LOCALHOST;
    let stranger = Ipv4Addr::new(127, 0, 0, 2);
    // The proxy itself is not an allowed client; the client it names is.
    assert_eq!(metrics(proxy, ""), 403);
    assert_eq!(metrics(proxy, "X-Forwarded-For: 203.0.113.5\r\n"), 200);
    assert_eq!(metrics(proxy, "Forwarded: for=203.0.113.5;proto=https\r\n"), 200);
    assert_eq!(metrics(proxy, "Forwarded: for=\"203.0.113.5:4711\", for=127.0.0.1\r\n"), 200);
    // Only the rightmost untrusted hop counts: what the client wrote to the left is ignored.
    assert_eq!(metrics(proxy, "X-Forwarded-For: 203.0.113.5, 198.51.100.1\r\n"), 403);
    assert_eq!(metrics(proxy, "Forwarded: for=unknown\r\n"), 403);
    // A client that is not a trusted proxy cannot name another.
    assert_eq!(metrics(stranger, "X-Forwarded-For: 203.0.113.5\r\n"), 403);
    // The proxy carries many clients: its connections are not held to one address's share...
    let through_proxy: Vec<TcpStream> = (0..6).map(|_| connect_from(proxy, addr(&d))).collect();
    for s in through_proxy {
        assert_eq!(fetch(s, "/healthz", "X-Forwarded-For: 198.51.100.9\r\n").0, 200);
    }
    // ...while a direct client is.
    let direct: Vec<TcpStream> = (0..3).map(|_| connect_from(stranger, addr(&d))).collect();
    let (status, response) = fetch(connect_from(stranger, addr(&d)), "/healthz", "");
    assert_eq!(status, 503, "{response}");
    drop(direct);
}
