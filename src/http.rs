//! HTTP: the routes, query filters, content negotiation, conditional requests and response
//! headers. The only module that knows HTTP (and the only one that imports axum and hyper).
//! Subscription feeds, the index and the OPML list are looked up in the current [`Site`]
//! snapshot: nothing is parsed, queried or rendered for them. Archive pages and filtered views
//! come from [`Dynamic`] (rendered once, then cached). [`server`] serves one TCP connection
//! within the configured limits.
//!
//! Request paths never name files: every route looks its name up in the snapshot, the store or
//! the view cache, after checking it against the shape of a feed name, an archive page name or a
//! clipping id. Path segments are percent-decoded exactly once, so `%252e%252e` stays the literal
//! `%2e%2e`, which names nothing.
//!
//! `router` is what tests drive with `tower::ServiceExt::oneshot`, without a socket.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::config::Config;
use crate::feed::Format;
use crate::filter::Filter;
use crate::metrics::Metrics;
use crate::site::{Encoding, FeedEntry, Rendered, Site};

mod server;
pub use server::{Phase, Server};

/// What is rendered on request: archive pages, filtered views, clipping pages.
pub trait Dynamic: Send + Sync {
    /// Archive page `index` of a feed; `Ok(None)` when there is no such page.
    fn archive(
        &self,
        feed: &FeedEntry,
        page_size: u64,
        index: u64,
        format: Format,
    ) -> anyhow::Result<Option<Arc<Rendered>>>;
    /// The feed narrowed by a filter.
    fn filtered(&self, feed: &FeedEntry, filter: &Filter, format: Format) -> anyhow::Result<Arc<Rendered>>;
    /// The HTML page of one clipping; `Ok(None)` when there is no such clipping.
    fn clipping_page(&self, id: &str) -> anyhow::Result<Option<String>>;
}

impl Dynamic for crate::views::Views {
    fn archive(
        &self,
        feed: &FeedEntry,
        page_size: u64,
        index: u64,
        format: Format,
    ) -> anyhow::Result<Option<Arc<Rendered>>> {
        crate::views::Views::archive(self, feed, page_size, index, format)
    }
    fn filtered(&self, feed: &FeedEntry, filter: &Filter, format: Format) -> anyhow::Result<Arc<Rendered>> {
        crate::views::Views::filtered(self, feed, filter, format)
    }
    fn clipping_page(&self, id: &str) -> anyhow::Result<Option<String>> {
        crate::views::Views::clipping_page(self, id)
    }
}

/// What handlers share. Every request clones it (the router's state, the counting layer's), so
/// it is one reference-counted pointer: one atomic increment per clone, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
pub struct Shared {
    pub site: Arc<ArcSwap<Site>>,
    pub dynamic: Option<Arc<dyn Dynamic>>,
    /// The configuration in force (replaced on SIGHUP): cache lifetime, metrics access.
    pub config: Arc<ArcSwap<Config>>,
    pub metrics: Arc<Metrics>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl AppState {
    fn max_age(&self) -> u32 {
        self.config.load().cache_max_age
    }
}

/// A turn to make a view (a filtered feed, an archive page, a clipping's page) off the async
/// workers: as many at once as the store has read connections, so a burst of cache misses waits
/// here instead of piling up blocked threads, each with its own buffers.
async fn view_turn() -> tokio::sync::SemaphorePermit<'static> {
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> =
        std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(crate::store::READERS));
    TURNS.acquire().await.expect("the semaphore is never closed")
}

/// `Cache-Control` of archive pages.
const ARCHIVE_CACHE: &str = "public, max-age=604800";

/// The stylesheet that shows RSS and Atom feeds as a page in browsers.
const FEED_XSL: &str = include_str!("../assets/feed.xsl");

