//! Content negotiation: which coding a client gets (`Accept-Encoding`), and whether a request for
//! a feed gets the feed or its HTML page (`Accept`).

use axum::body::Body;
use axum::http::Response;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::site::{Encoding, Rendered};

/// The header fields of a request as negotiation and conditional requests read them: every
/// line of one field, in the order sent. Implemented by hyper's `HeaderMap` (the router) and by
/// the fast path's own parse of a head (`fast`), so both ask the same functions.
pub trait Fields {
    /// The raw value of each line of the field `name` (a lower-case standard name).
    fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The lines of `name` that are text ([`text`]), as text, in order; the others left out.
    fn texts<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.lines(name).filter_map(text)
    }
}

impl Fields for HeaderMap {
    fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

/// A field value as text, when it is visible ASCII (tabs and spaces allowed): the rule of
/// `HeaderValue::to_str`, whose lines that fail it are ignored by every reader here.
pub fn text(value: &[u8]) -> Option<&str> {
    // Every byte looked at, without a branch per byte (the compiler makes vector instructions of
    // it): field values are short, and nearly all of them are text.
    let visible = value.iter().fold(true, |ok, &b| ok & (((b' '..0x7f).contains(&b)) | (b == b'\t')));
    // SAFETY: every byte is below 0x7f, so the bytes are ASCII, which is UTF-8.
    visible.then(|| unsafe { std::str::from_utf8_unchecked(value) })
}

/// The coding to send: brotli, then gzip, when the client accepts them (q > 0) and the document
/// is worth compressing; identity otherwise. Every `Accept-Encoding` line counts; nothing is
/// allocated, however many codings a client lists.
pub fn negotiate(headers: &impl Fields, r: &Rendered) -> Encoding {
    if !r.compressible() {
        return Encoding::Identity;
    }
    let (mut br, mut gzip, mut star) = (None::<f32>, None::<f32>, None::<f32>);
    let lines = headers.texts(&header::ACCEPT_ENCODING);
    for part in lines.flat_map(|v| v.split(',')) {
        let mut bits = part.split(';');
        let coding = bits.next().unwrap_or("").trim();
        let q = || {
            bits.filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
        };
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q());
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q());
        } else if coding == "*" {
            star = Some(q());
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The media types a feed reader may name in `Accept` for a feed. A client is given the HTML page
/// of a feed only when it prefers `text/html` to every one of them.
const FEED_TYPES: [(&str, &str); 6] = [
    ("application", "rss+xml"),
    ("application", "atom+xml"),
    ("application", "feed+json"),
    ("application", "xml"),
    ("text", "xml"),
    ("application", "json"),
];

/// A quality value (RFC 9110, 12.4.2) in thousandths: `0` to `1`, at most three decimals.
fn qvalue(s: &str) -> Option<u16> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let frac = frac.bytes().zip([100, 10, 1]).map(|(b, scale)| u16::from(b - b'0') * scale).sum::<u16>();
    (whole + frac <= 1000).then_some(whole + frac)
}

/// One element of `Accept`: its media range (`type`, `subtype`, either `*`) and quality. `None`
/// for an empty or malformed element, which is then ignored. Media type parameters and accept
/// extensions play no part.
fn media_range(element: &str) -> Option<(&str, &str, u16)> {
    let mut parts = element.split(';');
    let (ty, sub) = parts.next()?.trim().split_once('/')?;
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"/\\\"(),;=".contains(&b));
    if !valid(ty) || !valid(sub) || (ty == "*" && sub != "*") {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("q") {
            q = qvalue(value.trim())?;
            break;
        }
    }
    Some((ty, sub, q))
}

/// How closely a media range names a type: 3 exactly, 2 as `type/*`, 1 as `*/*`, 0 not at all.
fn closeness(range: (&str, &str), ty: (&str, &str)) -> u8 {
    match range {
        ("*", "*") => 1,
        (t, "*") if t.eq_ignore_ascii_case(ty.0) => 2,
        (t, s) if t.eq_ignore_ascii_case(ty.0) && s.eq_ignore_ascii_case(ty.1) => 3,
        _ => 0,
    }
}

