//! Hostile clients against the real daemon (issue 7): path traversal in every spelling, long
//! URLs and heads, absurd header values, malformed requests, query parameters at and past their
//! limits, thousands of idle connections, slowloris, a client that stops reading, the connection
//! limit, and a stop signal with a response in flight. Raw bytes go over a `TcpStream` so that no
//! client library tidies them up. After every hostile step, `/healthz` must still answer 200
//! and `/feed.atom` 200 with a feed that feed-rs parses.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::*;

const TITLE: &str = "Harbour Cranes Learn to Unload Themselves";

/// The limits the README documents (`MAX_TARGET_BYTES`, `MAX_HEAD_BYTES`, hyper's 100 fields).
const MAX_TARGET: usize = 8 * 1024;
const MAX_HEAD: usize = 32 * 1024;
const MAX_FIELDS: usize = 100;

fn clip(key: &str, title: &str, more: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\nexcerpt: An excerpt about {key}\npublishedDateTime: 2025-06-01T10:00:00Z\nwebUrl: https://hostile.example/{key}\ntopics: [Ports]\n{more}---\n"
    )
}

/// A site with one clipping with a URL and one without (which gets a page at `/clippings/{id}`).
fn started(extra_config: &str) -> (Site, Daemon) {
    let site = Site::new();
    site.write_config(extra_config);
    site.put("cranes.md", clip("cranes", TITLE, ""));
    site.put("nourl.md", "---\ntitle: A clipping without a link\ntopics: [Ports]\n---\nIts text.\n");
    let d = Daemon::start(&site);
    (site, d)
}

fn addr(d: &Daemon) -> SocketAddr {
    d.base.trim_start_matches("http://").trim_end_matches('/').parse().expect("the daemon's address")
}

/// The daemon is alive and still serves a normal client: `/healthz` is a 200, and
/// `/feed.atom` is a 200 that feed-rs parses.
#[track_caller]
fn still_serves(d: &Daemon, after: &str) {
    let h = get(&d.url("healthz"), &[]);
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"), "GET /healthz after {after}");
    let r = get(&d.url("feed.atom"), &[]);
    assert_eq!(r.status, 200, "GET /feed.atom after {after}");
    let f = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed after {after}: {e}"));
    assert!(entry_titled(&f, TITLE).is_some(), "the feed after {after} lacks its clipping");
}

/// What came back on one connection: every byte until the server closed it.
struct Exchange {
    bytes: Vec<u8>,
    /// The connection ended in a reset rather than an orderly close.
    reset: bool,
}

impl Exchange {
    /// The status of the first response, if any came.
    fn status(&self) -> Option<u16> {
        let line = self.bytes.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?;
        line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    }

    /// How many responses came (status lines at the start of a line).
    fn responses(&self) -> usize {
        let text = String::from_utf8_lossy(&self.bytes);
        text.match_indices("HTTP/1.").filter(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n').count()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn connect(d: &Daemon) -> TcpStream {
    let s = TcpStream::connect(addr(d)).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Sends `request` byte for byte on a new connection and reads until the server closes it. The
/// server may close before it has read everything (that is how it refuses a head too large), so
/// a failed write is not an error. A connection the server keeps open fails the test.
fn exchange(d: &Daemon, request: &[u8]) -> Exchange {
    let mut s = connect(d);
    let _ = s.write_all(request);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Exchange { bytes, reset: false },
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Exchange { bytes, reset: true };
            }
            Err(e) => panic!("the server neither answered nor closed ({e}); got {:?}", String::from_utf8_lossy(&bytes)),
        }
    }
}

/// A refusal by hyper: `status`, or a reset before the answer could be read (the server closes
/// as soon as it has seen too much, with the rest of a large request still unread).
#[track_caller]
fn assert_refused(x: &Exchange, status: u16, what: &str) {
    assert!(x.status() == Some(status) || (x.status().is_none() && x.reset), "{what}: {:?}\n{}", x.status(), x.text());
}

/// A GET of `target` that asks the server to close after answering.
fn get_raw(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n").into_bytes()
}

/// A GET of `/feed.atom` with extra header lines (each ending in CRLF).
fn with_headers(lines: &str) -> Vec<u8> {
    format!("GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n{lines}\r\n").into_bytes()
}

/// The clipping page link of the clipping without a URL, as a path.
fn clipping_page(d: &Daemon) -> String {
    let f = feed(&d.url("feed.atom"));
    let e = entry_titled(&f, "A clipping without a link").expect("the clipping without a link");
    let href = &e.links[0].href;
    href.trim_start_matches("http://feeds.test/cf").to_string()
}

