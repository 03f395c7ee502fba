//! The first layer every request meets, before any route: it refuses what no route may answer
//! (a target past `http.max_url_bytes`, a missing or repeated `Host`, `CONNECT` and `OPTIONS *`),
//! works out who the client is (see `client`) and hands that to the handlers as a request
//! extension, holds a client behind a trusted proxy to `http.max_connections_per_address`
//! requests in flight, and counts every response by route class and status, with its size.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, Response, StatusCode};

use super::AppState;
use super::client::{self, AddrKey};
use super::respond::{plain, unavailable};

/// The class of a route, for request metrics.
pub fn route_class(path: &str, query: Option<&str>) -> &'static str {
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

/// The layer itself (see the module header).
pub async fn gate(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let route = route_class(req.uri().path(), req.uri().query());
    let head = req.method() == Method::HEAD;
    let cfg = state.config.load();
    let res = match malformed(&req, cfg.http.max_url_bytes) {
        Some(refusal) => refusal,
        None => {
            let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            let client = client::resolve(peer, req.headers(), &cfg.http.trusted_proxies);
            req.extensions_mut().insert(client);
            // A client behind a proxy shares the proxy's connections with every other one, so it
            // is bounded per request instead of per connection. An unnamed one counts as the proxy.
            let key = client.addr.or(peer).map(AddrKey::of);
            let counted = match key.filter(|_| client.proxied) {
                Some(key) => match state.proxied.enter(key, cfg.http.max_connections_per_address) {
                    Some(counted) => Some(counted),
                    None => {
                        let res = too_many(cfg.http.view_timeout.as_secs());
                        state.metrics.request(route, res.status().as_u16(), 0);
                        return res;
                    }
                },
                None => None,
            };
            drop(cfg);
            let res = next.run(req).await;
            drop(counted);
            res
        }
    };
    let bytes = if head { 0 } else { http_body::Body::size_hint(res.body()).exact().unwrap_or(0) };
    state.metrics.request(route, res.status().as_u16(), bytes);
    res
}

/// 503 to a client behind a proxy that has as many requests in flight as a client may.
fn too_many(retry_after: u64) -> Response<Body> {
    unavailable("too many requests in flight from this client address\n".into(), retry_after)
}

/// A request no route may answer: `CONNECT` or `OPTIONS *` (405, like every method but `GET`
/// and `HEAD`), a request target longer than `max_url` bytes (414, key `http.max_url_bytes`), or a
/// `Host` field given twice, or missing from an HTTP/1.1 request (400, RFC 9112 section 3.2).
pub fn malformed<B>(req: &axum::http::Request<B>, max_url: usize) -> Option<Response<Body>> {
    let asterisk = req.method() == Method::OPTIONS && req.uri().path_and_query().is_some_and(|p| p.as_str() == "*");
    if req.method() == Method::CONNECT || asterisk {
        let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served\n".into());
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return Some(res);
    }
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