/// Every route clipfeed serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/feeds.opml", get(opml))
        .route("/feed.xsl", get(stylesheet))
        .route(
            "/feed.rss",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "rss").await }),
        )
        .route(
            "/feed.atom",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "atom").await }),
        )
        .route(
            "/feed.json",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "json").await }),
        )
        .route(
            "/feed/archive/{file}",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery, Path(file): Path<String>| async move {
                archive(s, h, q, "feed".into(), file).await
            }),
        )
        .route(
            "/{dir}/{file}",
            get(
                |s: State<AppState>, h: HeaderMap, q: RawQuery, Path((dir, file)): Path<(String, String)>| async move {
                    match dir.as_str() {
                        "topics" | "providers" => match file.rsplit_once('.') {
                            Some((name, ext)) if valid_name(name) => feed(s, h, q, &format!("{dir}/{name}"), ext).await,
                            _ => not_found(),
                        },
                        "clippings" => clipping(s, h, file).await,
                        _ => not_found(),
                    }
                },
            ),
        )
        .route(
            "/{dir}/{name}/archive/{file}",
            get(
                |s: State<AppState>,
                 h: HeaderMap,
                 q: RawQuery,
                 Path((dir, name, file)): Path<(String, String, String)>| async move {
                    if matches!(dir.as_str(), "topics" | "providers") && valid_name(&name) {
                        archive(s, h, q, format!("{dir}/{name}"), file).await
                    } else {
                        not_found()
                    }
                },
            ),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .fallback(|| async { not_found() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
}

/// The class of a route, for request metrics.
fn route_class(path: &str, query: Option<&str>) -> &'static str {
    match path {
        "/" => "index",
        "/feeds.opml" => "opml",
        "/feed.xsl" => "stylesheet",
        "/healthz" | "/readyz" => "health",
        "/api/status" => "status",
        "/metrics" => "metrics",
        p if p.starts_with("/clippings/") => "page",
        p if p.contains("/archive/") => "archive",
        p if p.ends_with(".rss") || p.ends_with(".atom") || p.ends_with(".json") => {
            if query.is_some_and(|q| !q.is_empty()) { "filtered" } else { "feed" }
        }
        _ => "other",
    }
}

/// Refuses what no route should see, then counts every response by route class and status, with
/// its body size.
async fn count_request(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let route = route_class(req.uri().path(), req.uri().query());
    let head = req.method() == axum::http::Method::HEAD;
    let max_url = state.config.load().http.max_url_bytes;
    let res = match malformed(&req, max_url) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    };
    let bytes = if head { 0 } else { http_body::Body::size_hint(res.body()).exact().unwrap_or(0) };
    state.metrics.request(route, res.status().as_u16(), bytes);
    res
}

/// A request no route may answer: a request target longer than `max_url` bytes (414, key
/// `http.max_url_bytes`), or a `Host` field given twice, or missing from an HTTP/1.1 request
/// (400, RFC 9112 section 3.2).
fn malformed(req: &axum::extract::Request, max_url: usize) -> Option<Response<Body>> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > max_url {
        let msg = format!("the request target is longer than {max_url} bytes\n");
        return Some(plain(StatusCode::URI_TOO_LONG, msg));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(_), None) => true,
        (None, _) => req.version() < axum::http::Version::HTTP_11,
        (Some(_), Some(_)) => false,
    };
    if !host_ok {
        return Some(plain(StatusCode::BAD_REQUEST, "a request needs exactly one Host header\n".into()));
    }
    None
}

/// Ready once the store is open and the first comparison of the roots with it is done.
async fn readyz(State(state): State<AppState>) -> Response<Body> {
    if state.site.load().ready {
        plain(StatusCode::OK, "ready\n".into())
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
    }
}

/// Prometheus metrics, for the configured networks only, and with the configured bearer token.
async fn metrics(State(state): State<AppState>, req: axum::extract::Request) -> Response<Body> {
    let cfg = state.config.load();
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if !peer.is_some_and(|ip| cfg.metrics_allow.iter().any(|n| n.contains(ip))) {
        return plain(StatusCode::FORBIDDEN, "metrics are not served to this address\n".into());
    }
    if let Some(token) = &cfg.metrics_token
        && !bearer(req.headers()).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
    {
        let mut res = plain(StatusCode::UNAUTHORIZED, "a bearer token is required\n".into());
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"clipfeed\""));
        return res;
    }
    let mut res = Response::new(Body::from(state.metrics.render()));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Compares secrets in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Splits `token=` off a query string: (the token, the rest).
fn take_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "token" {
            token = Some(v.into_owned());
        } else {
            rest.append_pair(&k, &v);
        }
    }
    (token, rest.finish())
}

