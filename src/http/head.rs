//! The fast path's reading of a request head (`fast`): httparse with hyper's settings, then only
//! heads that hyper would read exactly the same way are taken (see `parse`): `GET` or `HEAD`;
//! HTTP/1.1; CRLF lines; an origin-form path of unreserved characters (no query, no
//! percent-escape); exactly one `Host`; only fields from a short list that hyper does not act on
//! (`Connection` only as `keep-alive`), each value visible ASCII. Each field's name is read once,
//! into its kind, and its value once, into text, so the hot path's readers (`negotiate`,
//! `respond`) find the lines they ask for without reading names or bytes again. `check` proves
//! against hyper's own reading that any head taken is read identically (property tests here, the
//! fuzz target `http_head`).

use std::time::Duration;

use axum::http::header::{self, HeaderName};

use super::fast::Limits;
use super::hot::Asked;
use super::negotiate::{Fields, text};

/// The most header fields this path reads; a head with more is hyper's.
pub(super) const FIELDS: usize = 32;

/// A request head this path takes (see the module header).
pub(super) struct Head<'h, 'b> {
    pub head: bool,
    path: &'b str,
    fields: &'h [httparse::Header<'b>],
    /// Each field's name, read once (`Kind::of`), and its value as text (every value is: see
    /// `parse`), by the field's place in `fields`.
    kinds: &'h [Kind],
    values: &'h [&'b str],
    /// The head's length in bytes.
    pub len: usize,
}

/// The fields a head this path takes may have, by name: those the answer depends on, and those
/// no reader here looks at (`Connection` only as `keep-alive`, see `parse`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Host,
    Accept,
    AcceptEncoding,
    IfNoneMatch,
    IfModifiedSince,
    Connection,
    /// Read by neither hyper nor the router: `Accept-Language`, `User-Agent`, `Cache-Control`,
    /// `Pragma`, `Referer`, `DNT`, `From`.
    Unread,
}

impl Kind {
    /// The kind of a field by its name (any case); `None` for a field this path does not take.
    fn of(name: &str) -> Option<Kind> {
        let is = |k: &str| name.eq_ignore_ascii_case(k);
        let kind = match name.len() {
            3 if is("dnt") => Kind::Unread,
            4 if is("host") => Kind::Host,
            4 if is("from") => Kind::Unread,
            6 if is("accept") => Kind::Accept,
            6 if is("pragma") => Kind::Unread,
            7 if is("referer") => Kind::Unread,
            10 if is("connection") => Kind::Connection,
            10 if is("user-agent") => Kind::Unread,
            13 if is("if-none-match") => Kind::IfNoneMatch,
            13 if is("cache-control") => Kind::Unread,
            15 if is("accept-encoding") => Kind::AcceptEncoding,
            15 if is("accept-language") => Kind::Unread,
            17 if is("if-modified-since") => Kind::IfModifiedSince,
            _ => return None,
        };
        Some(kind)
    }

    /// The kind a reader asks for by `name`, when it is one this path reads.
    fn asked(name: &HeaderName) -> Option<Kind> {
        [
            (header::HOST, Kind::Host),
            (header::ACCEPT, Kind::Accept),
            (header::ACCEPT_ENCODING, Kind::AcceptEncoding),
            (header::IF_NONE_MATCH, Kind::IfNoneMatch),
            (header::IF_MODIFIED_SINCE, Kind::IfModifiedSince),
        ]
        .into_iter()
        .find_map(|(n, k)| (*name == n).then_some(k))
    }
}

/// What a buffer holds.
pub(super) enum Parse<'h, 'b> {
    Take(Head<'h, 'b>),
    /// The beginning of a head that may still be taken.
    Partial,
    /// Anything else: hyper's.
    Other,
}

/// Whether each byte may appear in a path this path takes: unreserved characters,
/// sub-delimiters, `:`, `@` and `/` (RFC 3986), all of which `http::Uri` keeps as they are.
const PATH_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~/!$&'()*+,;=:@";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether every line of `head` ends in CRLF: as many `\n` as `\r\n`, both counted without a
/// branch per byte (the compiler makes vector instructions of both sums).
fn crlf_only(head: &[u8]) -> bool {
    let Some(last) = head.len().checked_sub(1) else { return true };
    let lf: usize = head.iter().map(|&b| usize::from(b == b'\n')).sum();
    let crlf: usize =
        head[..last].iter().zip(&head[1..]).map(|(&a, &b)| usize::from((a == b'\r') & (b == b'\n'))).sum();
    lf == crlf
}

/// Where `parse` puts what it reads of a head: the fields as httparse reads them, and each
/// one's kind and value as text.
pub(super) struct Store<'b> {
    fields: [httparse::Header<'b>; FIELDS],
    kinds: [Kind; FIELDS],
    values: [&'b str; FIELDS],
}

impl Store<'_> {
    pub fn new() -> Self {
        Store { fields: [httparse::EMPTY_HEADER; FIELDS], kinds: [Kind::Unread; FIELDS], values: [""; FIELDS] }
    }
}