#[test]
fn path_traversal_in_every_spelling_names_nothing() {
    let (site, d) = started("");
    // The routes that do answer, so the refusals below are not an accident of a dead server.
    let page = clipping_page(&d);
    for ok in ["/feed.atom", "/topics/ports.atom", "/topics/ports/archive/25-0.atom", page.as_str()] {
        let status = exchange(&d, &get_raw(ok)).status();
        assert!(matches!(status, Some(200) | Some(404)), "{ok}: {status:?}");
    }
    assert_eq!(exchange(&d, &get_raw(&page)).status(), Some(200));
    let id = page.trim_start_matches("/clippings/");
    let secrets = ["root:", "webUrl:", "SQLite format", "listen: 127.0.0.1"];
    let targets = [
        "/../../../../etc/passwd".to_string(),
        "/topics/../../../etc/passwd".into(),
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd".into(),
        "/topics/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/topics/..%2f..%2fclipfeed.yaml".into(),
        "/topics/..%2F..%2Fclippings%2Fcranes.md".into(),
        "/topics/%252e%252e%252f%252e%252e%252fetc%252fpasswd".into(),
        "/topics/%25%32%65%25%32%65%25%32%66etc.rss".into(),
        "/topics/..%5c..%5cetc%5cpasswd.rss".into(),
        "/topics/..\\..\\etc\\passwd.rss".into(),
        "/topics\\..\\..\\clipfeed.yaml".into(),
        "/topics/ports.atom%00".into(),
        "/topics/ports%00.atom".into(),
        "/topics/ports.atom%00.html".into(),
        "/topics/%00".into(),
        "/topics/%c0%ae%c0%ae%c0%afetc.rss".into(),
        "/topics/%e0%80%ae%e0%80%ae.rss".into(),
        "/topics/%ff%fe%fd.rss".into(),
        "/topics/..rss".into(),
        "/topics/.%2e.rss".into(),
        "/providers/..%2f..%2fdata%2fclipfeed.db.rss".into(),
        "/feed/archive/..%2f..%2f..%2fclipfeed.yaml".into(),
        "/feed/archive/%2e%2e%2f25-0.rss".into(),
        "/topics/ports/archive/..%2f..%2f25-0.atom".into(),
        "/topics/..%2fports/archive/25-0.atom".into(),
        "/clippings/..%2f..%2fclipfeed.yaml".into(),
        "/clippings/../clipfeed.yaml".into(),
        "/clippings/cranes.md".into(),
        "/clippings/nourl.md".into(),
        format!("/clippings/{id}%00"),
        format!("/clippings/{id}/..%2f..%2fclipfeed.yaml"),
        format!("/clippings/..%2f{id}"),
        "/clippings/%2e%2e%5c%2e%2e%5cclipfeed.yaml".into(),
        "//etc/passwd".into(),
        "/./feed.atom/..".into(),
        "/clipfeed.yaml".into(),
        "/data/clipfeed.db".into(),
        "/clippings".into(),
        "/.git/config".into(),
        "http://hostile.test/../../etc/passwd".into(),
    ];
    for target in &targets {
        let x = exchange(&d, &get_raw(target));
        let status = x.status();
        assert!(matches!(status, Some(400) | Some(404)), "{target}: {status:?}\n{}", x.text());
        let text = x.text();
        for secret in secrets {
            assert!(!text.contains(secret), "{target} answered with {secret}:\n{text}");
        }
        still_serves(&d, target);
    }
    // A path is decoded once: the double-encoded name of a real feed is a different name.
    assert_eq!(exchange(&d, &get_raw("/topics/%2570orts.atom")).status(), Some(404));
    assert_eq!(exchange(&d, &get_raw("/topics/%70orts.atom")).status(), Some(200), "single encoding decodes");
    assert!(site.config().exists(), "the files the targets named are there to be found");
}

#[test]
fn long_urls_and_heads_are_refused_and_the_server_keeps_serving() {
    let (_site, d) = started("");
    // The request target: 404 up to the limit, 414 past it, 431 once the head itself is too big.
    let at_limit = format!("/nope/{}", "a".repeat(MAX_TARGET - "/nope/".len()));
    assert_eq!(exchange(&d, &get_raw(&at_limit)).status(), Some(404));
    still_serves(&d, "a target at the limit");
    let past = format!("{at_limit}a");
    assert_eq!(exchange(&d, &get_raw(&past)).status(), Some(414));
    still_serves(&d, "a target past the limit");
    let query = format!("/feed.atom?q={}", "a".repeat(20_000));
    assert_eq!(exchange(&d, &get_raw(&query)).status(), Some(414));
    still_serves(&d, "a 20 KB query");
    // A 100 KB URL makes the head itself too large.
    let huge = format!("/feed.atom?q={}", "a".repeat(100_000));
    assert_refused(&exchange(&d, &get_raw(&huge)), 431, "a 100 KB URL");
    still_serves(&d, "a 100 KB URL");

    // The head: one field just inside the limit passes, just past it gets 431.
    let fill = |n: usize| format!("X-Fill: {}\r\n", "f".repeat(n));
    let base_len = with_headers("").len();
    let inside = fill(MAX_HEAD - base_len - 100);
    assert_eq!(exchange(&d, &with_headers(&inside)).status(), Some(200));
    let outside = fill(MAX_HEAD - base_len + 100);
    assert_refused(&exchange(&d, &with_headers(&outside)), 431, "a head past the limit");
    still_serves(&d, "a head past the limit");
    assert_refused(&exchange(&d, &with_headers(&fill(1 << 20))), 431, "a 1 MB header");
    still_serves(&d, "a 1 MB header");

    // Field count: Host and Connection plus 98 more make 100 and pass; one more gets 431.
    let fields = |n: usize| (0..n).map(|i| format!("X-F{i}: v\r\n")).collect::<String>();
    assert_eq!(exchange(&d, &with_headers(&fields(MAX_FIELDS - 2))).status(), Some(200));
    assert_refused(&exchange(&d, &with_headers(&fields(MAX_FIELDS - 1))), 431, "101 fields");
    assert_refused(&exchange(&d, &with_headers(&fields(10_000))), 431, "10,000 fields");
    still_serves(&d, "10,000 header fields");
}