/// For a private feed: the token from `?token=` or `Authorization: Bearer` must match. `None`
/// when the request may go on; else the 401 to send. Tokens are never logged.
fn refused(site: &Site, stem: &str, headers: &HeaderMap, token: Option<&str>) -> Option<Response<Body>> {
    let expected = site.private.get(stem)?;
    let given = token.or_else(|| bearer(headers));
    if given.is_some_and(|g| same(g.as_bytes(), expected.as_bytes())) {
        return None;
    }
    let mut res = plain(
        StatusCode::UNAUTHORIZED,
        "this feed is private: add ?token=… or an Authorization: Bearer header\n".into(),
    );
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"clipfeed\""));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(res)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "not found\n".into())
}

/// A short text answer. Error messages may quote the request, so browsers are told not to
/// guess another type.
fn plain(status: StatusCode, msg: String) -> Response<Body> {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], msg)
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!("request failed: {e:#}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
}

async fn healthz() -> Response<Body> {
    plain(StatusCode::OK, "ok\n".into())
}

async fn status(State(state): State<AppState>) -> Response<Body> {
    let site = state.site.load();
    let mut res = Response::new(Body::from(site.status.clone()));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let site = state.site.load();
    let mut res = respond(&headers, site.index.get(), cache_control(state.max_age()));
    html_headers(res.headers_mut());
    res
}

async fn opml(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let site = state.site.load();
    respond(&headers, site.opml.get(), cache_control(state.max_age()))
}

async fn stylesheet(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    static XSL: std::sync::OnceLock<Rendered> = std::sync::OnceLock::new();
    let xsl = XSL.get_or_init(|| {
        Rendered::new(FEED_XSL.as_bytes().to_vec(), chrono::DateTime::UNIX_EPOCH, "text/xsl; charset=utf-8")
    });
    let mut res = respond(&headers, xsl, cache_control(state.max_age()));
    res.headers_mut().remove(header::LAST_MODIFIED);
    res
}

fn cache_control(max_age: u32) -> HeaderValue {
    // Made once per thread for each max-age in force, not once per request.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u32, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((age, v)) if *age == max_age => v.clone(),
        _ => {
            let v = HeaderValue::from_str(&format!("public, max-age={max_age}")).expect("ASCII");
            *last = Some((max_age, v.clone()));
            v
        }
    })
}

/// A subscription feed, or a filtered view of it when the URL has a query.
async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    stem: &str,
    ext: &str,
) -> Response<Body> {
    let Some(format) = Format::from_extension(ext) else { return not_found() };
    let site = state.site.load();
    let Some(entry) = site.feeds.get(stem).cloned() else { return not_found() };
    let (token, query) = take_token(&query.unwrap_or_default());
    if let Some(res) = refused(&site, stem, &headers, token.as_deref()) {
        return res;
    }
    let private = site.private.contains_key(stem);
    let filter = match Filter::parse(&query, &entry.key, chrono::Utc::now()) {
        Ok(f) => f,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // A private feed must not sit in shared caches.
    let cc = if private { HeaderValue::from_static("private, no-cache") } else { cache_control(state.max_age()) };
    if filter.is_empty() {
        return for_browsers(&headers, format, respond(&headers, entry.current(format), cc.clone()));
    }
    let Some(dynamic) = state.dynamic.clone() else { return not_found() };
    let _turn = view_turn().await;
    match tokio::task::spawn_blocking(move || dynamic.filtered(&entry, &filter, format)).await {
        Ok(Ok(doc)) => for_browsers(&headers, format, respond(&headers, &doc, cc)),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// Browsers show `application/rss+xml` and `application/atom+xml` as plain text, but apply the
/// feed's stylesheet to XML: a request that asks for HTML (a browser's navigation) gets the same
/// bytes as `application/xml`. Feed readers do not ask for HTML and keep the feed types.
fn for_browsers(headers: &HeaderMap, format: Format, mut res: Response<Body>) -> Response<Body> {
    if format == Format::Json {
        return res;
    }
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Accept"));
    let wants_html = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|m| {
            let mut parts = m.split(';');
            let ty = parts.next().unwrap_or("").trim();
            let refused = parts.any(
                |p| matches!(p.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>().is_ok_and(|q| q == 0.0)),
            );
            ty.eq_ignore_ascii_case("text/html") && !refused
        })
    });
    if wants_html && h.contains_key(header::CONTENT_TYPE) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    }
    res
}

