//! Answers: a document as a 200 in the negotiated coding or a 304 when the client's copy is
//! current (RFC 9110 conditional requests), with its validators and cache headers; and the short
//! text answers (404, 400, 500, 503).

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;

use super::negotiate::{Fields, negotiate, text};
use crate::site::{Encoding, Rendered};

/// `Cache-Control` of archive pages.
pub const ARCHIVE_CACHE: &str = "public, max-age=604800";

/// `Cache-Control` of private feeds: never in a shared cache.
pub const PRIVATE_CACHE: &str = "private, no-cache";

/// `Cache-Control` of private feeds' pages: stored nowhere, the browser's history cache included,
/// since their URL holds the token.
pub const PRIVATE_PAGE_CACHE: &str = "private, no-store";

/// 404, never stored by a cache: an unauthorised request for a private feed gets exactly this
/// answer too (see `access::refused`), so no shared cache can hand one to the other.
pub fn not_found() -> Response<Body> {
    let mut res = plain(StatusCode::NOT_FOUND, "not found\n".into());
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A short text answer. Error messages may quote the request, so browsers are told not to
/// guess another type.
pub fn plain(status: StatusCode, msg: String) -> Response<Body> {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], msg)
        .into_response()
}

pub fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!("request failed: {e:#}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
}

/// 503: the server is too busy for this request now; `Retry-After` says when to come back. Never
/// stored by a cache, so a later request gets a real answer.
pub fn unavailable(msg: String, retry_after_secs: u64) -> Response<Body> {
    let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, msg);
    let h = res.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Pages are our own HTML with sanitised clipping content; a strict policy is a second line of
/// defence against anything the sanitiser missed: no script at all, pictures from the web, the
/// pages' one stylesheet (by its hash) and no other style, forms only to this site (the search
/// box), no framing.
pub fn html_headers(h: &mut HeaderMap) {
    static POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        let policy = format!(
            "default-src 'none'; img-src http: https: data:; style-src {}; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
            crate::pages::style_source()
        );
        HeaderValue::from_str(&policy).expect("ASCII")
    });
    h.insert(header::CONTENT_SECURITY_POLICY, POLICY.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// `public, max-age=N`, made once per thread for each max-age in force, not once per request.
pub fn cache_control(max_age: u32) -> HeaderValue {
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

/// Whether the client's copy in the coding `enc` is current: `If-None-Match` (weak comparison, `*`, every line of
/// it) when present, else `If-Modified-Since` at one-second precision (RFC 9110, 13.1.1 and
/// 13.1.3). A date equal to `Last-Modified` counts only when the document did not change twice
/// within that second. An `If-Modified-Since` that is not one valid date is ignored.
pub fn not_modified(headers: &impl Fields, r: &Rendered, enc: Encoding) -> bool {
    if headers.lines(&header::IF_NONE_MATCH).next().is_some() {
        return headers
            .texts(&header::IF_NONE_MATCH)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || r.matches_tag(tag, enc));
    }
    let mut lines = headers.lines(&header::IF_MODIFIED_SINCE);
    let (Some(line), None) = (lines.next(), lines.next()) else { return false };
    let ims = text(line).and_then(|s| httpdate::parse_http_date(s).ok()).map(chrono::DateTime::<chrono::Utc>::from);
    r.dated && ims.is_some_and(|ims| r.last_modified < ims || (r.last_modified == ims && !r.ambiguous))
}

/// The body in a coding. The first request for a coding compresses the document (milliseconds
/// for a large one, once per document and coding: gzip is made when the document is published or
/// just after (or by the first request for it before that), brotli at its first request). On a multi-threaded runtime that runs off the async workers; an
/// HTTP worker (`workers`, single-threaded) makes it in place, holding up its other
/// connections for that long.
pub(super) fn encoded(r: &Rendered, enc: Encoding) -> bytes::Bytes {
    if !r.has_coding(enc)
        && let Ok(handle) = tokio::runtime::Handle::try_current()
        && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(|| r.body_in(enc));
    }
    r.body_in(enc)
}

/// Makes the coding the client is to be sent on a blocking thread, when it is not made yet and
/// the answer is not a 304: for a view made on request, whose codings no one has asked for yet.
/// A view of a megabyte takes brotli about 0.3 s, which on an HTTP worker (`workers`,
/// single-threaded) would hold up every connection it serves; `encoded` then finds it made.
/// At most as many codings are made at once as there are CPUs: a flood of views of its own
/// (each query another) waits for a turn, and one whose client left stops waiting.
pub async fn code_off_worker(headers: &impl Fields, doc: &std::sync::Arc<Rendered>) {
    static TURNS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> = std::sync::LazyLock::new(|| {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        std::sync::Arc::new(tokio::sync::Semaphore::new(cpus))
    });
    let enc = negotiate(headers, doc);
    if doc.has_coding(enc) || not_modified(headers, doc, enc) {
        return;
    }
    let Ok(turn) = TURNS.clone().acquire_owned().await else { return };
    let doc = doc.clone();
    // (A coding made meanwhile by another request is not made again: `body_in` makes it once.)
    // A coding that failed to be made here is made in place by `encoded`, as before.
    let _ = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        drop(doc.body_in(enc));
    })
    .await;
}

/// The header fields a document's 200 may carry: `Content-Type`, `Content-Encoding`, `Vary`,
/// `ETag`, `Last-Modified`, `Cache-Control`, `Link`, `Content-Length`.
const ANSWER_FIELDS: usize = 8;

/// A 200 with the bytes in the negotiated coding, or a 304 when the client's copy is current.
/// Both carry the validators, `Cache-Control` and `Vary`.
pub fn respond(headers: &impl Fields, r: &Rendered, cache_control: HeaderValue) -> Response<Body> {
    let enc = negotiate(headers, r);
    respond_with(r, enc, not_modified(headers, r, enc), cache_control)
}

/// The answer [`respond`] gives once the coding is chosen and `fresh` says whether the client's
/// copy is current (304).
pub fn respond_with(r: &Rendered, enc: Encoding, fresh: bool, cache_control: HeaderValue) -> Response<Body> {
    let mut res = if fresh {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        Response::new(Body::from(encoded(r, enc)))
    };
    if !fresh {
        // Room for every field a 200 gets here and after: a map made empty grows and rehashes
        // itself at the seventh, once per response (a 304 has fewer: the first table holds them).
        *res.headers_mut() = HeaderMap::with_capacity(ANSWER_FIELDS);
    }
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