#[test]
fn the_configured_limits_are_the_ones_applied() {
    let (site, d) = started("http:\n  max_url_bytes: 100\n  max_head_bytes: 2048\n  max_headers: 10\n");
    let target = |n: usize| format!("/nope/{}", "a".repeat(n - "/nope/".len()));
    assert_eq!(exchange(&d, &get_raw(&target(100))).status(), Some(404));
    let x = exchange(&d, &get_raw(&target(101)));
    assert_eq!(x.status(), Some(414));
    assert!(x.text().contains("longer than 100 bytes"), "{}", x.text());
    let fill = |n: usize| format!("X-Fill: {}\r\n", "f".repeat(n));
    let base_len = with_headers("").len();
    assert_eq!(exchange(&d, &with_headers(&fill(2048 - base_len - 100))).status(), Some(200));
    assert_refused(&exchange(&d, &with_headers(&fill(2048 - base_len + 100))), 431, "a head past 2048 bytes");
    // Host and Connection plus 8 make 10 fields.
    let fields = |n: usize| (0..n).map(|i| format!("X-F{i}: v\r\n")).collect::<String>();
    assert_eq!(exchange(&d, &with_headers(&fields(8))).status(), Some(200));
    assert_refused(&exchange(&d, &with_headers(&fields(9))), 431, "11 fields");
    still_serves(&d, "the configured limits");

    // A reload does not change them: the log says they need a restart, and they still apply.
    site.write_config("http:\n  max_url_bytes: 4096\n  max_head_bytes: 2048\n  max_headers: 10\n");
    d.signal(libc::SIGHUP);
    poll("the reload", || d.log().contains("configuration reloaded").then_some(()));
    assert!(d.log().contains("take effect only after a restart keys=http"), "{}", d.log());
    assert_eq!(exchange(&d, &get_raw(&target(101))).status(), Some(414));
    still_serves(&d, "a reload that changed the limits");
}

#[test]
fn absurd_header_values_get_correct_answers() {
    let (_site, d) = started("");
    let plain = get(&d.url("feed.atom"), &[]);
    let etag = plain.header("etag").unwrap().to_string();
    let status = |lines: &str| exchange(&d, &with_headers(lines)).status();

    // If-None-Match: hundreds of tags, ours last, is a 304; without ours, a 200. Thousands
    // exceed the head limit: 431.
    let others = (0..800).map(|i| format!("\"{i:032x}\"")).collect::<Vec<_>>().join(", ");
    assert_eq!(status(&format!("If-None-Match: {others}, {etag}\r\n")), Some(304));
    assert_eq!(status(&format!("If-None-Match: {others}\r\n")), Some(200));
    assert_eq!(status(&format!("If-None-Match: \"x\"\r\nIf-None-Match: W/{etag}\r\n")), Some(304), "a second line");
    let thousands = (0..5000).map(|i| format!("\"{i:032x}\"")).collect::<Vec<_>>().join(", ");
    assert_refused(&exchange(&d, &with_headers(&format!("If-None-Match: {thousands}\r\n"))), 431, "5,000 tags");
    assert_eq!(status("If-None-Match: ,,,,,,,,\r\n"), Some(200));
    assert_eq!(status("If-None-Match: \"\r\n"), Some(200));
    still_serves(&d, "If-None-Match lists");

    // If-Modified-Since: a date after Last-Modified is a 304 (the date itself may not be, when
    // the feed changed twice within that second); a huge or repeated value is ignored.
    let later = "Fri, 01 Jan 2100 00:00:00 GMT";
    assert_eq!(status(&format!("If-Modified-Since: {later}\r\n")), Some(304));
    assert_eq!(status(&format!("If-Modified-Since: {}\r\n", later.repeat(900))), Some(200));
    assert_eq!(
        status(&format!("If-Modified-Since: {later}\r\nIf-Modified-Since: {later}\r\n")),
        Some(200),
        "two dates are not one valid date"
    );
    assert_eq!(status("If-Modified-Since: Fri, 31 Dec 99999 23:59:59 GMT\r\n"), Some(200));
    assert_eq!(status("If-Modified-Since: \u{7f}\r\n"), Some(400), "a control character in a value");
    still_serves(&d, "If-Modified-Since values");

    // Accept-Encoding with thousands of codings: identity, unless one we know is among them.
    let codings = (0..2000).map(|i| format!("x{i};q=0.5")).collect::<Vec<_>>().join(",");
    let x = exchange(&d, &with_headers(&format!("Accept-Encoding: {codings}\r\n")));
    assert_eq!(x.status(), Some(200));
    assert!(!x.text().to_ascii_lowercase().contains("content-encoding"), "identity for unknown codings");
    let x = exchange(&d, &with_headers(&format!("Accept-Encoding: {codings}, GZIP\r\n")));
    assert!(x.text().to_ascii_lowercase().contains("content-encoding: gzip"), "{}", x.text());
    let x = exchange(&d, &with_headers("Accept-Encoding: identity\r\nAccept-Encoding: br;q=1\r\n"));
    assert!(x.text().to_ascii_lowercase().contains("content-encoding: br"), "every line counts");
    assert_eq!(status("Accept-Encoding: br;q=NaN, gzip;q=-1, *;q=1e999\r\n"), Some(200));
    let accept = (0..1500).map(|i| format!("type/x{i};q=0.{}", i % 10)).collect::<Vec<_>>().join(",");
    assert_eq!(status(&format!("Accept: {accept}\r\n")), Some(200));
    assert_eq!(status(&format!("Authorization: Bearer {}\r\n", "t".repeat(20_000))), Some(200));
    assert_eq!(status("Range: bytes=0-0,1-1,2-2\r\n"), Some(200));
    assert_eq!(status("X-Bytes: \u{80}\u{ff}\r\n"), Some(200), "obs-text is allowed in values");
    still_serves(&d, "absurd header values");
}