/// An archive page (`{page_size}-{index}.{ext}`) of a feed.
async fn archive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    stem: String,
    file: String,
) -> Response<Body> {
    let Some((name, ext)) = file.rsplit_once('.') else { return not_found() };
    let Some((size, num)) = name.split_once('-') else { return not_found() };
    let (Some(format), Ok(page_size), Ok(index)) =
        (Format::from_extension(ext), size.parse::<u64>(), num.parse::<u64>())
    else {
        return not_found();
    };
    // One name per page: no leading zeros or signs.
    if size != page_size.to_string() || num != index.to_string() {
        return not_found();
    }
    let (token, query) = take_token(&query.unwrap_or_default());
    let site = state.site.load();
    if let Some(res) = refused(&site, &stem, &headers, token.as_deref()) {
        return res;
    }
    if !query.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "query filters apply to subscription feeds, not to archive pages\n".into(),
        );
    }
    let cc = if site.private.contains_key(&stem) { "private, no-cache" } else { ARCHIVE_CACHE };
    let (Some(entry), Some(dynamic)) = (site.feeds.get(&stem).cloned(), state.dynamic.clone()) else {
        return not_found();
    };
    let _turn = view_turn().await;
    match tokio::task::spawn_blocking(move || dynamic.archive(&entry, page_size, index, format)).await {
        // A full archive page changes only if one of its clippings is edited or deleted (the
        // change also shows at the head of the feed, where RFC 5005 makes it win) or the feed's
        // title or address changes. A week of caching keeps a deleted clipping from outliving
        // its tombstone (30 days by default) in caches.
        Ok(Ok(Some(doc))) => for_browsers(&headers, format, respond(&headers, &doc, HeaderValue::from_static(cc))),
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn clipping(State(state): State<AppState>, headers: HeaderMap, id: String) -> Response<Body> {
    let valid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let Some(dynamic) = state.dynamic.clone().filter(|_| valid) else { return not_found() };
    let _turn = view_turn().await;
    match tokio::task::spawn_blocking(move || dynamic.clipping_page(&id)).await {
        Ok(Ok(Some(html))) => {
            let rendered = Rendered::new(html.into_bytes(), chrono::DateTime::UNIX_EPOCH, "text/html; charset=utf-8");
            let mut res = respond(&headers, &rendered, cache_control(state.max_age()));
            res.headers_mut().remove(header::LAST_MODIFIED);
            html_headers(res.headers_mut());
            res
        }
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// Pages are our own HTML with sanitised clipping content; a strict policy is a second line of
/// defence against anything the sanitiser missed.
fn html_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// The coding to send: brotli, then gzip, when the client accepts them (q > 0) and the document
/// is worth compressing; identity otherwise. Every `Accept-Encoding` line counts; nothing is
/// allocated, however many codings a client lists.
pub fn negotiate(headers: &HeaderMap, r: &Rendered) -> Encoding {
    if !r.compressible() {
        return Encoding::Identity;
    }
    let (mut br, mut gzip, mut star) = (None::<f32>, None::<f32>, None::<f32>);
    let lines = headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok());
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

/// Whether the client's copy is current: `If-None-Match` (weak comparison, `*`, every line of
/// it) when present, else `If-Modified-Since` at one-second precision (RFC 9110, 13.1.1 and
/// 13.1.3). A date equal to `Last-Modified` counts only when the document did not change twice
/// within that second. An `If-Modified-Since` that is not one valid date is ignored.
pub fn not_modified(headers: &HeaderMap, r: &Rendered) -> bool {
    let mut inm = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if inm.peek().is_some() {
        return inm
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || r.matches_tag(tag));
    }
    let mut lines = headers.get_all(header::IF_MODIFIED_SINCE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else { return false };
    let ims =
        line.to_str().ok().and_then(|s| httpdate::parse_http_date(s).ok()).map(chrono::DateTime::<chrono::Utc>::from);
    r.dated && ims.is_some_and(|ims| r.last_modified < ims || (r.last_modified == ims && !r.ambiguous))
}

/// The body in a coding. The first request for a coding compresses the document (milliseconds
/// for a large one); that runs off the async workers, so other requests are not held up.
fn encoded(r: &Rendered, enc: Encoding) -> bytes::Bytes {
    if !r.has_coding(enc)
        && let Ok(handle) = tokio::runtime::Handle::try_current()
        && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(|| r.body_in(enc));
    }
    r.body_in(enc)
}

/// A 200 with the bytes in the negotiated coding, or a 304 when the client's copy is current.
/// Both carry the validators, `Cache-Control` and `Vary`.
fn respond(headers: &HeaderMap, r: &Rendered, cache_control: HeaderValue) -> Response<Body> {
    let enc = negotiate(headers, r);
    let fresh = not_modified(headers, r);
    let mut res = if fresh {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        Response::new(Body::from(encoded(r, enc)))
    };
    let h = res.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(r.content_type));
        if let Some(coding) = enc.header() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
    }
    if r.compressible() {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let validators = r.validators();
    let tag = match enc {
        Encoding::Identity => 0,
        Encoding::Gzip => 1,
        Encoding::Brotli => 2,
    };
    let value = |v: &bytes::Bytes| HeaderValue::from_maybe_shared(v.clone()).expect("tags and dates are ASCII");
    h.insert(header::ETAG, value(&validators.etags[tag]));
    if r.dated {
        h.insert(header::LAST_MODIFIED, value(&validators.last_modified));
    }
    h.insert(header::CACHE_CONTROL, cache_control);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{FeedKey, FeedMeta};
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::collections::HashMap;
    use tower::ServiceExt;

    fn entry(key: FeedKey, ambiguous: bool) -> FeedEntry {
        let t: chrono::DateTime<chrono::Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let doc = |body: &str, f: Format| {
            let mut r = Rendered::new(body.as_bytes().to_vec(), t, f.content_type());
            r.ambiguous = ambiguous;
            r
        };
        let long = format!("<rss>{}</rss>", "<item>words</item>".repeat(100));
        FeedEntry {
            meta: FeedMeta {
                key: key.clone(),
                title: "t".into(),
                description: "d".into(),
                site_title: "s".into(),
                updated: t,
                icon: None,
            },
            key,
            rss: doc(&long, Format::Rss),
            atom: doc("<feed/>", Format::Atom),
            json: doc("{}", Format::Json),
            items_per_feed: 50,
            page_size: 25,
            archive_pages: 0,
            window_start: 0,
            log_len: 0,
            meta_at: t,
            retired_pages: Default::default(),
            generation: 0,
            history_at: t,
            history_ambiguous: false,
        }
    }

    fn state() -> AppState {
        let mut site = Site::empty();
        site.feeds = HashMap::from([
            ("topics/ai".to_string(), Arc::new(entry(FeedKey::Topic("ai".into()), false))),
            ("feed".to_string(), Arc::new(entry(FeedKey::All, true))),
        ]);
        let config = Config::for_test(std::path::Path::new("/nonexistent"), std::path::Path::new("/nonexistent.db"));
        AppState::from(Shared {
            site: Arc::new(ArcSwap::from_pointee(site)),
            dynamic: None,
            config: Arc::new(ArcSwap::from_pointee(config)),
            metrics: Arc::new(Metrics::default()),
        })
    }

    async fn call(method: &str, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri).header("host", "feeds.test");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = router(state()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn feeds_and_content_types() {
        let (s, h, b) = call("GET", "/topics/ai.atom", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/atom+xml; charset=utf-8");
        assert_eq!(b, b"<feed/>");
        assert_eq!(h[header::LAST_MODIFIED], "Wed, 01 May 2024 10:00:00 GMT");
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=60");
        let (s, h, _) = call("GET", "/feed.json", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/feed+json; charset=utf-8");
        let (s, h, _) = call("GET", "/feed.xsl", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/xsl"));
    }

    #[tokio::test]
    async fn conditional_requests() {
        let (_, h, _) = call("GET", "/topics/ai.atom", &[]).await;
        let etag = h[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        let (s, h2, b) = call("GET", "/topics/ai.atom", &[("if-none-match", &etag)]).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
        assert!(b.is_empty());
        assert_eq!(h2[header::ETAG], etag.as_str());
        let weak = format!("\"x\", W/{etag}");
        assert_eq!(call("GET", "/topics/ai.atom", &[("if-none-match", &weak)]).await.0, StatusCode::NOT_MODIFIED);
        assert_eq!(call("GET", "/topics/ai.atom", &[("if-none-match", "\"other\"")]).await.0, StatusCode::OK);
        let lm = "Wed, 01 May 2024 10:00:00 GMT";
        assert_eq!(call("GET", "/topics/ai.atom", &[("if-modified-since", lm)]).await.0, StatusCode::NOT_MODIFIED);
        assert_eq!(
            call("GET", "/topics/ai.atom", &[("if-modified-since", "Wed, 01 May 2024 09:59:59 GMT")]).await.0,
            StatusCode::OK
        );
        assert_eq!(call("GET", "/topics/ai.atom", &[("if-modified-since", "garbage")]).await.0, StatusCode::OK);
        assert_eq!(
            call("GET", "/feed.rss", &[("if-modified-since", lm)]).await.0,
            StatusCode::OK,
            "two versions within the second of Last-Modified: the date cannot tell them apart"
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            call("GET", "/topics/ai.atom", &[("if-none-match", "\"other\""), ("if-modified-since", lm)]).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn compression_is_negotiated() {
        let (_, plain_h, plain_b) = call("GET", "/topics/ai.rss", &[]).await;
        assert!(plain_h.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain_h[header::VARY], "Accept-Encoding");
        for (accept, coding) in [
            ("gzip, deflate, br", Some("br")),
            ("gzip", Some("gzip")),
            ("br;q=0.5, gzip;q=0.8", Some("gzip")),
            ("br;q=0, gzip;q=0", None),
            ("*", Some("br")),
            ("identity", None),
            ("deflate", None),
        ] {
            let (s, h, b) = call("GET", "/topics/ai.rss", &[("accept-encoding", accept)]).await;
            assert_eq!(s, StatusCode::OK, "{accept}");
            assert_eq!(h.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), coding, "{accept}");
            assert_eq!(h[header::VARY], "Accept-Encoding");
            if coding.is_some() {
                assert!(b.len() < plain_b.len());
                assert_ne!(h[header::ETAG], plain_h[header::ETAG], "each coding is its own representation");
                let (s, _, _) = call(
                    "GET",
                    "/topics/ai.rss",
                    &[("accept-encoding", accept), ("if-none-match", h[header::ETAG].to_str().unwrap())],
                )
                .await;
                assert_eq!(s, StatusCode::NOT_MODIFIED);
            }
        }
        // Browsers get XML they can style; readers keep the feed type.
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", browser)]).await;
        assert_eq!(h[header::CONTENT_TYPE], "application/xml; charset=utf-8");
        assert!(h.get_all(header::VARY).iter().any(|v| v == "Accept"));
        let reader = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8";
        let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", reader)]).await;
        assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
        let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", "text/html;q=0, */*")]).await;
        assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
        // Tiny documents are not compressed.
        let (_, h, _) = call("GET", "/topics/ai.atom", &[("accept-encoding", "br")]).await;
        assert!(h.get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn methods_unknowns_and_bad_filters() {
        let (s, h, b) = call("HEAD", "/topics/ai.atom", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_empty());
        assert_eq!(h[header::CONTENT_LENGTH], "7");
        let (s, h, _) = call("POST", "/topics/ai.rss", &[]).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        assert!(h.contains_key(header::ALLOW));
        assert_eq!(call("DELETE", "/feed.rss", &[]).await.0, StatusCode::METHOD_NOT_ALLOWED);
        for uri in [
            "/topics/nope.rss",
            "/topics/ai.xml",
            "/topics/ai",
            "/providers/x.rss",
            "/nope",
            "/topics/.rss",
            "/clippings/1",
            "/other/ai.rss",
            "/topics/ai/archive/25-0.rss",
            "/feed/archive/25-00.rss",
            "/feed/archive/0.rss",
        ] {
            assert_eq!(call("GET", uri, &[]).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
        let (s, _, b) = call("GET", "/topics/ai.rss?limit=0", &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8(b).unwrap().contains("'limit'"));
        let (s, _, b) = call("GET", "/topics/ai.rss?topic=x", &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8(b).unwrap().contains("'topic'"));
        assert_eq!(call("GET", "/healthz", &[]).await.0, StatusCode::OK);
        let (s, h, _) = call("GET", "/api/status", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
    }
}