/// Reads the head at the start of `buf` (see the module header).
pub(super) fn parse<'h, 'b>(buf: &'b [u8], store: &'h mut Store<'b>, limits: &Limits) -> Parse<'h, 'b> {
    let Store { fields, kinds, values } = store;
    let mut req = httparse::Request::new(&mut fields[..limits.max_fields]);
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
    let Some(path) = req.path.filter(|_| crlf_only(&buf[..len])) else { return Parse::Other };
    let path_ok = path.starts_with('/')
        && path.len() < usize::from(u16::MAX) - 1
        && path.bytes().all(|b| PATH_BYTES[usize::from(b)]);
    if req.version != Some(1) || !path_ok {
        return Parse::Other;
    }
    // Only fields from the list (`Kind`), each value visible ASCII, `Connection` only as
    // `keep-alive`, exactly one `Host`.
    let mut hosts = 0;
    for (i, f) in req.headers.iter().enumerate() {
        let (Some(kind), Some(value)) = (Kind::of(f.name), text(f.value)) else { return Parse::Other };
        if kind == Kind::Connection && !value.eq_ignore_ascii_case("keep-alive") {
            return Parse::Other;
        }
        hosts += usize::from(kind == Kind::Host);
        (kinds[i], values[i]) = (kind, value);
    }
    if hosts != 1 {
        return Parse::Other;
    }
    let n = req.headers.len();
    Parse::Take(Head { head, path, fields: req.headers, kinds: &kinds[..n], values: &values[..n], len })
}

impl Fields for Head<'_, '_> {
    fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.texts(name).map(str::as_bytes)
    }

    /// Every value is text (see `parse`): the values as `parse` read them, found by kind for the
    /// fields the answer depends on, by name for any other.
    fn texts<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let asked = Kind::asked(name);
        let read = self.fields.iter().zip(self.kinds).zip(self.values);
        read.filter(move |((f, k), _)| match asked {
            Some(kind) => **k == kind,
            None => f.name.eq_ignore_ascii_case(name.as_str()),
        })
        .map(|(_, v)| *v)
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
    let mut store = Store::new();
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
        let mut store = Store::new();
        match parse(bytes, &mut store, &LIMITS) {
            Parse::Take(h) => Some((h.head, h.path.to_string(), h.len)),
            Parse::Partial | Parse::Other => None,
        }
    }

    fn partial(bytes: &[u8]) -> bool {
        let mut store = Store::new();
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

        /// The counting rule is the rule itself: every `\n` right after a `\r`.
        #[test]
        fn crlf_lines_are_found_as_byte_by_byte(bytes in prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'a']), 0..80)) {
            let each = bytes.iter().enumerate().all(|(i, &b)| b != b'\n' || (i > 0 && bytes[i - 1] == b'\r'));
            prop_assert_eq!(crlf_only(&bytes), each);
        }
    }

    /// Each name is read as the field it names, in any case, and no other name is taken.
    #[test]
    fn field_names_are_read_in_any_case() {
        let named = [
            ("Host", Some(Kind::Host)),
            ("ACCEPT", Some(Kind::Accept)),
            ("accept-Encoding", Some(Kind::AcceptEncoding)),
            ("If-None-Match", Some(Kind::IfNoneMatch)),
            ("if-modified-since", Some(Kind::IfModifiedSince)),
            ("Connection", Some(Kind::Connection)),
            ("User-Agent", Some(Kind::Unread)),
            ("dnt", Some(Kind::Unread)),
            ("From", Some(Kind::Unread)),
            ("Pragma", Some(Kind::Unread)),
            ("Referer", Some(Kind::Unread)),
            ("Cache-Control", Some(Kind::Unread)),
            ("Accept-Language", Some(Kind::Unread)),
            ("Accept-Charset", None),
            ("Hosts", None),
            ("Cookie", None),
            ("If-Match", None),
            ("If-Range", None),
            ("Range", None),
            ("Content-Length", None),
            ("Transfer-Encoding", None),
            ("", None),
        ];
        for (name, kind) in named {
            assert_eq!(Kind::of(name), kind, "{name}");
        }
        for (name, kind) in [
            (header::HOST, Kind::Host),
            (header::ACCEPT, Kind::Accept),
            (header::ACCEPT_ENCODING, Kind::AcceptEncoding),
            (header::IF_NONE_MATCH, Kind::IfNoneMatch),
            (header::IF_MODIFIED_SINCE, Kind::IfModifiedSince),
        ] {
            assert_eq!(Kind::of(name.as_str()), Some(kind));
            assert_eq!(Kind::asked(&name), Some(kind));
        }
        assert_eq!(Kind::asked(&header::USER_AGENT), None);
    }
}