#[test]
fn malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let (_site, d) = started("");
    let close = "Host: hostile.test\r\nConnection: close\r\n";
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("a control byte in the method", b"G\x01T /feed.atom HTTP/1.1\r\n\r\n".to_vec(), &[400]),
        ("an unknown method", format!("BREW /feed.atom HTTP/1.1\r\n{close}\r\n").into_bytes(), &[405]),
        ("a 10 KB method", format!("{} /feed.atom HTTP/1.1\r\n{close}\r\n", "A".repeat(10_000)).into_bytes(), &[405]),
        ("POST", format!("POST /feed.atom HTTP/1.1\r\n{close}Content-Length: 0\r\n\r\n").into_bytes(), &[405]),
        ("CONNECT", format!("CONNECT 127.0.0.1:22 HTTP/1.1\r\n{close}\r\n").into_bytes(), &[404, 405]),
        ("OPTIONS *", format!("OPTIONS * HTTP/1.1\r\n{close}\r\n").into_bytes(), &[404, 405]),
        ("HTTP/0.9", b"GET /feed.atom\r\n\r\n".to_vec(), &[400]),
        ("HTTP/2.0 as text", format!("GET /feed.atom HTTP/2.0\r\n{close}\r\n").into_bytes(), &[400, 505]),
        ("HTTP/9.9", format!("GET /feed.atom HTTP/9.9\r\n{close}\r\n").into_bytes(), &[400, 505]),
        ("no version", format!("GET /feed.atom\r\n{close}\r\n").into_bytes(), &[400]),
        ("two spaces", format!("GET  /feed.atom HTTP/1.1\r\n{close}\r\n").into_bytes(), &[400]),
        ("a space in the target", format!("GET /feed .atom HTTP/1.1\r\n{close}\r\n").into_bytes(), &[400]),
        ("a raw byte over 0x7f in the target", b"GET /feed\xff.atom HTTP/1.1\r\n\r\n".to_vec(), &[400]),
        ("a relative target", format!("GET feed.atom HTTP/1.1\r\n{close}\r\n").into_bytes(), &[400, 404]),
        ("NUL in a value", with_headers("X-A: a\0b\r\n"), &[400]),
        ("a control byte in a value", with_headers("X-A: a\x01b\r\n"), &[400]),
        ("a space in a name", with_headers("X A: b\r\n"), &[400]),
        ("a line without a colon", with_headers("garbage\r\n"), &[400]),
        ("a folded line", with_headers("X-A: a\r\n b\r\n"), &[400]),
        ("an empty name", with_headers(": b\r\n"), &[400]),
        ("no Host in HTTP/1.1", b"GET /feed.atom HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), &[400]),
        ("two Hosts", with_headers("Host: other.test\r\n"), &[400]),
        ("two Content-Lengths", with_headers("Content-Length: 1\r\nContent-Length: 2\r\n"), &[400]),
        ("a negative Content-Length", with_headers("Content-Length: -1\r\n"), &[400]),
        ("an enormous Content-Length", with_headers("Content-Length: 99999999999999999999999\r\n"), &[400]),
        ("an unknown Transfer-Encoding", with_headers("Transfer-Encoding: gzip\r\n"), &[400, 501]),
        ("TLS", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00".to_vec(), &[400]),
    ];
    for (what, request, expected) in &cases {
        let x = exchange(&d, request);
        let status = x.status();
        assert!(
            status.is_some_and(|s| expected.contains(&s)),
            "{what}: {status:?}, expected {expected:?}\n{}",
            x.text()
        );
        still_serves(&d, what);
    }

    // Random bytes (a fixed xorshift sequence, so a failure repeats): a 400 or a closed
    // connection, never an answer to something it did not ask.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let x = exchange(&d, &garbage);
    assert!(x.status().is_none_or(|s| s == 400), "garbage: {}", x.text());
    still_serves(&d, "random bytes");
    // Junk pipelined behind a good request: the request is answered, the junk gets a 400 or
    // the connection closes.
    let x = exchange(&d, &[b"GET /healthz HTTP/1.1\r\nHost: hostile.test\r\n\r\n".as_slice(), &garbage].concat());
    assert_eq!(x.status(), Some(200), "{}", x.text());
    assert!(x.responses() <= 2 && (x.responses() == 1 || x.text().contains("HTTP/1.1 400")), "{}", x.text());
    let x = exchange(&d, b"GET /healthz HTTP/1.1\r\nHost: hostile.test\r\n\r\nGET / HTTP/1.1\r\nHost\r\n\r\n");
    assert_eq!(x.responses(), 2, "{}", x.text());
    assert!(x.text().contains("HTTP/1.1 400"), "{}", x.text());
    still_serves(&d, "junk pipelined behind a request");

    // The HTTP/2 preface is not a request: the connection closes without an answer.
    let x = exchange(&d, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(x.status().is_none_or(|s| s == 400), "{}", x.text());
    still_serves(&d, "the HTTP/2 preface");

    // HTTP/1.0 needs no Host, blank lines before a request are skipped, the absolute form works.
    assert_eq!(exchange(&d, b"GET /feed.atom HTTP/1.0\r\n\r\n").status(), Some(200));
    assert_eq!(exchange(&d, &[b"\r\n\r\n".as_slice(), &get_raw("/feed.atom")].concat()).status(), Some(200));
    assert_eq!(exchange(&d, &get_raw("http://hostile.test/feed.atom")).status(), Some(200));

    // Transfer-Encoding with Content-Length: the request is answered by its chunked length and
    // the connection closes, so what the Content-Length would have made a second request (the
    // smuggled one) is never answered.
    let smuggle = b"GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n";
    let x = exchange(&d, smuggle);
    assert!(matches!(x.status(), Some(200) | Some(400)), "{}", x.text());
    assert_eq!(x.responses(), 1, "the smuggled request must not be answered:\n{}", x.text());
    let smuggle = b"GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: hostile.test\r\n\r\n";
    let x = exchange(&d, smuggle);
    assert_eq!(x.responses(), 1, "{}", x.text());
    still_serves(&d, "Transfer-Encoding with Content-Length");

    // A body on a GET is skipped, and the next request on the connection is answered.
    let body = b"GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nContent-Length: 11\r\n\r\nhello worldGET /healthz HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n";
    let x = exchange(&d, body);
    assert_eq!(x.responses(), 2, "{}", x.text());
    assert!(x.text().ends_with("ok\n"));
    // A body announced as 10 MB and never sent does not hold the response back; the connection
    // closes after it instead of waiting for the rest.
    let x = exchange(
        &d,
        &with_headers("Content-Length: 10000000\r\n")[..].iter().chain(b"partial").copied().collect::<Vec<_>>(),
    );
    assert_eq!(x.status(), Some(200));
    assert_eq!(x.responses(), 1);
    // So does a chunked body that is not chunked.
    let x = exchange(&d, &[with_headers("Transfer-Encoding: chunked\r\n"), b"zz\r\nnot hex\r\n".to_vec()].concat());
    assert!(matches!(x.status(), Some(200) | Some(400)), "{}", x.text());
    still_serves(&d, "request bodies");
}

#[test]
fn query_parameters_at_and_beyond_their_limits() {
    let (_site, d) = started("");
    let ok = |q: &str| {
        let url = d.url(&format!("topics/ports.atom?{q}"));
        let r = get(&url, &[]);
        assert_eq!(r.status, 200, "?{q}: {}", r.text());
        feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("?{q}: {e}"));
    };
    // A 400 whose message names the parameter `name`.
    let bad_named = |q: &str, name: &str| {
        let x = exchange(&d, &get_raw(&format!("/topics/ports.atom?{q}")));
        assert_eq!(x.status(), Some(400), "?{}: {}", &q[..q.len().min(80)], x.text());
        let text = x.text();
        assert!(text.contains(&format!("query parameter '{name}'")), "the message names {name:?}: {text}");
    };
    // The parameter at fault is the first one given.
    let bad = |q: &str| bad_named(q, q.split(['=', '&']).next().unwrap_or(""));
    let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>();
    // limit: 1 to 500.
    ok("limit=1");
    ok("limit=500");
    for v in ["0", "501", "-1", "1.5", "99999999999999999999999", "", "%00"] {
        bad(&format!("limit={v}"));
    }
    bad("limit=1&limit=2");
    // q and exclude: 20 words or phrases together, each at most 100 characters.
    ok(&format!("q={}", words(20).join(",")));
    bad(&format!("q={}", words(21).join(",")));
    ok(&words(10)
        .iter()
        .map(|w| format!("q={w}"))
        .chain(words(10).iter().map(|w| format!("exclude=x{w}")))
        .collect::<Vec<_>>()
        .join("&"));
    bad_named(
        &words(11)
            .iter()
            .map(|w| format!("q={w}"))
            .chain(words(10).iter().map(|w| format!("exclude=x{w}")))
            .collect::<Vec<_>>()
            .join("&"),
        "exclude",
    );
    bad(&"q=a&".repeat(1500));
    bad(&format!("q={}", "a".repeat(7000)));
    bad(&format!("q={}", "a+".repeat(3000)));
    ok(&format!("q={}", "a".repeat(100)));
    bad(&format!("q={}", "a".repeat(101)));
    ok(&format!("q={}", "%C3%A9".repeat(100)));
    bad(&format!("q={}", "%C3%A9".repeat(101)));
    bad("q=%ff%fe");
    bad("q=%F0%9F%98%80");
    // since: dates from year 1 to 9999 and durations; nothing outside.
    ok("since=0001-01-01");
    ok("since=9999-12-31T23:59:59Z");
    ok("since=2025-06-01T10:00:00%2B14:00");
    for v in ["99999999999999d", "-1d", "1e400s", "10000-01-01", "2025-06-01T10:00:00+99:00", "yesterday"] {
        bad(&format!("since={v}"));
    }
    // min_quality: any 64-bit integer.
    ok("min_quality=-9223372036854775808");
    ok("min_quality=9223372036854775807");
    bad("min_quality=9223372036854775808");
    // Everything else.
    bad(&format!("provider={}", "p".repeat(300)));
    bad("topic=ports");
    bad("unknown=1");
    // Invalid UTF-8 is decoded with replacement characters, in names as in values.
    bad_named("%ff=1", "\u{fffd}");
    bad("=");
    ok("");
    ok("&&&");
    ok(&format!("token={}", "t".repeat(5000)));
    still_serves(&d, "query parameters");
}