/// The quality a client gives one media type: that of the closest range naming it (the highest
/// among equally close ones), as RFC 9110 12.5.1 has it; 0 when no range names it.
#[derive(Clone, Copy, Default)]
struct Quality {
    closeness: u8,
    q: u16,
}

impl Quality {
    fn offer(&mut self, closeness: u8, q: u16) {
        if closeness > self.closeness || (closeness == self.closeness && closeness > 0 && q > self.q) {
            *self = Quality { closeness, q };
        }
    }
}

/// Whether the client asks for a page rather than a feed: its `Accept` (every line of it) gives
/// `text/html` a strictly higher quality than each feed type, wildcards counted. Browsers'
/// navigations do (`text/html,…,application/xml;q=0.9,*/*;q=0.8`); feed readers, clients
/// without `Accept` and `*/*` do not. Nothing is allocated, however long the header.
pub fn prefers_html(headers: &impl Fields) -> bool {
    let mut html = Quality::default();
    let mut feeds = [Quality::default(); FEED_TYPES.len()];
    let lines = headers.texts(&header::ACCEPT);
    for (ty, sub, q) in lines.flat_map(|v| v.split(',')).filter_map(media_range) {
        html.offer(closeness((ty, sub), ("text", "html")), q);
        for (quality, feed) in feeds.iter_mut().zip(FEED_TYPES) {
            quality.offer(closeness((ty, sub), feed), q);
        }
    }
    html.q > 0 && feeds.iter().all(|f| f.q < html.q)
}

