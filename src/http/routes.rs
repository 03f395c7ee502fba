//! The handlers of the route table: subscription feeds and their filtered views, archive pages,
//! clipping pages, the index, the OPML list, the stylesheet, health, readiness, status and
//! metrics. Each checks the names in its path, asks `access` whether the client may see the
//! document, and answers from the snapshot, or from [`Views`](crate::views::Views) through
//! `work` for what is made on request.
//!
//! At every feed URL (subscription document, filtered view, archive page, in each format) a
//! client that prefers HTML to every feed type (`negotiate::prefers_html`: a browser's
//! navigation) gets the HTML page of that document instead, made by `Views` like the other
//! views; every other client gets the feed's bytes. Both carry `Vary: Accept`.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};

use super::AppState;
use super::access::{operator_refused, refused, take_token};
use super::client::Client;
use super::negotiate::{negotiate, prefers_html, vary_accept};
use super::respond::{
    ARCHIVE_CACHE, PRIVATE_CACHE, PRIVATE_PAGE_CACHE, cache_control, code_off_worker, html_headers, not_found,
    not_modified, plain, respond, respond_with, unavailable,
};
use super::work;
use crate::feed::Format;
use crate::filter::Filter;
use crate::site::{Encoding, FeedEntry, Rendered};
use crate::views::{Lane, Lookup, Shape};

use crate::feed::FEED_XSL;

/// A feed or archive name from a path segment: one segment, not `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// `/{dir}/{file}`: a topic or provider feed, or a clipping's page.
pub async fn feed_or_page(s: State<AppState>, h: HeaderMap, q: RawQuery, dir: String, file: String) -> Response<Body> {
    match dir.as_str() {
        "topics" | "providers" => match file.rsplit_once('.') {
            Some((name, ext)) if valid_name(name) => feed(s, h, q, &format!("{dir}/{name}"), ext).await,
            _ => not_found(),
        },
        "clippings" => clipping(s, h, file).await,
        "stories" => super::stories::story(s.0, h, file).await,
        _ => not_found(),
    }
}

/// Ready once the store is open and the first comparison of the roots with it is done.
pub async fn readyz(State(state): State<AppState>) -> Response<Body> {
    if state.site.load().ready {
        plain(StatusCode::OK, "ready\n".into())
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
    }
}