#[test]
fn connect_and_options_asterisk_get_405_like_other_methods() {
    let (_site, d) = started("");
    for request in [
        "CONNECT feeds.test:443 HTTP/1.1\r\nHost: feeds.test:443\r\nConnection: close\r\n\r\n",
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n",
        "OPTIONS /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n",
        "DELETE /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n",
    ] {
        let x = exchange(&d, request.as_bytes());
        let what = request.lines().next().unwrap();
        assert_eq!(x.status(), Some(405), "{what}: {}", x.text());
        let allow = x.text().lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("allow:").map(str::to_string));
        let allow = allow.unwrap_or_else(|| panic!("{what}: no Allow header\n{}", x.text()));
        let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(methods.contains(&"get") && methods.contains(&"head"), "{what}: Allow: {allow}");
    }
    still_serves(&d, "CONNECT and OPTIONS");
}

/// The bytes waiting in the receive queue of the server's end of `client`'s connection, from
/// `/proc/net/tcp` (`None` while the line is not there).
fn server_queue(d: &Daemon, client: &TcpStream) -> Option<u64> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        SocketAddr::V6(_) => panic!("the tests listen on IPv4"),
    };
    let (server, peer) = (hex(addr(d)), hex(client.local_addr().unwrap()));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&server.as_str()) && f.get(2) == Some(&peer.as_str()))
            .then(|| u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok())?
    })
}