/// Every representation of a feed URL depends on `Accept` (the page or the feed), so caches
/// must key on it.
pub fn vary_accept(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Accept"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` keeps the rule of `HeaderValue::to_str` (visible ASCII, spaces and tabs) for every
    /// byte, alone and among others.
    #[test]
    fn text_is_visible_ascii_and_nothing_else() {
        for b in 0..=255u8 {
            let ok = (b' '..0x7f).contains(&b) || b == b'\t';
            for value in [vec![b], vec![b'a', b, b'z'], [b"x".repeat(40), vec![b], b"y".repeat(9)].concat()] {
                assert_eq!(text(&value).is_some(), ok, "{b:#x} in {value:?}");
                assert_eq!(text(&value).is_some(), HeaderValue::from_bytes(&value).is_ok_and(|v| v.to_str().is_ok()));
                if ok {
                    assert_eq!(text(&value).unwrap().as_bytes(), &value[..]);
                }
            }
        }
        assert_eq!(text(b""), Some(""));
    }

    /// `Accept` as real clients send it, and whether each gets the page (`true`) or the feed.
    /// Where each value comes from is said beside it: captured from the client itself where it is
    /// installed here, else read in its source or its documentation.
    const CLIENTS: &[(&str, Option<&str>, bool)] = &[
        // Feed readers.
        ("newsboat 2.21 (captured: it sets none, libcurl sends */*)", Some("*/*"), false),
        (
            "feedparser 6.0.10 (captured; also Python tools built on it)",
            Some(
                "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
            ),
            false,
        ),
        (
            "SimplePie, so FreshRSS and WordPress (SimplePie's fetch_data)",
            Some(
                "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.7, unknown/unknown;q=0.1, application/unknown;q=0.1, */*;q=0.1",
            ),
            false,
        ),
        (
            "Miniflux 2 (internal/reader/fetcher: text/html ties with the feed types)",
            Some(
                "application/xml, application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, text/html, */*;q=0.9",
            ),
            false,
        ),
        ("NetNewsWire (RSWeb sets none; URLSession sends */*)", Some("*/*"), false),
        (
            "Thunderbird (FeedUtils.REQUEST_ACCEPT)",
            Some(
                "application/atom+xml,application/rss+xml;q=0.9,application/rdf+xml;q=0.8,application/xml;q=0.7,text/xml;q=0.7,*/*;q=0.1",
            ),
            false,
        ),
        // Feedly and Inoreader publish their User-Agent only; a fetcher that sends no Accept, or
        // */*, gets the feed.
        ("a fetcher without Accept (curl -H 'Accept:', Feedly and Inoreader unknown)", None, false),
        ("curl, wget, Go's and Python's HTTP clients", Some("*/*"), false),
        // Browsers' navigations.
        (
            "Chromium 148 (captured), Chrome, Edge, Opera",
            Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            ),
            true,
        ),
        (
            "Firefox 128 and later, Safari",
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            true,
        ),
        (
            "Firefox 92 to 127",
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
            true,
        ),
        (
            "Opera Presto",
            Some(
                "text/html, application/xml;q=0.9, application/xhtml+xml, image/png, image/webp, image/jpeg, image/gif, image/x-xbitmap, */*;q=0.1",
            ),
            true,
        ),
        // Legacy Edge and Internet Explorer rank */* with text/html: they keep the feed.
        ("Edge 12 to 18", Some("text/html, application/xhtml+xml, image/jxr, */*"), false),
    ];

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn real_clients_get_what_they_prefer() {
        for (client, value, page) in CLIENTS {
            let headers = accept(value.as_slice());
            assert_eq!(prefers_html(&headers), *page, "{client}: {value:?}");
        }
    }

    #[test]
    fn html_must_rank_strictly_above_every_feed_type() {
        let cases: &[(&[&str], bool)] = &[
            (&["text/html"], true),
            (&["TEXT/HTML"], true),
            (&["text/html;q=0.5"], true),
            (&["text/*"], false), // text/xml ties with text/html
            (&["text/*, application/xml;q=0.5"], false),
            (&["text/html, text/*;q=0.5"], true),
            (&["text/html;q=0.5, */*;q=0.5"], false),
            (&["text/html;q=0.51, */*;q=0.5"], true),
            (&["text/html;q=0.8, application/json"], false),
            (&["text/html, application/feed+json"], false),
            (&["text/html, application/*;q=0.9"], true),
            (&["text/html;q=0.9, application/*"], false),
            (&["application/rss+xml;q=0, text/html;q=0.1, */*;q=0.2"], false),
            // Every feed type refused outright: the page, however low its quality.
            (&["application/*;q=0, text/xml;q=0, text/html;q=0.1, */*"], true),
            (&["text/html;q=0", "*/*"], false),
            (&["text/html;q=0"], false),
            // Lines add up; the closest range wins over a wildcard.
            (&["application/xml;q=0.9", "text/html"], true),
            (&["text/html", "application/xml"], false),
            (&["*/*;q=0.1, text/html"], true),
            // Parameters and extensions play no part; `Q` is `q`.
            (&["text/html;level=1;q=0.9;ext=1, */*;q=0.8"], true),
            (&["text/html; Q=0.2, */*;q=0.3"], false),
            (&["text/html;charset=utf-8"], true),
            // Malformed elements are ignored, never guessed at.
            (&["text/html;q=2"], false),
            (&["text/html;q=0.9999"], false),
            (&["text/html;q=abc, application/xml;q=0.5"], false),
            (&["*/html, text/html;q=0.1"], true),
            (&["html"], false),
            (&[",,, ;q=1, /, text/html"], true),
            (&[""], false),
            (&[], false),
        ];
        for (values, page) in cases {
            assert_eq!(prefers_html(&accept(values)), *page, "{values:?}");
        }
    }

    #[test]
    fn qvalues_are_read_exactly() {
        for (s, q) in [("0", Some(0)), ("1", Some(1000)), ("0.5", Some(500)), ("0.", Some(0)), ("1.000", Some(1000))] {
            assert_eq!(qvalue(s), q, "{s}");
        }
        for s in ["1.001", "2", "-0", ".5", "0.1234", "0.5e0", "NaN", "", " 1"] {
            assert_eq!(qvalue(s), None, "{s}");
        }
    }

    #[test]
    fn a_long_accept_is_read_whole() {
        let long = format!("{}text/html", "application/x-nothing;q=0.1, ".repeat(2000));
        assert!(prefers_html(&accept(&[&long])));
        let long = format!("text/html;q=0.5, {}application/atom+xml", "image/png, ".repeat(2000));
        assert!(!prefers_html(&accept(&[&long])));
    }
}
