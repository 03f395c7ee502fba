//! HTTP: the routes, conditional requests, and response headers. The only module that knows HTTP
//! (and the only one that imports axum). Handlers look up pre-rendered bytes in the current
//! [`Site`] snapshot and answer; nothing is parsed, queried or rendered per feed request.
//!
//! `router` is what tests drive with `tower::ServiceExt::oneshot`, without a socket.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::feed::Format;
use crate::site::{Rendered, Site};

/// Produces the HTML page of one clipping by id; `Ok(None)` when there is no such clipping.
pub trait PageSource: Send + Sync {
    fn clipping_page(&self, id: &str) -> anyhow::Result<Option<String>>;
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub site: Arc<ArcSwap<Site>>,
    pub pages: Option<Arc<dyn PageSource>>,
}

/// Every route clipfeed serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/feed.rss", get(|s: State<AppState>, h: HeaderMap| async move { feed(s, h, "feed", Format::Rss) }))
        .route("/feed.atom", get(|s: State<AppState>, h: HeaderMap| async move { feed(s, h, "feed", Format::Atom) }))
        .route(
            "/topics/{file}",
            get(|s: State<AppState>, h: HeaderMap, Path(file): Path<String>| async move {
                feed_file(s, h, "topics", &file)
            }),
        )
        .route(
            "/providers/{file}",
            get(|s: State<AppState>, h: HeaderMap, Path(file): Path<String>| async move {
                feed_file(s, h, "providers", &file)
            }),
        )
        .route("/clippings/{id}", get(clipping))
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .fallback(|| async { not_found() })
        .with_state(state)
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

fn plain(status: StatusCode, msg: &'static str) -> Response<Body> {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg).into_response()
}

async fn healthz() -> Response<Body> {
    plain(StatusCode::OK, "ok\n")
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
    let mut res = respond(&headers, &site.index);
    html_headers(res.headers_mut());
    res
}

fn feed_file(state: State<AppState>, headers: HeaderMap, dir: &str, file: &str) -> Response<Body> {
    let Some((name, ext)) = file.rsplit_once('.') else { return not_found() };
    let Some(format) = Format::from_extension(ext) else { return not_found() };
    if name.is_empty() || name.contains(['/', '\\']) {
        return not_found();
    }
    feed(state, headers, &format!("{dir}/{name}"), format)
}

fn feed(State(state): State<AppState>, headers: HeaderMap, stem: &str, format: Format) -> Response<Body> {
    let site = state.site.load();
    match site.feed(stem, format) {
        Some(r) => respond(&headers, r),
        None => not_found(),
    }
}