/// Whether every thread of process `pid` is stopped (state `T` in its `stat`).
fn stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.filter_map(Result::ok).all(|t| {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    })
}

/// Sends `before`, one urgent (out-of-band) byte, then `after` while the daemon is stopped
/// (SIGSTOP), so that all of it is queued when it reads again, and reads until the server closes.
fn exchange_with_urgent(d: &Daemon, before: &[u8], after: &[u8]) -> Exchange {
    use std::os::fd::AsRawFd;
    let mut s = connect(d);
    d.signal(libc::SIGSTOP);
    poll("every thread of the daemon to stop", || stopped(d.pid()).then_some(()));
    s.write_all(before).unwrap();
    // SAFETY: one byte from a static, sent on a valid descriptor.
    assert_eq!(unsafe { libc::send(s.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) }, 1);
    s.write_all(after).unwrap();
    let sent = (before.len() + 1 + after.len()) as u64;
    poll("every byte in the stopped server's queue", || (server_queue(d, &s) == Some(sent)).then_some(()));
    d.signal(libc::SIGCONT);
    let mut bytes = Vec::new();
    match s.read_to_end(&mut bytes) {
        Ok(_) => Exchange { bytes, reset: false },
        Err(e) => panic!("the server neither answered nor closed ({e}); got {:?}", String::from_utf8_lossy(&bytes)),
    }
}

/// TCP ends a read at the urgent mark (a byte sent with `MSG_OOB`), with what follows still
/// queued and no new event for it: a server that takes a short read for an empty queue leaves
/// the rest unread until the header timeout (here far beyond the test's deadline), once all of
/// it came before the server read (the daemon stopped meanwhile, as a loaded machine would). The urgent
/// byte is dropped (it is not part of the stream) and every request around it answered, on
/// the fast path (a plain feed) and on hyper's (a query, a health check), with the mark inside
/// a head or between two.
#[test]
fn urgent_bytes_are_dropped_and_stall_no_request() {
    let (_site, d) = started("http:\n  header_timeout: 3600\n");
    for target in ["/feed.atom", "/feed.atom?limit=5", "/healthz"] {
        let head = format!("GET {target} HTTP/1.1\r\nHost: hostile.test\r\n\r\n");
        let last = format!("GET {target} HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n\r\n");
        let (start, rest) = head.split_at(20);
        for (before, after) in [
            (start.to_string(), format!("{rest}{head}{last}")),
            (head.clone(), format!("{head}{last}")),
            (format!("{head}{head}"), last.clone()),
        ] {
            let x = exchange_with_urgent(&d, before.as_bytes(), after.as_bytes());
            let text = x.text();
            let statuses: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("HTTP/1.1 ")?.get(..3)).collect();
            assert_eq!(statuses, ["200", "200", "200"], "{target}, the mark after {before:?}:\n{text}");
        }
    }
    still_serves(&d, "urgent bytes");
}

