//! The hot path: what feed readers ask for nearly every time, a public subscription document
//! (`/feed.rss`, `/topics/{name}.atom`, `/providers/{name}.json`) by `GET` or `HEAD` with no
//! query, answered from the snapshot without the router's matching, extractors and middleware.
//!
//! It decides nothing of its own. A request it takes meets the same refusals as in the first
//! layer (`gate::malformed`), is answered by the same function as the router's feed handler
//! (`routes::document`, so the same negotiation, validators and headers), with the
//! `Content-Length` the router adds, and is counted in the same request metrics. Anything it is
//! not sure of goes to the router, which stays the reference: a path with percent-escapes, a
//! query, a private feed, a feed not served yet or not known, a browser's navigation, a client
//! behind a trusted proxy (whose limits `gate` keeps), a malformed request. The tests check that
//! for each request it answers, the router gives the same answer.

use std::net::IpAddr;

use axum::body::Body;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response};

use super::AppState;
use super::negotiate::{Fields, negotiate, prefers_html};
use super::respond::{cache_control, not_modified};
use super::routes::{document_with, hub_links, not_yet, valid_name};
use crate::feed::Format;
use crate::site::{Encoding, Rendered};

/// The stem (`feed`, `topics/ai`) and extension of a subscription document's path, when the path
/// names one in the spelling the router would match without decoding anything.
pub(super) fn document_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    if rest.contains('%') {
        return None;
    }
    let (stem, ext) = rest.rsplit_once('.')?;
    match stem.split_once('/') {
        None if stem == "feed" => Some((stem, ext)),
        Some(("topics" | "providers", name)) if valid_name(name) => Some((stem, ext)),
        _ => None,
    }
}

/// What the hot path reads of a request: hyper's parsed request, or the fast path's (`fast`).
pub(super) trait Asked: Fields {
    /// `Some(false)` for `GET`, `Some(true)` for `HEAD`, `None` for any other method.
    fn head(&self) -> Option<bool>;
    /// The path, when the target is in origin form without a query (`None` otherwise).
    fn plain_path(&self) -> Option<&str>;
    /// Whether the first layer (`gate::malformed`) lets it through: one `Host`, the target
    /// within `max_url` bytes.
    fn well_formed(&self, max_url: usize) -> bool;
}

impl<B> Fields for Request<B> {
    fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers().lines(name)
    }
}

impl<B> Asked for Request<B> {
    fn head(&self) -> Option<bool> {
        match *self.method() {
            Method::GET => Some(false),
            Method::HEAD => Some(true),
            _ => None,
        }
    }

    fn plain_path(&self) -> Option<&str> {
        self.uri().query().is_none().then(|| self.uri().path())
    }

    fn well_formed(&self, max_url: usize) -> bool {
        super::gate::malformed(self, max_url).is_none()
    }
}

/// A request the hot path takes: the document, how it is answered, and what the answer carries
/// besides the document's own fields.
pub(super) struct Taken<'a> {
    pub doc: &'a Rendered,
    pub enc: Encoding,
    /// 304: the client's copy is current.
    pub fresh: bool,
    /// A `HEAD` request: the length is sent, not the body.
    pub head: bool,
    pub cache_control: HeaderValue,
    pub links: Option<HeaderValue>,
}

/// `answer(how the request is taken)` when the hot path takes `req` from `peer` (see the module
/// header); `None` leaves it to the router. Counting it is the caller's.
pub(super) fn take<R>(
    state: &AppState,
    req: &impl Asked,
    peer: IpAddr,
    answer: impl FnOnce(Taken<'_>) -> R,
) -> Option<R> {
    let head = req.head()?;
    let (stem, ext) = document_path(req.plain_path()?)?;
    let format = Format::from_extension(ext)?;
    let cfg = state.config.load();
    if cfg.http.trusted_proxies.iter().any(|n| n.contains(peer)) || !req.well_formed(cfg.http.max_url_bytes) {
        return None;
    }
    let site = state.site.load();
    let entry = site.feeds.get(stem)?;
    if site.private.contains_key(stem) || not_yet(&site, stem, Some(&**entry)).is_some() || prefers_html(req) {
        return None;
    }
    let doc = entry.current(format);
    let enc = negotiate(req, doc);
    let fresh = not_modified(req, doc, enc);
    let links = hub_links(&cfg, stem, ext, None);
    let cache_control = cache_control(cfg.cache_max_age);
    drop(cfg);
    Some(answer(Taken { doc, enc, fresh, head, cache_control, links }))
}

/// Counts an answer of the hot path, as the first layer counts the router's.
pub(super) fn count(state: &AppState, status: u16, body_bytes: u64) {
    state.metrics.request("feed", status, body_bytes);
}

/// The answer to `req` from `peer`, when it is a request this path takes (see the module
/// header); `None` sends it to the router.
pub fn answer<B>(state: &AppState, req: &Request<B>, peer: IpAddr) -> Option<Response<Body>> {
    let (mut res, head) =
        take(state, req, peer, |t| (document_with(t.doc, t.enc, t.fresh, t.cache_control, t.links), t.head))?;
    let size = http_body::Body::size_hint(res.body()).exact().unwrap_or(0);
    // What the router adds to every answer it gives (axum's `Route`): the length, and no body
    // for `HEAD`.
    if !res.headers().contains_key(header::CONTENT_LENGTH) {
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if head {
        *res.body_mut() = Body::empty();
    }
    count(state, res.status().as_u16(), if head { 0 } else { size });
    Some(res)
}