async fn clipping(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response<Body> {
    let valid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let Some(pages) = state.pages.clone().filter(|_| valid) else { return not_found() };
    let result = tokio::task::spawn_blocking(move || pages.clipping_page(&id)).await;
    match result {
        Ok(Ok(Some(html))) => {
            let rendered = Rendered::new(html.into_bytes(), chrono::DateTime::UNIX_EPOCH, "text/html; charset=utf-8");
            let mut res = respond(&headers, &rendered);
            res.headers_mut().remove(header::LAST_MODIFIED);
            html_headers(res.headers_mut());
            res
        }
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => {
            tracing::error!("clipping page failed: {e:#}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
        Err(e) => {
            tracing::error!("clipping page task failed: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

/// Pages are our own HTML with sanitised clipping content; a strict policy is a second line of
/// defence against anything the sanitiser missed.
fn html_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// Whether the client's validators match: `If-None-Match` (weak comparison, `*`) when present,
/// else `If-Modified-Since` at one-second precision (RFC 9110, 13.1.1 and 13.1.3). A date equal to
/// `Last-Modified` counts only when the document did not change twice within that second.
pub fn not_modified(headers: &HeaderMap, r: &Rendered) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(v) = inm.to_str() else { return false };
        return v.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == r.etag);
    }
    let ims = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| httpdate::parse_http_date(s).ok());
    match ims {
        Some(ims) => {
            let ims = chrono::DateTime::<chrono::Utc>::from(ims);
            r.last_modified < ims || (r.last_modified == ims && !r.ambiguous)
        }
        None => false,
    }
}

/// A 200 with the bytes, or a 304 when the client's copy is current. Both carry the validators.
fn respond(headers: &HeaderMap, r: &Rendered) -> Response<Body> {
    let fresh = not_modified(headers, r);
    let mut res = if fresh {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        Response::new(Body::from(r.body.clone()))
    };
    let h = res.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    }
    if let Ok(v) = HeaderValue::from_str(&r.etag) {
        h.insert(header::ETAG, v);
    }
    let lm = httpdate::fmt_http_date(std::time::SystemTime::from(r.last_modified));
    if let Ok(v) = HeaderValue::from_str(&lm) {
        h.insert(header::LAST_MODIFIED, v);
    }
    // Caches may keep a copy but must ask (cheaply, with the validators) before using it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::FeedFiles;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::collections::HashMap;
    use tower::ServiceExt;

    fn state() -> AppState {
        let t: chrono::DateTime<chrono::Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let files = FeedFiles {
            rss: Rendered::new(b"<rss/>".to_vec(), t, Format::Rss.content_type()),
            atom: Rendered::new(b"<feed/>".to_vec(), t, Format::Atom.content_type()),
        };
        let mut site = Site::empty();
        let mut ambiguous = files.clone();
        ambiguous.rss.ambiguous = true;
        site.feeds =
            HashMap::from([("topics/ai".to_string(), Arc::new(files)), ("feed".to_string(), Arc::new(ambiguous))]);
        AppState { site: Arc::new(ArcSwap::from_pointee(site)), pages: None }
    }

    async fn call(method: &str, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
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
        let (s, h, b) = call("GET", "/topics/ai.rss", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
        assert_eq!(b, b"<rss/>");
        assert_eq!(h[header::LAST_MODIFIED], "Wed, 01 May 2024 10:00:00 GMT");
        let (s, h, _) = call("GET", "/feed.atom", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/atom+xml; charset=utf-8");
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
        assert_eq!(
            call("GET", "/topics/ai.atom", &[("if-modified-since", "Wed, 01 May 2024 10:00:00 GMT")]).await.0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            call("GET", "/topics/ai.atom", &[("if-modified-since", "Wed, 01 May 2024 09:59:59 GMT")]).await.0,
            StatusCode::OK
        );
        assert_eq!(call("GET", "/topics/ai.atom", &[("if-modified-since", "garbage")]).await.0, StatusCode::OK);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            call("GET", "/feed.rss", &[("if-modified-since", "Wed, 01 May 2024 10:00:00 GMT")]).await.0,
            StatusCode::OK,
            "two versions within the second of Last-Modified: the date cannot tell them apart"
        );
        assert_eq!(
            call(
                "GET",
                "/topics/ai.atom",
                &[("if-none-match", "\"other\""), ("if-modified-since", "Wed, 01 May 2024 10:00:00 GMT")]
            )
            .await
            .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn methods_and_unknowns() {
        let (s, h, b) = call("HEAD", "/topics/ai.rss", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_empty());
        assert_eq!(h[header::CONTENT_LENGTH], "6");
        let (s, h, _) = call("POST", "/topics/ai.rss", &[]).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        assert!(h.contains_key(header::ALLOW));
        assert_eq!(call("DELETE", "/feed.rss", &[]).await.0, StatusCode::METHOD_NOT_ALLOWED);
        for uri in [
            "/topics/nope.rss",
            "/topics/ai.json",
            "/topics/ai",
            "/providers/x.rss",
            "/nope",
            "/topics/.rss",
            "/clippings/1",
        ] {
            assert_eq!(call("GET", uri, &[]).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
        assert_eq!(call("GET", "/healthz", &[]).await.0, StatusCode::OK);
        let (s, h, _) = call("GET", "/api/status", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
    }
}
