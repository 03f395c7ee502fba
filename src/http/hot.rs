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
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, Request, Response};

use super::AppState;
use super::negotiate::prefers_html;
use super::respond::cache_control;
use super::routes::{document, not_yet, valid_name};
use crate::feed::Format;

/// The stem (`feed`, `topics/ai`) and extension of a subscription document's path, when the path
/// names one in the spelling the router would match without decoding anything.
fn document_path(path: &str) -> Option<(&str, &str)> {
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

/// The answer to `req` from `peer`, when it is a request this path takes (see the module
/// header); `None` sends it to the router.
pub fn answer<B>(state: &AppState, req: &Request<B>, peer: IpAddr) -> Option<Response<Body>> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return None,
    };
    if req.uri().query().is_some() {
        return None;
    }
    let (stem, ext) = document_path(req.uri().path())?;
    let format = Format::from_extension(ext)?;
    let cfg = state.config.load();
    if cfg.http.trusted_proxies.iter().any(|n| n.contains(peer))
        || super::gate::malformed(req, cfg.http.max_url_bytes).is_some()
    {
        return None;
    }
    let max_age = cfg.cache_max_age;
    drop(cfg);
    let headers = req.headers();
    let site = state.site.load();
    let entry = site.feeds.get(stem)?;
    if site.private.contains_key(stem) || not_yet(&site, stem, Some(&**entry)).is_some() || prefers_html(headers) {
        return None;
    }
    let mut res = document(state, headers, entry.current(format), stem, ext, None, cache_control(max_age));
    drop(site);
    let size = http_body::Body::size_hint(res.body()).exact().unwrap_or(0);
    // What the router adds to every answer it gives (axum's `Route`): the length, and no body
    // for `HEAD`.
    if !res.headers().contains_key(header::CONTENT_LENGTH) {
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if head {
        *res.body_mut() = Body::empty();
    }
    state.metrics.request("feed", res.status().as_u16(), if head { 0 } else { size });
    Some(res)
}