/// Prometheus metrics, for the operators only (see `access`).
pub async fn metrics(State(state): State<AppState>, req: axum::extract::Request) -> Response<Body> {
    let client = req.extensions().get::<Client>().copied().unwrap_or(Client { addr: None, proxied: false });
    if let Some(refusal) = operator_refused(&state.config.load(), client, req.headers()) {
        return refusal;
    }
    let mut text = state.metrics.render(&crate::process::sample());
    // The bodies held for `sendfile` (`site::Sealed`) are the kernel's memory, not the heap's.
    let (files, bytes) = crate::site::sealed_held();
    text.push_str(&format!(
        "# HELP clipfeed_sealed_files Documents' bodies held in sealed memory files for sendfile.\n\
         # TYPE clipfeed_sealed_files gauge\nclipfeed_sealed_files {files}\n\
         # HELP clipfeed_sealed_bytes Bytes held in those files (outside resident memory).\n\
         # TYPE clipfeed_sealed_bytes gauge\nclipfeed_sealed_bytes {bytes}\n"
    ));
    let mut res = Response::new(Body::from(text));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn healthz() -> Response<Body> {
    plain(StatusCode::OK, "ok\n".into())
}

/// `/api/status`, for the operators only: the same rule as `/metrics` (see `access`), since it
/// names files and says why they were refused.
pub async fn status(State(state): State<AppState>, req: axum::extract::Request) -> Response<Body> {
    let client = req.extensions().get::<Client>().copied().unwrap_or(Client { addr: None, proxied: false });
    if let Some(refusal) = operator_refused(&state.config.load(), client, req.headers()) {
        return refusal;
    }
    let site = state.site.load();
    let mut res = Response::new(Body::from(site.status.clone()));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let site = state.site.load();
    let mut res = respond(&headers, site.index.get(), cache_control(state.max_age()));
    html_headers(res.headers_mut());
    res
}

pub async fn opml(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let site = state.site.load();
    respond(&headers, site.opml.get(), cache_control(state.max_age()))
}

pub async fn stylesheet(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    static XSL: std::sync::OnceLock<Rendered> = std::sync::OnceLock::new();
    let xsl = XSL.get_or_init(|| {
        Rendered::new(FEED_XSL.as_bytes().to_vec(), chrono::DateTime::UNIX_EPOCH, "text/xsl; charset=utf-8")
    });
    let mut res = respond(&headers, xsl, cache_control(state.max_age()));
    res.headers_mut().remove(header::LAST_MODIFIED);
    res
}

/// `POST /websub`: a WebSub subscription request, its body bounded (413 beyond) and due within
/// `http.header_timeout` of its head (408 after, the connection closed: a body that never comes
/// would hold the connection for good, past the registry's reach while a request is in flight).
/// 404 when the hub is off.
pub async fn websub(State(state): State<AppState>, req: axum::extract::Request) -> Response<Body> {
    let cfg = state.config.load();
    let Some(hub) = state.hub.clone().filter(|_| cfg.websub.enabled) else { return not_found() };
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let read = axum::body::to_bytes(req.into_body(), crate::websub::MAX_FORM_BYTES);
    let body = match tokio::time::timeout(cfg.http.header_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large\n".into()),
        Err(_) => {
            let mut res = plain(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time\n".into());
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return res;
        }
    };
    let answer = hub.request(content_type.as_deref(), &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = plain(status, answer.text);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The `Link` header of a subscription document: its hubs and its self URL (a private feed's
/// with its token), when it advertises any hub.
pub fn hub_links(cfg: &crate::config::Config, stem: &str, ext: &str, token: Option<&str>) -> Option<HeaderValue> {
    if !cfg.websub.active() {
        return None;
    }
    let hubs = cfg.advertised_hubs(token.is_some());
    if hubs.is_empty() {
        return None;
    }
    let mut self_url = cfg.url(&format!("{stem}.{ext}"));
    if let Some(token) = token {
        self_url = format!("{self_url}?token={token}");
    }
    let hubs: Vec<&str> = hubs.iter().map(String::as_str).collect();
    HeaderValue::from_str(&crate::websub::link_header(&hubs, &self_url)).ok()
}

/// A subscription document as it was published (no filter, not its page): 200 or 304 with its
/// validators, `Vary: Accept` and the WebSub `Link`. The router's `feed` and the hot path
/// (`hot`) both answer with this.
pub fn document(
    state: &AppState,
    headers: &HeaderMap,
    doc: &Rendered,
    stem: &str,
    ext: &str,
    token: Option<&str>,
    cc: HeaderValue,
) -> Response<Body> {
    let links = hub_links(&state.config.load(), stem, ext, token);
    let enc = negotiate(headers, doc);
    document_with(doc, enc, not_modified(headers, doc, enc), cc, links)
}

/// The answer [`document`] gives once the coding, freshness and `Link` are known: what the hot
/// path and the fast path (`fast`, which prebuilds its head from this) send.
pub fn document_with(
    doc: &Rendered,
    enc: Encoding,
    fresh: bool,
    cc: HeaderValue,
    links: Option<HeaderValue>,
) -> Response<Body> {
    let mut res = vary_accept(respond_with(doc, enc, fresh, cc));
    if let Some(links) = links {
        res.headers_mut().insert(header::LINK, links);
    }
    res
}

/// How long a reader is asked to wait while a new store is first filled, or a topic remap makes
/// its new feeds.
const STARTING_RETRY_SECS: u64 = 5;

/// On a first start (the store has never been reconciled with the roots), a feed with no items
/// yet, or not known yet, may be about to fill: it answers 503 with `Retry-After` until the
/// first reconcile ends, never an empty 200 or a 404 that would later turn into its content.
/// Once the store has been reconciled, feeds are what they are (a restart serves them at once).
/// Likewise, a feed that a topic remap under way brings into being answers 503 until it is done.
pub fn not_yet(site: &crate::site::Site, stem: &str, entry: Option<&FeedEntry>) -> Option<Response<Body>> {
    if entry.is_none() && site.coming.contains(stem) {
        let why = "the topic configuration changed and this feed is being made; it is not ready yet\n";
        return Some(unavailable(why.into(), STARTING_RETRY_SECS));
    }
    let empty = entry.is_none_or(|e| e.log_len == 0);
    (site.cold && empty).then(|| {
        unavailable(
            "clipfeed is indexing its clippings for the first time; this feed is not ready yet\n".into(),
            STARTING_RETRY_SECS,
        )
    })
}

/// A subscription feed, or a filtered view of it when the URL has a query; or the HTML page of
/// either, for a browser. A view already made is answered from the cache at once; another is made
/// in its lane.
pub async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    stem: &str,
    ext: &str,
) -> Response<Body> {
    let Some(format) = Format::from_extension(ext) else { return not_found() };
    let site = state.site.load();
    let entry = site.feeds.get(stem).cloned();
    let (token, query) = take_token(&query.unwrap_or_default());
    if let Some(res) = refused(&site, stem, &headers, token.as_deref()) {
        return res;
    }
    if let Some(res) = not_yet(&site, stem, entry.as_deref()) {
        return res;
    }
    let Some(entry) = entry else { return not_found() };
    let private_token = site.private.get(stem).cloned();
    let private = private_token.is_some();
    drop(site);
    let filter = match Filter::parse(&query, &entry.key, chrono::Utc::now()) {
        Ok(f) => f,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // A private feed must not sit in shared caches.
    let cc = if private { HeaderValue::from_static(PRIVATE_CACHE) } else { cache_control(state.max_age()) };
    let shape = if prefers_html(&headers) { Shape::Page { format, private } } else { Shape::Feed(format) };
    match (state.views.as_ref(), filter.is_empty(), shape) {
        (_, true, Shape::Feed(_)) | (None, true, _) => {
            document(&state, &headers, entry.current(format), stem, ext, private_token.as_deref(), cc)
        }
        (None, false, _) => not_found(),
        (Some(views), true, _) => {
            let doc = match views.lookup_current_page(&entry, format, private) {
                Lookup::Cached(doc) => doc,
                Lookup::Missing | Lookup::Uncached => {
                    let make =
                        move |v: &crate::views::Views, budget: &_| v.current_page(&entry, format, private, budget);
                    match work::make(&state, Lane::Pages, make).await {
                        Ok(doc) => doc,
                        Err(res) => return res,
                    }
                }
            };
            serve(&headers, &doc, shape, cc).await
        }
        (Some(views), false, _) => filtered(&state, views, &headers, entry, filter, shape, cc).await,
    }
}

/// A filtered view of a feed, or its page.
async fn filtered(
    state: &AppState,
    views: &crate::views::Views,
    headers: &HeaderMap,
    entry: std::sync::Arc<FeedEntry>,
    filter: Filter,
    shape: Shape,
    cc: HeaderValue,
) -> Response<Body> {
    let doc = match views.lookup_filtered(&entry, &filter, shape) {
        Lookup::Cached(doc) => doc,
        Lookup::Missing | Lookup::Uncached => {
            match work::make(state, Lane::Filters, move |v, budget| v.filtered(&entry, &filter, shape, budget)).await {
                Ok(doc) => doc,
                Err(res) => return res,
            }
        }
    };
    serve(headers, &doc, shape, cc).await
}

/// A view of a feed in its shape: a feed document as it is, a page with the page headers. A
/// private feed's page is stored by no cache, not even the browser's, and sends no `Referer`
/// from its links: its URL holds the token.
async fn serve(headers: &HeaderMap, doc: &std::sync::Arc<Rendered>, shape: Shape, cc: HeaderValue) -> Response<Body> {
    code_off_worker(headers, doc).await;
    let private_page = matches!(shape, Shape::Page { private: true, .. });
    let cc = if private_page { HeaderValue::from_static(PRIVATE_PAGE_CACHE) } else { cc };
    let mut res = respond(headers, doc, cc);
    if let Shape::Page { .. } = shape {
        let h = res.headers_mut();
        html_headers(h);
        if private_page {
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        }
    }
    vary_accept(res)
}

/// The page size, index and format of an archive page's file name (`{page_size}-{index}.{ext}`),
/// which has one spelling per page: no leading zeros or signs.
fn archive_name(file: &str) -> Option<(u64, u64, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    let (size, num) = name.split_once('-')?;
    let (format, page_size, index) =
        (Format::from_extension(ext)?, size.parse::<u64>().ok()?, num.parse::<u64>().ok()?);
    (size == page_size.to_string() && num == index.to_string()).then_some((page_size, index, format))
}

/// An archive page of a feed. One already made is answered from the cache at once; another is
/// made in the pages' lane, which filtered views never hold up.
pub async fn archive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    stem: String,
    file: String,
) -> Response<Body> {
    let Some((page_size, index, format)) = archive_name(&file) else { return not_found() };
    let (token, query) = take_token(&query.unwrap_or_default());
    let site = state.site.load();
    // A missing feed and a private one without its token get the same answer, before any other.
    if !site.feeds.contains_key(&stem) {
        return not_found();
    }
    if let Some(res) = refused(&site, &stem, &headers, token.as_deref()) {
        return res;
    }
    // `group=story` names the story log's pages; other filters make no archive pages.
    let grouped = query == "group=story";
    if !query.is_empty() && !grouped {
        return plain(
            StatusCode::BAD_REQUEST,
            "query filters apply to subscription feeds, not to archive pages (which take only group=story)\n".into(),
        );
    }
    // A full archive page changes only if one of its clippings is edited or deleted (the change
    // also shows at the head of the feed, where RFC 5005 makes it win) or the feed's title or
    // address changes. A week of caching keeps a deleted clipping from outliving its tombstone
    // (30 days by default) in caches.
    let cc = HeaderValue::from_static(if site.private.contains_key(&stem) { PRIVATE_CACHE } else { ARCHIVE_CACHE });
    let private = site.private.contains_key(&stem);
    if let Some(res) = not_yet(&site, &stem, site.feeds.get(&stem).map(|e| &**e)) {
        return res;
    }
    let (Some(entry), Some(views)) = (site.feeds.get(&stem).cloned(), state.views.as_ref()) else {
        return not_found();
    };
    drop(site);
    let shape = if prefers_html(&headers) { Shape::Page { format, private } } else { Shape::Feed(format) };
    let lookup = if grouped {
        views.lookup_grouped_archive(&entry, page_size, index, shape)
    } else {
        views.lookup_archive(&entry, page_size, index, shape)
    };
    let doc = match lookup {
        Lookup::Missing => return not_found(),
        Lookup::Cached(doc) => doc,
        Lookup::Uncached => {
            let made = work::make(&state, Lane::Pages, move |v, budget| {
                if grouped {
                    v.grouped_archive(&entry, page_size, index, shape, budget)
                } else {
                    v.archive(&entry, page_size, index, shape, budget)
                }
            });
            match made.await {
                Ok(Some(doc)) => doc,
                Ok(None) => return not_found(),
                Err(res) => return res,
            }
        }
    };
    serve(&headers, &doc, shape, cc).await
}

/// The page of a clipping that has no URL of its own, made in the pages' lane.
async fn clipping(State(state): State<AppState>, headers: HeaderMap, id: String) -> Response<Body> {
    let valid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !valid {
        return not_found();
    }
    match work::make(&state, Lane::Pages, move |v, budget| v.clipping_page(&id, budget)).await {
        Ok(Some(html)) => {
            let rendered = std::sync::Arc::new(Rendered::new(
                html.into_bytes(),
                chrono::DateTime::UNIX_EPOCH,
                "text/html; charset=utf-8",
            ));
            code_off_worker(&headers, &rendered).await;
            let mut res = respond(&headers, &rendered, cache_control(state.max_age()));
            res.headers_mut().remove(header::LAST_MODIFIED);
            html_headers(res.headers_mut());
            res
        }
        Ok(None) => not_found(),
        Err(res) => res,
    }
}