/// Raises this process's soft open-file limit to its hard limit (the daemon, our child, inherits
/// it) and returns the limit now in force.
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

/// Opens `n` connections; every other one sends the start of a head and stops.
fn idle_connections(d: &Daemon, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut s = connect(d);
            if i % 2 == 1 {
                s.write_all(b"GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\n").unwrap();
            }
            s
        })
        .collect()
}

/// Waits until the server has closed the connection (read returns EOF or a reset).
#[track_caller]
fn closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server kept an idle connection open: {e}"),
        }
    }
}

#[test]
fn thousands_of_slow_clients_do_not_stop_normal_clients() {
    // Both ends of every connection live in this test: the daemon needs one descriptor per
    // connection, and so do we.
    let wanted = 2000;
    let files = raise_open_file_limit();
    let n = usize::try_from(files.saturating_sub(300)).unwrap_or(usize::MAX).min(wanted);
    if n < wanted {
        eprintln!("NOTICE: the open-file limit is {files}; opening {n} slow connections instead of {wanted}");
    }
    // Every slow client comes from 127.0.0.1, like the normal one: the per-address share is
    // raised so that this test is about the header timeout (`overload` tests the share).
    let (_site, d) = started("http:\n  header_timeout: 3\n  max_connections_per_address: 100000\n");
    // Every connection starts a head; half of them then add a byte to it every round.
    let mut slow: Vec<Option<TcpStream>> = idle_connections(&d, n).into_iter().map(Some).collect();
    for s in slow.iter_mut().flatten() {
        s.set_nonblocking(true).unwrap();
    }
    let mut rounds = 0;
    let started = Instant::now();
    while slow.iter().any(Option::is_some) {
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {n} slow connections still open after {rounds} rounds",
            slow.iter().flatten().count()
        );
        for (i, conn) in slow.iter_mut().enumerate() {
            let Some(s) = conn else { continue };
            let mut buf = [0u8; 256];
            let gone = match s.read(&mut buf) {
                Ok(0) => true,
                Ok(got) => panic!("a slow client got an answer: {:?}", String::from_utf8_lossy(&buf[..got])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => i % 2 == 1 && s.write_all(b"a").is_err(),
                Err(_) => true,
            };
            if gone {
                *conn = None;
            }
        }
        rounds += 1;
        // Normal clients are served while the slow ones hold their connections.
        if slow.iter().any(Option::is_some) {
            let x = exchange(&d, &get_raw("/topics/ports.rss"));
            assert_eq!(x.status(), Some(200), "{}", x.text());
            still_serves(&d, &format!("round {rounds} of {n} slow connections"));
        }
        std::thread::sleep(Duration::from_millis(200)); // the slow clients' pace, not a wait
    }
    // The header timeout counts from the connection, not from the last byte: dribbling does
    // not keep a connection open, so they all closed.
    assert!(rounds > 1, "the slow connections closed before the first round was served");
    still_serves(&d, "the slow connections were closed");
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_header_timeout() {
    let (_site, d) = started("http:\n  header_timeout: 1\n");
    let mut s = connect(&d);
    s.write_all(b"GET /feed.atom HTTP/1.1\r\nHost: hostile.test\r\nX-Slow: ").unwrap();
    s.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut sent = 0;
    let mut normal_request_done = false;
    let cut = loop {
        assert!(started.elapsed() < DEADLINE, "the slow client was never cut off ({sent} bytes sent)");
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => panic!("the server answered a head it never got: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break "reset",
        }
        if s.write_all(b"a").is_err() {
            break "write refused";
        }
        sent += 1;
        if !normal_request_done {
            // Others are served while the slow client dribbles.
            still_serves(&d, "a slow client started dribbling");
            normal_request_done = true;
        }
        std::thread::sleep(Duration::from_millis(50)); // the slow client's pace, not a wait
    };
    assert!(normal_request_done, "cut off before the first byte: {cut}");
    still_serves(&d, "the slow client was cut off");
}

/// A site whose all-clippings feed is large (about 200 KB), for clients that stop reading.
fn big_site(extra_config: &str) -> (Site, Daemon) {
    let site = Site::new();
    site.write_config(extra_config);
    site.put("cranes.md", clip("cranes", TITLE, ""));
    let body = "Cranes and quays and containers. ".repeat(120);
    for i in 0..49 {
        site.put(
            &format!("bulk{i}.md"),
            format!("{}{body}\n", clip(&format!("bulk{i}"), &format!("Bulk story {i}"), "")),
        );
    }
    let d = Daemon::start(&site);
    (site, d)
}

/// Enough pipelined GETs of `path` that their responses cannot all fit in the socket buffers
/// between the server and a client that reads nothing.
fn overflowing_requests(d: &Daemon, path: &str) -> (Vec<u8>, usize) {
    let len = get(&d.url(path), &[]).body.len();
    let max = |file: &str, default: usize| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.split_whitespace().last().and_then(|v| v.parse().ok()))
            .unwrap_or(default)
    };
    let buffered = max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20) + 2 * max("/proc/sys/net/core/rmem_default", 1 << 20);
    let n = (2 * buffered / len + 1).clamp(4, 2000);
    let one = format!("GET /{path} HTTP/1.1\r\nHost: hostile.test\r\n\r\n");
    (one.repeat(n).into_bytes(), n)
}

/// Reads what the server sends until it closes, after the bytes of it already `read`; returns
/// (complete responses, whether the last one was cut short).
fn read_responses(mut s: TcpStream, read: &[u8], body_len: usize) -> (usize, bool) {
    let mut bytes = read.to_vec();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let starts: Vec<usize> = text.match_indices("HTTP/1.1 200").map(|(i, _)| i).collect();
    let complete = starts
        .iter()
        .filter(|&&i| text[i..].find("\r\n\r\n").is_some_and(|h| bytes.len() >= i + h + 4 + body_len))
        .count();
    (complete, complete < starts.len())
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let (_site, d) = big_site("http:\n  send_timeout: 1\n");
    let body_len = get(&d.url("feed.atom"), &[]).body.len();
    let (requests, n) = overflowing_requests(&d, "feed.atom");
    let mut s = connect(&d);
    s.write_all(&requests).unwrap();
    // The server fills the buffers, waits a second for the client to read, and gives up.
    poll("the server to give up on the client", || d.log().contains("the client read nothing for 1 s").then_some(()));
    still_serves(&d, "a client stopped reading");
    let (complete, _) = read_responses(s, &[], body_len);
    assert!(complete < n, "all {n} responses arrived: the connection was not closed");
    still_serves(&d, "the stalled connection was closed");
}

/// Sends a keep-alive GET of `path` on `s` and reads its response; returns the status.
fn keep_alive_get(s: &mut TcpStream, path: &str) -> u16 {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: hostile.test\r\n\r\n").as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("a response on the kept-alive connection");
        assert!(n > 0, "the server closed the kept-alive connection: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .expect("a Content-Length");
        if bytes.len() >= end + 4 + length {
            return text[9..12].parse().unwrap();
        }
    }
}

#[test]
fn at_the_connection_limit_open_clients_are_answered_and_new_ones_wait() {
    let (_site, d) = started("http:\n  max_connections: 20\n  header_timeout: 3\n");
    // A client connected before the limit is reached.
    let mut established = connect(&d);
    assert_eq!(keep_alive_get(&mut established, "/healthz"), 200);
    // Thirty-nine idle connections: near the limit the older idle ones are closed to make room
    // for the newer (`overload` tests that), and at the limit the rest wait in the kernel's queue.
    let idle = idle_connections(&d, 39);
    // The established client, which has been served, keeps being answered at the limit.
    assert_eq!(keep_alive_get(&mut established, "/feed.atom"), 200);
    drop(established);
    // A new client is served.
    still_serves(&d, "the connection limit was reached");
    for s in idle {
        closed_by_server(s);
    }
    let warnings = d.log().matches("connection limit reached").count();
    assert!(warnings <= 1, "one warning per minute at most, not one per connection:\n{}", d.log());
}

#[test]
fn a_stop_signal_lets_the_response_in_flight_finish_and_accepts_nothing_new() {
    // The client reads again only once the listening socket is closed: on a loaded machine that
    // may be long after the stop signal, so neither the stalled response's send timeout nor the
    // grace period may end it first.
    let (_site, d) = big_site("http:\n  send_timeout: 120\n  shutdown_grace: 120\n");
    let body_len = get(&d.url("feed.atom"), &[]).body.len();
    let (requests, n) = overflowing_requests(&d, "feed.atom");
    let mut stalled = connect(&d);
    stalled.write_all(&requests).unwrap();
    // Let the server fill the buffers: the first response has started to arrive.
    let mut first = [0u8; 12];
    stalled.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let address = addr(&d);
    d.signal(libc::SIGTERM);
    // New connections are refused while the response in flight is still being sent.
    poll("the listening socket to close", || TcpStream::connect(address).is_err().then_some(()));
    // The stalled client reads again: the response in flight arrives whole, then the connection
    // closes without answering the requests queued behind it. (The first response counts from
    // the bytes of it read above: when only it had left the server before the stop, it alone
    // arrives.)
    let (complete, cut_short) = read_responses(stalled, &first, body_len);
    assert!(complete >= 1 && !cut_short, "{complete} responses, the last cut short: {cut_short}");
    assert!(complete < n, "the queued requests were answered after the stop signal");
    let status = d.wait_exit();
    assert!(status.success(), "{status:?}");
}

/// A WebSub request whose body never comes is answered 408 once `http.header_timeout` has
/// passed, and its connection closed: it cannot hold a connection for good.
#[test]
fn a_websub_request_whose_body_never_comes_is_cut_off() {
    let (_site, d) = started("http:\n  header_timeout: 1\nwebsub:\n  enabled: true\n");
    let mut s = connect(&d);
    s.write_all(
        b"POST /websub HTTP/1.1\r\nHost: hostile.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\nhub.mode=sub",
    )
    .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let x = Exchange { bytes: got, reset: false };
    assert_eq!(x.status(), Some(408), "{}", x.text());
    assert!(started.elapsed() < DEADLINE, "the connection stayed open");
    still_serves(&d, "a websub body that never came");
}
